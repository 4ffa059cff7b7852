//! The sandbox configuration for a pod (upstream's
//! `pkg/kubelet/kuberuntime/kuberuntime_sandbox.go` `generatePodSandboxConfig`)
//! and its DNS settings (upstream's `pkg/kubelet/network/dns/dns.go`).

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;

use crate::cri::api::{
    DnsConfig, LinuxPodSandboxConfig, LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption,
    PodSandboxConfig, PodSandboxMetadata, PortMapping, Protocol,
};

use super::labels::{self, pod_name, pod_namespace, pod_uid};

/// What the sandbox configuration needs from the kubelet's configuration.
#[derive(Debug, Clone, Default)]
pub struct SandboxSettings {
    /// `--cluster-dns`
    pub cluster_dns: Vec<String>,
    /// `--cluster-domain`
    pub cluster_domain: String,
    /// The node's resolver configuration (`--resolv-conf`), already read.
    pub host_dns: HostDns,
    /// `podLogsDir` (upstream's default `/var/log/pods`).
    pub pod_logs_dir: PathBuf,
}

/// The host's `resolv.conf`, parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostDns {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

impl HostDns {
    /// Parses `resolv.conf` text (upstream's `parseResolvConf`).
    pub fn parse(text: &str) -> Self {
        let mut d = HostDns::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or_default();
            let mut fields = line.split_whitespace();
            match fields.next() {
                Some("nameserver") => d.servers.extend(fields.next().map(str::to_string)),
                Some("search") | Some("domain") => {
                    d.searches = fields.map(str::to_string).collect();
                }
                Some("options") => d.options = fields.map(str::to_string).collect(),
                _ => {}
            }
        }
        d
    }

    /// Reads `path`; a missing file is an empty configuration.
    pub fn read(path: &Path) -> Self {
        std::fs::read_to_string(path)
            .map(|t| Self::parse(&t))
            .unwrap_or_default()
    }
}

/// Upstream's limit on search domains.
const MAX_DNS_SEARCH_PATHS: usize = 32;

/// The pod's DNS configuration (upstream's `Configurer.GetPodDNS`).
pub fn pod_dns(pod: &Pod, s: &SandboxSettings) -> DnsConfig {
    let spec = pod.spec.as_ref();
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    let mut policy = spec
        .and_then(|s| s.dns_policy.as_deref())
        .unwrap_or("ClusterFirst");
    if policy == "ClusterFirst" && host_network {
        policy = "Default";
    }
    if policy == "ClusterFirstWithHostNet" {
        policy = "ClusterFirst";
    }
    if policy == "ClusterFirst" && s.cluster_dns.is_empty() {
        // Upstream falls back to the node's resolver (and warns in an event).
        policy = "Default";
    }
    let mut dns = match policy {
        "None" => DnsConfig::default(),
        "ClusterFirst" => {
            let ns = pod_namespace(pod);
            let d = &s.cluster_domain;
            let mut searches = vec![format!("{ns}.svc.{d}"), format!("svc.{d}"), d.clone()];
            searches.extend(s.host_dns.searches.iter().cloned());
            DnsConfig {
                servers: s.cluster_dns.clone(),
                searches,
                options: vec!["ndots:5".into()],
            }
        }
        _ => DnsConfig {
            servers: s.host_dns.servers.clone(),
            searches: s.host_dns.searches.clone(),
            options: s.host_dns.options.clone(),
        },
    };
    if let Some(cfg) = spec.and_then(|s| s.dns_config.as_ref()) {
        for n in cfg.nameservers.iter().flatten() {
            if !dns.servers.contains(n) {
                dns.servers.push(n.clone());
            }
        }
        for search in cfg.searches.iter().flatten() {
            if !dns.searches.contains(search) {
                dns.searches.push(search.clone());
            }
        }
        for o in cfg.options.iter().flatten() {
            let Some(name) = o.name.as_deref() else {
                continue;
            };
            let text = match &o.value {
                Some(v) => format!("{name}:{v}"),
                None => name.to_string(),
            };
            dns.options
                .retain(|existing| existing.split(':').next() != Some(name));
            dns.options.push(text);
        }
    }
    dns.searches.truncate(MAX_DNS_SEARCH_PATHS);
    dns
}

/// The pod's hostname (upstream's `GeneratePodHostNameAndDomain`): the
/// spec's `hostname`, else the pod name cut to 63 characters.
pub fn pod_hostname(pod: &Pod) -> String {
    if let Some(h) = pod.spec.as_ref().and_then(|s| s.hostname.clone()) {
        return h;
    }
    let name = pod_name(pod);
    if name.len() <= 63 {
        return name.to_string();
    }
    name.chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches(['-', '.'])
        .to_string()
}

/// `<podLogsDir>/<namespace>_<name>_<uid>` (upstream's `BuildPodLogsDirectory`).
pub fn pod_logs_directory(logs_dir: &Path, namespace: &str, name: &str, uid: &str) -> PathBuf {
    logs_dir.join(format!("{namespace}_{name}_{uid}"))
}

