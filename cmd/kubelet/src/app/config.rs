//! The `--config` file: a `KubeletConfiguration` of
//! `kubelet.config.k8s.io/v1beta1` (upstream's
//! `pkg/kubelet/apis/config/v1beta1`), the fields this kubelet uses.
//! Fields it does not know are ignored (and named in the log), so files
//! written for upstream's kubelet load.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KubeletConfiguration {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub address: Option<String>,
    pub port: Option<u16>,
    pub healthz_bind_address: Option<String>,
    pub healthz_port: Option<u16>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_private_key_file: Option<PathBuf>,
    #[serde(rename = "clusterDNS")]
    pub cluster_dns: Option<Vec<String>>,
    pub cluster_domain: Option<String>,
    pub resolv_conf: Option<PathBuf>,
    pub max_pods: Option<u32>,
    #[serde(rename = "podCIDR")]
    pub pod_cidr: Option<String>,
    pub pod_logs_dir: Option<PathBuf>,
    pub container_runtime_endpoint: Option<String>,
    pub static_pod_path: Option<PathBuf>,
    pub authentication: Option<Authentication>,
    pub authorization: Option<Authorization>,
    pub eviction_hard: Option<BTreeMap<String, String>>,
    pub eviction_soft: Option<BTreeMap<String, String>>,
    pub eviction_soft_grace_period: Option<BTreeMap<String, String>>,
    pub eviction_minimum_reclaim: Option<BTreeMap<String, String>>,
    /// A Go duration (`5m0s`).
    pub eviction_pressure_transition_period: Option<String>,
    pub eviction_max_pod_grace_period: Option<i64>,
    /// Unset `evictionHard` entries keep their defaults (upstream 1.33).
    pub merge_default_eviction_settings: Option<bool>,
    #[serde(rename = "imageGCHighThresholdPercent")]
    pub image_gc_high_threshold_percent: Option<i32>,
    #[serde(rename = "imageGCLowThresholdPercent")]
    pub image_gc_low_threshold_percent: Option<i32>,
    /// A Go duration (`2m0s`).
    #[serde(rename = "imageMinimumGCAge")]
    pub image_minimum_gc_age: Option<String>,
    pub local_storage_capacity_isolation: Option<bool>,
    /// A quantity (`10Mi`); negative turns rotation off.
    pub container_log_max_size: Option<String>,
    pub container_log_max_files: Option<i32>,
    pub container_log_max_workers: Option<i32>,
    /// A Go duration (`10s`).
    pub container_log_monitor_interval: Option<String>,
    #[serde(flatten)]
    pub unknown: BTreeMap<String, serde_yaml::Value>,
}

/// `authentication`: who callers of the secure port are.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Authentication {
    pub x509: Option<X509Authentication>,
    pub webhook: Option<WebhookAuthentication>,
    pub anonymous: Option<Enabled>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
pub struct X509Authentication {
    #[serde(rename = "clientCAFile")]
    pub client_ca_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
pub struct WebhookAuthentication {
    pub enabled: Option<bool>,
    /// A Go duration (`2m0s`).
    #[serde(rename = "cacheTTL")]
    pub cache_ttl: Option<String>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
pub struct Enabled {
    pub enabled: Option<bool>,
}

/// `authorization`: what callers may do.
#[derive(Debug, Default, Deserialize, PartialEq)]
pub struct Authorization {
    pub mode: Option<String>,
    pub webhook: Option<WebhookAuthorization>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAuthorization {
    #[serde(rename = "cacheAuthorizedTTL")]
    pub cache_authorized_ttl: Option<String>,
    #[serde(rename = "cacheUnauthorizedTTL")]
    pub cache_unauthorized_ttl: Option<String>,
}

/// Reads and checks the file.
pub fn load(path: &Path) -> anyhow::Result<KubeletConfiguration> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| format!("loading {}", path.display()))
}

pub fn parse(text: &str) -> anyhow::Result<KubeletConfiguration> {
    let c: KubeletConfiguration = serde_yaml::from_str(text)?;
    if c.kind.as_deref() != Some("KubeletConfiguration") {
        bail!("kind must be KubeletConfiguration, got {:?}", c.kind);
    }
    if c.api_version.as_deref() != Some("kubelet.config.k8s.io/v1beta1") {
        bail!(
            "apiVersion must be kubelet.config.k8s.io/v1beta1, got {:?}",
            c.api_version
        );
    }
    if !c.unknown.is_empty() {
        let names: Vec<&String> = c.unknown.keys().collect();
        tracing::info!(fields = ?names, "KubeletConfiguration fields not used by this kubelet");
    }
    Ok(c)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fields_and_skips_unknown_ones() {
        let c = parse(
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nclusterDNS: [10.0.0.10]\nclusterDomain: cluster.local\nmaxPods: 50\npodCIDR: 10.88.0.0/16\ncgroupDriver: cgroupfs\nevictionHard: {memory.available: 200Mi}\nimageGCHighThresholdPercent: 90\n",
        )
        .unwrap();
        assert_eq!(c.cluster_dns, Some(vec!["10.0.0.10".to_string()]));
        assert_eq!(c.max_pods, Some(50));
        assert_eq!(c.pod_cidr.as_deref(), Some("10.88.0.0/16"));
        assert!(c.unknown.contains_key("cgroupDriver"));
        assert_eq!(
            c.eviction_hard.unwrap()["memory.available"],
            "200Mi".to_string()
        );
        assert_eq!(c.image_gc_high_threshold_percent, Some(90));
        assert!(parse("apiVersion: v1\nkind: Pod\n").is_err());
    }
}
