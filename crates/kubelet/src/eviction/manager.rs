//! The eviction manager's loop and admission (upstream's
//! `eviction/eviction_manager.go` `synchronize`, `localStorageEviction`,
//! `evictPod` and `Admit`).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Toleration};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::Resource;
use tokio::sync::{mpsc, oneshot};

use super::rank::{self, PodStatsByUid};
use super::signals::{self, History, Observations};
use super::{EvictionConfig, Signal, DISK_PRESSURE, MEMORY_PRESSURE};
use crate::image_gc::ImageGc;
use crate::kuberuntime::container::qos_class;
use crate::pod_workers::PodStore;
use crate::stats::summary::{PodStats, Summary};
use crate::stats::{Detail, StatsProvider};

/// Upstream's `Reason` for evicted and refused pods.
pub const REASON: &str = "Evicted";
/// How long a pod gets under a hard threshold (upstream's
/// `immediateEvictionGracePeriodSeconds`).
pub const IMMEDIATE_GRACE_SECONDS: i64 = 1;
/// How long to wait for an evicted pod to be cleaned up (upstream's
/// `podCleanupTimeout`).
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Upstream's `SystemCriticalPriority`.
const SYSTEM_CRITICAL_PRIORITY: i32 = 2_000_000_000;

/// A pod to kill as evicted: the pod worker stops it with `grace` seconds
/// and marks it `Failed`/`Evicted` with `message`; `done` fires once its
/// containers are stopped.
#[derive(Debug)]
pub struct EvictRequest {
    pub uid: String,
    pub grace: i64,
    pub message: String,
    /// Whether the status gets the `DisruptionTarget` condition (node
    /// pressure evictions, not limit overruns).
    pub disruption_condition: bool,
    pub done: oneshot::Sender<()>,
}

/// The manager; shared with the node status and the admission check.
pub struct EvictionManager {
    config: EvictionConfig,
    stats: Arc<StatsProvider>,
    pods: Arc<PodStore>,
    image_gc: Option<ImageGc>,
    evict: mpsc::UnboundedSender<EvictRequest>,
    recorder: Option<(Recorder, k8s_openapi::api::core::v1::ObjectReference)>,
    conditions: RwLock<BTreeSet<&'static str>>,
    history: Mutex<History>,
}

/// Whether the kubelet never evicts `pod` (upstream's `IsCriticalPod`:
/// static and mirror pods, system-critical priority).
pub fn is_critical(pod: &Pod) -> bool {
    let annotations = pod.metadata.annotations.as_ref();
    let source = annotations.and_then(|a| a.get(crate::static_pods::SOURCE_ANNOTATION));
    source.is_some_and(|s| s != "api")
        || crate::static_pods::is_mirror(pod)
        || rank::priority(pod) >= SYSTEM_CRITICAL_PRIORITY
}

fn tolerates_memory_pressure(tolerations: &[Toleration]) -> bool {
    tolerations.iter().any(|t| {
        let key_ok = match t.key.as_deref() {
            None | Some("") => t.operator.as_deref() == Some("Exists"),
            Some(k) => k == "node.kubernetes.io/memory-pressure",
        };
        let effect_ok = t
            .effect
            .as_deref()
            .is_none_or(|e| e.is_empty() || e == "NoSchedule");
        let op_ok = match t.operator.as_deref() {
            Some("Exists") => true,
            _ => t.value.as_deref().unwrap_or("").is_empty(),
        };
        key_ok && effect_ok && op_ok
    })
}

fn is_active(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && !crate::status::is_terminal(pod.status.as_ref().and_then(|s| s.phase.as_deref()))
}

impl EvictionManager {
    pub fn new(
        config: EvictionConfig,
        stats: Arc<StatsProvider>,
        pods: Arc<PodStore>,
        evict: mpsc::UnboundedSender<EvictRequest>,
    ) -> Self {
        Self {
            config,
            stats,
            pods,
            image_gc: None,
            evict,
            recorder: None,
            conditions: Default::default(),
            history: Default::default(),
        }
    }

    /// Node-level reclaim under disk pressure: unused images. (Dead
    /// containers are already removed as pods go; a terminal pod keeps its
    /// last instances for its status.)
    pub fn with_image_gc(mut self, image_gc: ImageGc) -> Self {
        self.image_gc = Some(image_gc);
        self
    }

    /// Where the `Evicted` and `EvictionThresholdMet` events go.
    pub fn with_recorder(
        mut self,
        recorder: Recorder,
        node: k8s_openapi::api::core::v1::ObjectReference,
    ) -> Self {
        self.recorder = Some((recorder, node));
        self
    }

