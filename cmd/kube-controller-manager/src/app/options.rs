//! Flags, with upstream's names and defaults (upstream's
//! cmd/kube-controller-manager/app/options).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use client::leaderelection::LeaderElectionOptions;
use client::KubeOptions;
use component_base::serving::SecureServingOptions;
use controller::{ControllerConfig, ControllerDescriptor};

#[derive(Parser, Debug)]
#[command(
    name = "kube-controller-manager",
    about = "The Kubernetes controller manager is a daemon that embeds the core control loops shipped with Kubernetes"
)]
pub struct Options {
    #[command(flatten)]
    pub kube: KubeOptions,
    #[command(flatten)]
    pub leader_election: LeaderElectionOptions,
    #[command(flatten)]
    pub serving: SecureServingOptions,
    /// A list of controllers to enable. '*' enables all on-by-default
    /// controllers, 'foo' enables the controller named 'foo', '-foo'
    /// disables the controller named 'foo'.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub controllers: Vec<String>,
    /// If true, use individual service account credentials for each
    /// controller (ServiceAccounts in kube-system, bound to the
    /// system:controller:* roles by the default RBAC policy).
    #[arg(long, default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub use_service_account_credentials: bool,
    /// The number of namespace objects that are allowed to sync concurrently.
    #[arg(long, default_value_t = 10)]
    pub concurrent_namespace_syncs: u16,
    /// The number of service account token objects that are allowed to sync concurrently.
    #[arg(long, default_value_t = 5)]
    pub concurrent_serviceaccount_token_syncs: u16,
    /// The number of replica sets that are allowed to sync concurrently.
    #[arg(long, default_value_t = 5)]
    pub concurrent_replicaset_syncs: u16,
    /// The number of replication controllers that are allowed to sync concurrently.
    #[arg(
        long = "concurrent_rc_syncs",
        alias = "concurrent-rc-syncs",
        default_value_t = 5
    )]
    pub concurrent_rc_syncs: u16,
    /// The number of deployment objects that are allowed to sync concurrently.
    #[arg(long, default_value_t = 5)]
    pub concurrent_deployment_syncs: u16,
    /// The number of garbage collector workers that are allowed to sync concurrently.
    #[arg(long, default_value_t = 20)]
    pub concurrent_gc_syncs: u16,
    /// Filename containing a PEM-encoded private RSA or ECDSA key used to
    /// sign service account tokens (the token controller's Secret-based ones).
    #[arg(long)]
    pub service_account_private_key_file: Option<PathBuf>,
    /// If set, this root certificate authority will be included in service
    /// account's token secret and published as kube-root-ca.crt in every namespace.
    #[arg(long)]
    pub root_ca_file: Option<PathBuf>,
    /// Filename containing a PEM-encoded X509 CA certificate used to issue
    /// cluster-scoped certificates.
    #[arg(long)]
    pub cluster_signing_cert_file: Option<PathBuf>,
    /// Filename containing a PEM-encoded RSA or ECDSA private key used to
    /// sign cluster-scoped certificates.
    #[arg(long)]
    pub cluster_signing_key_file: Option<PathBuf>,
    /// The max length of duration signed certificates will be given.
    /// Individual CSRs may request shorter certs by setting
    /// spec.expirationSeconds.
    #[arg(long, default_value = "8760h0m0s", value_parser = apimachinery::duration::parse_go_duration)]
    pub cluster_signing_duration: Duration,
    /// Amount of time which we allow running Node to be unresponsive before
    /// marking it unhealthy.
    #[arg(long, default_value = "50s", value_parser = apimachinery::duration::parse_go_duration)]
    pub node_monitor_grace_period: Duration,
    /// Should CIDRs for Pods be allocated and set on the cloud provider
    /// (IPv4 range allocator).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub allocate_node_cidrs: bool,
    /// CIDR Range for Pods in cluster. Requires --allocate-node-cidrs to be true.
    #[arg(long)]
    pub cluster_cidr: Option<String>,
    /// Mask size for node cidr in cluster.
    #[arg(long, default_value_t = 24)]
    pub node_cidr_mask_size: u8,
    /// The period for syncing NodeStatus in the node lifecycle controller.
    #[arg(long, default_value = "5s", value_parser = apimachinery::duration::parse_go_duration)]
    pub node_monitor_period: Duration,
    /// Number of terminated pods that can exist before the terminated pod
    /// garbage collector starts deleting terminated pods (0: never).
    #[arg(long, default_value_t = 12500)]
    pub terminated_pod_gc_threshold: i32,
    /// The period for syncing quota usage status in the system.
    #[arg(long, default_value = "5m0s", value_parser = apimachinery::duration::parse_go_duration)]
    pub resource_quota_sync_period: Duration,
    /// Enable HostPath PV provisioning when running without a cloud provider.
    /// This allows testing and development of provisioning features. HostPath
    /// provisioning is not supported in any way, won't work in a multi-node
    /// cluster, and should not be used for anything other than testing or
    /// development.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub enable_hostpath_provisioner: bool,
    /// The number of resource quotas that are allowed to sync concurrently.
    #[arg(long, default_value_t = 5)]
    pub concurrent_resource_quota_syncs: u16,
    /// The period for syncing the number of pods in horizontal pod autoscaler.
    #[arg(long, default_value = "15s", value_parser = apimachinery::duration::parse_go_duration)]
    pub horizontal_pod_autoscaler_sync_period: Duration,
    /// The period for which autoscaler will look backwards and not scale
    /// down below any recommendation it made during that period.
    #[arg(long, default_value = "5m0s", value_parser = apimachinery::duration::parse_go_duration)]
    pub horizontal_pod_autoscaler_downscale_stabilization: Duration,
    /// The minimum change (from 1.0) in the desired-to-actual metrics ratio
    /// for the horizontal pod autoscaler to consider scaling.
    #[arg(long, default_value_t = 0.1)]
    pub horizontal_pod_autoscaler_tolerance: f64,
    /// The period after pod start when CPU samples might be skipped.
    #[arg(long, default_value = "5m0s", value_parser = apimachinery::duration::parse_go_duration)]
    pub horizontal_pod_autoscaler_cpu_initialization_period: Duration,
    /// The period after pod start during which readiness changes will be
    /// treated as initial readiness.
    #[arg(long, default_value = "30s", value_parser = apimachinery::duration::parse_go_duration)]
    pub horizontal_pod_autoscaler_initial_readiness_delay: Duration,
    /// Number for the log level verbosity.
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub v: u8,
}

