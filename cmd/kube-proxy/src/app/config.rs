//! The `KubeProxyConfiguration` file (kubeproxy.config.k8s.io/v1alpha1,
//! upstream's `pkg/proxy/apis/config`): what it sets replaces the flags'
//! values, as upstream ignores most flags once `--config` is given.
//! Unknown fields are refused so that typos are found at start-up.

use std::path::Path;

use anyhow::{bail, Context};
use serde::Deserialize;

use super::options::Options;

// Upstream fields this proxier has no use for are accepted and ignored.
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ClientConnection {
    kubeconfig: Option<String>,
    qps: Option<f32>,
    burst: Option<u32>,
    #[serde(default)]
    accept_content_types: Option<String>,
    #[serde(default)]
    content_type: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModeSettings {
    sync_period: Option<String>,
    min_sync_period: Option<String>,
    masquerade_all: Option<bool>,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KubeProxyConfiguration {
    api_version: String,
    kind: String,
    #[serde(default)]
    client_connection: Option<ClientConnection>,
    mode: Option<String>,
    #[serde(rename = "clusterCIDR")]
    cluster_cidr: Option<String>,
    hostname_override: Option<String>,
    healthz_bind_address: Option<String>,
    metrics_bind_address: Option<String>,
    node_port_addresses: Option<Vec<String>>,
    #[serde(default)]
    nftables: Option<ModeSettings>,
    #[serde(default)]
    iptables: Option<serde_yaml::Value>,
    #[serde(default)]
    ipvs: Option<serde_yaml::Value>,
    #[serde(default)]
    conntrack: Option<serde_yaml::Value>,
    #[serde(default)]
    feature_gates: Option<serde_yaml::Value>,
    #[serde(default)]
    bind_address: Option<String>,
    #[serde(default)]
    oom_score_adj: Option<i32>,
    #[serde(default)]
    port_range: Option<String>,
    #[serde(default)]
    config_sync_period: Option<String>,
    #[serde(default)]
    detect_local_mode: Option<String>,
    #[serde(default)]
    logging: Option<serde_yaml::Value>,
    #[serde(default)]
    enable_profiling: Option<bool>,
    #[serde(default)]
    show_hidden_metrics_for_version: Option<String>,
    #[serde(default)]
    winkernel: Option<serde_yaml::Value>,
    #[serde(default)]
    detect_local: Option<serde_yaml::Value>,
}

/// `options` with the file's settings applied.
pub fn load(path: &Path, mut options: Options) -> anyhow::Result<Options> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let cfg: KubeProxyConfiguration =
        serde_yaml::from_str(&text).with_context(|| format!("decoding {}", path.display()))?;
    if cfg.api_version != "kubeproxy.config.k8s.io/v1alpha1" || cfg.kind != "KubeProxyConfiguration"
    {
        bail!(
            "{}: expected apiVersion kubeproxy.config.k8s.io/v1alpha1, kind KubeProxyConfiguration, got {}, {}",
            path.display(),
            cfg.api_version,
            cfg.kind
        );
    }
    if let Some(cc) = cfg.client_connection {
        if let Some(k) = cc.kubeconfig.filter(|k| !k.is_empty()) {
            options.kube.kubeconfig = Some(k.into());
        }
        if let Some(q) = cc.qps {
            options.kube.kube_api_qps = Some(q);
        }
        if let Some(b) = cc.burst {
            options.kube.kube_api_burst = Some(b);
        }
    }
    if let Some(m) = cfg.mode.filter(|m| !m.is_empty()) {
        options.proxy_mode = m;
    }
    if let Some(c) = cfg.cluster_cidr.filter(|c| !c.is_empty()) {
        options.cluster_cidr = Some(c);
    }
    if let Some(h) = cfg.hostname_override.filter(|h| !h.is_empty()) {
        options.hostname_override = Some(h);
    }
    if let Some(a) = cfg.healthz_bind_address.filter(|a| !a.is_empty()) {
        options.healthz_bind_address = a
            .parse()
            .with_context(|| format!("healthzBindAddress: {a:?} is not host:port"))?;
    }
    if let Some(a) = cfg.metrics_bind_address.filter(|a| !a.is_empty()) {
        options.metrics_bind_address = a
            .parse()
            .with_context(|| format!("metricsBindAddress: {a:?} is not host:port"))?;
    }
    if let Some(n) = cfg.node_port_addresses {
        options.nodeport_addresses = n;
    }
    if let Some(n) = cfg.nftables {
        if let Some(s) = n.sync_period {
            options.sync_period = s;
        }
        if let Some(s) = n.min_sync_period {
            options.min_sync_period = s;
        }
        if let Some(m) = n.masquerade_all {
            options.masquerade_all = m;
        }
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn file_settings_replace_flags() {
        let f = write("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: nftables\nclusterCIDR: 10.88.0.0/16\nnftables:\n  syncPeriod: 10s\nclientConnection:\n  kubeconfig: /tmp/k\n  qps: 50\n");
        let o = load(f.path(), Options::parse_from(["kube-proxy"])).unwrap();
        assert_eq!(o.cluster_cidr.as_deref(), Some("10.88.0.0/16"));
        assert_eq!(o.sync_period, "10s");
        assert_eq!(o.kube.kube_api_qps, Some(50.0));
    }

    #[test]
    fn typos_and_wrong_kinds_fail_naming_the_problem() {
        let f = write("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nclusterCidr: 10.88.0.0/16\n");
        let e = load(f.path(), Options::parse_from(["kube-proxy"])).unwrap_err();
        assert!(format!("{e:#}").contains("clusterCidr"), "{e:#}");
        let f = write("apiVersion: v1\nkind: ConfigMap\n");
        let e = load(f.path(), Options::parse_from(["kube-proxy"])).unwrap_err();
        assert!(format!("{e:#}").contains("KubeProxyConfiguration"), "{e:#}");
    }
}
