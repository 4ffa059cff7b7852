//! Flags, with upstream's names and defaults (upstream's
//! cmd/kubelet/app/options). Flags given on the command line win over the
//! `--config` file, as upstream.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

use super::config;

#[derive(Parser, Debug)]
#[command(
    name = "kubelet",
    about = "The kubelet is the primary node agent that runs on each node"
)]
pub struct Options {
    #[command(flatten)]
    pub kube: client::KubeOptions,
    /// The path to the kubelet's config file (a KubeletConfiguration).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The endpoint of the container runtime (unix:///path).
    #[arg(long)]
    pub container_runtime_endpoint: Option<String>,
    /// If non-empty, use this string as identification instead of the actual hostname.
    #[arg(long)]
    pub hostname_override: Option<String>,
    /// IP address(es) of the node, comma separated.
    #[arg(long, value_delimiter = ',')]
    pub node_ip: Vec<IpAddr>,
    /// Labels to add when registering the node (key=value, comma separated).
    #[arg(long, value_delimiter = ',')]
    pub node_labels: Vec<String>,
    /// Directory path for managing kubelet files (volume mounts, etc).
    #[arg(long, default_value = "/var/lib/kubelet")]
    pub root_dir: PathBuf,
    /// Comma-separated list of DNS server IP addresses for the pods.
    #[arg(long, value_delimiter = ',')]
    pub cluster_dns: Vec<String>,
    /// Domain for this cluster; pods' search domains include it.
    #[arg(long)]
    pub cluster_domain: Option<String>,
    /// Resolver configuration file used as the basis for the pods' DNS.
    #[arg(long)]
    pub resolv_conf: Option<PathBuf>,
    /// Number of pods that can run on this kubelet.
    #[arg(long)]
    pub max_pods: Option<u32>,
    /// Path to the directory of static pod manifests to run.
    #[arg(long)]
    pub pod_manifest_path: Option<PathBuf>,
    /// The CIDR to use for pod IP addresses (written to the node's spec.podCIDR).
    #[arg(long)]
    pub pod_cidr: Option<String>,
    /// The IP address for the kubelet to serve on.
    #[arg(long)]
    pub address: Option<IpAddr>,
    /// The port for the kubelet to serve on (HTTPS).
    #[arg(long)]
    pub port: Option<u16>,
    /// The IP address for the healthz server to serve on.
    #[arg(long)]
    pub healthz_bind_address: Option<IpAddr>,
    /// The port of the localhost healthz endpoint (0 disables).
    #[arg(long)]
    pub healthz_port: Option<u16>,
    /// File containing the x509 certificate for HTTPS; self-signed when absent.
    #[arg(long)]
    pub tls_cert_file: Option<PathBuf>,
    /// File containing the x509 private key matching --tls-cert-file.
    #[arg(long)]
    pub tls_private_key_file: Option<PathBuf>,
    /// Enables anonymous requests to the kubelet server (true without a
    /// config file, as upstream's legacy default).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub anonymous_auth: Option<bool>,
    /// A CA bundle: callers with a client certificate it signed are the
    /// certificate's CommonName, in its Organizations' groups.
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,
    /// Use the TokenReview API to authenticate bearer tokens.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub authentication_token_webhook: Option<bool>,
    /// How long to cache the token webhook's answers (a Go duration).
    #[arg(long)]
    pub authentication_token_webhook_cache_ttl: Option<String>,
    /// AlwaysAllow or Webhook (SubjectAccessReview).
    #[arg(long)]
    pub authorization_mode: Option<String>,
    /// How long to cache 'authorized' answers of the webhook authorizer.
    #[arg(long)]
    pub authorization_webhook_cache_authorized_ttl: Option<String>,
    /// How long to cache 'unauthorized' answers of the webhook authorizer.
    #[arg(long)]
    pub authorization_webhook_cache_unauthorized_ttl: Option<String>,
    /// Log level verbosity.
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub v: u8,
}

/// The completed configuration.
#[derive(Debug)]
pub struct Config {
    pub kube: client::KubeOptions,
    pub runtime_endpoint: String,
    pub kubelet: kubelet::KubeletConfig,
    pub serve: Option<SocketAddr>,
    pub healthz: Option<SocketAddr>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_private_key_file: Option<PathBuf>,
    pub auth: kubelet::auth::AuthConfig,
}

fn duration(flag: &str, v: &str) -> anyhow::Result<std::time::Duration> {
    apimachinery::duration::parse_go_duration(v)
        .map_err(|_| anyhow::anyhow!("{flag}: invalid duration {v:?}"))
}

