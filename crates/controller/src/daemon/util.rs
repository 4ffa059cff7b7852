//! The DaemonSet controller's decisions as pure functions (upstream's
//! pkg/controller/daemon/daemon_controller.go `NodeShouldRunDaemonPod`,
//! `podsShouldBeOnNode`, update.go `rollingUpdate`, util/daemonset_util.go
//! `AddOrUpdateDaemonPodTolerations`, `ReplaceDaemonSetPodNodeNameNodeAffinity`,
//! `GetTargetNodeName`, and the status counts of `updateDaemonSetStatus`).

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodSpec, Toleration,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::deployment::util::scaled;
use crate::history::CONTROLLER_REVISION_HASH;
use crate::nodelifecycle::tolerates;
use crate::replicaset::ranking::{is_available, is_ready};

/// Upstream's deprecated `pod-template-generation` label, still written.
pub const POD_TEMPLATE_GENERATION: &str = "pod-template-generation";

/// Upstream's `AddOrUpdateDaemonPodTolerations`: a daemon pod tolerates
/// node conditions that would otherwise keep or evict it.
pub fn add_default_tolerations(spec: &mut PodSpec) {
    let host_network = spec.host_network == Some(true);
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    let mut defaults = vec![
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if host_network {
        defaults.push(("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    for (key, effect) in defaults {
        let t = Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some(effect.into()),
            ..Default::default()
        };
        // Upstream's `AddOrUpdateTolerationInPodSpec`: same key, operator,
        // value and effect replaced, else appended.
        tolerations.retain(|o| {
            !(o.key == t.key
                && o.effect == t.effect
                && o.operator == t.operator
                && o.value.is_none())
        });
        tolerations.push(t);
    }
}

/// Upstream's `ReplaceDaemonSetPodNodeNameNodeAffinity`: the pod may only
/// go to `node` (the scheduler binds it there).
pub fn set_node_affinity(spec: &mut PodSpec, node: &str) {
    let term = NodeSelectorTerm {
        match_fields: Some(vec![NodeSelectorRequirement {
            key: "metadata.name".into(),
            operator: "In".into(),
            values: Some(vec![node.to_string()]),
        }]),
        match_expressions: None,
    };
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    let na = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    na.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![term],
    });
}

/// Upstream's `GetTargetNodeName`: `spec.nodeName`, else the node named
/// by the daemon affinity.
pub fn target_node(pod: &Pod) -> Option<&str> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(n);
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms.iter().find_map(|t| {
        t.match_fields.iter().flatten().find_map(|f| {
            let values = f.values.as_deref().unwrap_or_default();
            (f.key == "metadata.name" && f.operator == "In" && values.len() == 1)
                .then(|| values[0].as_str())
        })
    })
}

fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    let num = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => !value.is_some_and(|v| values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (value.and_then(num), values.first().and_then(|b| num(b)))
            else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// A node selector term (upstream's `nodeaffinity`): every expression on
/// labels and every field (`metadata.name`) must hold; an empty term
/// matches nothing.
fn term_matches(t: &NodeSelectorTerm, node: &Node) -> bool {
    let exprs = t.match_expressions.as_deref().unwrap_or_default();
    let fields = t.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = node.metadata.labels.clone().unwrap_or_default();
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| {
            r.key == "metadata.name" && requirement_matches(r, node.metadata.name.as_deref())
        })
}

/// nodeSelector and required node affinity (upstream's `fitsNodeAffinity`).
pub fn fits_affinity(spec: &PodSpec, node: &Node) -> bool {
    let labels: BTreeMap<String, String> = node.metadata.labels.clone().unwrap_or_default();
    let selector_ok = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    selector_ok
        && required.is_none_or(|r| r.node_selector_terms.iter().any(|t| term_matches(t, node)))
}

