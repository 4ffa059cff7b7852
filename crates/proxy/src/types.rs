//! What the proxier needs to know about Services and their endpoints,
//! distilled from the API objects (upstream's `pkg/proxy/serviceport.go`,
//! `servicechangetracker.go`, `endpoint.go` and `endpointslicecache.go`).
//! Only IPv4 is handled: the `ip` family table.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// What the rules depend on besides the service map (the proxier's
/// configuration, in both modes).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `--cluster-cidr`: ClusterIP traffic from outside it is masqueraded.
    pub cluster_cidr: Option<String>,
    /// `--masquerade-all`.
    pub masquerade_all: bool,
    /// The addresses NodePorts answer on (`--nodeport-addresses`; by
    /// default the node's primary IP in nftables mode). Empty: every local
    /// address — except loopback in nftables mode, including it in
    /// iptables mode, like upstream's.
    pub nodeport_ips: Vec<Ipv4Addr>,
}

/// A transport protocol as nftables names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn parse(s: Option<&str>) -> Option<Self> {
        match s.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }
    /// nftables' keyword, lowercase.
    pub fn nft(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// `namespace/name:port-name` of one Service port (upstream's
/// `ServicePortName`); ordering makes rule output deterministic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServicePortName {
    pub namespace: String,
    pub name: String,
    pub port: String,
    pub protocol: Protocol,
}

impl fmt::Display for ServicePortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Upstream's chain-name form: ns/name/proto/portname.
        write!(
            f,
            "{}/{}/{}/{}",
            self.namespace,
            self.name,
            self.protocol.nft(),
            self.port
        )
    }
}

/// One Service port, as the proxier programs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    pub cluster_ip: Option<Ipv4Addr>,
    pub port: u16,
    pub node_port: Option<u16>,
    pub external_ips: Vec<Ipv4Addr>,
    pub load_balancer_ips: Vec<Ipv4Addr>,
    /// `sessionAffinity: ClientIP`: the timeout in seconds.
    pub affinity_timeout: Option<u32>,
    /// `externalTrafficPolicy: Local` (NodePort/LoadBalancer only).
    pub external_policy_local: bool,
    /// `internalTrafficPolicy: Local`.
    pub internal_policy_local: bool,
}

impl ServicePort {
    /// Whether the port is reachable from outside the cluster network.
    pub fn has_external(&self) -> bool {
        self.node_port.is_some()
            || !self.external_ips.is_empty()
            || !self.load_balancer_ips.is_empty()
    }
}

/// One endpoint of a Service port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
    /// Whether the endpoint is on this node.
    pub local: bool,
}

/// The Service ports of a Service, or why it is not programmed. Headless
/// Services and ExternalName Services have no ports for the proxier.
pub fn service_ports(svc: &Service) -> Vec<(ServicePortName, ServicePort)> {
    let (Some(ns), Some(name)) = (&svc.metadata.namespace, &svc.metadata.name) else {
        return Vec::new();
    };
    let Some(spec) = &svc.spec else {
        return Vec::new();
    };
    if spec.type_.as_deref() == Some("ExternalName") {
        return Vec::new();
    }
    let cluster_ip = spec
        .cluster_ip
        .as_deref()
        .filter(|ip| *ip != "None")
        .and_then(|ip| ip.parse::<Ipv4Addr>().ok());
    if cluster_ip.is_none() {
        // Headless or IPv6: nothing to program in the ip table.
        return Vec::new();
    }
    let v4 = |ips: &mut dyn Iterator<Item = &String>| -> Vec<Ipv4Addr> {
        ips.filter_map(|ip| ip.parse().ok()).collect()
    };
    let external_ips = v4(&mut spec.external_ips.iter().flatten());
    let lb_type = spec.type_.as_deref() == Some("LoadBalancer");
    let load_balancer_ips = if lb_type {
        let ingress = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref());
        v4(&mut ingress.into_iter().flatten().filter_map(|i| i.ip.as_ref()))
    } else {
        Vec::new()
    };
    let affinity_timeout = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .filter(|t| *t > 0)
            .map(|t| t as u32)
            .unwrap_or(10800)
    });
    let external_type = matches!(spec.type_.as_deref(), Some("NodePort" | "LoadBalancer"));
    let mut out = Vec::new();
    for p in spec.ports.iter().flatten() {
        let Some(protocol) = Protocol::parse(p.protocol.as_deref()) else {
            continue;
        };
        let Ok(port) = u16::try_from(p.port) else {
            continue;
        };
        if port == 0 {
            continue;
        }
        let node_port = if external_type {
            p.node_port
                .and_then(|n| u16::try_from(n).ok())
                .filter(|n| *n > 0)
        } else {
            None
        };
        let spn = ServicePortName {
            namespace: ns.clone(),
            name: name.clone(),
            port: p.name.clone().unwrap_or_default(),
            protocol,
        };
        let info = ServicePort {
            cluster_ip,
            port,
            node_port,
            external_ips: external_ips.clone(),
            load_balancer_ips: load_balancer_ips.clone(),
            affinity_timeout,
            external_policy_local: (external_type || !external_ips.is_empty())
                && spec.external_traffic_policy.as_deref() == Some("Local"),
            internal_policy_local: spec.internal_traffic_policy.as_deref() == Some("Local"),
        };
        out.push((spn, info));
    }
    out
}

