//! The controller manager's controllers (upstream's `pkg/controller` and the
//! wiring of `cmd/kube-controller-manager/app`) as reconcile loops on
//! kube-rs's runtime.
//!
//! - [`descriptors`]: every controller by upstream's name, and the
//!   `--controllers` semantics.
//! - [`informers`]: one watch per resource, shared by every controller that
//!   needs it (upstream's SharedInformerFactory).
//! - [`runner`]: starts the selected controllers once the shared caches
//!   have synced; reconcile errors are retried per object with exponential
//!   backoff and never end a loop.
//! - shared pieces: [`history`] (ControllerRevisions), [`clock`] (an
//!   injectable "now"), [`events`] (Events).
//! - the controllers: [`serviceaccount`], [`rootcacertpublisher`],
//!   [`namespace`], [`replicaset`], [`deployment`], [`daemon`],
//!   [`statefulset`], [`job`], [`cronjob`] and the rest, one module each.
//!
//! Invariant: nothing here parses flags or installs logging (that is
//! `cmd/kube-controller-manager`); controllers never poll the API server
//! for changes, they react to the shared watches.

pub mod certificates;
pub mod clock;
pub mod clusterroleaggregation;
pub(crate) mod controllerref;
pub mod cronjob;
pub mod daemon;
pub mod deployment;
pub mod descriptors;
pub mod discovery;
pub mod disruption;
pub mod endpoint;
pub mod endpointslice;
pub mod events;
pub mod garbagecollector;
pub mod history;
pub mod informers;
pub mod job;
pub mod namespace;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod persistentvolume;
pub mod podautoscaler;
pub mod podgc;
pub mod replicaset;
pub mod resourcequota;
pub mod rootcacertpublisher;
pub mod runner;
pub mod serviceaccount;
pub mod serviceaccount_token;
pub mod statefulset;
pub mod ttlafterfinished;
pub mod volumeprotection;
pub mod workqueue;

use std::sync::Arc;

use component_base::serviceaccount_keys::SigningKey;

pub use descriptors::{controller_descriptors, ControllerDescriptor};
pub use informers::SharedInformers;
pub use runner::{run, ControllerMetrics};

/// What the controllers are configured with (upstream's
/// KubeControllerManagerConfiguration, the parts used here).
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// The bytes of `--root-ca-file`, published as `kube-root-ca.crt`.
    pub root_ca: Option<Vec<u8>>,
    /// `--service-account-private-key-file`, loaded: signs the token
    /// controller's Secret-based tokens.
    pub service_account_key: Option<Arc<SigningKey>>,
    /// `--concurrent-namespace-syncs`.
    pub concurrent_namespace_syncs: u16,
    /// `--concurrent-serviceaccount-token-syncs`.
    pub concurrent_serviceaccount_token_syncs: u16,
    /// `--concurrent-replicaset-syncs`.
    pub concurrent_replicaset_syncs: u16,
    /// `--concurrent-rc-syncs`.
    pub concurrent_rc_syncs: u16,
    /// `--concurrent-deployment-syncs`.
    pub concurrent_deployment_syncs: u16,
    /// `--concurrent-gc-syncs`.
    pub concurrent_gc_syncs: u16,
    /// `--allocate-node-cidrs` with `--cluster-cidr` and `--node-cidr-mask-size`.
    pub node_ipam: Option<nodeipam::CidrSet>,
    /// The pod garbage collector's knobs (`--terminated-pod-gc-threshold`).
    pub pod_gc: podgc::PodGcConfig,
    /// `--node-monitor-period`, `--node-monitor-grace-period`.
    pub node_lifecycle: nodelifecycle::NodeLifecycleConfig,
    /// `--resource-quota-sync-period`, `--concurrent-resource-quota-syncs`.
    pub resource_quota: resourcequota::ResourceQuotaConfig,
    /// `--cluster-signing-cert-file`, `--cluster-signing-key-file`,
    /// `--cluster-signing-duration`.
    pub csr_signing: certificates::SigningConfig,
    /// `--horizontal-pod-autoscaler-*`.
    pub hpa: podautoscaler::HpaConfig,
    /// `--enable-hostpath-provisioner`: the PV binder provisions and
    /// deletes `kubernetes.io/host-path` volumes (single-node clusters).
    pub enable_hostpath_provisioner: bool,
    /// What the time-driven controllers (CronJob) take as "now"; tests
    /// put a [`clock::FakeClock`] here.
    pub clock: Arc<dyn clock::Clock>,
}

impl Default for ControllerConfig {
    /// Upstream's defaults.
    fn default() -> Self {
        Self {
            root_ca: None,
            service_account_key: None,
            concurrent_namespace_syncs: 10,
            concurrent_serviceaccount_token_syncs: 5,
            concurrent_replicaset_syncs: 5,
            concurrent_rc_syncs: 5,
            concurrent_deployment_syncs: 5,
            concurrent_gc_syncs: 20,
            node_ipam: None,
            pod_gc: podgc::PodGcConfig::default(),
            node_lifecycle: nodelifecycle::NodeLifecycleConfig::default(),
            resource_quota: resourcequota::ResourceQuotaConfig::default(),
            enable_hostpath_provisioner: false,
            hpa: podautoscaler::HpaConfig::default(),
            csr_signing: certificates::SigningConfig {
                ca: None,
                duration: std::time::Duration::from_secs(365 * 24 * 3600),
            },
            clock: Arc::new(clock::RealClock),
        }
    }
}

/// What every controller's start function gets (upstream's ControllerContext).
#[derive(Clone)]
pub struct ControllerContext {
    pub client: kube::Client,
    pub informers: Arc<SharedInformers>,
    pub config: Arc<ControllerConfig>,
    pub metrics: Arc<ControllerMetrics>,
    /// `--use-service-account-credentials`: each controller gets a client
    /// acting as its own ServiceAccount; None: all use `client`.
    pub credentials: Option<Arc<client::service_account_credentials::ServiceAccountClients>>,
}

impl ControllerContext {
    pub fn new(
        client: kube::Client,
        config: ControllerConfig,
        metrics: Arc<ControllerMetrics>,
    ) -> Self {
        Self {
            informers: Arc::new(SharedInformers::new(client.clone())),
            client,
            config: Arc::new(config),
            metrics,
            credentials: None,
        }
    }
}

/// Why a controller could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The controller's configuration is unusable (a missing file …).
    #[error("controller {controller}: {message}")]
    Config {
        controller: &'static str,
        message: String,
    },
    /// `--controllers` names an unknown controller, or the registry is broken.
    #[error(transparent)]
    Selection(#[from] descriptors::SelectionError),
}

/// Why one reconcile failed; the runner retries the object with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API request failed.
    #[error("{verb} {object}: {source}")]
    Api {
        verb: &'static str,
        object: String,
        #[source]
        source: kube::Error,
    },
    /// API discovery failed entirely.
    #[error("discovery: {0}")]
    Discovery(#[source] kube::Error),
    /// The work is not finished yet (content remaining …); retried later.
    #[error("{0}")]
    Pending(String),
}

impl Error {
    pub(crate) fn api(
        verb: &'static str,
        object: impl Into<String>,
    ) -> impl FnOnce(kube::Error) -> Self {
        let object = object.into();
        move |source| Error::Api {
            verb,
            object,
            source,
        }
    }
}

/// Whether a kube error is the API server's 404.
pub(crate) fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Whether a kube error is the API server's 409 AlreadyExists.
pub(crate) fn is_already_exists(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists")
}

/// Whether a kube error is a 409 Conflict (a stale resourceVersion).
pub(crate) fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409 && s.reason == "Conflict")
}
