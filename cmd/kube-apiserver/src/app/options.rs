//! Flags, with upstream's names and defaults (upstream's app/options).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use apiserver::authn::ServiceAccountConfig;
use apiserver::Config;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "kube-apiserver",
    about = "The Kubernetes API server validates and configures data for the api objects"
)]
pub struct Options {
    /// List of etcd servers to connect with (scheme://ip:port), comma separated.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
    pub etcd_servers: Vec<String>,
    /// The prefix to prepend to all resource paths in etcd.
    #[arg(long, default_value = "/registry")]
    pub etcd_prefix: String,
    /// The port on which to serve HTTPS with authentication and authorization.
    #[arg(long, default_value_t = 6443)]
    pub secure_port: u16,
    /// The IP address on which to listen for the --secure-port port.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// The IP address on which to advertise the apiserver to members of the cluster.
    #[arg(long)]
    pub advertise_address: Option<IpAddr>,
    /// File containing the default x509 Certificate for HTTPS.
    #[arg(long)]
    pub tls_cert_file: Option<PathBuf>,
    /// File containing the default x509 private key matching --tls-cert-file.
    #[arg(long)]
    pub tls_private_key_file: Option<PathBuf>,
    /// The directory where the TLS certs are located (used when --tls-cert-file is not given).
    #[arg(long, default_value = "/var/run/kubernetes")]
    pub cert_dir: PathBuf,
    /// If set, any request presenting a client certificate signed by one of these authorities is authenticated.
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,
    /// A CIDR notation IP range from which to assign service cluster IPs.
    #[arg(long, default_value = "10.0.0.0/24")]
    pub service_cluster_ip_range: String,
    /// A port range to reserve for services with NodePort visibility.
    #[arg(long, default_value = "30000-32767")]
    pub service_node_port_range: String,
    /// The interval of compaction requests (e.g. 5m, 300s; 0 disables).
    #[arg(long, default_value = "5m")]
    pub etcd_compaction_interval: String,
    /// Amount of time to retain events.
    #[arg(long, default_value = "1h")]
    pub event_ttl: String,
    /// Identifier of the service account token issuer (the `iss` claim). Repeat
    /// it to accept more issuers; the first signs new tokens.
    #[arg(long)]
    pub service_account_issuer: Vec<String>,
    /// PEM files with keys (public, private or certificates) that verify
    /// service account tokens; defaults to the signing key file.
    #[arg(long)]
    pub service_account_key_file: Vec<PathBuf>,
    /// PEM file with the private key that signs service account tokens.
    #[arg(long)]
    pub service_account_signing_key_file: Option<PathBuf>,
    /// Identifiers of the API: tokens must carry one of them in `aud`
    /// (defaults to the issuers).
    #[arg(long, value_delimiter = ',')]
    pub api_audiences: Vec<String>,
    /// The longest validity a TokenRequest may ask for (e.g. 24h).
    #[arg(long)]
    pub service_account_max_token_expiration: Option<String>,
    /// Checks that a token's ServiceAccount (and bound object) still exist.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub service_account_lookup: bool,
    /// Client certificate used to prove the identity of the aggregator or
    /// kube-apiserver when it must call out during a request.
    #[arg(long)]
    pub proxy_client_cert_file: Option<PathBuf>,
    /// Private key for the client certificate used by the aggregator.
    #[arg(long)]
    pub proxy_client_key_file: Option<PathBuf>,
    /// Turns on aggregator routing requests to endpoints IP rather than cluster IP.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub enable_aggregator_routing: bool,
    /// Root certificate bundle to use to verify client certificates on
    /// incoming requests before trusting usernames in headers specified by
    /// --requestheader-username-headers.
    #[arg(long)]
    pub requestheader_client_ca_file: Option<PathBuf>,
    /// List of client certificate common names to allow to provide usernames
    /// in headers specified by --requestheader-username-headers.
    #[arg(long, value_delimiter = ',')]
    pub requestheader_allowed_names: Vec<String>,
    /// List of request headers to inspect for usernames.
    #[arg(long, value_delimiter = ',', default_value = "X-Remote-User")]
    pub requestheader_username_headers: Vec<String>,
    /// List of request headers to inspect for groups.
    #[arg(long, value_delimiter = ',', default_value = "X-Remote-Group")]
    pub requestheader_group_headers: Vec<String>,
    /// List of request header prefixes to inspect.
    #[arg(long, value_delimiter = ',', default_value = "X-Remote-Extra-")]
    pub requestheader_extra_headers_prefix: Vec<String>,
    /// Path to a client cert file for TLS (to kubelets).
    #[arg(long)]
    pub kubelet_client_certificate: Option<PathBuf>,
    /// Path to a client key file for TLS (to kubelets).
    #[arg(long)]
    pub kubelet_client_key: Option<PathBuf>,
    /// Path to a cert file for the certificate authority of kubelets'
    /// serving certificates; without it they are not verified.
    #[arg(long)]
    pub kubelet_certificate_authority: Option<PathBuf>,
    /// List of the preferred NodeAddressTypes to use for kubelet connections.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "Hostname,InternalDNS,InternalIP,ExternalDNS,ExternalIP"
    )]
    pub kubelet_preferred_address_types: Vec<String>,
    /// Admission plugins to enable in addition to the default ones, comma
    /// separated (they run in upstream's fixed order regardless).
    #[arg(long, value_delimiter = ',')]
    pub enable_admission_plugins: Vec<String>,
    /// Admission plugins to disable although on by default, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub disable_admission_plugins: Vec<String>,
    /// An AdmissionConfiguration file with the plugins' configurations
    /// (PodSecurity's defaults and exemptions).
    #[arg(long)]
    pub admission_control_config_file: Option<PathBuf>,
    /// The tolerationSeconds of the not-ready:NoExecute toleration added to
    /// every pod without one.
    #[arg(long, default_value_t = 300)]
    pub default_not_ready_toleration_seconds: i64,
    /// The tolerationSeconds of the unreachable:NoExecute toleration added to
    /// every pod without one.
    #[arg(long, default_value_t = 300)]
    pub default_unreachable_toleration_seconds: i64,
    /// Number of events the watch cache keeps for watches that resume.
    #[arg(long, default_value_t = 100_000)]
    pub watch_cache_history: usize,
    /// Ordered list of plug-ins to do authorization on the secure port,
    /// comma separated: AlwaysAllow, AlwaysDeny, Node, RBAC.
    #[arg(long, value_delimiter = ',', default_value = "AlwaysAllow")]
    pub authorization_mode: Vec<String>,
    /// Log verbosity (klog's levels).
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub v: u8,
}

