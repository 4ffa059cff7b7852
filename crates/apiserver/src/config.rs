//! The API server's completed configuration (what `cmd/kube-apiserver` builds from flags).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub advertise_address: IpAddr,
    pub tls_cert_file: PathBuf,
    pub tls_key_file: PathBuf,
    pub client_ca_file: Option<PathBuf>,
    pub etcd_servers: Vec<String>,
    pub etcd_prefix: String,
    pub service_cluster_ip_range: String,
    pub service_node_port_range: (u16, u16),
    pub compaction_interval: Duration,
    pub event_ttl: Duration,
    /// Largest request body accepted (upstream: 3 MiB).
    pub max_request_body: usize,
    pub watch_cache_history: usize,
    pub service_accounts: crate::authn::ServiceAccountConfig,
    pub aggregator: crate::aggregator::AggregatorConfig,
    /// `--kubelet-*`: how this server reaches kubelets.
    pub kubelet: crate::kubelet::KubeletConfig,
    /// Which admission plugins run, and their flags.
    pub admission: crate::admission::AdmissionConfig,
    /// `--authorization-mode`, in order.
    pub authorization_modes: Vec<crate::authz::Mode>,
}
