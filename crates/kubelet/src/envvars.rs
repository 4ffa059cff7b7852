//! Service environment variables (upstream's `pkg/kubelet/envvars/envvars.go`
//! and `getServiceEnvVarMap` in `pkg/kubelet/kubelet_pods.go`): every
//! container sees `<NAME>_SERVICE_HOST`/`_PORT` and the Docker-links style
//! `<NAME>_PORT_<port>_<PROTO>…` variables of the Services in its namespace
//! (when `enableServiceLinks`, the default) and always those of the
//! `kubernetes` Service in `default`, which is how in-cluster clients find
//! the API server.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::runtime::reflector::Store;

/// The namespace of the master Service.
const MASTER_SERVICE_NAMESPACE: &str = "default";
/// Services whose variables every pod gets, even without service links.
const MASTER_SERVICES: &[&str] = &["kubernetes"];

/// What a container's environment needs from the Services a pod can see.
#[derive(Clone)]
pub struct ServiceEnv {
    services: Store<Service>,
}

impl ServiceEnv {
    pub fn new(services: Store<Service>) -> Self {
        Self { services }
    }

    /// Waits until the Services were listed once: upstream refuses to build
    /// an API pod's environment before that, so that no container starts
    /// without the variables it should have had.
    pub async fn wait_synced(&self) {
        // Only fails when the writer was dropped: then the store stays
        // empty and pods get no service variables rather than none at all.
        let _ = self.services.wait_until_ready().await;
    }

    /// The variables for `pod`, in upstream's order (per Service: host,
    /// port, named ports, then the link variables).
    pub fn for_pod(&self, pod: &Pod) -> Vec<(String, String)> {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let links = pod
            .spec
            .as_ref()
            .and_then(|s| s.enable_service_links)
            .unwrap_or(true);
        let all = self.services.state();
        from_services(visible_services(
            all.iter().map(|s| s.as_ref()),
            namespace,
            links,
        ))
    }
}

/// The Services a pod in `namespace` gets variables for, by name: its own
/// namespace's (with `links`) and the master Services, a Service of the same
/// name in the pod's namespace winning.
fn visible_services<'a>(
    all: impl Iterator<Item = &'a Service>,
    namespace: &str,
    links: bool,
) -> Vec<&'a Service> {
    let mut by_name: BTreeMap<&str, &Service> = BTreeMap::new();
    for svc in all {
        if cluster_ip(svc).is_none() {
            continue;
        }
        let Some(name) = svc.metadata.name.as_deref() else {
            continue;
        };
        let ns = svc.metadata.namespace.as_deref().unwrap_or_default();
        if ns == MASTER_SERVICE_NAMESPACE && MASTER_SERVICES.contains(&name) {
            by_name.entry(name).or_insert(svc);
        }
        if ns == namespace && links {
            by_name.insert(name, svc);
        }
    }
    by_name.into_values().collect()
}

/// The Service's ClusterIP, unless it has none (headless, ExternalName).
fn cluster_ip(svc: &Service) -> Option<&str> {
    svc.spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .filter(|ip| !ip.is_empty() && *ip != "None")
}

/// `my-svc` → `MY_SVC`.
fn env_name(name: &str) -> String {
    name.to_uppercase().replace('-', "_")
}

