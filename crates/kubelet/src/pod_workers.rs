//! One task per pod (upstream's `pkg/kubelet/pod_workers.go`), fed the
//! newest pod object and woken by PLEG events: it syncs the pod
//! (`kubelet.go` `SyncPod`), writes the status when it changed (upstream's
//! `pkg/kubelet/status/status_manager.go`), and on deletion stops the
//! containers with the grace period, removes the sandbox and deletes the
//! pod object with grace 0, as upstream's status manager does.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{ConfigMap, Pod, PodCondition, PodStatus, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Resource};
use tokio::sync::mpsc;

use crate::kuberuntime::container::EnvSources;
use crate::kuberuntime::labels::{
    pod_desc, pod_name, pod_namespace, pod_uid, termination_grace_period,
};
use crate::kuberuntime::manager::{PodEvent, RuntimeManager};
use crate::status::{generate_api_pod_status, is_terminal, same_status, StatusContext};

/// Upstream's `--sync-frequency`: a pod with nothing happening is synced
/// this often anyway.
pub const RESYNC: Duration = Duration::from_secs(60);
/// Retry delay after a failed sync (sandbox or API errors).
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// How soon a pod whose volumes could not all be set up is synced again.
const VOLUME_RETRY: Duration = Duration::from_secs(5);

/// The pods bound to this node as last seen, by UID (upstream's pod
/// manager), for the server's `/pods` and log look-ups.
#[derive(Default)]
pub struct PodStore {
    pods: RwLock<HashMap<String, Arc<Pod>>>,
}

impl PodStore {
    pub fn upsert(&self, pod: Arc<Pod>) {
        if let Ok(mut m) = self.pods.write() {
            m.insert(pod_uid(&pod).to_string(), pod);
        }
    }
    pub fn remove(&self, uid: &str) {
        if let Ok(mut m) = self.pods.write() {
            m.remove(uid);
        }
    }
    pub fn list(&self) -> Vec<Arc<Pod>> {
        self.pods
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }
    pub fn find(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        self.pods
            .read()
            .ok()?
            .values()
            .find(|p| pod_namespace(p) == namespace && pod_name(p) == name)
            .cloned()
    }
    pub fn contains(&self, uid: &str) -> bool {
        self.pods
            .read()
            .map(|m| m.contains_key(uid))
            .unwrap_or(false)
    }
}

/// What every worker shares.
pub struct WorkerContext {
    pub client: kube::Client,
    pub manager: Arc<RuntimeManager>,
    pub host_ips: Vec<String>,
    pub runtime_name: String,
    pub pods: Arc<PodStore>,
    /// Publishes the pods' events (`reportingController: kubelet`).
    pub recorder: Recorder,
    /// Liveness, readiness and startup probes.
    pub prober: Arc<crate::prober::Prober>,
    /// The pods' volumes.
    pub volumes: Arc<crate::volume::VolumeManager>,
    /// How often a quiet pod is synced ([`RESYNC`] by default).
    pub sync_frequency: Duration,
    /// The Services whose variables containers get.
    pub services: crate::envvars::ServiceEnv,
    /// Whether a new pod may run here (the eviction manager's `Admit`);
    /// `Err` holds the refusal's message. `None` admits everything.
    pub admit: Option<Admit>,
}

/// An admission check for new pods.
pub type Admit = Arc<dyn Fn(&Pod) -> Result<(), String> + Send + Sync>;

/// A pod killed for the node's sake (upstream's eviction through
/// `TerminatePodAbnormallyAndWait`): its status stays `Failed`/`Evicted`.
#[derive(Debug, Clone)]
struct Evicted {
    message: String,
    disruption_condition: bool,
}

