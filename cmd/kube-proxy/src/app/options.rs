//! kube-proxy's flags (upstream's `cmd/kube-proxy/app/options.go`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "kube-proxy",
    about = "The Kubernetes network proxy runs on each node. It programs the node's packet filter so that Services reach their endpoints."
)]
pub struct Options {
    /// The path to the configuration file (a KubeProxyConfiguration).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub kube: client::KubeOptions,
    /// Which proxy mode to use: 'iptables' (the default, like upstream's
    /// on Linux) or 'nftables'.
    #[arg(long, default_value = "")]
    pub proxy_mode: String,
    /// The CIDR range of the pods in the cluster; traffic to ClusterIPs
    /// from outside it is masqueraded.
    #[arg(long)]
    pub cluster_cidr: Option<String>,
    /// If non-empty, will be used as the name of the Node that kube-proxy
    /// is running on.
    #[arg(long)]
    pub hostname_override: Option<String>,
    /// The IP address and port for the health check server to serve on.
    #[arg(long, default_value = "0.0.0.0:10256")]
    pub healthz_bind_address: SocketAddr,
    /// The IP address and port for the metrics server to serve on.
    #[arg(long, default_value = "127.0.0.1:10249")]
    pub metrics_bind_address: SocketAddr,
    /// A list of CIDR ranges that contain valid node IPs, or 'primary'.
    /// Unset: the primary IP in nftables mode, every local address in
    /// iptables mode.
    #[arg(long, value_delimiter = ',')]
    pub nodeport_addresses: Vec<String>,
    /// SNAT all traffic sent via Service cluster IPs.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub masquerade_all: bool,
    /// How often rules are refreshed (e.g. '5s', '1m').
    #[arg(long = "iptables-sync-period", default_value = "30s")]
    pub sync_period: String,
    /// The minimum period between rule resyncs.
    #[arg(long = "iptables-min-sync-period", default_value = "1s")]
    pub min_sync_period: String,
    /// If true cleanup the rules this proxy created and exit.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub cleanup: bool,
    /// Log verbosity (klog's levels).
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub v: u8,
}
