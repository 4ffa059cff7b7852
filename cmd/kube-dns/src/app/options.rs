//! kube-dns's flags (upstream's `cmd/kube-dns/app/options/options.go`, with
//! CoreDNS's defaults where kube-dns had none).

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "kube-dns",
    about = "The cluster DNS server: answers for Services and pods in the cluster domain and forwards everything else to the upstream resolvers."
)]
pub struct Options {
    #[command(flatten)]
    pub kube: client::KubeOptions,
    /// The cluster domain the server is authoritative for.
    #[arg(long, default_value = "cluster.local")]
    pub domain: String,
    /// The address DNS is served on (UDP and TCP).
    #[arg(long, default_value = "0.0.0.0")]
    pub dns_bind_address: IpAddr,
    /// The port DNS is served on (UDP and TCP).
    #[arg(long, default_value_t = 53)]
    pub dns_port: u16,
    /// The address of the health port.
    #[arg(long, default_value = "0.0.0.0")]
    pub health_bind_address: IpAddr,
    /// The port serving /healthz, /readyz and /metrics over HTTP; 0 turns it off.
    #[arg(long, default_value_t = 8080)]
    pub health_port: u16,
    /// The resolv.conf whose nameservers answer names outside the cluster domain.
    #[arg(long, default_value = "/etc/resolv.conf")]
    pub resolv_conf: PathBuf,
    /// The TTL of the records served (and of negative answers).
    #[arg(long, default_value_t = 30)]
    pub ttl: u32,
    /// How long one upstream resolver gets to answer (e.g. '2s').
    #[arg(long, default_value = "2s")]
    pub forward_timeout: String,
    /// Receive loops on the UDP socket.
    #[arg(long, default_value_t = 2)]
    pub udp_workers: usize,
    /// Log verbosity (klog's levels).
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub v: u8,
}
