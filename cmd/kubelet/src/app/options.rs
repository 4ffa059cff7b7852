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
    /// Hard eviction thresholds (`memory.available<100Mi,nodefs.available<10%`).
    #[arg(long)]
    pub eviction_hard: Option<String>,
    /// Soft eviction thresholds, each needing a grace period.
    #[arg(long)]
    pub eviction_soft: Option<String>,
    /// Grace periods of the soft thresholds (`memory.available=1m30s`).
    #[arg(long)]
    pub eviction_soft_grace_period: Option<String>,
    /// How far past a threshold an eviction reclaims (`memory.available=0Mi`).
    #[arg(long)]
    pub eviction_minimum_reclaim: Option<String>,
    /// How long a pressure condition is held after the pressure ends.
    #[arg(long)]
    pub eviction_pressure_transition_period: Option<String>,
    /// Grace period (seconds) of pods evicted for soft thresholds.
    #[arg(long)]
    pub eviction_max_pod_grace_period: Option<i64>,
    /// Image filesystem usage percent at which image GC always runs.
    #[arg(long)]
    pub image_gc_high_threshold: Option<i32>,
    /// Image filesystem usage percent image GC frees down to.
    #[arg(long)]
    pub image_gc_low_threshold: Option<i32>,
    /// Minimum age of an unused image before it is garbage collected.
    #[arg(long)]
    pub minimum_image_ttl_duration: Option<String>,
    /// An image the image garbage collector never removes.
    #[arg(long)]
    pub pod_infra_container_image: Option<String>,
    /// How often the eviction manager checks the node's resources.
    #[arg(long)]
    pub housekeeping_interval: Option<String>,
    /// Enforce emptyDir sizeLimit and ephemeral-storage limits.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub local_storage_capacity_isolation: Option<bool>,
    /// Size at which a container log is rotated (`10Mi`; negative: never).
    #[arg(long, allow_hyphen_values = true)]
    pub container_log_max_size: Option<String>,
    /// Log files kept per container, the current one included.
    #[arg(long)]
    pub container_log_max_files: Option<i32>,
    /// Containers whose logs are rotated at once.
    #[arg(long)]
    pub container_log_max_workers: Option<i32>,
    /// How often container log sizes are checked.
    #[arg(long)]
    pub container_log_monitor_interval: Option<String>,
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

fn percent(name: &str, v: i32) -> anyhow::Result<u8> {
    u8::try_from(v)
        .ok()
        .filter(|p| *p <= 100)
        .with_context(|| format!("invalid {name} {v}, must be in range [0-100]"))
}

impl Options {
    /// The eviction settings: flags over the file over upstream's defaults.
    fn eviction(
        &self,
        file: &config::KubeletConfiguration,
    ) -> anyhow::Result<kubelet::eviction::EvictionConfig> {
        use kubelet::eviction::{default_eviction_hard, parse_pairs, parse_statements};
        let map = |flag: &Option<String>,
                   f: fn(&str) -> Result<std::collections::BTreeMap<String, String>, String>,
                   name: &str|
         -> anyhow::Result<Option<std::collections::BTreeMap<String, String>>> {
            flag.as_deref()
                .map(f)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--{name}: {e}"))
        };
        let mut hard = map(&self.eviction_hard, parse_statements, "eviction-hard")?
            .or(file.eviction_hard.clone())
            .unwrap_or_else(default_eviction_hard);
        if file.merge_default_eviction_settings == Some(true) {
            for (k, v) in default_eviction_hard() {
                hard.entry(k).or_insert(v);
            }
        }
        let soft = map(&self.eviction_soft, parse_statements, "eviction-soft")?
            .or(file.eviction_soft.clone())
            .unwrap_or_default();
        let grace = map(
            &self.eviction_soft_grace_period,
            parse_pairs,
            "eviction-soft-grace-period",
        )?
        .or(file.eviction_soft_grace_period.clone())
        .unwrap_or_default();
        let reclaim = map(
            &self.eviction_minimum_reclaim,
            parse_pairs,
            "eviction-minimum-reclaim",
        )?
        .or(file.eviction_minimum_reclaim.clone())
        .unwrap_or_default();
        let thresholds = kubelet::eviction::parse_thresholds(&hard, &soft, &grace, &reclaim)
            .map_err(|e| anyhow::anyhow!("eviction thresholds: {e}"))?;
        let defaults = kubelet::eviction::EvictionConfig::default();
        let transition = match self
            .eviction_pressure_transition_period
            .as_deref()
            .or(file.eviction_pressure_transition_period.as_deref())
        {
            Some(v) => duration("--eviction-pressure-transition-period", v)?,
            None => defaults.pressure_transition_period,
        };
        Ok(kubelet::eviction::EvictionConfig {
            thresholds,
            pressure_transition_period: transition,
            max_pod_grace_period_seconds: self
                .eviction_max_pod_grace_period
                .or(file.eviction_max_pod_grace_period)
                .unwrap_or(defaults.max_pod_grace_period_seconds),
            local_storage_capacity_isolation: self
                .local_storage_capacity_isolation
                .or(file.local_storage_capacity_isolation)
                .unwrap_or(defaults.local_storage_capacity_isolation),
        })
    }