/// What the server runs with.
pub struct Completed {
    pub kube: KubeOptions,
    pub leader_election: LeaderElectionOptions,
    pub serving: SecureServingOptions,
    pub controllers: Vec<ControllerDescriptor>,
    pub config: ControllerConfig,
    pub use_service_account_credentials: bool,
}

impl Options {
    /// Upstream's Validate and Config: unknown controllers and unreadable
    /// files are errors before anything starts.
    pub fn complete(self) -> anyhow::Result<Completed> {
        let controllers = controller::descriptors::enabled(&self.controllers)?;
        if self.leader_election.leader_elect {
            self.leader_election.validate()?;
        }
        let node_ipam = match (self.allocate_node_cidrs, &self.cluster_cidr) {
            (false, _) => None,
            (true, None) => bail!("--cluster-cidr is required when --allocate-node-cidrs is true"),
            (true, Some(c)) => Some(
                controller::nodeipam::CidrSet::new(c, self.node_cidr_mask_size)
                    .map_err(anyhow::Error::msg)?,
            ),
        };
        let root_ca = match &self.root_ca_file {
            Some(p) => Some(
                std::fs::read(p)
                    .with_context(|| format!("reading --root-ca-file {}", p.display()))?,
            ),
            None => None,
        };
        let service_account_key = match &self.service_account_private_key_file {
            Some(p) => Some(std::sync::Arc::new(
                component_base::serviceaccount_keys::load_signing_key(p).with_context(|| {
                    format!("--service-account-private-key-file {}", p.display())
                })?,
            )),
            None => None,
        };
        let read = |flag: &str, p: &PathBuf| {
            std::fs::read_to_string(p).with_context(|| format!("{flag} {}", p.display()))
        };
        let signing_ca = match (
            &self.cluster_signing_cert_file,
            &self.cluster_signing_key_file,
        ) {
            (Some(c), Some(k)) => Some((
                read("--cluster-signing-cert-file", c)?,
                read("--cluster-signing-key-file", k)?,
            )),
            (None, None) => None,
            _ => anyhow::bail!(
                "--cluster-signing-cert-file and --cluster-signing-key-file must be given together"
            ),
        };
        Ok(Completed {
            kube: self.kube,
            leader_election: self.leader_election,
            serving: self.serving,
            controllers,
            use_service_account_credentials: self.use_service_account_credentials,
            config: ControllerConfig {
                root_ca,
                service_account_key,
                concurrent_namespace_syncs: self.concurrent_namespace_syncs.max(1),
                concurrent_serviceaccount_token_syncs: self
                    .concurrent_serviceaccount_token_syncs
                    .max(1),
                concurrent_replicaset_syncs: self.concurrent_replicaset_syncs.max(1),
                concurrent_rc_syncs: self.concurrent_rc_syncs.max(1),
                concurrent_deployment_syncs: self.concurrent_deployment_syncs.max(1),
                concurrent_gc_syncs: self.concurrent_gc_syncs.max(1),
                node_ipam,
                node_lifecycle: controller::nodelifecycle::NodeLifecycleConfig {
                    monitor_period: self.node_monitor_period.max(Duration::from_millis(100)),
                    grace_period: self.node_monitor_grace_period,
                },
                enable_hostpath_provisioner: self.enable_hostpath_provisioner,
                resource_quota: controller::resourcequota::ResourceQuotaConfig {
                    sync_period: self.resource_quota_sync_period,
                    concurrent_syncs: self.concurrent_resource_quota_syncs.max(1),
                },
                csr_signing: controller::certificates::SigningConfig {
                    ca: signing_ca,
                    duration: self.cluster_signing_duration,
                },
                hpa: controller::podautoscaler::HpaConfig {
                    sync_period: self
                        .horizontal_pod_autoscaler_sync_period
                        .max(Duration::from_millis(100)),
                    downscale_stabilization: self.horizontal_pod_autoscaler_downscale_stabilization,
                    calculator: controller::podautoscaler::replicas::Calculator {
                        tolerance: self.horizontal_pod_autoscaler_tolerance.max(0.0),
                        cpu_initialization_period: self
                            .horizontal_pod_autoscaler_cpu_initialization_period,
                        initial_readiness_delay: self
                            .horizontal_pod_autoscaler_initial_readiness_delay,
                    },
                },
                pod_gc: controller::podgc::PodGcConfig {
                    terminated_pod_gc_threshold: self.terminated_pod_gc_threshold,
                    ..Default::default()
                },
                ..ControllerConfig::default()
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_with_upstream_spellings() {
        let o = Options::try_parse_from([
            "kube-controller-manager",
            "--kubeconfig=/k",
            "--controllers=*,-namespace,bootstrapsigner",
            "--leader-elect=false",
            "--kube-api-qps=100",
            "--kube-api-burst=200",
            "--concurrent-namespace-syncs=3",
            "--node-monitor-grace-period=1m30s",
            "--allocate-node-cidrs",
            "--cluster-cidr=10.64.0.0/16",
            "--resource-quota-sync-period=30s",
            "--horizontal-pod-autoscaler-sync-period=5s",
            "--horizontal-pod-autoscaler-downscale-stabilization=1m",
            "--horizontal-pod-autoscaler-tolerance=0.2",
            "-v=4",
        ]);
        let o = match o {
            Ok(o) => o,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(o.controllers, vec!["*", "-namespace", "bootstrapsigner"]);
        assert!(!o.leader_election.leader_elect);
        assert_eq!(o.kube.kube_api_qps, Some(100.0));
        assert_eq!(o.node_monitor_grace_period, Duration::from_secs(90));
        assert!(o.allocate_node_cidrs);
        assert_eq!(o.v, 4);
        let c = match o.complete() {
            Ok(c) => c,
            Err(e) => panic!("{e:#}"),
        };
        let names: Vec<_> = c.controllers.iter().map(|c| c.name).collect();
        assert!(!names.contains(&"namespace-controller"));
        assert!(names.contains(&"bootstrap-signer-controller"));
        assert_eq!(c.config.concurrent_namespace_syncs, 3);
        assert_eq!(c.config.resource_quota.sync_period, Duration::from_secs(30));
        assert_eq!(c.config.hpa.sync_period, Duration::from_secs(5));
        assert_eq!(
            c.config.hpa.downscale_stabilization,
            Duration::from_secs(60)
        );
        assert_eq!(c.config.hpa.calculator.tolerance, 0.2);
        assert_eq!(
            c.config.hpa.calculator.cpu_initialization_period,
            Duration::from_secs(300)
        );
    }

    #[test]
    fn unknown_controller_is_an_error() {
        let o = Options::try_parse_from(["kube-controller-manager", "--controllers=*,nosuch"]);
        let err = o
            .map_err(|e| e.to_string())
            .and_then(|o| o.complete().map(|_| ()).map_err(|e| e.to_string()));
        assert_eq!(
            err,
            Err("\"nosuch\" is not in the list of known controllers".to_string())
        );
    }
}
