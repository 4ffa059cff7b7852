//! metrics-server's flags (upstream's `cmd/metrics-server/app/options`):
//! the metrics server's own, the kubelet client's, secure serving and
//! delegated authorization.

use std::path::PathBuf;

use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "metrics-server",
    about = "Scrapes the kubelets' resource metrics and serves them as the metrics.k8s.io API (kubectl top, the HorizontalPodAutoscaler)."
)]
pub struct Options {
    #[command(flatten)]
    pub kube: client::KubeOptions,
    #[command(flatten)]
    pub serving: component_base::serving::SecureServingOptions,
    /// The directory the self-signed serving certificate would be written
    /// to; accepted for upstream's manifests, the certificate is kept in
    /// memory.
    #[arg(long = "cert-dir")]
    pub cert_dir: Option<PathBuf>,
    /// The resolution at which metrics-server will retain metrics, must set
    /// value at least 10s.
    #[arg(long = "metric-resolution", default_value = "60s")]
    pub metric_resolution: String,
    /// Do not verify CA of serving certificates presented by Kubelets. For
    /// testing purposes only.
    #[arg(long = "kubelet-insecure-tls")]
    pub kubelet_insecure_tls: bool,
    /// Use the port in the node status. Takes precedence over --kubelet-port flag.
    #[arg(long = "kubelet-use-node-status-port")]
    pub kubelet_use_node_status_port: bool,
    /// The port to use to connect to Kubelets.
    #[arg(long = "kubelet-port", default_value_t = 10250)]
    pub kubelet_port: u16,
    /// The priority of node address types to use when determining which
    /// address to use to connect to a particular node.
    #[arg(
        long = "kubelet-preferred-address-types",
        value_delimiter = ',',
        default_value = "Hostname,InternalDNS,InternalIP,ExternalDNS,ExternalIP"
    )]
    pub kubelet_preferred_address_types: Vec<String>,
    /// Path to the CA to use to validate the Kubelet's serving certificates.
    #[arg(long = "kubelet-certificate-authority")]
    pub kubelet_certificate_authority: Option<PathBuf>,
    /// The length of time to wait before giving up on a single request to Kubelet.
    #[arg(long = "kubelet-request-timeout", default_value = "10s")]
    pub kubelet_request_timeout: String,
    /// Selector (label query) to filter on, not including uninitialized
    /// ones, supports '=', '==', and '!='.(e.g. -l key1=value1,key2=value2).
    #[arg(short = 'l', long = "node-selector", default_value = "")]
    pub node_selector: String,
    /// A list of HTTP paths to skip during authorization, i.e. these are
    /// authorized without contacting the 'core' kubernetes server.
    #[arg(
        long = "authorization-always-allow-paths",
        value_delimiter = ',',
        default_value = "/healthz,/readyz,/livez"
    )]
    pub authorization_always_allow_paths: Vec<String>,
    /// Log verbosity (klog's levels).
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub v: u8,
}