/// Parses Go-style durations (`90s`, `5m`, `1h30m`, `0`) for a flag.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    Ok(apimachinery::duration::parse_go_duration(s)?)
}

fn primary_ip() -> IpAddr {
    // The address the default route would use; no packet is sent by a UDP connect.
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").map(|_| s))
        .and_then(|s| s.local_addr())
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

impl Options {
    pub fn complete(&self) -> anyhow::Result<Config> {
        let (lo, hi) = self
            .service_node_port_range
            .split_once('-')
            .context("--service-node-port-range must be <low>-<high>")?;
        let range = (lo.trim().parse::<u16>()?, hi.trim().parse::<u16>()?);
        if range.0 > range.1 {
            bail!("--service-node-port-range: {lo} is above {hi}");
        }
        if apiserver::state::parse_cidr(&self.service_cluster_ip_range).is_none() {
            bail!(
                "--service-cluster-ip-range {:?} is not an IPv4 CIDR of at most /30",
                self.service_cluster_ip_range
            );
        }
        let mut admission = apiserver::admission::AdmissionConfig {
            enable: self.enable_admission_plugins.clone(),
            disable: self.disable_admission_plugins.clone(),
            default_not_ready_toleration_seconds: self.default_not_ready_toleration_seconds,
            default_unreachable_toleration_seconds: self.default_unreachable_toleration_seconds,
            ..Default::default()
        };
        if let Some(path) = &self.admission_control_config_file {
            admission
                .load_config_file(path)
                .map_err(|e| anyhow::anyhow!("--admission-control-config-file: {e}"))?;
        }
        admission.resolve().map_err(anyhow::Error::msg)?;
        let authorization_modes = apiserver::authz::Mode::parse_list(&self.authorization_mode)
            .map_err(|e| anyhow::anyhow!("--authorization-mode: {e}"))?;
        let cert = self
            .tls_cert_file
            .clone()
            .unwrap_or_else(|| self.cert_dir.join("apiserver.crt"));
        let key = self
            .tls_private_key_file
            .clone()
            .unwrap_or_else(|| self.cert_dir.join("apiserver.key"));
        if !cert.exists() || !key.exists() {
            bail!("serving certificate {} or key {} not found (generate them with hack/local-up-cluster.sh, or pass --tls-cert-file/--tls-private-key-file)", cert.display(), key.display());
        }
        let advertise = self.advertise_address.unwrap_or_else(|| {
            if self.bind_address.is_unspecified() {
                primary_ip()
            } else {
                self.bind_address
            }
        });
        Ok(Config {
            bind: SocketAddr::new(self.bind_address, self.secure_port),
            advertise_address: advertise,
            tls_cert_file: cert,
            tls_key_file: key,
            client_ca_file: self.client_ca_file.clone(),
            etcd_servers: self.etcd_servers.clone(),
            etcd_prefix: self.etcd_prefix.clone(),
            service_cluster_ip_range: self.service_cluster_ip_range.clone(),
            service_node_port_range: range,
            compaction_interval: parse_duration(&self.etcd_compaction_interval)?,
            event_ttl: parse_duration(&self.event_ttl)?,
            max_request_body: 3 * 1024 * 1024,
            watch_cache_history: self.watch_cache_history,
            service_accounts: ServiceAccountConfig {
                issuers: self.service_account_issuer.clone(),
                key_files: if self.service_account_key_file.is_empty() {
                    self.service_account_signing_key_file
                        .iter()
                        .cloned()
                        .collect()
                } else {
                    self.service_account_key_file.clone()
                },
                signing_key_file: self.service_account_signing_key_file.clone(),
                api_audiences: self.api_audiences.clone(),
                max_token_expiration: self
                    .service_account_max_token_expiration
                    .as_deref()
                    .map(parse_duration)
                    .transpose()?,
                lookup: self.service_account_lookup,
            },
            aggregator: apiserver::aggregator::AggregatorConfig {
                proxy_client_cert_file: self.proxy_client_cert_file.clone(),
                proxy_client_key_file: self.proxy_client_key_file.clone(),
                enable_aggregator_routing: self.enable_aggregator_routing,
                requestheader_client_ca_file: self.requestheader_client_ca_file.clone(),
                requestheader_allowed_names: self.requestheader_allowed_names.clone(),
                requestheader_username_headers: self.requestheader_username_headers.clone(),
                requestheader_group_headers: self.requestheader_group_headers.clone(),
                requestheader_extra_headers_prefix: self.requestheader_extra_headers_prefix.clone(),
            },
            kubelet: apiserver::kubelet::KubeletConfig {
                client_certificate: self.kubelet_client_certificate.clone(),
                client_key: self.kubelet_client_key.clone(),
                certificate_authority: self.kubelet_certificate_authority.clone(),
                preferred_address_types: self.kubelet_preferred_address_types.clone(),
                ..Default::default()
            },
            admission,
            authorization_modes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_go() {
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5x").is_err());
    }
}
