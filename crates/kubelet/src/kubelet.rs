//! The kubelet's main loop (upstream's `pkg/kubelet/kubelet.go` `Run` and
//! `syncLoop`): registers the node and keeps its status and Lease, watches
//! the pods bound to this node (a kube-rs watcher with
//! `spec.nodeName=<node>`), hands each to its pod worker, and routes PLEG
//! events to the workers; runtime leftovers of pods this node no longer
//! has are killed and removed (upstream's `HandlePodCleanups`). Static pods
//! from `--pod-manifest-path` run beside them ([`crate::static_pods`]); the
//! watch's mirror pods only stand for them.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Api;
use tokio::sync::mpsc;

use component_base::healthz::{Check, Checks};

use crate::cri::{CriError, ImageService, RuntimeService};
use crate::eviction::manager::EvictionManager;
use crate::kuberuntime::container::ContainerSettings;
use crate::kuberuntime::labels::pod_uid;
use crate::kuberuntime::manager::RuntimeManager;
use crate::kuberuntime::sandbox::{HostDns, SandboxSettings};
use crate::nodestatus::{MachineInfo, NodeSettings, NodeStatusManager};
use crate::pleg::PlegHealth;
use crate::pod_workers::{PodStore, PodWorkers, WorkerContext};
use crate::static_pods::{is_mirror, StaticPods};
use crate::volume::VolumeManager;

/// The kubelet's settings, completed from flags and the config file.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    pub node_name: String,
    pub hostname: String,
    pub node_ips: Vec<String>,
    pub node_labels: BTreeMap<String, String>,
    pub pod_cidr: Option<String>,
    pub max_pods: u32,
    pub root_dir: PathBuf,
    pub pod_logs_dir: PathBuf,
    pub cluster_dns: Vec<String>,
    pub cluster_domain: String,
    pub resolv_conf: PathBuf,
    /// The HTTPS port advertised in the node's daemonEndpoints.
    pub port: u16,
    /// Upstream's `syncFrequency`: how often a quiet pod is synced anyway
    /// (which also refreshes its ConfigMap, Secret and token volumes).
    pub sync_frequency: std::time::Duration,
    /// `--pod-manifest-path` (`staticPodPath`): where static pods come from.
    pub static_pod_path: Option<PathBuf>,
    /// Eviction thresholds and their knobs.
    pub eviction: crate::eviction::EvictionConfig,
    /// How often the eviction manager looks (`--housekeeping-interval`, 10 s).
    pub housekeeping_interval: std::time::Duration,
    /// Image garbage collection thresholds.
    pub image_gc: crate::image_gc::ImageGcPolicy,
    /// Container log rotation (`containerLogMaxSize`, `containerLogMaxFiles`).
    pub container_log: crate::logs::rotate::LogRotatePolicy,
}

impl Default for KubeletConfig {
    fn default() -> Self {
        Self {
            node_name: String::new(),
            hostname: String::new(),
            node_ips: vec![],
            node_labels: BTreeMap::new(),
            pod_cidr: None,
            max_pods: 110,
            root_dir: "/var/lib/kubelet".into(),
            pod_logs_dir: "/var/log/pods".into(),
            cluster_dns: vec![],
            cluster_domain: "cluster.local".into(),
            resolv_conf: "/etc/resolv.conf".into(),
            port: 10250,
            sync_frequency: crate::pod_workers::RESYNC,
            static_pod_path: None,
            eviction: Default::default(),
            housekeeping_interval: crate::eviction::MONITORING_INTERVAL,
            image_gc: Default::default(),
            container_log: Default::default(),
        }
    }
}

/// Why the kubelet could not start.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    /// The container runtime did not answer Version.
    #[error("container runtime: {0}")]
    Runtime(#[from] CriError),
}

/// A kubelet ready to run.
pub struct Kubelet {
    pub config: KubeletConfig,
    pub volumes: Arc<VolumeManager>,
    client: kube::Client,
    pub manager: Arc<RuntimeManager>,
    pub pods: Arc<PodStore>,
    runtime_name: String,
    pub pleg_health: Arc<PlegHealth>,
    pub synced: Arc<AtomicBool>,
    machine: MachineInfo,
    probe_metrics: Arc<crate::stats::probe_metrics::ProbeMetrics>,
}

