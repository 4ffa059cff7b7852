//! Node lifecycle and taint-based eviction, two controllers (upstream's
//! pkg/controller/nodelifecycle/node_lifecycle_controller.go and
//! pkg/controller/tainteviction/taint_eviction.go), as periodic sweeps
//! over the shared caches like upstream's `monitorNodeHealth` every
//! `--node-monitor-period` (node changes are also handled as they come):
//!
//! - a Node whose kubelet has neither posted status nor renewed its
//!   `kube-node-lease` Lease within `--node-monitor-grace-period` gets its
//!   conditions set to Unknown (`NodeStatusUnknown`, or
//!   `NodeStatusNeverUpdated`);
//! - Ready False/Unknown become the `node.kubernetes.io/not-ready` /
//!   `node.kubernetes.io/unreachable` taints (NoSchedule and NoExecute),
//!   removed again when the Node is Ready; MemoryPressure, DiskPressure,
//!   PIDPressure and NetworkUnavailable True, and `spec.unschedulable`,
//!   become their NoSchedule taints (upstream's `doNoScheduleTaintingPass`);
//! - pods on a Node with NoExecute taints they do not tolerate are
//!   deleted, and ones tolerating them for `tolerationSeconds` once that
//!   time has passed since the taint was added. (The eviction time is
//!   exact to one sweep period, where upstream uses timed workers.)

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::ResourceExt;
use serde_json::json;

use crate::descriptors::ControllerFuture;
use crate::{is_not_found, ControllerContext, StartError};

const NAME: &str = "node-lifecycle-controller";
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// Conditions that, when True, call for a NoSchedule taint (upstream's
/// `nodeConditionToTaintKeyStatusMap` beside Ready).
const CONDITION_TAINTS: [(&str, &str); 4] = [
    ("MemoryPressure", "node.kubernetes.io/memory-pressure"),
    ("DiskPressure", "node.kubernetes.io/disk-pressure"),
    ("PIDPressure", "node.kubernetes.io/pid-pressure"),
    (
        "NetworkUnavailable",
        "node.kubernetes.io/network-unavailable",
    ),
];

/// Whether this controller manages `t`.
fn managed(t: &Taint) -> bool {
    match t.effect.as_str() {
        "NoExecute" => t.key == NOT_READY || t.key == UNREACHABLE,
        "NoSchedule" => {
            t.key == NOT_READY
                || t.key == UNREACHABLE
                || t.key == UNSCHEDULABLE
                || CONDITION_TAINTS.iter().any(|(_, k)| *k == t.key)
        }
        _ => false,
    }
}

/// The NoSchedule taints the node's other conditions and
/// `spec.unschedulable` call for.
pub fn condition_taints(node: &Node) -> Vec<Taint> {
    let conditions = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    let mut out: Vec<Taint> = CONDITION_TAINTS
        .iter()
        .filter(|(ty, _)| {
            conditions
                .iter()
                .any(|c| c.type_ == *ty && c.status == "True")
        })
        .map(|(_, key)| Taint {
            key: (*key).into(),
            effect: "NoSchedule".into(),
            time_added: None,
            value: None,
        })
        .collect();
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        out.push(Taint {
            key: UNSCHEDULABLE.into(),
            effect: "NoSchedule".into(),
            time_added: None,
            value: None,
        });
    }
    out
}

/// The sweep's knobs.
#[derive(Debug, Clone, Copy)]
pub struct NodeLifecycleConfig {
    /// `--node-monitor-period` (5 s).
    pub monitor_period: Duration,
    /// `--node-monitor-grace-period` (50 s).
    pub grace_period: Duration,
}

impl Default for NodeLifecycleConfig {
    fn default() -> Self {
        Self {
            monitor_period: Duration::from_secs(5),
            grace_period: Duration::from_secs(50),
        }
    }
}

/// Upstream's `startNodeLifecycleController`.
///
/// Besides the sweep, every change of a Node is looked at as it comes (as
/// upstream's `doNoScheduleTaintingPass` runs from node events), so that a
/// node turning Ready loses its `not-ready` taints at once and its first
/// pods are scheduled without waiting for the next sweep.
pub fn start(ctx: &ControllerContext) -> Result<ControllerFuture, StartError> {
    let informer = ctx.informers.informer::<Node>();
    let nodes = informer.store();
    let mut changes = informer.subscribe();
    let leases = ctx.informers.informer::<Lease>().store();
    let client = ctx.client.clone();
    let cfg = ctx.config.node_lifecycle;
    Ok(Box::pin(async move {
        let mut tick = tokio::time::interval(cfg.monitor_period);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let now = Timestamp::now();
                    for node in nodes.state() {
                        monitor(&client, &leases, &node, &cfg, now).await;
                    }
                }
                changed = changes.next() => {
                    let Some(changed) = changed else { return };
                    // The cache's newest copy; a deleted node is gone from it.
                    if let Some(node) = nodes.get(&ObjectRef::new(&changed.name_any())) {
                        monitor(&client, &leases, &node, &cfg, Timestamp::now()).await;
                    }
                }
            }
        }
    }))
}