/// Marks `status` as evicted: phase Failed, reason `Evicted`, the message,
/// and (for node pressure) the `DisruptionTarget` condition with reason
/// `TerminationByKubelet`.
fn apply_eviction(status: &mut PodStatus, old: Option<&PodStatus>, e: &Evicted, now: Timestamp) {
    status.phase = Some("Failed".into());
    status.reason = Some(crate::eviction::manager::REASON.into());
    status.message = Some(e.message.clone());
    if !e.disruption_condition {
        return;
    }
    let since = old
        .and_then(|o| o.conditions.as_ref())
        .and_then(|c| {
            c.iter()
                .find(|c| c.type_ == "DisruptionTarget" && c.status == "True")
        })
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    conditions.retain(|c| c.type_ != "DisruptionTarget");
    conditions.push(PodCondition {
        type_: "DisruptionTarget".into(),
        status: "True".into(),
        reason: Some("TerminationByKubelet".into()),
        message: Some(e.message.clone()),
        last_transition_time: Some(since),
        ..Default::default()
    });
}

impl WorkerContext {
    /// Publishes `events` about `pod` in the background, in order; a failed
    /// publish is logged and dropped (events are best effort, as upstream).
    fn publish(&self, pod: &Pod, events: Vec<PodEvent>) {
        if events.is_empty() {
            return;
        }
        let recorder = self.recorder.clone();
        let reference = pod.object_ref(&());
        tokio::spawn(async move {
            for e in events {
                let ev = Event {
                    type_: if e.warning {
                        EventType::Warning
                    } else {
                        EventType::Normal
                    },
                    reason: e.reason.into(),
                    note: Some(e.message),
                    action: e.reason.into(),
                    secondary: None,
                };
                if let Err(err) = recorder.publish(&ev, &reference).await {
                    tracing::debug!(error = %err, reason = ev.reason, "publishing an event failed");
                }
            }
        });
    }
}

enum Msg {
    Update(Arc<Pod>),
    /// The pod is gone from the API server (force-deleted).
    Removed,
    /// Something changed in the runtime (a PLEG event).
    Wake,
    /// The object the status goes to is new (a static pod's mirror was
    /// recreated): the next sync writes the status whatever it was.
    StatusLost,
    /// The eviction manager evicts the pod.
    Evict(crate::eviction::manager::EvictRequest),
}

/// `Killing` events for the pod's running containers.
fn killing_events(rs: &crate::kuberuntime::pod_status::PodRuntimeStatus) -> Vec<PodEvent> {
    rs.containers
        .iter()
        .filter(|c| c.state == crate::cri::api::ContainerState::ContainerRunning)
        .map(|c| PodEvent {
            warning: false,
            reason: "Killing",
            message: format!("Stopping container {}", c.name),
        })
        .collect()
}

/// Whether `pod` came from a manifest file (a static pod).
fn is_static(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(crate::static_pods::SOURCE_ANNOTATION))
        .is_some_and(|s| s == "file")
}

/// The set of workers (upstream's `podWorkers`).
pub struct PodWorkers {
    ctx: Arc<WorkerContext>,
    workers: HashMap<String, mpsc::UnboundedSender<Msg>>,
    /// Pods whose worker finished terminating; updates for them are dropped
    /// until the API server's delete arrives.
    finished: Arc<RwLock<HashSet<String>>>,
}

impl PodWorkers {
    pub fn new(ctx: Arc<WorkerContext>) -> Self {
        Self {
            ctx,
            workers: HashMap::new(),
            finished: Default::default(),
        }
    }

    fn finished(&self, uid: &str) -> bool {
        self.finished
            .read()
            .map(|s| s.contains(uid))
            .unwrap_or(false)
    }