    /// The pressure conditions the node reports now.
    pub fn conditions(&self) -> BTreeSet<&'static str> {
        self.conditions
            .read()
            .map(|c| c.clone())
            .unwrap_or_default()
    }

    /// Upstream's `Admit`: under memory pressure only best-effort pods
    /// (that do not tolerate it) are refused, under any other pressure
    /// every pod; critical pods always pass. The refusal's message.
    pub fn admit(&self, pod: &Pod) -> Result<(), String> {
        let conditions = self.conditions();
        if conditions.is_empty() || is_critical(pod) {
            return Ok(());
        }
        if conditions.len() == 1 && conditions.contains(MEMORY_PRESSURE) {
            let tolerations = pod
                .spec
                .as_ref()
                .and_then(|s| s.tolerations.as_deref())
                .unwrap_or_default();
            if qos_class(pod) != "BestEffort" || tolerates_memory_pressure(tolerations) {
                return Ok(());
            }
        }
        let names: Vec<&str> = conditions.iter().copied().collect();
        Err(format!("The node had condition: [{}]. ", names.join(" ")))
    }

    fn publish(
        &self,
        reference: k8s_openapi::api::core::v1::ObjectReference,
        reason: &str,
        note: String,
    ) {
        let Some((recorder, _)) = &self.recorder else {
            return;
        };
        let recorder = recorder.clone();
        let ev = Event {
            type_: EventType::Warning,
            reason: reason.into(),
            note: Some(note),
            action: reason.into(),
            secondary: None,
        };
        tokio::spawn(async move {
            if let Err(e) = recorder.publish(&ev, &reference).await {
                tracing::debug!(error = %e, "publishing an eviction event failed");
            }
        });
    }

    async fn summary(&self) -> Option<Summary> {
        match self.stats.summary(Detail::Full).await {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "eviction manager: failed to get summary stats");
                None
            }
        }
    }

    /// One pass (upstream's `synchronize`); the evicted pod's UID, if any.
    pub async fn synchronize(&self) -> Option<String> {
        let summary = self.summary().await?;
        let observations = signals::observe(&summary);
        let mut met = signals::thresholds_met(&self.config.thresholds, &observations, false);
        let unresolved = {
            let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
            signals::thresholds_met(&h.met, &observations, true)
        };
        met = signals::merge(met, unresolved);
        let (conditions, mut act) = {
            let mut h = self.history.lock().unwrap_or_else(|e| e.into_inner());
            h.record(&met, Instant::now(), self.config.pressure_transition_period)
        };
        if let Ok(mut c) = self.conditions.write() {
            if *c != conditions {
                tracing::info!(?conditions, "eviction manager: node conditions changed");
            }
            *c = conditions;
        }
        let active: Vec<Arc<Pod>> = self
            .pods
            .list()
            .into_iter()
            .filter(|p| is_active(p))
            .collect();
        let by_uid: PodStatsByUid = summary
            .pods
            .iter()
            .map(|s| (s.pod_ref.uid.as_str(), s))
            .collect();
        if self.config.local_storage_capacity_isolation {
            if let Some(uid) = self.local_storage_eviction(&active, &by_uid).await {
                return Some(uid);
            }
        }
        if act.is_empty() {
            return None;
        }
        // Memory first, as upstream's `byEvictionPriority`.
        act.sort_by_key(|t| t.signal != Signal::MemoryAvailable);
        let target = act[0].clone();
        let resource = target.signal.resource();
        tracing::info!(resource, signal = %target.signal, "eviction manager: attempting to reclaim");
        if let Some((_, node)) = &self.recorder {
            self.publish(
                node.clone(),
                "EvictionThresholdMet",
                format!("Attempting to reclaim {resource}"),
            );
        }
        if target.signal.condition() == DISK_PRESSURE && self.reclaim_node_level().await {
            tracing::info!(
                resource,
                "eviction manager: able to reduce resource pressure without evicting pods"
            );
            return None;
        }
        if active.is_empty() {
            tracing::warn!("eviction manager: eviction thresholds have been met, but no pods are active to evict");
            return None;
        }
        let mut ranked = active;
        rank::rank(target.signal, &mut ranked, &by_uid);
        let grace = if target.is_hard() {
            IMMEDIATE_GRACE_SECONDS
        } else {
            self.config.max_pod_grace_period_seconds
        };
        for pod in ranked {
            let message = rank::eviction_message(
                target.signal,
                &pod,
                by_uid
                    .get(pod.metadata.uid.as_deref().unwrap_or(""))
                    .copied(),
                &act,
                &observations,
            );
            if self.evict_pod(&pod, grace, message, true).await {
                crate::stats::kubelet_metrics::count_eviction(target.signal.name());
                return pod.metadata.uid.clone();
            }
        }
        tracing::warn!("eviction manager: unable to evict any pods from the node");
        None
    }

    /// Unused images; whether every threshold is clear after.
    async fn reclaim_node_level(&self) -> bool {
        let Some(gc) = &self.image_gc else {
            return false;
        };
        if let Err(e) = gc.delete_unused_images().await {
            tracing::info!(error = %e, "eviction manager: unexpected error when attempting to reduce resource pressure");
        }
        let Some(summary) = self.summary().await else {
            return false;
        };
        let observations: Observations = signals::observe(&summary);
        signals::thresholds_met(&self.config.thresholds, &observations, true).is_empty()
    }

    /// emptyDir sizeLimit, pod and container ephemeral-storage limits.
    async fn local_storage_eviction(
        &self,
        pods: &[Arc<Pod>],
        stats: &PodStatsByUid<'_>,
    ) -> Option<String> {
        for pod in pods {
            let Some(s) = stats.get(pod.metadata.uid.as_deref().unwrap_or("")) else {
                continue;
            };
            let Some((message, signal)) = local_storage_violation(pod, s) else {
                continue;
            };
            if self
                .evict_pod(pod, IMMEDIATE_GRACE_SECONDS, message, false)
                .await
            {
                crate::stats::kubelet_metrics::count_eviction(signal);
                return pod.metadata.uid.clone();
            }
        }
        None
    }

    /// Hands `pod` to its worker to be killed; false for critical pods.
    async fn evict_pod(
        &self,
        pod: &Pod,
        grace: i64,
        message: String,
        disruption_condition: bool,
    ) -> bool {
        if is_critical(pod) {
            tracing::warn!(pod = ?pod.metadata.name, "eviction manager: cannot evict a critical pod");
            return false;
        }
        tracing::info!(pod = ?pod.metadata.name, namespace = ?pod.metadata.namespace, %message, "evicting pod");
        self.publish(pod.object_ref(&()), REASON, message.clone());
        let (done, wait) = oneshot::channel();
        let req = EvictRequest {
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            grace,
            message,
            disruption_condition,
            done,
        };
        if self.evict.send(req).is_err() {
            return false;
        }
        match tokio::time::timeout(CLEANUP_TIMEOUT, wait).await {
            Ok(_) => {
                tracing::info!(pod = ?pod.metadata.name, "eviction manager: pod is evicted successfully")
            }
            Err(_) => {
                tracing::info!(pod = ?pod.metadata.name, "eviction manager: timed out waiting for pod to be cleaned up")
            }
        }
        true
    }

    /// Runs [`Self::synchronize`] every `interval` (right away again after
    /// an eviction, as upstream's loop after its cleanup wait).
    pub async fn run(self: Arc<Self>, interval: Duration) {
        loop {
            if self.synchronize().await.is_none() {
                tokio::time::sleep(interval).await;
            }
        }
    }
}