/// `host:port`, bracketing IPv6 addresses.
fn join_host_port(host: &str, port: i32) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Upstream's `FromServices`.
pub fn from_services(services: Vec<&Service>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for svc in services {
        let (Some(ip), Some(name)) = (cluster_ip(svc), svc.metadata.name.as_deref()) else {
            continue;
        };
        let prefix = env_name(name);
        let ports = svc
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_deref())
            .unwrap_or_default();
        out.push((format!("{prefix}_SERVICE_HOST"), ip.to_string()));
        if let Some(first) = ports.first() {
            out.push((format!("{prefix}_SERVICE_PORT"), first.port.to_string()));
        }
        for p in ports {
            if let Some(port_name) = p.name.as_deref().filter(|n| !n.is_empty()) {
                out.push((
                    format!("{prefix}_SERVICE_PORT_{}", env_name(port_name)),
                    p.port.to_string(),
                ));
            }
        }
        for (i, p) in ports.iter().enumerate() {
            let protocol = p.protocol.as_deref().unwrap_or("TCP");
            let lower = protocol.to_lowercase();
            let url = format!("{lower}://{}", join_host_port(ip, p.port));
            if i == 0 {
                out.push((format!("{prefix}_PORT"), url.clone()));
            }
            let port_prefix = format!("{prefix}_PORT_{}_{}", p.port, protocol.to_uppercase());
            out.push((port_prefix.clone(), url));
            out.push((format!("{port_prefix}_PROTO"), lower));
            out.push((format!("{port_prefix}_PORT"), p.port.to_string()));
            out.push((format!("{port_prefix}_ADDR"), ip.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};

    fn svc(ns: &str, name: &str, ip: &str, ports: &[(&str, i32, &str)]) -> Service {
        Service {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some(ip.into()),
                ports: Some(
                    ports
                        .iter()
                        .map(|(n, port, proto)| ServicePort {
                            name: (!n.is_empty()).then(|| n.to_string()),
                            port: *port,
                            protocol: (!proto.is_empty()).then(|| proto.to_string()),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn variables_of_one_service_in_upstream_order() {
        let s = svc(
            "ns",
            "my-db",
            "10.0.0.7",
            &[("sql", 5432, "TCP"), ("", 53, "UDP")],
        );
        let got = from_services(vec![&s]);
        let want: Vec<(String, String)> = [
            ("MY_DB_SERVICE_HOST", "10.0.0.7"),
            ("MY_DB_SERVICE_PORT", "5432"),
            ("MY_DB_SERVICE_PORT_SQL", "5432"),
            ("MY_DB_PORT", "tcp://10.0.0.7:5432"),
            ("MY_DB_PORT_5432_TCP", "tcp://10.0.0.7:5432"),
            ("MY_DB_PORT_5432_TCP_PROTO", "tcp"),
            ("MY_DB_PORT_5432_TCP_PORT", "5432"),
            ("MY_DB_PORT_5432_TCP_ADDR", "10.0.0.7"),
            ("MY_DB_PORT_53_UDP", "udp://10.0.0.7:53"),
            ("MY_DB_PORT_53_UDP_PROTO", "udp"),
            ("MY_DB_PORT_53_UDP_PORT", "53"),
            ("MY_DB_PORT_53_UDP_ADDR", "10.0.0.7"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn ipv6_addresses_are_bracketed_in_urls() {
        let s = svc("ns", "v6", "fd00::10", &[("", 80, "")]);
        let got = from_services(vec![&s]);
        assert!(got.contains(&("V6_PORT".into(), "tcp://[fd00::10]:80".into())));
    }

    #[test]
    fn which_services_a_pod_sees() {
        let all = [
            svc(
                "default",
                "kubernetes",
                "10.0.0.1",
                &[("https", 443, "TCP")],
            ),
            svc("default", "other", "10.0.0.2", &[("", 80, "TCP")]),
            svc("app", "web", "10.0.0.3", &[("", 80, "TCP")]),
            svc("app", "headless", "None", &[("", 80, "TCP")]),
            svc("app", "external", "", &[]),
            svc("elsewhere", "web2", "10.0.0.4", &[("", 80, "TCP")]),
        ];
        let names = |links: bool, ns: &str| -> Vec<String> {
            visible_services(all.iter(), ns, links)
                .iter()
                .filter_map(|s| s.metadata.name.clone())
                .collect()
        };
        assert_eq!(names(true, "app"), ["kubernetes", "web"]);
        // Without service links only the master Service remains.
        assert_eq!(names(false, "app"), ["kubernetes"]);
        // A pod in default sees default's Services.
        assert_eq!(names(true, "default"), ["kubernetes", "other"]);
    }

    #[test]
    fn a_kubernetes_service_in_the_pods_namespace_wins() {
        let all = [
            svc(
                "default",
                "kubernetes",
                "10.0.0.1",
                &[("https", 443, "TCP")],
            ),
            svc("app", "kubernetes", "10.0.0.9", &[("", 80, "TCP")]),
        ];
        let seen = visible_services(all.iter(), "app", true);
        assert_eq!(seen.len(), 1);
        assert_eq!(cluster_ip(seen[0]), Some("10.0.0.9"));
    }
}