    /// A new or changed pod from the API server.
    pub fn update(&mut self, pod: Pod) {
        let uid = pod_uid(&pod).to_string();
        if uid.is_empty() {
            return;
        }
        let pod = Arc::new(pod);
        // The store follows finished pods too (their terminal status).
        self.ctx.pods.upsert(pod.clone());
        if self.finished(&uid) {
            return;
        }
        self.workers.retain(|_, tx| !tx.is_closed());
        if let Some(tx) = self.workers.get(&uid) {
            if tx.send(Msg::Update(pod.clone())).is_ok() {
                return;
            }
        }
        let rejected = if is_terminal(pod.status.as_ref().and_then(|s| s.phase.as_deref())) {
            None
        } else {
            self.ctx.admit.as_ref().and_then(|admit| admit(&pod).err())
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let worker = Worker {
            rejected,
            evicted: None,
            evicting: None,
            ctx: self.ctx.clone(),
            wake: tx.downgrade(),
            pod,
            removed: false,
            written: None,
            terminal: false,
            retry: RETRY_MIN,
        };
        let finished = self.finished.clone();
        tokio::spawn(async move {
            let uid = pod_uid(&worker.pod).to_string();
            if worker.run(rx).await {
                if let Ok(mut f) = finished.write() {
                    f.insert(uid);
                }
            }
        });
        self.workers.insert(uid, tx);
    }

    /// The pod is gone from the API server.
    pub fn remove(&mut self, uid: &str) {
        self.ctx.pods.remove(uid);
        if let Ok(mut f) = self.finished.write() {
            f.remove(uid);
        }
        if let Some(tx) = self.workers.remove(uid) {
            let _ = tx.send(Msg::Removed);
        }
    }

    /// The runtime changed for this pod; whether a worker exists for it.
    pub fn wake(&mut self, uid: &str) -> bool {
        match self.workers.get(uid) {
            Some(tx) => tx.send(Msg::Wake).is_ok(),
            None => false,
        }
    }

    /// The object this pod's status is written to is new; whether a worker
    /// exists for it.
    pub fn status_lost(&mut self, uid: &str) -> bool {
        match self.workers.get(uid) {
            Some(tx) => tx.send(Msg::StatusLost).is_ok(),
            None => false,
        }
    }

    /// Hands an eviction to the pod's worker; without one the request is
    /// dropped (its waiter sees the pod as gone).
    pub fn evict(&mut self, req: crate::eviction::manager::EvictRequest) {
        if let Some(tx) = self.workers.get(&req.uid) {
            let _ = tx.send(Msg::Evict(req));
        }
    }

    /// UIDs with a worker.
    pub fn uids(&self) -> Vec<String> {
        self.workers.keys().cloned().collect()
    }
}

struct Worker {
    ctx: Arc<WorkerContext>,
    /// For probes to wake this worker (weak: the channel still closes
    /// when the pod workers let go of it).
    wake: mpsc::WeakUnboundedSender<Msg>,
    pod: Arc<Pod>,
    removed: bool,
    /// The status last written, the base of the next one.
    written: Option<PodStatus>,
    terminal: bool,
    retry: Duration,
    /// The admission refusal: the worker only writes it.
    rejected: Option<String>,
    /// Set once the pod was evicted; its status stays so.
    evicted: Option<Evicted>,
    /// An eviction waiting to be carried out.
    evicting: Option<crate::eviction::manager::EvictRequest>,
}

impl Worker {
    /// Runs until the pod is terminated; true when it was.
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) -> bool {
        if let Some(message) = self.rejected.take() {
            return self.reject(message, &mut rx).await;
        }
        loop {
            if let Some(req) = self.evicting.take() {
                if self.pod.metadata.deletion_timestamp.is_none() && !self.removed {
                    if let Err(e) = self
                        .evict(req.grace, req.message, req.disruption_condition)
                        .await
                    {
                        tracing::warn!(pod = %pod_desc(&self.pod), error = %e, "evicting pod failed");
                    }
                }
                let _ = req.done.send(());
            }
            if self.removed || self.pod.metadata.deletion_timestamp.is_some() {
                match self.terminate().await {
                    Ok(()) => return true,
                    Err(e) => {
                        tracing::warn!(pod = %pod_desc(&self.pod), error = %e, "terminating pod failed, retrying");
                    }
                }
                let wait = self.next_retry();
                if !self.wait(&mut rx, wait).await {
                    return false;
                }
                continue;
            }
            let wait = match self.sync().await {
                Ok(requeue) => {
                    self.retry = RETRY_MIN;
                    requeue.unwrap_or(self.ctx.sync_frequency)
                }
                Err(e) => {
                    tracing::warn!(pod = %pod_desc(&self.pod), error = %e, "sync failed");
                    self.next_retry()
                }
            };
            if !self.wait(&mut rx, wait).await {
                return false;
            }
        }
    }

    fn next_retry(&mut self) -> Duration {
        let r = self.retry;
        self.retry = (self.retry * 2).min(RETRY_MAX);
        r
    }

