//! The pod lifecycle event generator (upstream's `pkg/kubelet/pleg/generic.go`):
//! relists every sandbox and container once a second and reports the pod
//! UIDs whose runtime state changed, so pod workers react to exits without
//! polling each pod. The relist time feeds the `pleg` health check.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use crate::cri::RuntimeService;
use crate::kuberuntime::labels;

/// Upstream's relist period.
pub const RELIST_PERIOD: Duration = Duration::from_secs(1);
/// Upstream's threshold for the PLEG health check.
pub const RELIST_THRESHOLD: Duration = Duration::from_secs(180);

/// Per pod UID: each sandbox's and container's id with its state.
pub type Snapshot = HashMap<String, BTreeMap<String, i32>>;

/// The runtime's state by pod UID.
pub async fn relist(runtime: &dyn RuntimeService) -> Result<Snapshot, crate::cri::CriError> {
    let mut snap: Snapshot = HashMap::new();
    for sb in runtime.list_pod_sandbox(None).await? {
        if let Some(uid) = sb.labels.get(labels::POD_UID) {
            snap.entry(uid.clone()).or_default().insert(sb.id, sb.state);
        }
    }
    for c in runtime.list_containers(None).await? {
        if let Some(uid) = c.labels.get(labels::POD_UID) {
            snap.entry(uid.clone()).or_default().insert(c.id, c.state);
        }
    }
    Ok(snap)
}

/// The UIDs whose entries differ between two snapshots.
pub fn changed(old: &Snapshot, new: &Snapshot) -> Vec<String> {
    let mut out: Vec<String> = new
        .iter()
        .filter(|(uid, v)| old.get(*uid) != Some(v))
        .map(|(uid, _)| uid.clone())
        .collect();
    out.extend(old.keys().filter(|uid| !new.contains_key(*uid)).cloned());
    out.sort();
    out
}

/// The relist loop's health: when it last succeeded.
#[derive(Debug, Default)]
pub struct PlegHealth {
    last_relist_ms: AtomicI64,
}

impl PlegHealth {
    fn mark(&self) {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        self.last_relist_ms.store(ms, Ordering::Relaxed);
    }

    /// `Err` when the last relist is older than [`RELIST_THRESHOLD`].
    pub fn check(&self) -> Result<(), String> {
        let last = self.last_relist_ms.load(Ordering::Relaxed);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        if last == 0 {
            return Err("pleg has yet to be successful".into());
        }
        let age = Duration::from_millis((now - last).max(0) as u64);
        if age > RELIST_THRESHOLD {
            return Err(format!(
                "pleg was last seen active {}s ago; threshold is 180s",
                age.as_secs()
            ));
        }
        Ok(())
    }
}

/// Relists forever, sending the UIDs that changed; also sends every UID
/// the runtime has on the first relist, so leftovers are seen.
pub async fn run(
    runtime: Arc<dyn RuntimeService>,
    events: mpsc::UnboundedSender<String>,
    health: Arc<PlegHealth>,
) {
    let mut last: Snapshot = HashMap::new();
    let mut tick = tokio::time::interval(RELIST_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match relist(runtime.as_ref()).await {
            Ok(snap) => {
                health.mark();
                for uid in changed(&last, &snap) {
                    if events.send(uid).is_err() {
                        return;
                    }
                }
                last = snap;
            }
            Err(e) => tracing::warn!(error = %e, "PLEG relist failed"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn changes_new_and_gone_pods_are_reported() {
        let s = |v: &[(&str, &str, i32)]| {
            let mut m: Snapshot = HashMap::new();
            for (uid, id, st) in v {
                m.entry(uid.to_string())
                    .or_default()
                    .insert(id.to_string(), *st);
            }
            m
        };
        let a = s(&[("u1", "c1", 1), ("u2", "c2", 1)]);
        let b = s(&[("u1", "c1", 2), ("u2", "c2", 1), ("u3", "c3", 0)]);
        assert_eq!(changed(&a, &b), vec!["u1", "u3"]);
        assert_eq!(changed(&b, &a), vec!["u1", "u3"]);
        assert!(changed(&a, &a).is_empty());
    }
}
