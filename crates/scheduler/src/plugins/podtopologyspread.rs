//! PodTopologySpread (upstream's `plugins/podtopologyspread`: common.go,
//! filtering.go, scoring.go). `DoNotSchedule` constraints filter: placing
//! the pod must not make its domain's matching-pod count exceed the
//! smallest domain's by more than `maxSkew` (`minDomains` counts missing
//! domains as empty). `ScheduleAnyway` constraints score: fewer matching
//! pods in the node's domain score higher, weighted by log(domains + 2).
//! `nodeAffinityPolicy` (default Honor) and `nodeTaintsPolicy` (default
//! Ignore) decide which nodes count; `matchLabelKeys` narrows the selector
//! with the pod's own label values.
//!
//! Not yet: cluster-default constraints (they need the selectors of the
//! pod's Services and controllers, which this scheduler does not watch).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use apimachinery::labels::Selector;
use k8s_openapi::api::core::v1::TopologySpreadConstraint;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::cache::Snapshot;
use crate::framework::nodeselector::find_untolerated;
use crate::framework::runtime::Handle;
use crate::framework::{
    ActionType, CycleState, EventInterest, EventResource, FilterPlugin, NodeInfo, NodeScore,
    Plugin, PodInfo, PreFilterPlugin, PreFilterResult, PreScorePlugin, ScorePlugin, Status,
    ALL_ACTIONS, MAX_NODE_SCORE,
};

pub const NAME: &str = "PodTopologySpread";
pub const ERR_CONSTRAINTS: &str = "node(s) didn't match pod topology spread constraints";
pub const ERR_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
const HOSTNAME: &str = "kubernetes.io/hostname";

/// `PodTopologySpreadArgs` (accepted; cluster defaults are not applied yet).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Args {
    #[serde(default)]
    pub default_constraints: Vec<Value>,
    #[serde(default)]
    pub defaulting_type: Option<String>,
}

pub struct PodTopologySpread;

pub fn new(args: Option<&Value>, _: &Handle) -> Result<Arc<dyn Plugin>, String> {
    let args: Args = super::decode_args(args)?;
    match args.defaulting_type.as_deref() {
        None | Some("System") | Some("List") => {}
        Some(other) => {
            return Err(format!(
            "defaultingType: Unsupported value: {other:?}: supported values: \"System\", \"List\""
        ))
        }
    }
    if args.defaulting_type.as_deref() == Some("System") && !args.default_constraints.is_empty() {
        return Err("defaultConstraints: Invalid value: when .defaultingType is \"System\", .defaultConstraints must be empty".into());
    }
    Ok(Arc::new(PodTopologySpread))
}

#[derive(Debug, Clone)]
struct Constraint {
    max_skew: i64,
    key: String,
    min_domains: Option<i64>,
    selector: Selector,
    honor_affinity: bool,
    honor_taints: bool,
}

fn parse(pod: &PodInfo, hard: bool) -> Vec<Constraint> {
    let Some(list) = pod
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_ref())
    else {
        return vec![];
    };
    let want = if hard {
        "DoNotSchedule"
    } else {
        "ScheduleAnyway"
    };
    list.iter()
        .filter(|c| c.when_unsatisfiable == want)
        .map(|c| constraint(c, pod.labels()))
        .collect()
}