    /// Waits for a message or `timeout`; false when the channel closed.
    async fn wait(&mut self, rx: &mut mpsc::UnboundedReceiver<Msg>, timeout: Duration) -> bool {
        let first = tokio::select! {
            m = rx.recv() => match m {
                Some(m) => Some(m),
                None => return false,
            },
            _ = tokio::time::sleep(timeout) => None,
        };
        let mut apply = |m: Msg| match m {
            Msg::Update(p) => self.pod = p,
            Msg::Removed => self.removed = true,
            Msg::Wake => {}
            Msg::StatusLost => self.written = None,
            Msg::Evict(req) => self.evicting = Some(req),
        };
        if let Some(m) = first {
            apply(m);
        }
        while let Ok(m) = rx.try_recv() {
            apply(m);
        }
        true
    }

    /// The pod with the status this kubelet wrote last.
    fn current(&self) -> Pod {
        let mut p = (*self.pod).clone();
        if let Some(s) = &self.written {
            p.status = Some(s.clone());
        }
        p
    }

    async fn sync(&mut self) -> Result<Option<Duration>, String> {
        let uid = pod_uid(&self.pod).to_string();
        let m = self.ctx.manager.clone();
        let pod = self.current();
        let mut rs = m.pod_status(&uid).await.map_err(|e| e.to_string())?;
        let mut result = Default::default();
        // Instances a liveness or startup probe gave up on are killed; the
        // sync below restarts them per the restart policy.
        let condemned = self.ctx.prober.unhealthy(&pod, &rs);
        if !condemned.is_empty() && !self.terminal {
            let grace = termination_grace_period(&pod);
            let mut events = Vec::new();
            for (id, name, why) in condemned {
                tracing::info!(pod = %pod_desc(&pod), container = %name, %why, "killing unhealthy container");
                events.push(PodEvent {
                    warning: true,
                    reason: "Unhealthy",
                    message: why,
                });
                events.push(PodEvent {
                    warning: false,
                    reason: "Killing",
                    message: format!("Container {name} failed liveness probe, will be restarted"),
                });
                if let Err(e) = m.runtime.stop_container(&id, grace).await {
                    tracing::warn!(pod = %pod_desc(&pod), container = %name, error = %e, "stopping an unhealthy container");
                }
            }
            self.ctx.publish(&pod, events);
            rs = m.pod_status(&uid).await.map_err(|e| e.to_string())?;
        }
        if !self.terminal && !is_terminal(pod.status.as_ref().and_then(|s| s.phase.as_deref())) {
            let sources = self.env_sources(&pod).await;
            let volumes = self.ctx.volumes.setup(&pod).await;
            let mut events: Vec<PodEvent> = volumes
                .errors
                .iter()
                .map(|(name, e)| PodEvent {
                    warning: true,
                    reason: "FailedMount",
                    message: format!("MountVolume.SetUp failed for volume {name:?} : {e}"),
                })
                .collect();
            events.extend(volumes.warnings.iter().map(|w| PodEvent {
                warning: true,
                reason: "FailedMount",
                message: w.clone(),
            }));
            self.ctx.publish(&pod, events);
            result = m
                .sync_pod(&pod, &rs, &sources, &volumes, SystemTime::now())
                .await;
            // A missing ConfigMap or Secret may appear any moment.
            if !volumes.errors.is_empty() {
                result.requeue_after = Some(
                    result
                        .requeue_after
                        .map_or(VOLUME_RETRY, |r| r.min(VOLUME_RETRY)),
                );
            }
            rs = m.pod_status(&uid).await.map_err(|e| e.to_string())?;
        } else {
            self.terminal = true;
        }
        let crate::kuberuntime::manager::SyncResult {
            waiting,
            requeue_after,
            error,
            events,
        } = result;
        self.ctx.publish(&pod, events);
        let wake = self.wake.clone();
        self.ctx.prober.sync(
            &pod,
            &rs,
            Arc::new(move || {
                if let Some(tx) = wake.upgrade() {
                    let _ = tx.send(Msg::Wake);
                }
            }),
        );
        let status = generate_api_pod_status(
            &pod,
            &rs,
            &waiting,
            &StatusContext {
                host_ips: &self.ctx.host_ips,
                runtime_name: &self.ctx.runtime_name,
                now: Timestamp::now(),
                terminal: false,
                probes: Some(&self.ctx.prober),
            },
        );
        let mut status = status;
        if let Some(e) = &self.evicted {
            apply_eviction(&mut status, pod.status.as_ref(), e, Timestamp::now());
        }
        if is_terminal(status.phase.as_deref()) && !self.terminal {
            // A finished pod keeps no sandbox (upstream kills terminal pods).
            tracing::info!(pod = %pod_desc(&pod), phase = ?status.phase, "pod finished, stopping its sandbox");
            m.kill_pod(&rs, termination_grace_period(&pod))
                .await
                .map_err(|e| e.to_string())?;
            self.terminal = true;
        }
        self.write_status(status).await?;
        if let Some(e) = error {
            return Err(e);
        }
        Ok(requeue_after)
    }