impl Kubelet {
    /// Asks the runtime for its name and builds the runtime manager.
    pub async fn new(
        client: kube::Client,
        runtime: Arc<dyn RuntimeService>,
        images: Arc<dyn ImageService>,
        config: KubeletConfig,
    ) -> Result<Self, KubeletError> {
        let version = runtime.version().await?;
        tracing::info!(runtime = %version.runtime_name, version = %version.runtime_version, api = %version.runtime_api_version, "container runtime");
        // Upstream's `setupDataDirs`: the root directory exists from the start
        // (its filesystem is the node's `nodefs`).
        if let Err(e) = std::fs::create_dir_all(config.root_dir.join("pods")) {
            tracing::warn!(dir = %config.root_dir.display(), error = %e, "creating the kubelet's root directory");
        }
        let machine = MachineInfo::read(&config.root_dir);
        let container_settings = ContainerSettings {
            pod_ips: vec![],
            host_ips: config.node_ips.clone(),
            node_name: config.node_name.clone(),
            root_dir: config.root_dir.clone(),
            memory_capacity: machine.memory_bytes as f64,
            cpu_capacity: machine.num_cores as f64,
            cluster_domain: config.cluster_domain.clone(),
            node_hosts_file: "/etc/hosts".into(),
        };
        let volumes = VolumeManager::new(
            client.clone(),
            config.root_dir.clone(),
            container_settings.clone(),
        );
        let manager = RuntimeManager::new(
            runtime,
            images,
            SandboxSettings {
                cluster_dns: config.cluster_dns.clone(),
                cluster_domain: config.cluster_domain.clone(),
                host_dns: HostDns::read(&config.resolv_conf),
                pod_logs_dir: config.pod_logs_dir.clone(),
            },
            container_settings,
        );
        Ok(Self {
            config,
            volumes: Arc::new(volumes),
            client,
            manager: Arc::new(manager),
            pods: Arc::new(PodStore::default()),
            runtime_name: version.runtime_name,
            pleg_health: Arc::new(PlegHealth::default()),
            synced: Arc::new(AtomicBool::new(false)),
            machine,
            probe_metrics: Arc::default(),
        })
    }

    /// The health checks upstream's kubelet serves (`ping`, `log`, `syncloop`
    /// as `pleg` here).
    /// What `/stats/summary` and `/metrics/resource` read.
    pub fn stats_provider(&self) -> Arc<crate::stats::StatsProvider> {
        Arc::new(
            crate::stats::StatsProvider::new(
                self.config.node_name.clone(),
                self.config.root_dir.clone(),
                self.config.pod_logs_dir.clone(),
                self.manager.runtime.clone(),
                self.manager.images.clone(),
            )
            .with_probe_metrics(self.probe_metrics.clone()),
        )
    }

    pub fn health_checks(&self) -> Checks {
        let pleg = self.pleg_health.clone();
        Checks::new(vec![
            Check::ping(),
            Check::new("log", || Ok(())),
            Check::new("pleg", move || pleg.check()),
        ])
    }

    /// Runs until the pod watch ends; dropping the future stops the
    /// kubelet's loops (pod workers finish the sync they are in).
    pub async fn run(self) {
        let c = &self.config;
        let (node_tx, node_rx) = tokio::sync::watch::channel(None);
        let mut status = NodeStatusManager {
            client: self.client.clone(),
            runtime: self.manager.runtime.clone(),
            settings: NodeSettings {
                node_name: c.node_name.clone(),
                hostname: c.hostname.clone(),
                node_ips: c.node_ips.clone(),
                pod_cidr: c.pod_cidr.clone(),
                max_pods: c.max_pods,
                kubelet_port: i32::from(c.port),
                labels: c.node_labels.clone(),
                eviction_hard_memory: c
                    .eviction
                    .hard(crate::eviction::Signal::MemoryAvailable)
                    .map(|t| t.value),
                eviction_hard_nodefs: c
                    .eviction
                    .hard(crate::eviction::Signal::NodeFsAvailable)
                    .map(|t| t.value),
            },
            machine: self.machine.clone(),
            eviction: None,
            recorder: None,
        };
        let recorder = Recorder::new(
            self.client.clone(),
            Reporter {
                controller: "kubelet".into(),
                instance: Some(c.node_name.clone()),
            },
        );
        let node_ref = k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(c.node_name.clone()),
            // Upstream's kubelet refers to its node with the name as UID.
            uid: Some(c.node_name.clone()),
            ..Default::default()
        };
        let image_gc = crate::image_gc::ImageGc::new(
            self.manager.runtime.clone(),
            self.manager.images.clone(),
            c.image_gc.clone(),
        );
        let (evict_tx, mut evict_rx) = mpsc::unbounded_channel();
        let eviction = Arc::new(
            EvictionManager::new(
                c.eviction.clone(),
                self.stats_provider(),
                self.pods.clone(),
                evict_tx,
            )
            .with_image_gc(image_gc.clone())
            .with_recorder(recorder.clone(), node_ref.clone()),
        );
        status.eviction = Some(eviction.clone());
        status.recorder = Some((recorder.clone(), node_ref.clone()));
        // Background loops end with this future (dropping it aborts them);
        // pod workers end when their channel closes with `workers`.
        let mut background = tokio::task::JoinSet::new();
        background.spawn(status.run(node_tx));
        background.spawn(eviction.clone().run(c.housekeeping_interval));
        {
            let recorder = recorder.clone();
            background.spawn(image_gc.run(move |e| {
                let reason = match e {
                    crate::image_gc::GcError::NotEnough { .. } => "FreeDiskSpaceFailed",
                    _ => "ImageGCFailed",
                };
                let ev = kube::runtime::events::Event {
                    type_: kube::runtime::events::EventType::Warning,
                    reason: reason.into(),
                    note: Some(e.to_string()),
                    action: reason.into(),
                    secondary: None,
                };
                let recorder = recorder.clone();
                let node_ref = node_ref.clone();
                tokio::spawn(async move {
                    let _ = recorder.publish(&ev, &node_ref).await;
                });
            }));
        }
        background.spawn(crate::nodelease::run(self.client.clone(), node_rx));
        background.spawn(
            Arc::new(crate::logs::rotate::ContainerLogManager::new(
                self.manager.runtime.clone(),
                c.container_log.clone(),
            ))
            .run(),
        );
        background.spawn(remove_dangling_log_links(self.manager.container_logs_dir()));
        let (pleg_tx, mut pleg_rx) = mpsc::unbounded_channel();
        background.spawn(crate::pleg::run(
            self.manager.runtime.clone(),
            pleg_tx,
            self.pleg_health.clone(),
        ));