/// The endpoints an EndpointSlice contributes, by Service port name.
/// Slices not owned by a Service (no `kubernetes.io/service-name` label)
/// and non-IPv4 slices contribute nothing.
pub fn slice_endpoints(slice: &EndpointSlice, node_name: &str) -> Vec<(ServicePortName, Endpoint)> {
    if slice.address_type != "IPv4" {
        return Vec::new();
    }
    let Some(ns) = &slice.metadata.namespace else {
        return Vec::new();
    };
    let Some(service) = slice
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("kubernetes.io/service-name"))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for p in slice.ports.iter().flatten() {
        let Some(protocol) = Protocol::parse(p.protocol.as_deref()) else {
            continue;
        };
        let Some(port) = p
            .port
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0)
        else {
            continue;
        };
        let spn = ServicePortName {
            namespace: ns.clone(),
            name: service.clone(),
            port: p.name.clone().unwrap_or_default(),
            protocol,
        };
        for e in &slice.endpoints {
            let Some(ip) = e.addresses.first().and_then(|a| a.parse::<Ipv4Addr>().ok()) else {
                continue;
            };
            let c = e.conditions.as_ref();
            let ready = c.and_then(|c| c.ready).unwrap_or(true);
            let serving = c.and_then(|c| c.serving).unwrap_or(ready);
            let terminating = c.and_then(|c| c.terminating).unwrap_or(false);
            out.push((
                spn.clone(),
                Endpoint {
                    ip,
                    port,
                    ready,
                    serving,
                    terminating,
                    local: e.node_name.as_deref() == Some(node_name),
                },
            ));
        }
    }
    out
}

/// Every Service port with its endpoints, deduplicated and sorted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ServiceMap {
    pub ports: BTreeMap<ServicePortName, ServicePort>,
    pub endpoints: BTreeMap<ServicePortName, Vec<Endpoint>>,
}

impl ServiceMap {
    pub fn build<'a>(
        services: impl IntoIterator<Item = &'a Service>,
        slices: impl IntoIterator<Item = &'a EndpointSlice>,
        node_name: &str,
    ) -> Self {
        let mut map = ServiceMap::default();
        for svc in services {
            map.ports.extend(service_ports(svc));
        }
        for slice in slices {
            for (spn, ep) in slice_endpoints(slice, node_name) {
                if map.ports.contains_key(&spn) {
                    map.endpoints.entry(spn).or_default().push(ep);
                }
            }
        }
        for eps in map.endpoints.values_mut() {
            eps.sort();
            // The same address in two slices (during a handover) counts once.
            eps.dedup_by(|a, b| a.ip == b.ip && a.port == b.port);
        }
        map
    }
}