/// A local-storage overrun and its metric's signal name (upstream's
/// `emptyDirLimitEviction`, `podEphemeralStorageLimitEviction`,
/// `containerEphemeralStorageLimitEviction`).
pub fn local_storage_violation(pod: &Pod, stats: &PodStats) -> Option<(String, &'static str)> {
    use crate::kuberuntime::quantity::parse;
    let spec = pod.spec.as_ref()?;
    for v in spec.volumes.iter().flatten() {
        let Some(limit) = v.empty_dir.as_ref().and_then(|e| e.size_limit.as_ref()) else {
            continue;
        };
        let Some(limit_value) = parse(limit).filter(|l| *l > 0.0) else {
            continue;
        };
        let used = stats
            .volume
            .iter()
            .find(|s| s.name == v.name)
            .and_then(|s| s.fs.used_bytes);
        if used.is_some_and(|u| u as f64 > limit_value) {
            return Some((
                format!(
                    "Usage of EmptyDir volume {:?} exceeds the limit {:?}. ",
                    v.name, limit.0
                ),
                "emptydirfs.limit",
            ));
        }
    }
    let limit_of = |c: &k8s_openapi::api::core::v1::Container| {
        c.resources
            .as_ref()
            .and_then(|r| r.limits.as_ref())
            .and_then(|l| l.get("ephemeral-storage"))
            .cloned()
    };
    // Upstream's `PodLimits`: the limits the containers set, summed.
    let limits: Vec<_> = spec.containers.iter().filter_map(limit_of).collect();
    if !limits.is_empty() {
        let total: f64 = limits.iter().filter_map(parse).sum();
        let used = stats
            .ephemeral_storage
            .as_ref()
            .and_then(|e| e.used_bytes)
            .unwrap_or(0);
        if used as f64 > total {
            let text = super::format_bytes(total as i64);
            return Some((
                format!("Pod ephemeral local storage usage exceeds the total limit of containers {text}. "),
                "ephemeralpodfs.limit",
            ));
        }
    }
    for cs in &stats.containers {
        let Some(limit) = spec
            .containers
            .iter()
            .find(|c| c.name == cs.name)
            .and_then(limit_of)
        else {
            continue;
        };
        let Some(limit_value) = parse(&limit).filter(|l| *l > 0.0) else {
            continue;
        };
        let used = cs.logs.as_ref().and_then(|l| l.used_bytes).unwrap_or(0)
            + cs.rootfs.as_ref().and_then(|r| r.used_bytes).unwrap_or(0);
        if used as f64 > limit_value {
            return Some((
                format!(
                    "Container {} exceeded its local ephemeral storage limit {:?}. ",
                    cs.name, limit.0
                ),
                "ephemeralcontainerfs.limit",
            ));
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cri::fake::FakeRuntime;
    use crate::stats::summary::{PodReference, Time, VolumeStats};
    use serde_json::json;

    fn manager() -> EvictionManager {
        let fake = Arc::new(FakeRuntime::new());
        let stats = Arc::new(StatsProvider::new("n", "/tmp", "/tmp", fake.clone(), fake));
        let (tx, _rx) = mpsc::unbounded_channel();
        EvictionManager::new(EvictionConfig::default(), stats, Default::default(), tx)
    }

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn admission_under_pressure_follows_upstream() {
        let m = manager();
        let best_effort =
            pod(json!({"metadata": {"name": "be"}, "spec": {"containers": [{"name": "c"}]}}));
        let burstable = pod(json!({"metadata": {"name": "b"}, "spec": {"containers": [
            {"name": "c", "resources": {"requests": {"memory": "10Mi"}}}]}}));
        let tolerating = pod(
            json!({"metadata": {"name": "t"}, "spec": {"containers": [{"name": "c"}],
            "tolerations": [{"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"}]}}),
        );
        let critical = pod(
            json!({"metadata": {"name": "k"}, "spec": {"priority": 2000001000, "containers": [{"name": "c"}]}}),
        );
        assert!(m.admit(&best_effort).is_ok(), "no pressure, no refusal");

        *m.conditions.write().unwrap() = BTreeSet::from([MEMORY_PRESSURE]);
        assert_eq!(
            m.admit(&best_effort).unwrap_err(),
            "The node had condition: [MemoryPressure]. "
        );
        assert!(m.admit(&burstable).is_ok());
        assert!(m.admit(&tolerating).is_ok());

        *m.conditions.write().unwrap() = BTreeSet::from([DISK_PRESSURE, MEMORY_PRESSURE]);
        assert_eq!(
            m.admit(&burstable).unwrap_err(),
            "The node had condition: [DiskPressure MemoryPressure]. "
        );
        assert!(m.admit(&critical).is_ok());
        let static_pod = pod(
            json!({"metadata": {"name": "s", "annotations": {"kubernetes.io/config.source": "file"}},
            "spec": {"containers": [{"name": "c"}]}}),
        );
        assert!(is_critical(&static_pod) && !is_critical(&burstable));
    }

    #[test]
    fn local_storage_overruns_are_found_with_upstreams_messages() {
        let p = pod(json!({"metadata": {"name": "p", "uid": "u"}, "spec": {
            "containers": [{"name": "c", "resources": {"limits": {"ephemeral-storage": "10Ki"}}}],
            "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "1Ki"}}]}}));
        let mut s = PodStats {
            pod_ref: PodReference {
                name: "p".into(),
                namespace: "default".into(),
                uid: "u".into(),
            },
            start_time: Time::from_unix_nanos(0),
            containers: vec![],
            cpu: None,
            memory: None,
            volume: vec![VolumeStats {
                fs: crate::stats::summary::FsStats {
                    time: Time::from_unix_nanos(0),
                    used_bytes: Some(512),
                    ..Default::default()
                },
                name: "scratch".into(),
            }],
            ephemeral_storage: None,
            process_stats: None,
        };
        assert_eq!(local_storage_violation(&p, &s), None);
        s.volume[0].fs.used_bytes = Some(4096);
        assert_eq!(
            local_storage_violation(&p, &s),
            Some((
                "Usage of EmptyDir volume \"scratch\" exceeds the limit \"1Ki\". ".to_string(),
                "emptydirfs.limit"
            ))
        );
        s.volume[0].fs.used_bytes = Some(0);
        s.ephemeral_storage = Some(crate::stats::summary::FsStats {
            time: Time::from_unix_nanos(0),
            used_bytes: Some(20 << 10),
            ..Default::default()
        });
        assert_eq!(
            local_storage_violation(&p, &s).unwrap().0,
            "Pod ephemeral local storage usage exceeds the total limit of containers 10Ki. "
        );
    }
}