/// Upstream's `startTaintEvictionController`: NoExecute eviction, swept
/// every `--node-monitor-period`.
pub fn start_taint_eviction(ctx: &ControllerContext) -> Result<ControllerFuture, StartError> {
    let nodes = ctx.informers.informer::<Node>().store();
    let pods = ctx.informers.informer::<Pod>().store();
    let client = ctx.client.clone();
    let cfg = ctx.config.node_lifecycle;
    Ok(Box::pin(async move {
        let mut tick = tokio::time::interval(cfg.monitor_period);
        loop {
            tick.tick().await;
            evict(&client, &nodes, &pods, Timestamp::now()).await;
        }
    }))
}

fn ready(node: &Node) -> Option<&NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// The newest sign of life: the Ready heartbeat or the Lease renewal.
pub fn last_probe(node: &Node, lease: Option<&Lease>) -> Option<Timestamp> {
    let heartbeat = ready(node)
        .and_then(|c| c.last_heartbeat_time.as_ref())
        .map(|t| t.0);
    let renew = lease
        .and_then(|l| l.spec.as_ref()?.renew_time.as_ref())
        .map(|t| t.0);
    let created = node.metadata.creation_timestamp.as_ref().map(|t| t.0);
    heartbeat.max(renew).or(created)
}

/// The taints a Ready status calls for (upstream's NoSchedule and NoExecute
/// pairs). A node without a Ready condition yet calls for none: it becomes
/// Unknown, hence unreachable, once the grace period has passed.
pub fn wanted_taints(ready_status: Option<&str>, now: Timestamp) -> Vec<Taint> {
    let key = match ready_status {
        Some("False") => NOT_READY,
        Some("Unknown") => UNREACHABLE,
        _ => return Vec::new(),
    };
    ["NoSchedule", "NoExecute"]
        .into_iter()
        .map(|effect| Taint {
            key: key.into(),
            effect: effect.into(),
            time_added: (effect == "NoExecute").then_some(Time(now)),
            value: None,
        })
        .collect()
}

async fn monitor(
    client: &kube::Client,
    leases: &Store<Lease>,
    node: &Node,
    cfg: &NodeLifecycleConfig,
    now: Timestamp,
) {
    let name = node.name_any();
    let api: Api<Node> = Api::all(client.clone());
    let lease = leases.get(&ObjectRef::new(&name).within("kube-node-lease"));
    let mut status = ready(node).map(|c| c.status.clone());
    let stale = last_probe(node, lease.as_deref()).is_none_or(|t| {
        now.as_second() - t.as_second()
            > i64::try_from(cfg.grace_period.as_secs()).unwrap_or(i64::MAX)
    });
    if stale && status.as_deref() != Some("Unknown") {
        let (reason, message) = match status {
            Some(_) => ("NodeStatusUnknown", "Kubelet stopped posting node status."),
            None => (
                "NodeStatusNeverUpdated",
                "Kubelet never posted node status.",
            ),
        };
        let mut conds: Vec<NodeCondition> = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        for t in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
            let c = match conds.iter_mut().find(|c| c.type_ == t) {
                Some(c) => c,
                None if t == "Ready" => {
                    conds.push(NodeCondition {
                        type_: t.into(),
                        ..Default::default()
                    });
                    let last = conds.len() - 1;
                    &mut conds[last]
                }
                None => continue,
            };
            c.status = "Unknown".into();
            c.reason = Some(reason.into());
            c.message = Some(message.into());
            c.last_transition_time = Some(Time(now));
        }
        let patch = json!({"status": {"conditions": conds}});
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                tracing::info!(controller = NAME, node = %name, reason, "node unreachable; conditions set to Unknown")
            }
            Err(e) if is_not_found(&e) => return,
            Err(e) => {
                tracing::warn!(controller = NAME, node = %name, error = %e, "updating node conditions failed");
                return;
            }
        }
        status = Some("Unknown".into());
    }
    let taints: Vec<Taint> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let ours = managed;
    let mut wanted = wanted_taints(status.as_deref(), now);
    wanted.extend(condition_taints(node));
    let have: Vec<(&str, &str)> = taints
        .iter()
        .filter(|t| ours(t))
        .map(|t| (t.key.as_str(), t.effect.as_str()))
        .collect();
    let want: Vec<(&str, &str)> = wanted
        .iter()
        .map(|t| (t.key.as_str(), t.effect.as_str()))
        .collect();
    if have.len() == want.len() && want.iter().all(|w| have.contains(w)) {
        return;
    }
    let mut next: Vec<Taint> = taints.iter().filter(|t| !ours(t)).cloned().collect();
    next.extend(wanted);
    // No taints left means no field, as upstream's omitempty patch leaves it.
    let taints = if next.is_empty() {
        json!(null)
    } else {
        json!(next)
    };
    let patch = json!({"metadata": {"resourceVersion": node.metadata.resource_version}, "spec": {"taints": taints}});
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {
            tracing::info!(controller = NAME, node = %name, ready = ?status, "node taints updated")
        }
        Err(e) if is_not_found(&e) => {}
        Err(e) => {
            tracing::warn!(controller = NAME, node = %name, error = %e, "updating node taints failed; next sweep retries")
        }
    }
}