/// The sandbox configuration for `pod`, attempt `attempt`.
pub fn generate_pod_sandbox_config(
    pod: &Pod,
    attempt: u32,
    s: &SandboxSettings,
) -> PodSandboxConfig {
    let spec = pod.spec.as_ref();
    let host_network = spec.and_then(|s| s.host_network).unwrap_or(false);
    let host_ipc = spec.and_then(|s| s.host_ipc).unwrap_or(false);
    let host_pid = spec.and_then(|s| s.host_pid).unwrap_or(false);
    let share_pid = spec
        .and_then(|s| s.share_process_namespace)
        .unwrap_or(false);
    let mut port_mappings = Vec::new();
    for c in spec.map(|s| s.containers.as_slice()).unwrap_or_default() {
        for p in c.ports.iter().flatten() {
            port_mappings.push(PortMapping {
                protocol: match p.protocol.as_deref() {
                    Some("UDP") => Protocol::Udp,
                    Some("SCTP") => Protocol::Sctp,
                    _ => Protocol::Tcp,
                } as i32,
                container_port: p.container_port,
                host_port: p.host_port.unwrap_or(0),
                host_ip: p.host_ip.clone().unwrap_or_default(),
            });
        }
    }
    let mode = |host: bool| {
        if host {
            NamespaceMode::Node
        } else {
            NamespaceMode::Pod
        }
    };
    let pid = if host_pid {
        NamespaceMode::Node
    } else if share_pid {
        NamespaceMode::Pod
    } else {
        NamespaceMode::Container
    };
    let psc = spec.and_then(|s| s.security_context.as_ref());
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: pod_name(pod).into(),
            uid: pod_uid(pod).into(),
            namespace: pod_namespace(pod).into(),
            attempt,
        }),
        hostname: pod_hostname(pod),
        log_directory: pod_logs_directory(
            &s.pod_logs_dir,
            pod_namespace(pod),
            pod_name(pod),
            pod_uid(pod),
        )
        .to_string_lossy()
        .into_owned(),
        dns_config: Some(pod_dns(pod, s)),
        port_mappings,
        labels: labels::new_pod_labels(pod),
        annotations: labels::new_pod_annotations(pod),
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: mode(host_network) as i32,
                    pid: pid as i32,
                    ipc: mode(host_ipc) as i32,
                    ..Default::default()
                }),
                run_as_user: psc
                    .and_then(|c| c.run_as_user)
                    .map(|value| crate::cri::api::Int64Value { value }),
                run_as_group: psc
                    .and_then(|c| c.run_as_group)
                    .map(|value| crate::cri::api::Int64Value { value }),
                supplemental_groups: psc
                    .and_then(|c| c.supplemental_groups.clone())
                    .unwrap_or_default(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        windows: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodDNSConfig, PodDNSConfigOption, PodSpec};

    fn settings() -> SandboxSettings {
        SandboxSettings {
            cluster_dns: vec!["10.0.0.10".into()],
            cluster_domain: "cluster.local".into(),
            host_dns: HostDns::parse(
                "nameserver 192.168.1.1\nsearch corp.example\noptions edns0\n",
            ),
            pod_logs_dir: "/var/log/pods".into(),
        }
    }

    fn pod(spec: PodSpec) -> Pod {
        Pod {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns1".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            spec: Some(spec),
            ..Default::default()
        }
    }

    #[test]
    fn cluster_first_uses_cluster_dns_and_search_path() {
        let d = pod_dns(&pod(PodSpec::default()), &settings());
        assert_eq!(d.servers, vec!["10.0.0.10"]);
        assert_eq!(
            d.searches,
            vec![
                "ns1.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "corp.example"
            ]
        );
        assert_eq!(d.options, vec!["ndots:5"]);
    }

    #[test]
    fn host_network_and_default_use_the_node_resolver() {
        let d = pod_dns(
            &pod(PodSpec {
                host_network: Some(true),
                ..Default::default()
            }),
            &settings(),
        );
        assert_eq!(d.servers, vec!["192.168.1.1"]);
        assert_eq!(d.options, vec!["edns0"]);
        let mut no_cluster_dns = settings();
        no_cluster_dns.cluster_dns.clear();
        assert_eq!(
            pod_dns(&pod(PodSpec::default()), &no_cluster_dns).servers,
            vec!["192.168.1.1"]
        );
    }

    #[test]
    fn dns_none_takes_the_pods_dns_config() {
        let d = pod_dns(
            &pod(PodSpec {
                dns_policy: Some("None".into()),
                dns_config: Some(PodDNSConfig {
                    nameservers: Some(vec!["1.2.3.4".into()]),
                    searches: Some(vec!["a.example".into()]),
                    options: Some(vec![PodDNSConfigOption {
                        name: Some("ndots".into()),
                        value: Some("2".into()),
                    }]),
                }),
                ..Default::default()
            }),
            &settings(),
        );
        assert_eq!(d.servers, vec!["1.2.3.4"]);
        assert_eq!(d.searches, vec!["a.example"]);
        assert_eq!(d.options, vec!["ndots:2"]);
    }

    #[test]
    fn sandbox_config_carries_identity_labels_and_log_dir() {
        let c = generate_pod_sandbox_config(&pod(PodSpec::default()), 1, &settings());
        let m = c.metadata.unwrap();
        assert_eq!(
            (
                m.name.as_str(),
                m.namespace.as_str(),
                m.uid.as_str(),
                m.attempt
            ),
            ("web", "ns1", "u1", 1)
        );
        assert_eq!(
            c.labels.get(labels::POD_UID).map(String::as_str),
            Some("u1")
        );
        assert_eq!(c.log_directory, "/var/log/pods/ns1_web_u1");
        assert_eq!(c.hostname, "web");
    }
}