/// Upstream's `NodeShouldRunDaemonPod`: (should run, should continue running).
pub fn should_run(ds: &DaemonSet, node: &Node) -> (bool, bool) {
    let Some(mut spec) = ds.spec.as_ref().and_then(|s| s.template.spec.clone()) else {
        return (false, false);
    };
    add_default_tolerations(&mut spec);
    let node_name = node.metadata.name.as_deref().unwrap_or_default();
    if spec
        .node_name
        .as_deref()
        .is_some_and(|n| !n.is_empty() && n != node_name)
    {
        return (false, false);
    }
    if !fits_affinity(&spec, node) {
        return (false, false);
    }
    let tolerations = spec.tolerations.as_deref().unwrap_or_default();
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default();
    let untolerated = |effect: &str| {
        taints
            .iter()
            .filter(|t| t.effect == effect)
            .any(|taint| !tolerations.iter().any(|t| tolerates(t, taint)))
    };
    let no_execute = untolerated("NoExecute");
    let no_schedule = untolerated("NoSchedule");
    (!no_execute && !no_schedule, !no_execute)
}

/// Upstream's `IsPodUpdated`: the pod carries the current hash (or the
/// current template generation, for pods of older controllers).
pub fn is_updated(pod: &Pod, hash: &str, generation: Option<i64>) -> bool {
    let labels = pod.metadata.labels.as_ref();
    let by_hash = labels
        .and_then(|l| l.get(CONTROLLER_REVISION_HASH))
        .is_some_and(|h| h == hash);
    let by_generation = generation.is_some_and(|g| {
        labels
            .and_then(|l| l.get(POD_TEMPLATE_GENERATION))
            .is_some_and(|v| *v == g.to_string())
    });
    by_hash || by_generation
}

fn created(p: &Pod) -> Option<Timestamp> {
    p.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

/// Upstream's `findUpdatedPodsOnNode`: the node's new and old pod, or
/// `None` when it has more than one of either (manage cleans that up).
fn updated_on_node<'a>(
    pods: &[&'a Pod],
    hash: &str,
    generation: Option<i64>,
) -> Option<(Option<&'a Pod>, Option<&'a Pod>)> {
    let (mut new, mut old) = (None, None);
    for p in pods
        .iter()
        .copied()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        let slot = if is_updated(p, hash, generation) {
            &mut new
        } else {
            &mut old
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(p);
    }
    Some((new, old))
}

fn name(p: &Pod) -> String {
    p.metadata.name.clone().unwrap_or_default()
}

/// The rolling update's knobs, resolved against desiredNumberScheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub max_surge: i32,
    pub max_unavailable: i32,
}

/// Upstream's `updatedDesiredNodeCounts` (surge and unavailable rounded
/// up; both zero means one unavailable).
pub fn bounds(ds: &DaemonSet, desired: i32) -> Bounds {
    let ru = ds
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let surge = scaled(ru.and_then(|r| r.max_surge.as_ref()), desired, true, 0).max(0);
    let default_unavailable = IntOrString::Int(1);
    let unavailable = scaled(
        Some(
            ru.and_then(|r| r.max_unavailable.as_ref())
                .unwrap_or(&default_unavailable),
        ),
        desired,
        true,
        0,
    )
    .max(0);
    if surge == 0 && unavailable == 0 {
        return Bounds {
            max_surge: 0,
            max_unavailable: 1,
        };
    }
    Bounds {
        max_surge: surge,
        max_unavailable: unavailable,
    }
}

/// What a rolling update step does: delete old pods, create new pods on nodes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Step {
    pub delete: Vec<String>,
    pub create_on: Vec<String>,
}