    /// Image GC settings: flags over the file over upstream's defaults.
    fn image_gc(
        &self,
        file: &config::KubeletConfiguration,
    ) -> anyhow::Result<kubelet::image_gc::ImageGcPolicy> {
        let d = kubelet::image_gc::ImageGcPolicy::default();
        let high = match self
            .image_gc_high_threshold
            .or(file.image_gc_high_threshold_percent)
        {
            Some(v) => percent("HighThresholdPercent", v)?,
            None => d.high_threshold_percent,
        };
        let low = match self
            .image_gc_low_threshold
            .or(file.image_gc_low_threshold_percent)
        {
            Some(v) => percent("LowThresholdPercent", v)?,
            None => d.low_threshold_percent,
        };
        let min_age = match self
            .minimum_image_ttl_duration
            .as_deref()
            .or(file.image_minimum_gc_age.as_deref())
        {
            Some(v) => duration("--minimum-image-ttl-duration", v)?,
            None => d.min_age,
        };
        let policy = kubelet::image_gc::ImageGcPolicy {
            high_threshold_percent: high,
            low_threshold_percent: low,
            min_age,
            pinned_image: Some(
                self.pod_infra_container_image
                    .clone()
                    .unwrap_or_else(|| kubelet::image_gc::DEFAULT_POD_INFRA_IMAGE.into()),
            ),
        };
        kubelet::image_gc::validate(&policy).map_err(anyhow::Error::msg)?;
        Ok(policy)
    }

