//! Which pods a controller deletes first when scaling down, and which it
//! counts as ready or available (upstream's pkg/controller/controller_utils.go
//! `ActivePodsWithRanks`, `IsPodActive`, and pkg/api/v1/pod/util.go
//! `IsPodReady`/`IsPodAvailable`).

use std::cmp::Ordering;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

/// The annotation that orders deletions (upstream's PodDeletionCost).
pub const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// Not finished and not being deleted.
pub fn is_active(p: &Pod) -> bool {
    let phase = p
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("");
    phase != "Succeeded" && phase != "Failed" && p.metadata.deletion_timestamp.is_none()
}

/// When the pod's Ready condition became True, if it is True.
pub fn ready_since(p: &Pod) -> Option<Option<Timestamp>> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")
        .map(|c| c.last_transition_time.as_ref().map(|t| t.0))
}

pub fn is_ready(p: &Pod) -> bool {
    ready_since(p).is_some()
}

/// Ready for at least `min_ready_seconds` at `now`.
pub fn is_available(p: &Pod, min_ready_seconds: i64, now: Timestamp) -> bool {
    match ready_since(p) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(t)) => t.as_second().saturating_add(min_ready_seconds) <= now.as_second(),
    }
}

fn phase_rank(p: &Pod) -> u8 {
    match p.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") | None => 0,
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 3,
    }
}

fn deletion_cost(p: &Pod) -> i32 {
    p.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DELETION_COST))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn restarts(p: &Pod) -> i32 {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
        .unwrap_or(0)
}

/// Upstream's LogarithmicScaleDown: times compare by the power-of-two
/// bucket of their age, so pods of similar age are treated alike.
fn log_bucket(t: Option<Timestamp>, now: Timestamp) -> i64 {
    match t {
        None => i64::MAX,
        Some(t) => {
            let age = now.as_second().saturating_sub(t.as_second()).max(0);
            if age == 0 {
                0
            } else {
                i64::from(64 - age.leading_zeros())
            }
        }
    }
}

/// Upstream's `ActivePodsWithRanks.Less`: `Less` means "delete first".
/// `rank` is how many of the controller's pods share this pod's node.
pub fn delete_first(a: (&Pod, usize), b: (&Pod, usize), now: Timestamp) -> Ordering {
    let (pa, ra) = a;
    let (pb, rb) = b;
    let node = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty())
    };
    // 1. Unassigned before assigned.
    node(pa)
        .cmp(&node(pb))
        // 2. Pending < Unknown < Running.
        .then_with(|| phase_rank(pa).cmp(&phase_rank(pb)))
        // 3. Not ready before ready.
        .then_with(|| is_ready(pa).cmp(&is_ready(pb)))
        // 4. Lower deletion cost first.
        .then_with(|| deletion_cost(pa).cmp(&deletion_cost(pb)))
        // 5. More doubled-up pods on its node first.
        .then_with(|| rb.cmp(&ra))
        // 6. Ready for a shorter time first.
        .then_with(|| {
            if is_ready(pa) && is_ready(pb) {
                let ta = ready_since(pa).flatten();
                let tb = ready_since(pb).flatten();
                log_bucket(ta, now).cmp(&log_bucket(tb, now))
            } else {
                Ordering::Equal
            }
        })
        // 7. More restarts first.
        .then_with(|| restarts(pb).cmp(&restarts(pa)))
        // 8. Newer first.
        .then_with(|| {
            let ca = pa.metadata.creation_timestamp.as_ref().map(|t| t.0);
            let cb = pb.metadata.creation_timestamp.as_ref().map(|t| t.0);
            log_bucket(ca, now).cmp(&log_bucket(cb, now))
        })
}

/// The `n` pods to delete first (upstream's `getPodsToDelete`).
pub fn pods_to_delete(pods: &[&Pod], n: usize, now: Timestamp) -> Vec<usize> {
    let node_of = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default()
    };
    let ranks: Vec<usize> = pods
        .iter()
        .map(|p| {
            let n = node_of(p);
            if n.is_empty() {
                0
            } else {
                pods.iter().filter(|q| node_of(q) == n).count()
            }
        })
        .collect();
    let mut idx: Vec<usize> = (0..pods.len()).collect();
    idx.sort_by(|&i, &j| delete_first((pods[i], ranks[i]), (pods[j], ranks[j]), now));
    idx.truncate(n);
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(
        name: &str,
        node: Option<&str>,
        phase: &str,
        ready: bool,
        extra: serde_json::Value,
    ) -> Pod {
        let mut v = serde_json::json!({
            "metadata": {"name": name, "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"containers": [], "nodeName": node},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"},
                "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        });
        json_merge(&mut v, extra);
        match serde_json::from_value(v) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    fn json_merge(a: &mut serde_json::Value, b: serde_json::Value) {
        match (a, b) {
            (_, serde_json::Value::Null) => {}
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                for (k, v) in b {
                    json_merge(a.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }

    #[test]
    fn deletion_order_follows_upstream() {
        let now: Timestamp = "2026-01-02T00:00:00Z"
            .parse()
            .unwrap_or(Timestamp::UNIX_EPOCH);
        let null = serde_json::Value::Null;
        let pods = [
            pod("running-ready", Some("n1"), "Running", true, null.clone()),
            pod("unassigned", None, "Pending", false, null.clone()),
            pod("pending", Some("n2"), "Pending", false, null.clone()),
            pod(
                "running-unready",
                Some("n3"),
                "Running",
                false,
                null.clone(),
            ),
            pod(
                "cheap",
                Some("n4"),
                "Running",
                true,
                serde_json::json!({"metadata": {"annotations": {DELETION_COST: "-10"}}}),
            ),
            pod(
                "restarts",
                Some("n5"),
                "Running",
                true,
                serde_json::json!({"status": {"containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": true, "restartCount": 5}]}}),
            ),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        let order: Vec<&str> = pods_to_delete(&refs, pods.len(), now)
            .into_iter()
            .map(|i| pods[i].metadata.name.as_deref().unwrap_or(""))
            .collect();
        assert_eq!(
            order,
            vec![
                "unassigned",
                "pending",
                "running-unready",
                "cheap",
                "restarts",
                "running-ready"
            ]
        );
    }

    #[test]
    fn doubled_up_nodes_lose_pods_first() {
        let now = Timestamp::UNIX_EPOCH;
        let null = serde_json::Value::Null;
        let pods = [
            pod("alone", Some("n1"), "Running", true, null.clone()),
            pod("shared-a", Some("n2"), "Running", true, null.clone()),
            pod("shared-b", Some("n2"), "Running", true, null.clone()),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        let first = pods_to_delete(&refs, 1, now);
        assert_ne!(pods[first[0]].metadata.name.as_deref(), Some("alone"));
    }

    #[test]
    fn availability_needs_min_ready_seconds() {
        let p = pod("p", Some("n"), "Running", true, serde_json::Value::Null);
        let t0: Timestamp = "2026-01-01T00:00:00Z"
            .parse()
            .unwrap_or(Timestamp::UNIX_EPOCH);
        let later: Timestamp = "2026-01-01T00:00:10Z"
            .parse()
            .unwrap_or(Timestamp::UNIX_EPOCH);
        assert!(is_available(&p, 0, t0));
        assert!(!is_available(&p, 30, later));
        assert!(is_available(&p, 10, later));
        assert!(!is_active(&pod(
            "done",
            None,
            "Succeeded",
            false,
            serde_json::Value::Null
        )));
    }
}