impl Options {
    /// `authentication`/`authorization`: the flags over the file over the
    /// defaults — v1beta1's with a config file, the legacy ones without.
    fn auth(
        &self,
        file: &config::KubeletConfiguration,
    ) -> anyhow::Result<kubelet::auth::AuthConfig> {
        let mut a = if self.config.is_some() {
            kubelet::auth::AuthConfig::v1beta1()
        } else {
            kubelet::auth::AuthConfig::legacy()
        };
        let authn = file.authentication.as_ref();
        let authz = file.authorization.as_ref();
        if let Some(v) = self.anonymous_auth.or(authn
            .and_then(|x| x.anonymous.as_ref())
            .and_then(|x| x.enabled))
        {
            a.anonymous = v;
        }
        if let Some(v) = self.authentication_token_webhook.or(authn
            .and_then(|x| x.webhook.as_ref())
            .and_then(|w| w.enabled))
        {
            a.token_webhook = v;
        }
        if let Some(v) = self.authentication_token_webhook_cache_ttl.clone().or(authn
            .and_then(|x| x.webhook.as_ref())
            .and_then(|w| w.cache_ttl.clone()))
        {
            a.token_webhook_cache_ttl = duration("authentication-token-webhook-cache-ttl", &v)?;
        }
        let ca = self.client_ca_file.clone().or(authn
            .and_then(|x| x.x509.as_ref())
            .and_then(|x| x.client_ca_file.clone()));
        if let Some(ca) = ca {
            let pem = std::fs::read(&ca).with_context(|| format!("reading {}", ca.display()))?;
            a.client_ca = Some(pem);
        }
        if let Some(m) = self
            .authorization_mode
            .clone()
            .or(authz.and_then(|z| z.mode.clone()))
        {
            a.mode = m.parse().map_err(anyhow::Error::msg)?;
        }
        let hook = authz.and_then(|z| z.webhook.as_ref());
        if let Some(v) = self
            .authorization_webhook_cache_authorized_ttl
            .clone()
            .or(hook.and_then(|w| w.cache_authorized_ttl.clone()))
        {
            a.authorized_ttl = duration("authorization-webhook-cache-authorized-ttl", &v)?;
        }
        if let Some(v) = self
            .authorization_webhook_cache_unauthorized_ttl
            .clone()
            .or(hook.and_then(|w| w.cache_unauthorized_ttl.clone()))
        {
            a.unauthorized_ttl = duration("authorization-webhook-cache-unauthorized-ttl", &v)?;
        }
        Ok(a)
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// The address the kernel would send from towards the default route
/// (connecting a UDP socket sends nothing; it only picks the route).
fn default_ip() -> Option<IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    s.local_addr()
        .ok()
        .map(|a| a.ip())
        .filter(|ip| !ip.is_unspecified())
}

impl Options {
    pub fn complete(self) -> anyhow::Result<Config> {
        let file = match &self.config {
            Some(p) => config::load(p)?,
            None => Default::default(),
        };
        let hostname = self
            .hostname_override
            .clone()
            .unwrap_or_else(hostname)
            .to_lowercase();
        let node_ips: Vec<String> = if self.node_ip.is_empty() {
            vec![default_ip()
                .unwrap_or(IpAddr::from([127, 0, 0, 1]))
                .to_string()]
        } else {
            self.node_ip.iter().map(|ip| ip.to_string()).collect()
        };
        let mut node_labels = std::collections::BTreeMap::new();
        for l in &self.node_labels {
            let (k, v) = l
                .split_once('=')
                .with_context(|| format!("--node-labels: {l:?} is not key=value"))?;
            node_labels.insert(k.to_string(), v.to_string());
        }
        let defaults = kubelet::KubeletConfig::default();
        let port = self.port.or(file.port).unwrap_or(10250);
        let address = match self.address {
            Some(a) => a,
            None => file
                .address
                .as_deref()
                .unwrap_or("0.0.0.0")
                .parse()
                .context("address")?,
        };
        let healthz_port = self.healthz_port.or(file.healthz_port).unwrap_or(10248);
        let healthz_address = match self.healthz_bind_address {
            Some(a) => a,
            None => file
                .healthz_bind_address
                .as_deref()
                .unwrap_or("127.0.0.1")
                .parse()
                .context("healthzBindAddress")?,
        };
        let cluster_dns = if self.cluster_dns.is_empty() {
            file.cluster_dns.clone().unwrap_or_default()
        } else {
            self.cluster_dns.clone()
        };
        let auth = self.auth(&file)?;
        Ok(Config {
            auth,
            kube: self.kube.clone(),
            runtime_endpoint: self
                .container_runtime_endpoint
                .clone()
                .or(file.container_runtime_endpoint.clone())
                .unwrap_or_else(|| "unix:///run/containerd/containerd.sock".into()),
            kubelet: kubelet::KubeletConfig {
                node_name: hostname.clone(),
                hostname,
                node_ips,
                node_labels,
                pod_cidr: self.pod_cidr.clone().or(file.pod_cidr.clone()),
                max_pods: self.max_pods.or(file.max_pods).unwrap_or(defaults.max_pods),
                root_dir: self.root_dir.clone(),
                pod_logs_dir: file.pod_logs_dir.clone().unwrap_or(defaults.pod_logs_dir),
                cluster_dns,
                cluster_domain: self
                    .cluster_domain
                    .clone()
                    .or(file.cluster_domain.clone())
                    .unwrap_or(defaults.cluster_domain),
                resolv_conf: self
                    .resolv_conf
                    .clone()
                    .or(file.resolv_conf.clone())
                    .unwrap_or(defaults.resolv_conf),
                port,
                sync_frequency: defaults.sync_frequency,
                static_pod_path: self
                    .pod_manifest_path
                    .clone()
                    .or(file.static_pod_path.clone())
                    .filter(|p| !p.as_os_str().is_empty()),
            },
            serve: (port != 0).then(|| SocketAddr::new(address, port)),
            healthz: (healthz_port != 0).then(|| SocketAddr::new(healthz_address, healthz_port)),
            tls_cert_file: self.tls_cert_file.clone().or(file.tls_cert_file.clone()),
            tls_private_key_file: self
                .tls_private_key_file
                .clone()
                .or(file.tls_private_key_file.clone()),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_config_file() {
        let dir = std::env::temp_dir().join(format!("kubelet-opts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.yaml");
        std::fs::write(
            &file,
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: 50\nclusterDomain: file.local\nclusterDNS: [10.0.0.10]\n",
        )
        .unwrap();
        let o = Options::parse_from([
            "kubelet",
            "--config",
            file.to_str().unwrap(),
            "--max-pods",
            "7",
            "--hostname-override",
            "Node-1",
            "--node-ip",
            "192.168.5.5",
        ]);
        let c = o.complete().unwrap();
        assert_eq!(c.kubelet.max_pods, 7);
        assert_eq!(c.kubelet.cluster_domain, "file.local");
        assert_eq!(c.kubelet.cluster_dns, vec!["10.0.0.10"]);
        assert_eq!(c.kubelet.node_name, "node-1");
        assert_eq!(c.kubelet.node_ips, vec!["192.168.5.5"]);
        assert_eq!(c.serve.unwrap().port(), 10250);
        assert_eq!(c.healthz.unwrap().to_string(), "127.0.0.1:10248");
        // A config file brings v1beta1's defaults: no anonymous callers,
        // webhooks on.
        assert_eq!(c.auth, kubelet::auth::AuthConfig::v1beta1());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn authentication_and_authorization_settings() {
        let c = Options::parse_from(["kubelet"]).complete().unwrap();
        assert_eq!(c.auth, kubelet::auth::AuthConfig::legacy());
        let dir = std::env::temp_dir().join(format!("kubelet-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (file, ca) = (dir.join("config.yaml"), dir.join("ca.crt"));
        std::fs::write(&ca, "PEM").unwrap();
        std::fs::write(
            &file,
            format!("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nauthentication:\n  x509: {{clientCAFile: {}}}\n  webhook: {{cacheTTL: 1m}}\n  anonymous: {{enabled: true}}\nauthorization:\n  mode: AlwaysAllow\n  webhook: {{cacheAuthorizedTTL: 10s}}\n", ca.display()),
        )
        .unwrap();
        let c = Options::parse_from([
            "kubelet",
            "--config",
            file.to_str().unwrap(),
            "--anonymous-auth=false",
            "--authorization-mode",
            "Webhook",
        ])
        .complete()
        .unwrap();
        assert!(!c.auth.anonymous && c.auth.token_webhook);
        assert_eq!(c.auth.client_ca.as_deref(), Some(&b"PEM"[..]));
        assert_eq!(
            c.auth.token_webhook_cache_ttl,
            std::time::Duration::from_secs(60)
        );
        assert_eq!(c.auth.mode, kubelet::auth::Mode::Webhook);
        assert_eq!(c.auth.authorized_ttl, std::time::Duration::from_secs(10));
        assert_eq!(c.auth.unauthorized_ttl, std::time::Duration::from_secs(30));
        let bad = Options::parse_from(["kubelet", "--authorization-mode", "RBAC"]).complete();
        assert!(bad
            .unwrap_err()
            .to_string()
            .contains("unknown authorization mode"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