    /// Container log rotation: flags over the file over upstream's defaults.
    fn container_log(
        &self,
        file: &config::KubeletConfiguration,
    ) -> anyhow::Result<kubelet::logs::rotate::LogRotatePolicy> {
        let d = kubelet::logs::rotate::LogRotatePolicy::default();
        let max_size = match self
            .container_log_max_size
            .as_deref()
            .or(file.container_log_max_size.as_deref())
        {
            Some(v) => kubelet::logs::rotate::parse_max_size(v).map_err(anyhow::Error::msg)?,
            None => d.max_size,
        };
        let count = |v: Option<i32>, default: usize| v.map_or(default, |n| n.max(0) as usize);
        let monitor_interval = match self
            .container_log_monitor_interval
            .as_deref()
            .or(file.container_log_monitor_interval.as_deref())
        {
            Some(v) => duration("--container-log-monitor-interval", v)?,
            None => d.monitor_interval,
        };
        let policy = kubelet::logs::rotate::LogRotatePolicy {
            max_size,
            max_files: count(
                self.container_log_max_files
                    .or(file.container_log_max_files),
                d.max_files,
            ),
            max_workers: count(
                self.container_log_max_workers
                    .or(file.container_log_max_workers),
                d.max_workers,
            ),
            monitor_interval,
        };
        policy.validate().map_err(anyhow::Error::msg)?;
        Ok(policy)
    }

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
        let eviction = self.eviction(&file)?;
        let image_gc = self.image_gc(&file)?;
        let container_log = self.container_log(&file)?;
        let housekeeping_interval = match &self.housekeeping_interval {
            Some(v) => duration("--housekeeping-interval", v)?,
            None => defaults.housekeeping_interval,
        };
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
                eviction,
                housekeeping_interval,
                image_gc,
                container_log,
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
        // No eviction settings: upstream's five hard thresholds.
        assert_eq!(
            c.kubelet.eviction,
            kubelet::eviction::EvictionConfig::default()
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn eviction_and_image_gc_settings() {
        use kubelet::eviction::{Signal, ThresholdValue};
        let c = Options::parse_from([
            "kubelet",
            "--eviction-hard",
            "memory.available<1Gi",
            "--eviction-soft",
            "nodefs.available<20%",
            "--eviction-soft-grace-period",
            "nodefs.available=1m",
            "--eviction-pressure-transition-period",
            "30s",
            "--image-gc-high-threshold",
            "90",
            "--minimum-image-ttl-duration",
            "5m",
        ])
        .complete()
        .unwrap();
        let e = &c.kubelet.eviction;
        assert_eq!(e.thresholds.len(), 2, "the flag replaces the defaults");
        assert_eq!(
            e.hard(Signal::MemoryAvailable).unwrap().value,
            ThresholdValue::Quantity(1 << 30)
        );
        assert_eq!(
            e.pressure_transition_period,
            std::time::Duration::from_secs(30)
        );
        assert_eq!(c.kubelet.image_gc.high_threshold_percent, 90);
        assert_eq!(
            c.kubelet.image_gc.min_age,
            std::time::Duration::from_secs(300)
        );
        let bad = |args: &[&str]| {
            let mut v = vec!["kubelet"];
            v.extend_from_slice(args);
            Options::parse_from(v).complete().unwrap_err().to_string()
        };
        assert!(bad(&["--eviction-soft", "memory.available<1Gi"])
            .contains("grace period must be specified"));
        assert!(bad(&["--image-gc-low-threshold", "95"])
            .contains("can not be higher than HighThresholdPercent"));

        // The file: a partial evictionHard keeps only what it names,
        // unless mergeDefaultEvictionSettings.
        let dir = std::env::temp_dir().join(format!("kubelet-evict-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.yaml");
        for (merge, n) in [(false, 1), (true, 5)] {
            std::fs::write(
                &file,
                format!("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nevictionHard: {{memory.available: 200Mi}}\nmergeDefaultEvictionSettings: {merge}\n"),
            )
            .unwrap();
            let c = Options::parse_from(["kubelet", "--config", file.to_str().unwrap()])
                .complete()
                .unwrap();
            assert_eq!(c.kubelet.eviction.thresholds.len(), n);
            assert_eq!(
                c.kubelet
                    .eviction
                    .hard(Signal::MemoryAvailable)
                    .unwrap()
                    .value,
                ThresholdValue::Quantity(200 << 20)
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn container_log_rotation_settings() {
        let c = Options::parse_from(["kubelet"]).complete().unwrap();
        assert_eq!(
            c.kubelet.container_log,
            kubelet::logs::rotate::LogRotatePolicy::default()
        );
        assert_eq!(c.kubelet.container_log.max_size, 10 << 20);
        let dir = std::env::temp_dir().join(format!("kubelet-logrot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.yaml");
        std::fs::write(
            &file,
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncontainerLogMaxSize: 5Mi\ncontainerLogMaxFiles: 3\ncontainerLogMaxWorkers: 2\ncontainerLogMonitorInterval: 30s\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let c = Options::parse_from(["kubelet", "--config", path])
            .complete()
            .unwrap();
        let p = &c.kubelet.container_log;
        assert_eq!((p.max_size, p.max_files, p.max_workers), (5 << 20, 3, 2));
        assert_eq!(p.monitor_interval, std::time::Duration::from_secs(30));
        // Flags win; a negative size turns rotation off.
        let c = Options::parse_from([
            "kubelet",
            "--config",
            path,
            "--container-log-max-size",
            "-1",
            "--container-log-max-files",
            "4",
        ])
        .complete()
        .unwrap();
        assert_eq!(c.kubelet.container_log.max_size, -1);
        assert_eq!(c.kubelet.container_log.max_files, 4);
        let bad = |args: &[&str]| {
            let mut v = vec!["kubelet"];
            v.extend_from_slice(args);
            Options::parse_from(v).complete().unwrap_err().to_string()
        };
        assert!(bad(&["--container-log-max-files", "1"])
            .contains("containerLogMaxFiles must be greater than 1"));
        assert!(bad(&["--container-log-monitor-interval", "1s"])
            .contains("greater than or equal to 3s"));
        assert!(bad(&["--container-log-max-size", "ten"])
            .contains("failed to parse container log max size"));
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