    /// Patches `pods/status` unless nothing changed.
    async fn write_status(&mut self, status: PodStatus) -> Result<(), String> {
        let base = self.written.as_ref().or(self.pod.status.as_ref());
        if base.is_some_and(|b| same_status(b, &status)) {
            self.written = Some(status);
            return Ok(());
        }
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), pod_namespace(&self.pod));
        let patch = serde_json::json!({ "status": status });
        match api
            .patch_status(
                pod_name(&self.pod),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => {
                tracing::debug!(pod = %pod_desc(&self.pod), phase = ?status.phase, "status written");
                self.written = Some(status);
                Ok(())
            }
            // A static pod's mirror may not exist yet: the status is
            // written again once it does (its arrival wakes this worker).
            Err(kube::Error::Api(e)) if e.code == 404 && is_static(&self.pod) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => {
                self.written = Some(status);
                Ok(())
            }
            Err(e) => Err(format!("writing status: {e}")),
        }
    }

    /// The ConfigMaps and Secrets the containers' env refers to.
    async fn env_sources(&self, pod: &Pod) -> EnvSources {
        let mut cms = BTreeMap::new();
        let mut secrets = BTreeMap::new();
        let spec = pod.spec.as_ref();
        let containers = spec
            .map(|s| {
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
            })
            .into_iter()
            .flatten();
        for c in containers {
            for f in c.env_from.iter().flatten() {
                if let Some(r) = &f.config_map_ref {
                    cms.insert(r.name.clone(), ());
                }
                if let Some(r) = &f.secret_ref {
                    secrets.insert(r.name.clone(), ());
                }
            }
            for e in c.env.iter().flatten() {
                if let Some(from) = &e.value_from {
                    if let Some(r) = &from.config_map_key_ref {
                        cms.insert(r.name.clone(), ());
                    }
                    if let Some(r) = &from.secret_key_ref {
                        secrets.insert(r.name.clone(), ());
                    }
                }
            }
        }
        let mut out = EnvSources::default();
        self.ctx.services.wait_synced().await;
        out.services = self.ctx.services.for_pod(pod);
        let ns = pod_namespace(pod);
        let cm_api: Api<ConfigMap> = Api::namespaced(self.ctx.client.clone(), ns);
        for name in cms.keys() {
            if let Ok(cm) = cm_api.get(name).await {
                let mut data = cm.data.unwrap_or_default();
                for (k, v) in cm.binary_data.unwrap_or_default() {
                    data.insert(k, String::from_utf8_lossy(&v.0).into_owned());
                }
                out.config_maps.insert(name.clone(), data);
            }
        }
        let s_api: Api<Secret> = Api::namespaced(self.ctx.client.clone(), ns);
        for name in secrets.keys() {
            if let Ok(s) = s_api.get(name).await {
                let mut data: BTreeMap<String, String> = s
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                    .collect();
                data.extend(s.string_data.unwrap_or_default());
                out.secrets.insert(name.clone(), data);
            }
        }
        out
    }

    /// Writes the admission refusal (upstream's `rejectPod`: phase Failed,
    /// the reason, `Pod was rejected: <message>`, a Warning event) and runs
    /// nothing; true once written (then the worker is done).
    async fn reject(mut self, message: String, rx: &mut mpsc::UnboundedReceiver<Msg>) -> bool {
        let pod = self.current();
        tracing::info!(pod = %pod_desc(&pod), %message, "pod rejected");
        self.ctx.publish(
            &pod,
            vec![PodEvent {
                warning: true,
                reason: crate::eviction::manager::REASON,
                message: message.clone(),
            }],
        );
        let status = PodStatus {
            phase: Some("Failed".into()),
            reason: Some(crate::eviction::manager::REASON.into()),
            message: Some(format!("Pod was rejected: {message}")),
            qos_class: Some(crate::kuberuntime::container::qos_class(&pod).into()),
            ..Default::default()
        };
        loop {
            match self.write_status(status.clone()).await {
                Ok(()) => return true,
                Err(e) => {
                    tracing::warn!(pod = %pod_desc(&pod), error = %e, "writing a rejection failed")
                }
            }
            let wait = self.next_retry();
            if !self.wait(rx, wait).await || self.removed {
                return false;
            }
        }
    }

    /// Kills the pod's containers with `grace` seconds for the eviction
    /// manager and writes the `Evicted` status; the pod stays terminal.
    async fn evict(
        &mut self,
        grace: i64,
        message: String,
        disruption_condition: bool,
    ) -> Result<(), String> {
        let pod = self.current();
        let uid = pod_uid(&pod).to_string();
        let m = self.ctx.manager.clone();
        let e = Evicted {
            message,
            disruption_condition,
        };
        self.evicted = Some(e.clone());
        self.terminal = true;
        self.ctx.prober.remove_pod(&uid);
        let rs = m.pod_status(&uid).await.map_err(|e| e.to_string())?;
        self.ctx.publish(&pod, killing_events(&rs));
        m.kill_pod(&rs, grace).await.map_err(|e| e.to_string())?;
        let rs = m.pod_status(&uid).await.map_err(|e| e.to_string())?;
        let mut status = self.final_status(&pod, &rs);
        apply_eviction(&mut status, pod.status.as_ref(), &e, Timestamp::now());
        self.write_status(status).await
    }

    /// The status of a pod killed for good: nothing restarts.
    fn final_status(
        &self,
        pod: &Pod,
        rs: &crate::kuberuntime::pod_status::PodRuntimeStatus,
    ) -> PodStatus {
        generate_api_pod_status(
            pod,
            rs,
            &HashMap::new(),
            &StatusContext {
                host_ips: &self.ctx.host_ips,
                runtime_name: &self.ctx.runtime_name,
                now: Timestamp::now(),
                terminal: true,
                probes: None,
            },
        )
    }

    /// Stops everything with the grace period, writes the final status,
    /// deletes the pod object with grace 0 and removes what is left.
    async fn terminate(&mut self) -> Result<(), String> {
        let pod = self.current();
        let uid = pod_uid(&pod).to_string();
        let m = self.ctx.manager.clone();
        let grace = pod
            .metadata
            .deletion_grace_period_seconds
            .unwrap_or_else(|| termination_grace_period(&pod))
            .max(0);
        tracing::info!(pod = %pod_desc(&pod), grace, "killing pod");
        let rs = m.pod_status(&uid).await.map_err(|e| e.to_string())?;
        self.ctx.publish(&pod, killing_events(&rs));
        self.ctx.prober.remove_pod(&uid);
        m.kill_pod(&rs, grace).await.map_err(|e| e.to_string())?;
        let rs = m.pod_status(&uid).await.map_err(|e| e.to_string())?;
        if !self.removed {
            let status = self.final_status(&pod, &rs);
            self.write_status(status).await?;
            let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), pod_namespace(&pod));
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: Some(uid.clone()),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match api.delete(pod_name(&pod), &dp).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
                Err(e) => return Err(format!("deleting the pod object: {e}")),
            }
        }
        m.remove_pod(&uid, &rs).await.map_err(|e| e.to_string())?;
        m.forget(&uid);
        self.ctx.volumes.teardown(&uid);
        tracing::info!(pod = %pod_desc(&pod), "pod terminated");
        Ok(())
    }
}