/// Upstream's `rollingUpdate` over the pods on each node (only nodes with
/// daemon pods are listed).
pub fn rolling_update(
    node_pods: &BTreeMap<String, Vec<&Pod>>,
    hash: &str,
    generation: Option<i64>,
    bounds: Bounds,
    min_ready_seconds: i64,
    now: Timestamp,
) -> Step {
    let available = |p: &Pod| is_available(p, min_ready_seconds, now);
    let mut step = Step::default();
    if bounds.max_surge == 0 {
        let mut unavailable = 0;
        let mut always = Vec::new();
        let mut candidates = Vec::new();
        for pods in node_pods.values() {
            match updated_on_node(pods, hash, generation) {
                None | Some((None, None)) | Some((Some(_), Some(_))) => unavailable += 1,
                Some((Some(new), None)) => {
                    if !available(new) {
                        unavailable += 1;
                    }
                }
                Some((None, Some(old))) => {
                    if !available(old) {
                        always.push(name(old));
                    } else if unavailable < bounds.max_unavailable {
                        candidates.push(name(old));
                    }
                }
            }
        }
        let remaining = usize::try_from((bounds.max_unavailable - unavailable).max(0))
            .unwrap_or(0)
            .min(candidates.len());
        step.delete = always;
        step.delete.extend(candidates.into_iter().take(remaining));
        return step;
    }
    let mut surged = 0;
    let mut always = Vec::new();
    let mut candidates = Vec::new();
    for (node, pods) in node_pods {
        match updated_on_node(pods, hash, generation) {
            None => surged += 1,
            Some((_, None)) => {}
            Some((None, Some(old))) => {
                if !available(old) {
                    always.push(node.clone());
                } else if surged < bounds.max_surge {
                    candidates.push(node.clone());
                }
            }
            Some((Some(new), Some(old))) => {
                if available(new) {
                    step.delete.push(name(old));
                } else {
                    surged += 1;
                }
            }
        }
    }
    let remaining = usize::try_from((bounds.max_surge - surged).max(0))
        .unwrap_or(0)
        .min(candidates.len());
    step.create_on = always;
    step.create_on
        .extend(candidates.into_iter().take(remaining));
    step
}

/// Upstream's `podsShouldBeOnNode` for one node: whether to create a pod
/// there and which of its pods to delete.
pub fn pods_for_node(
    should_run: bool,
    should_continue: bool,
    pods: &[&Pod],
    hash: &str,
    generation: Option<i64>,
    surge: bool,
) -> (bool, Vec<String>) {
    let live: Vec<&Pod> = pods
        .iter()
        .copied()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    if !should_continue {
        return (false, live.iter().map(|p| name(p)).collect());
    }
    let phase = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default()
    };
    // Failed pods are deleted (and replaced at the next sync); succeeded
    // ones too, a daemon is not meant to finish.
    let (finished, mut running): (Vec<&Pod>, Vec<&Pod>) = live
        .iter()
        .partition(|p| matches!(phase(p).as_str(), "Failed" | "Succeeded"));
    let mut delete: Vec<String> = finished.iter().map(|p| name(p)).collect();
    if running.is_empty() {
        // A pod still terminating blocks its replacement.
        let terminating = pods.len() > live.len();
        return (should_run && !terminating, delete);
    }
    running.sort_by_key(|p| (created(p), name(p)));
    if surge {
        let (mut new_seen, mut old_seen) = (false, false);
        for p in running {
            let slot = if is_updated(p, hash, generation) {
                &mut new_seen
            } else {
                &mut old_seen
            };
            if *slot {
                delete.push(name(p));
            }
            *slot = true;
        }
    } else {
        delete.extend(running.iter().skip(1).map(|p| name(p)));
    }
    (false, delete)
}

/// The status counts (upstream's `updateDaemonSetStatus`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub desired: i32,
    pub current: i32,
    pub misscheduled: i32,
    pub ready: i32,
    pub available: i32,
    pub updated: i32,
}