fn constraint(c: &TopologySpreadConstraint, labels: &BTreeMap<String, String>) -> Constraint {
    let mut sel = c
        .label_selector
        .as_ref()
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or(Value::Null);
    let extra: Vec<Value> = c
        .match_label_keys
        .iter()
        .flatten()
        .filter_map(|k| {
            labels
                .get(k)
                .map(|v| json!({"key": k, "operator": "In", "values": [v]}))
        })
        .collect();
    if !extra.is_empty() && sel.is_object() {
        let exprs = sel["matchExpressions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        sel["matchExpressions"] = Value::Array(exprs.into_iter().chain(extra).collect());
    }
    let selector = if sel.is_null() {
        Selector::nothing()
    } else {
        Selector::from_label_selector(&sel).unwrap_or_else(|_| Selector::nothing())
    };
    Constraint {
        max_skew: i64::from(c.max_skew),
        key: c.topology_key.clone(),
        min_domains: c.min_domains.map(i64::from),
        selector,
        honor_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
        honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
    }
}

/// Whether a node counts for the constraints (has every key, passes the
/// node-inclusion policies).
fn node_counts(cs: &[Constraint], pod: &PodInfo, ni: &NodeInfo) -> bool {
    if ni.node.is_none() {
        return false;
    }
    let labels = ni.node_labels();
    if !cs.iter().all(|c| labels.contains_key(&c.key)) {
        return false;
    }
    if cs.iter().any(|c| c.honor_affinity)
        && !pod.required_affinity.matches_labels(&ni.name, labels)
    {
        return false;
    }
    if cs.iter().any(|c| c.honor_taints) {
        let hard = |t: &k8s_openapi::api::core::v1::Taint| {
            t.effect == "NoSchedule" || t.effect == "NoExecute"
        };
        if find_untolerated(ni.taints(), pod.tolerations(), hard).is_some() {
            return false;
        }
    }
    true
}

fn matching_pods(c: &Constraint, pod: &PodInfo, ni: &NodeInfo) -> i64 {
    ni.pods
        .iter()
        .filter(|p| p.namespace == pod.namespace && p.pod.metadata.deletion_timestamp.is_none())
        .filter(|p| c.selector.matches(p.labels()))
        .count() as i64
}

struct FilterState {
    constraints: Vec<Constraint>,
    counts: HashMap<(String, String), i64>,
    /// Per constraint: the smallest domain count.
    min: Vec<i64>,
}

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Vec<EventInterest> {
        vec![
            EventInterest {
                resource: EventResource::AssignedPod,
                actions: ALL_ACTIONS,
            },
            EventInterest {
                resource: EventResource::Node,
                actions: &[ActionType::Add, ActionType::Update, ActionType::Delete],
            },
        ]
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl PreFilterPlugin for PodTopologySpread {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        let constraints = parse(pod, true);
        if constraints.is_empty() {
            return (None, Status::skip());
        }
        let mut counts: HashMap<(String, String), i64> = HashMap::new();
        for ni in snap.nodes() {
            if !node_counts(&constraints, pod, ni) {
                continue;
            }
            let labels = ni.node_labels();
            for c in &constraints {
                let Some(v) = labels.get(&c.key) else {
                    continue;
                };
                *counts.entry((c.key.clone(), v.clone())).or_default() += matching_pods(c, pod, ni);
            }
        }
        let min = constraints
            .iter()
            .map(|c| {
                let domains: Vec<i64> = counts
                    .iter()
                    .filter(|((k, _), _)| *k == c.key)
                    .map(|(_, n)| *n)
                    .collect();
                if c.min_domains.is_some_and(|m| (domains.len() as i64) < m) {
                    0
                } else {
                    domains.into_iter().min().unwrap_or(0)
                }
            })
            .collect();
        state.write(
            NAME,
            FilterState {
                constraints,
                counts,
                min,
            },
        );
        (None, Status::success())
    }
}

impl FilterPlugin for PodTopologySpread {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<FilterState>(NAME) else {
            return Status::error("reading PodTopologySpread pre-filter state: not found");
        };
        let labels = node.node_labels();
        for (c, min) in s.constraints.iter().zip(&s.min) {
            let Some(v) = labels.get(&c.key) else {
                return Status::unresolvable(ERR_LABEL);
            };
            let self_match = i64::from(c.selector.matches(pod.labels()));
            let here = s
                .counts
                .get(&(c.key.clone(), v.clone()))
                .copied()
                .unwrap_or(0);
            if here + self_match - min > c.max_skew {
                return Status::unschedulable(ERR_CONSTRAINTS);
            }
        }
        Status::success()
    }
}

struct ScoreState {
    constraints: Vec<Constraint>,
    counts: HashMap<(String, String), i64>,
    weights: Vec<f64>,
    ignored: HashSet<String>,
}

impl PreScorePlugin for PodTopologySpread {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
        nodes: &[Arc<NodeInfo>],
    ) -> Status {
        let constraints = parse(pod, false);
        if constraints.is_empty() {
            return Status::skip();
        }
        let mut ignored = HashSet::new();
        let mut domains: Vec<HashSet<String>> = vec![HashSet::new(); constraints.len()];
        for ni in nodes {
            let labels = ni.node_labels();
            if !constraints.iter().all(|c| labels.contains_key(&c.key)) {
                ignored.insert(ni.name.clone());
                continue;
            }
            for (i, c) in constraints.iter().enumerate() {
                if let Some(v) = labels.get(&c.key) {
                    domains[i].insert(v.clone());
                }
            }
        }
        let mut counts: HashMap<(String, String), i64> = HashMap::new();
        for ni in snap.nodes() {
            if !node_counts(&constraints, pod, ni) {
                continue;
            }
            let labels = ni.node_labels();
            for (i, c) in constraints.iter().enumerate() {
                let Some(v) = labels.get(&c.key) else {
                    continue;
                };
                if c.key != HOSTNAME && domains[i].contains(v) {
                    *counts.entry((c.key.clone(), v.clone())).or_default() +=
                        matching_pods(c, pod, ni);
                }
            }
        }
        let weights = constraints
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let n = if c.key == HOSTNAME {
                    nodes.len() - ignored.len()
                } else {
                    domains[i].len()
                };
                ((n + 2) as f64).ln()
            })
            .collect();
        state.write(
            NAME,
            ScoreState {
                constraints,
                counts,
                weights,
                ignored,
            },
        );
        Status::success()
    }
}