/// Upstream's `ToleratesTaint`.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if t.effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    let key_ok = t.key.as_deref().is_none_or(|k| k.is_empty())
        && t.operator.as_deref() == Some("Exists")
        || t.key.as_deref() == Some(taint.key.as_str());
    if !key_ok {
        return false;
    }
    match t.operator.as_deref() {
        Some("Exists") => true,
        _ => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
    }
}

/// When a pod on a node with these NoExecute taints must go: `Some(0)` at
/// once, `Some(s)` s seconds after the newest relevant taint, `None` never.
pub fn eviction_delay(tolerations: &[Toleration], taints: &[Taint]) -> Option<i64> {
    let mut delay: Option<i64> = None;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let matching: Vec<&Toleration> =
            tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Some(0);
        }
        if matching.iter().any(|t| t.toleration_seconds.is_none()) {
            continue;
        }
        let secs = matching
            .iter()
            .filter_map(|t| t.toleration_seconds)
            .min()
            .unwrap_or(0)
            .max(0);
        delay = Some(delay.map_or(secs, |d| d.min(secs)));
    }
    delay
}

async fn evict(client: &kube::Client, nodes: &Store<Node>, pods: &Store<Pod>, now: Timestamp) {
    for pod in pods.state() {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some(node) = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .and_then(|n| nodes.get(&ObjectRef::new(&n)))
        else {
            continue;
        };
        let taints: Vec<Taint> = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        let tolerations: Vec<Toleration> = pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.clone())
            .unwrap_or_default();
        let Some(delay) = eviction_delay(&tolerations, &taints) else {
            continue;
        };
        let added = taints
            .iter()
            .filter(|t| t.effect == "NoExecute")
            .filter_map(|t| t.time_added.as_ref().map(|x| x.0.as_second()))
            .max()
            .unwrap_or(0);
        if added + delay > now.as_second() {
            continue;
        }
        let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
        match api.delete(&pod.name_any(), &DeleteParams::default()).await {
            Ok(_) => {
                tracing::info!(controller = NAME, pod = %pod.name_any(), node = %node.name_any(), "evicted pod for a NoExecute taint")
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                tracing::warn!(controller = NAME, pod = %pod.name_any(), error = %e, "eviction failed; next sweep retries")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tol(key: Option<&str>, op: &str, effect: Option<&str>, secs: Option<i64>) -> Toleration {
        Toleration {
            key: key.map(Into::into),
            operator: Some(op.into()),
            effect: effect.map(Into::into),
            toleration_seconds: secs,
            value: None,
        }
    }

    #[test]
    fn pressure_conditions_and_cordons_become_no_schedule_taints() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "n"},
            "spec": {"unschedulable": true, "taints": [{"key": "user", "effect": "NoSchedule"}]},
            "status": {"conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "MemoryPressure", "status": "False"},
                {"type": "DiskPressure", "status": "True"},
            ]}
        }))
        .expect("node");
        let keys: Vec<(String, String)> = condition_taints(&node)
            .into_iter()
            .map(|t| (t.key, t.effect))
            .collect();
        assert_eq!(
            keys,
            [
                (
                    "node.kubernetes.io/disk-pressure".to_string(),
                    "NoSchedule".to_string()
                ),
                (UNSCHEDULABLE.to_string(), "NoSchedule".to_string()),
            ]
        );
        // Only this controller's taints are replaced; the user's stays.
        let user = Taint {
            key: "user".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        assert!(!managed(&user));
        assert!(managed(&condition_taints(&node)[0]));
    }

    #[test]
    fn eviction_follows_tolerations() {
        let taints = wanted_taints(Some("Unknown"), Timestamp::UNIX_EPOCH);
        assert_eq!(taints.len(), 2);
        assert_eq!(eviction_delay(&[], &taints), Some(0));
        assert_eq!(
            eviction_delay(
                &[tol(Some(UNREACHABLE), "Exists", Some("NoExecute"), None)],
                &taints
            ),
            None
        );
        assert_eq!(
            eviction_delay(
                &[tol(
                    Some(UNREACHABLE),
                    "Exists",
                    Some("NoExecute"),
                    Some(300)
                )],
                &taints
            ),
            Some(300)
        );
        assert_eq!(
            eviction_delay(&[tol(None, "Exists", None, None)], &taints),
            None,
            "tolerate everything"
        );
        assert_eq!(
            eviction_delay(&[tol(Some(NOT_READY), "Exists", None, None)], &taints),
            Some(0)
        );
        assert!(wanted_taints(Some("True"), Timestamp::UNIX_EPOCH).is_empty());
        assert!(wanted_taints(None, Timestamp::UNIX_EPOCH).is_empty());
        assert_eq!(
            wanted_taints(Some("False"), Timestamp::UNIX_EPOCH)[0].key,
            NOT_READY
        );
    }
}