pub fn counts(
    nodes: &[(Arc<Node>, bool)],
    node_pods: &BTreeMap<String, Vec<&Pod>>,
    hash: &str,
    generation: Option<i64>,
    min_ready_seconds: i64,
    now: Timestamp,
) -> Counts {
    let mut c = Counts::default();
    for (node, run) in nodes {
        let n = node.metadata.name.clone().unwrap_or_default();
        let mut pods: Vec<&Pod> = node_pods.get(&n).cloned().unwrap_or_default();
        pods.sort_by_key(|p| (created(p), name(p)));
        let scheduled = !pods.is_empty();
        if *run {
            c.desired += 1;
            if let Some(p) = pods.first() {
                c.current += 1;
                if is_ready(p) {
                    c.ready += 1;
                    if is_available(p, min_ready_seconds, now) {
                        c.available += 1;
                    }
                }
                if p.metadata.deletion_timestamp.is_none() && is_updated(p, hash, generation) {
                    c.updated += 1;
                }
            }
        } else if scheduled {
            c.misscheduled += 1;
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        match serde_json::from_value(v) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        }
    }

    fn ds(pod_spec: serde_json::Value) -> DaemonSet {
        let mut spec = json!({"containers": [{"name": "c", "image": "i"}]});
        if let (Some(s), Some(extra)) = (spec.as_object_mut(), pod_spec.as_object()) {
            s.extend(extra.clone());
        }
        from(
            json!({"metadata": {"name": "ds"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": spec}}}),
        )
    }

    fn node(name: &str, labels: serde_json::Value, taints: serde_json::Value) -> Node {
        from(json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}}))
    }

    #[test]
    fn which_nodes_run_a_daemon_pod() {
        let cases: Vec<(&str, serde_json::Value, Node, (bool, bool))> = vec![
            (
                "plain node",
                json!({}),
                node("n", json!({}), json!([])),
                (true, true),
            ),
            (
                "nodeSelector matches",
                json!({"nodeSelector": {"disk": "ssd"}}),
                node("n", json!({"disk": "ssd"}), json!([])),
                (true, true),
            ),
            (
                "nodeSelector does not match",
                json!({"nodeSelector": {"disk": "ssd"}}),
                node("n", json!({"disk": "hdd"}), json!([])),
                (false, false),
            ),
            (
                "required affinity NotIn",
                json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                    {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}]}}}}),
                node("n", json!({"zone": "a"}), json!([])),
                (false, false),
            ),
            (
                "required affinity on the name",
                json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                    {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n"]}]}]}}}}),
                node("n", json!({}), json!([])),
                (true, true),
            ),
            (
                "untolerated NoSchedule: not started, kept",
                json!({}),
                node(
                    "n",
                    json!({}),
                    json!([{"key": "dedicated", "effect": "NoSchedule"}]),
                ),
                (false, true),
            ),
            (
                "untolerated NoExecute: neither",
                json!({}),
                node(
                    "n",
                    json!({}),
                    json!([{"key": "dedicated", "effect": "NoExecute"}]),
                ),
                (false, false),
            ),
            (
                "tolerated taint",
                json!({"tolerations": [{"key": "dedicated", "operator": "Exists"}]}),
                node(
                    "n",
                    json!({}),
                    json!([{"key": "dedicated", "effect": "NoExecute"}]),
                ),
                (true, true),
            ),
            (
                "default tolerations: not-ready, unschedulable, pressure",
                json!({}),
                node(
                    "n",
                    json!({}),
                    json!([
                    {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
                    {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                    {"key": "node.kubernetes.io/memory-pressure", "effect": "NoSchedule"}]),
                ),
                (true, true),
            ),
            (
                "network-unavailable only tolerated with hostNetwork",
                json!({}),
                node(
                    "n",
                    json!({}),
                    json!([{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]),
                ),
                (false, true),
            ),
            (
                "network-unavailable with hostNetwork",
                json!({"hostNetwork": true}),
                node(
                    "n",
                    json!({}),
                    json!([{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]),
                ),
                (true, true),
            ),
            (
                "nodeName elsewhere",
                json!({"nodeName": "other"}),
                node("n", json!({}), json!([])),
                (false, false),
            ),
        ];
        for (what, spec, n, want) in cases {
            assert_eq!(should_run(&ds(spec), &n), want, "{what}");
        }
    }

    fn pod(name: &str, hash: &str, ready: bool, created: &str) -> Pod {
        from(
            json!({"metadata": {"name": name, "creationTimestamp": created,
                "labels": {"controller-revision-hash": hash}},
            "spec": {"containers": [], "nodeName": format!("node-{name}")},
            "status": {"phase": "Running", "conditions": [{"type": "Ready",
                "status": if ready { "True" } else { "False" },
                "lastTransitionTime": "2024-01-01T00:00:00Z"}]}}),
        )
    }

    #[test]
    fn affinity_and_target_node() {
        let mut spec: PodSpec = from(json!({"containers": [], "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}}));
        set_node_affinity(&mut spec, "n1");
        let p = Pod {
            spec: Some(spec),
            ..Default::default()
        };
        assert_eq!(target_node(&p), Some("n1"));
        let terms = p
            .spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|r| r.node_selector_terms.len());
        assert_eq!(terms, Some(1));
    }

    #[test]
    fn rolling_update_steps() {
        let now: Timestamp = "2024-01-01T01:00:00Z"
            .parse()
            .unwrap_or(Timestamp::UNIX_EPOCH);
        let t = "2024-01-01T00:00:00Z";
        let pods = [
            pod("a", "old", true, t),
            pod("b", "old", true, t),
            pod("c", "old", false, t),
            pod("d", "new", true, t),
            pod("e", "new", false, t),
        ];
        let map = |names: &[&str]| -> BTreeMap<String, Vec<&Pod>> {
            pods.iter()
                .filter(|p| names.contains(&name(p).as_str()))
                .map(|p| (name(p), vec![p]))
                .collect()
        };
        let b = |s, u| Bounds {
            max_surge: s,
            max_unavailable: u,
        };
        let cases: Vec<(&str, &[&str], Bounds, Step)> = vec![
            (
                "one at a time",
                &["a", "b", "d"],
                b(0, 1),
                Step {
                    delete: vec!["a".into()],
                    create_on: vec![],
                },
            ),
            (
                "an unavailable new pod uses the budget",
                &["a", "b", "e"],
                b(0, 1),
                Step::default(),
            ),
            (
                "unavailable old pods always go",
                &["a", "c", "e"],
                b(0, 1),
                Step {
                    delete: vec!["c".into()],
                    create_on: vec![],
                },
            ),
            (
                "two at a time",
                &["a", "b", "d"],
                b(0, 2),
                Step {
                    delete: vec!["a".into(), "b".into()],
                    create_on: vec![],
                },
            ),
            (
                "surge one node",
                &["a", "b"],
                b(1, 0),
                Step {
                    delete: vec![],
                    create_on: vec!["a".into()],
                },
            ),
        ];
        for (what, names, bounds, want) in cases {
            assert_eq!(
                rolling_update(&map(names), "new", None, bounds, 0, now),
                want,
                "{what}"
            );
        }
        // Surge: once the new pod on a node is available, the old one goes.
        let both: BTreeMap<String, Vec<&Pod>> =
            BTreeMap::from([("n".to_string(), vec![&pods[0], &pods[3]])]);
        assert_eq!(
            rolling_update(&both, "new", None, b(1, 0), 0, now),
            Step {
                delete: vec!["a".into()],
                create_on: vec![]
            }
        );
    }

    #[test]
    fn pods_on_one_node() {
        let t1 = "2024-01-01T00:00:00Z";
        let t2 = "2024-01-01T00:01:00Z";
        let old = pod("old", "h0", true, t1);
        let new = pod("new", "h1", true, t2);
        let mut failed = pod("failed", "h1", false, t1);
        if let Some(s) = failed.status.as_mut() {
            s.phase = Some("Failed".into());
        }
        assert_eq!(
            pods_for_node(true, true, &[], "h1", None, false),
            (true, vec![])
        );
        assert_eq!(
            pods_for_node(false, true, &[&old], "h1", None, false),
            (false, vec![])
        );
        assert_eq!(
            pods_for_node(false, false, &[&old], "h1", None, false),
            (false, vec!["old".into()])
        );
        assert_eq!(
            pods_for_node(true, true, &[&failed], "h1", None, false),
            (true, vec!["failed".into()])
        );
        // Without surge the oldest stays; with surge one old and one new may.
        assert_eq!(
            pods_for_node(true, true, &[&new, &old], "h1", None, false),
            (false, vec!["new".into()])
        );
        assert_eq!(
            pods_for_node(true, true, &[&new, &old], "h1", None, true),
            (false, vec![])
        );
    }

    #[test]
    fn bounds_round_up_and_never_both_zero() {
        let with = |u: serde_json::Value, s: serde_json::Value| -> DaemonSet {
            from(json!({"spec": {"selector": {}, "template": {},
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": u, "maxSurge": s}}}}))
        };
        assert_eq!(
            bounds(&with(json!("10%"), json!(0)), 5),
            Bounds {
                max_surge: 0,
                max_unavailable: 1
            }
        );
        assert_eq!(
            bounds(&with(json!(0), json!("30%")), 5),
            Bounds {
                max_surge: 2,
                max_unavailable: 0
            }
        );
        assert_eq!(
            bounds(&with(json!(0), json!(0)), 5),
            Bounds {
                max_surge: 0,
                max_unavailable: 1
            }
        );
        assert_eq!(
            bounds(&with(json!(3), json!(0)), 5),
            Bounds {
                max_surge: 0,
                max_unavailable: 3
            }
        );
    }
}