impl ScorePlugin for PodTopologySpread {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let Some(s) = state.read::<ScoreState>(NAME) else {
            return Ok(0);
        };
        if s.ignored.contains(&node.name) {
            return Ok(0);
        }
        let labels = node.node_labels();
        let mut score = 0.0;
        for (c, w) in s.constraints.iter().zip(&s.weights) {
            let Some(v) = labels.get(&c.key) else {
                continue;
            };
            let cnt = if c.key == HOSTNAME {
                matching_pods(c, pod, node)
            } else {
                s.counts
                    .get(&(c.key.clone(), v.clone()))
                    .copied()
                    .unwrap_or(0)
            };
            score += cnt as f64 * w + (c.max_skew - 1) as f64;
        }
        Ok(score.round() as i64)
    }

    fn normalize(
        &self,
        state: &CycleState,
        _: &PodInfo,
        scores: &mut [NodeScore],
    ) -> Option<Status> {
        let s = state.read::<ScoreState>(NAME)?;
        let counted = || {
            scores
                .iter()
                .filter(|n| !s.ignored.contains(&n.name))
                .map(|n| n.score)
        };
        let min = counted().min().unwrap_or(0);
        let max = counted().max().unwrap_or(0);
        for n in scores.iter_mut() {
            n.score = if s.ignored.contains(&n.name) {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - n.score) / max
            };
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod_meta};

    fn zone_node(name: &str, zone: &str, app_pods: usize) -> NodeInfo {
        let mut n = node(
            name,
            json!({"metadata": {"labels": {"zone": zone, HOSTNAME: name}}}),
        );
        for i in 0..app_pods {
            n.add_pod(Arc::new(pod_meta(json!({"name": format!("{name}-{i}"), "namespace": "default", "labels": {"app": "web"}}), json!({}))));
        }
        n
    }

    fn spread_pod(when: &str, max_skew: i32, extra: Value) -> PodInfo {
        let mut c = json!({"maxSkew": max_skew, "topologyKey": "zone", "whenUnsatisfiable": when,
            "labelSelector": {"matchLabels": {"app": "web"}}});
        if let (Some(c), Some(e)) = (c.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        pod_meta(
            json!({"name": "new", "namespace": "default", "labels": {"app": "web"}}),
            json!({"topologySpreadConstraints": [c]}),
        )
    }

    fn filter(pod: &PodInfo, nodes: Vec<NodeInfo>) -> Vec<String> {
        let snap = Snapshot::from_nodes(nodes);
        let mut state = CycleState::default();
        let (_, s) = PodTopologySpread.pre_filter(&mut state, pod, &snap);
        assert!(s.is_success());
        snap.nodes()
            .iter()
            .map(|n| PodTopologySpread.filter(&state, pod, n).message())
            .collect()
    }

    #[test]
    fn filter_keeps_skew_within_max() {
        let nodes = || {
            vec![
                zone_node("a", "z1", 2),
                zone_node("b", "z2", 1),
                node("c", json!({})),
            ]
        };
        assert_eq!(
            filter(&spread_pod("DoNotSchedule", 1, json!({})), nodes()),
            vec![
                ERR_CONSTRAINTS.to_string(),
                String::new(),
                ERR_LABEL.to_string()
            ]
        );
        assert_eq!(
            filter(&spread_pod("DoNotSchedule", 2, json!({})), nodes())[..2],
            [String::new(), String::new()]
        );
        // minDomains 3 with two domains: the global minimum is 0.
        assert_eq!(
            filter(
                &spread_pod("DoNotSchedule", 1, json!({"minDomains": 3})),
                nodes()
            )[..2],
            [ERR_CONSTRAINTS.to_string(), ERR_CONSTRAINTS.to_string()]
        );
        let (_, s) = PodTopologySpread.pre_filter(
            &mut CycleState::default(),
            &spread_pod("ScheduleAnyway", 1, json!({})),
            &Snapshot::default(),
        );
        assert!(s.is_skip(), "soft constraints do not filter");
    }

    #[test]
    fn score_prefers_emptier_domains() {
        let nodes: Vec<Arc<NodeInfo>> = vec![
            zone_node("a", "z1", 3),
            zone_node("b", "z2", 1),
            zone_node("c", "z3", 0),
            node("x", json!({})),
        ]
        .into_iter()
        .map(Arc::new)
        .collect();
        let snap = Snapshot::from_nodes(nodes.iter().map(|n| (**n).clone()));
        let pod = spread_pod("ScheduleAnyway", 1, json!({}));
        let mut state = CycleState::default();
        assert!(PodTopologySpread
            .pre_score(&mut state, &pod, &snap, &nodes)
            .is_success());
        let mut scores: Vec<NodeScore> = nodes
            .iter()
            .map(|n| NodeScore {
                name: n.name.clone(),
                score: PodTopologySpread.score(&state, &pod, n).unwrap(),
            })
            .collect();
        // weight ln(3 + 2) ≈ 1.609: raw 5, 2, 0.
        assert_eq!(
            scores.iter().map(|s| s.score).collect::<Vec<_>>()[..3],
            [5, 2, 0]
        );
        PodTopologySpread.normalize(&state, &pod, &mut scores);
        assert_eq!(
            scores.iter().map(|s| s.score).collect::<Vec<_>>(),
            vec![0, 60, 100, 0]
        );
    }
}