/// Upstream's `CategorizeEndpoints` without topology hints: the endpoints
/// for cluster traffic and for traffic that must stay on this node. Ready
/// endpoints are used; when none are ready, serving terminating ones are
/// (so connections drain gracefully).
pub fn categorize(port: &ServicePort, endpoints: &[Endpoint]) -> (Vec<Endpoint>, Vec<Endpoint>) {
    fn usable(eps: &[&Endpoint]) -> Vec<Endpoint> {
        let ready: Vec<Endpoint> = eps
            .iter()
            .filter(|e| e.ready)
            .map(|e| (*e).clone())
            .collect();
        if !ready.is_empty() {
            return ready;
        }
        eps.iter()
            .filter(|e| e.serving && e.terminating)
            .map(|e| (*e).clone())
            .collect()
    }
    let all: Vec<&Endpoint> = endpoints.iter().collect();
    let local: Vec<&Endpoint> = endpoints.iter().filter(|e| e.local).collect();
    let cluster = if port.internal_policy_local {
        usable(&local)
    } else {
        usable(&all)
    };
    let local = if port.external_policy_local || port.internal_policy_local {
        usable(&local)
    } else {
        Vec::new()
    };
    (cluster, local)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(v: serde_json::Value) -> Service {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn cluster_ip_node_port_and_affinity_are_read() {
        let s = svc(json!({"metadata": {"namespace": "a", "name": "web"},
            "spec": {"type": "NodePort", "clusterIP": "10.0.0.10", "sessionAffinity": "ClientIP",
                     "externalTrafficPolicy": "Local",
                     "ports": [{"name": "http", "port": 80, "nodePort": 30080},
                               {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053}]}}));
        let ports = service_ports(&s);
        assert_eq!(ports.len(), 2);
        assert_eq!(ports[0].0.to_string(), "a/web/tcp/http");
        assert_eq!(ports[0].1.node_port, Some(30080));
        assert_eq!(ports[0].1.affinity_timeout, Some(10800));
        assert!(ports[0].1.external_policy_local);
        assert_eq!(ports[1].0.protocol, Protocol::Udp);
    }

    #[test]
    fn headless_external_name_and_bad_ports_are_skipped() {
        let headless = svc(json!({"metadata": {"namespace": "a", "name": "h"},
            "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}));
        assert!(service_ports(&headless).is_empty());
        let ext = svc(json!({"metadata": {"namespace": "a", "name": "e"},
            "spec": {"type": "ExternalName", "externalName": "example.com"}}));
        assert!(service_ports(&ext).is_empty());
        let bad = svc(json!({"metadata": {"namespace": "a", "name": "b"},
            "spec": {"clusterIP": "10.0.0.3", "ports": [{"port": 70000}, {"port": 80, "protocol": "ICMP"}, {"port": 81}]}}));
        let ports = service_ports(&bad);
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].1.port, 81);
    }

    #[test]
    fn terminating_endpoints_are_a_fallback_only() {
        let port = service_ports(&svc(json!({"metadata": {"namespace": "a", "name": "w"},
            "spec": {"clusterIP": "10.0.0.3", "ports": [{"port": 80}]}})))[0]
            .1
            .clone();
        let ep = |ip: &str, ready, serving, terminating| Endpoint {
            ip: ip.parse().unwrap(),
            port: 8080,
            ready,
            serving,
            terminating,
            local: false,
        };
        let (cluster, local) = categorize(
            &port,
            &[
                ep("10.88.0.2", true, true, false),
                ep("10.88.0.3", false, true, true),
            ],
        );
        assert_eq!(cluster.len(), 1);
        assert!(local.is_empty());
        let (cluster, _) = categorize(
            &port,
            &[
                ep("10.88.0.3", false, true, true),
                ep("10.88.0.4", false, false, false),
            ],
        );
        assert_eq!(cluster, vec![ep("10.88.0.3", false, true, true)]);
    }

    #[test]
    fn slices_map_to_service_ports_by_name() {
        let slice: EndpointSlice = serde_json::from_value(json!({
            "metadata": {"namespace": "a", "name": "w-1", "labels": {"kubernetes.io/service-name": "w"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["10.88.0.2"], "conditions": {"ready": true}, "nodeName": "n1"},
                          {"addresses": ["10.88.0.3"], "conditions": {"ready": false}, "nodeName": "n2"}]}))
        .unwrap();
        let eps = slice_endpoints(&slice, "n1");
        assert_eq!(eps.len(), 2);
        assert_eq!(eps[0].0.to_string(), "a/w/tcp/http");
        assert!(eps[0].1.local && eps[0].1.ready);
        assert!(!eps[1].1.local && !eps[1].1.ready && !eps[1].1.serving);
    }
}