        // Services for the containers' environment variables, from a watch.
        let (services, writer) = kube::runtime::reflector::store::<Service>();
        background.spawn(client::reflect::follow(
            Api::<Service>::all(self.client.clone()),
            writer,
            || {},
        ));
        let mut workers = PodWorkers::new(Arc::new(WorkerContext {
            client: self.client.clone(),
            manager: self.manager.clone(),
            host_ips: c.node_ips.clone(),
            runtime_name: self.runtime_name.clone(),
            pods: self.pods.clone(),
            prober: Arc::new(crate::prober::Prober::new(
                self.manager.runtime.clone(),
                self.probe_metrics.clone(),
            )),
            volumes: self.volumes.clone(),
            sync_frequency: c.sync_frequency,
            services: crate::envvars::ServiceEnv::new(services),
            recorder,
            admit: Some({
                let eviction = eviction.clone();
                Arc::new(move |pod: &Pod| eviction.admit(pod))
            }),
        }));
        let api: Api<Pod> = Api::all(self.client.clone());
        let wc = watcher::Config::default().fields(&format!("spec.nodeName={}", c.node_name));
        let mut pods = watcher::watcher(api, wc).default_backoff().boxed();
        let mut listing: Option<HashSet<String>> = None;
        let cleaning: Arc<Mutex<HashSet<String>>> = Default::default();
        let mut statics = c
            .static_pod_path
            .clone()
            .map(|dir| StaticPods::new(dir, c.node_name.clone(), self.client.clone()));
        let mut static_tick = tokio::time::interval(crate::static_pods::CHECK_FREQUENCY);
        let mut static_watch = c
            .static_pod_path
            .as_deref()
            .and_then(crate::dir_watch::DirWatch::new);
        loop {
            tokio::select! {
                _ = static_tick.tick(), if statics.is_some() => {
                    if let Some(w) = static_watch.as_mut() {
                        w.rewatch();
                    }
                    refresh_static_pods(&mut statics, &mut workers);
                }
                _ = async {
                    match static_watch.as_mut() {
                        Some(w) => w.changed().await,
                        None => std::future::pending().await,
                    }
                } => refresh_static_pods(&mut statics, &mut workers),
                ev = pods.next() => match ev {
                    // Mirror pods stand for static pods: never run.
                    Some(Ok(Event::InitApply(pod) | Event::Apply(pod))) if is_mirror(&pod) => {
                        if let Some(st) = statics.as_mut() {
                            if let Some(uid) = st.mirror_seen(pod) {
                                workers.status_lost(&uid);
                            }
                            st.reconcile();
                        }
                    }
                    Some(Ok(Event::Delete(pod))) if is_mirror(&pod) => {
                        if let Some(st) = statics.as_mut() {
                            st.mirror_gone(&pod);
                            st.reconcile();
                        }
                    }
                    Some(Ok(Event::Init)) => {
                        listing = Some(HashSet::new());
                        if let Some(st) = statics.as_mut() {
                            st.forget_mirrors();
                        }
                    }
                    Some(Ok(Event::InitApply(pod))) => {
                        if let Some(l) = listing.as_mut() {
                            l.insert(pod_uid(&pod).to_string());
                        }
                        workers.update(pod);
                    }
                    Some(Ok(Event::InitDone)) => {
                        let mut seen = listing.take().unwrap_or_default();
                        seen.extend(statics.iter().flat_map(|st| st.uids().cloned()));
                        for uid in workers.uids() {
                            if !seen.contains(&uid) {
                                workers.remove(&uid);
                            }
                        }
                        let known: HashSet<String> =
                            seen.iter().cloned().chain(workers.uids()).collect();
                        self.volumes.cleanup_orphaned_pod_dirs(&known);
                        self.cleanup_orphaned_logs(known.clone());
                        self.synced.store(true, Ordering::SeqCst);
                        if let Some(st) = statics.as_ref() {
                            st.reconcile();
                        }
                    }
                    Some(Ok(Event::Apply(pod))) => workers.update(pod),
                    Some(Ok(Event::Delete(pod))) => workers.remove(pod_uid(&pod)),
                    Some(Err(e)) => tracing::warn!(error = %e, "pod watch failed, retrying"),
                    None => return,
                },
                req = evict_rx.recv() => {
                    if let Some(req) = req {
                        workers.evict(req);
                    }
                }
                uid = pleg_rx.recv() => {
                    let Some(uid) = uid else { return };
                    if workers.wake(&uid) || !self.synced.load(Ordering::SeqCst) || self.pods.contains(&uid) {
                        continue;
                    }
                    self.cleanup_orphan(uid, cleaning.clone());
                }
            }
        }
    }

    /// Removes the log directories of pods neither the API nor the runtime
    /// has (a pod the runtime still runs, say a static pod not read yet, or
    /// an orphan [`Self::cleanup_orphan`] will remove, keeps its logs), then
    /// the links left dangling.
    fn cleanup_orphaned_logs(&self, known: HashSet<String>) {
        let manager = self.manager.clone();
        let dir = self.config.pod_logs_dir.clone();
        tokio::spawn(async move {
            let sandboxes = match manager.runtime.list_pod_sandbox(None).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(error = %e, "listing sandboxes before removing orphaned pod logs");
                    return;
                }
            };
            let running: HashSet<String> = sandboxes
                .into_iter()
                .filter_map(|s| s.labels.get(crate::kuberuntime::labels::POD_UID).cloned())
                .collect();
            crate::logs::files::remove_pod_log_dirs(&dir, |uid| {
                known.contains(uid) || running.contains(uid)
            });
            crate::logs::files::remove_dangling_symlinks(&manager.container_logs_dir());
        });
    }

    /// Kills and removes what the runtime still has of a pod this node does
    /// not run (deleted while the kubelet was down, or force-deleted).
    fn cleanup_orphan(&self, uid: String, cleaning: Arc<Mutex<HashSet<String>>>) {
        if !cleaning
            .lock()
            .map(|mut s| s.insert(uid.clone()))
            .unwrap_or(false)
        {
            return;
        }
        let manager = self.manager.clone();
        let volumes = self.volumes.clone();
        tokio::spawn(async move {
            let result = async {
                let rs = manager.pod_status(&uid).await?;
                if rs.sandboxes.is_empty() && rs.containers.is_empty() {
                    return Ok(());
                }
                tracing::info!(pod_uid = %uid, "cleaning up the runtime leftovers of a pod this node no longer has");
                manager.kill_pod(&rs, 2).await?;
                manager.remove_pod(&uid, &rs).await
            }
            .await;
            if let Err(e) = result {
                tracing::warn!(pod_uid = %uid, error = %e, "cleaning up an orphaned pod failed");
            }
            manager.forget(&uid);
            volumes.teardown(&uid);
            if let Ok(mut s) = cleaning.lock() {
                s.remove(&uid);
            }
        });
    }
}

/// Removes `/var/log/containers` links whose log is gone, every minute
/// (upstream's container GC period).
async fn remove_dangling_log_links(dir: PathBuf) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        let dir = dir.clone();
        let _ =
            tokio::task::spawn_blocking(move || crate::logs::files::remove_dangling_symlinks(&dir))
                .await;
    }
}

/// Reads the manifest directory and hands new and removed static pods to
/// the workers.
fn refresh_static_pods(statics: &mut Option<StaticPods>, workers: &mut PodWorkers) {
    if let Some(st) = statics.as_mut() {
        let (added, removed) = st.refresh();
        for pod in added {
            tracing::info!(pod = ?pod.metadata.name, "static pod");
            workers.update(pod);
        }
        for uid in removed {
            workers.remove(&uid);
        }
        st.reconcile();
    }
}
