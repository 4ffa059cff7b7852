//! Clearing stale UDP conntrack entries (upstream's
//! `pkg/proxy/conntrack/cleanup.go`): UDP has no connection to end, so a
//! flow NAT'd to an endpoint that went away keeps going there, and packets
//! rejected while a Service had no endpoints stay rejected, until the
//! kernel's entry is deleted. After each successful sync the proxier works
//! out which flows are stale and deletes them with `conntrack -D`.

use std::net::Ipv4Addr;

use crate::types::{categorize, Protocol, ServiceMap};

/// A set of conntrack entries to delete.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum StaleFlow {
    /// Flows to a Service IP that just got endpoints.
    ToServiceIp { ip: Ipv4Addr, port: u16 },
    /// Flows to a NodePort that just got endpoints.
    ToNodePort { port: u16 },
    /// Flows to a Service IP NAT'd to an endpoint that is gone.
    ToRemovedEndpoint {
        service_ip: Ipv4Addr,
        endpoint: Ipv4Addr,
    },
    /// Flows to a NodePort NAT'd to an endpoint that is gone.
    NodePortToRemovedEndpoint { port: u16, endpoint: Ipv4Addr },
}

impl StaleFlow {
    /// The `conntrack` arguments that delete these flows.
    pub fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = vec!["-D".into(), "-p".into(), "udp".into()];
        match self {
            StaleFlow::ToServiceIp { ip, port } => a.extend([
                "--orig-dst".into(),
                ip.to_string(),
                "--dport".into(),
                port.to_string(),
            ]),
            StaleFlow::ToNodePort { port } => a.extend(["--dport".into(), port.to_string()]),
            StaleFlow::ToRemovedEndpoint {
                service_ip,
                endpoint,
            } => a.extend([
                "--orig-dst".into(),
                service_ip.to_string(),
                "--dst-nat".into(),
                endpoint.to_string(),
            ]),
            StaleFlow::NodePortToRemovedEndpoint { port, endpoint } => a.extend([
                "--dport".into(),
                port.to_string(),
                "--dst-nat".into(),
                endpoint.to_string(),
            ]),
        }
        a
    }
}

/// The flows made stale by going from `old` to `new`.
pub fn stale_udp(old: &ServiceMap, new: &ServiceMap) -> Vec<StaleFlow> {
    let mut out = Vec::new();
    let empty = Vec::new();
    for (spn, port) in new
        .ports
        .iter()
        .filter(|(s, _)| s.protocol == Protocol::Udp)
    {
        let now: Vec<Ipv4Addr> = categorize(port, new.endpoints.get(spn).unwrap_or(&empty))
            .0
            .iter()
            .map(|e| e.ip)
            .collect();
        let before: Vec<Ipv4Addr> = match old.ports.get(spn) {
            Some(p) => categorize(p, old.endpoints.get(spn).unwrap_or(&empty))
                .0
                .iter()
                .map(|e| e.ip)
                .collect(),
            None => Vec::new(),
        };
        let ips: Vec<Ipv4Addr> = port
            .cluster_ip
            .iter()
            .chain(&port.external_ips)
            .chain(&port.load_balancer_ips)
            .copied()
            .collect();
        if before.is_empty() && !now.is_empty() {
            for ip in &ips {
                out.push(StaleFlow::ToServiceIp {
                    ip: *ip,
                    port: port.port,
                });
            }
            if let Some(np) = port.node_port {
                out.push(StaleFlow::ToNodePort { port: np });
            }
        }
        for gone in before.iter().filter(|ip| !now.contains(ip)) {
            for ip in &ips {
                out.push(StaleFlow::ToRemovedEndpoint {
                    service_ip: *ip,
                    endpoint: *gone,
                });
            }
            if let Some(np) = port.node_port {
                out.push(StaleFlow::NodePortToRemovedEndpoint {
                    port: np,
                    endpoint: *gone,
                });
            }
        }
    }
    // Services removed entirely: their flows to gone endpoints too.
    for (spn, port) in old
        .ports
        .iter()
        .filter(|(s, _)| s.protocol == Protocol::Udp)
    {
        if new.ports.contains_key(spn) {
            continue;
        }
        for e in old.endpoints.get(spn).unwrap_or(&empty) {
            if let Some(ip) = port.cluster_ip {
                out.push(StaleFlow::ToRemovedEndpoint {
                    service_ip: ip,
                    endpoint: e.ip,
                });
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Deletes flows; failures are logged, never fatal (an entry may simply
/// not exist).
pub async fn clear(flows: &[StaleFlow], netns: Option<&str>) {
    for f in flows {
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = tokio::process::Command::new("ip");
                c.args(["netns", "exec", ns, "conntrack"]);
                c
            }
            None => tokio::process::Command::new("conntrack"),
        };
        cmd.args(f.args())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        match cmd.status().await {
            Ok(_) => tracing::debug!(flow = ?f, "cleared stale UDP conntrack entries"),
            Err(e) => tracing::warn!(error = %e, "running conntrack"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Endpoint, ServicePort, ServicePortName};

    fn dns() -> (ServicePortName, ServicePort) {
        (
            ServicePortName {
                namespace: "kube-system".into(),
                name: "kube-dns".into(),
                port: "dns".into(),
                protocol: Protocol::Udp,
            },
            ServicePort {
                cluster_ip: Some("10.0.0.10".parse().unwrap()),
                port: 53,
                node_port: None,
                external_ips: vec![],
                load_balancer_ips: vec![],
                affinity_timeout: None,
                external_policy_local: false,
                internal_policy_local: false,
            },
        )
    }

    fn ep(ip: &str) -> Endpoint {
        Endpoint {
            ip: ip.parse().unwrap(),
            port: 53,
            ready: true,
            serving: true,
            terminating: false,
            local: true,
        }
    }

    #[test]
    fn first_endpoints_and_removed_endpoints_make_flows_stale() {
        let (spn, port) = dns();
        let mut empty = ServiceMap::default();
        empty.ports.insert(spn.clone(), port.clone());
        let mut one = empty.clone();
        one.endpoints.insert(spn.clone(), vec![ep("10.88.0.5")]);
        assert_eq!(
            stale_udp(&empty, &one),
            vec![StaleFlow::ToServiceIp {
                ip: "10.0.0.10".parse().unwrap(),
                port: 53
            }]
        );
        let mut moved = empty.clone();
        moved.endpoints.insert(spn.clone(), vec![ep("10.88.0.6")]);
        assert_eq!(
            stale_udp(&one, &moved),
            vec![StaleFlow::ToRemovedEndpoint {
                service_ip: "10.0.0.10".parse().unwrap(),
                endpoint: "10.88.0.5".parse().unwrap()
            }]
        );
        assert!(stale_udp(&one, &one).is_empty());
        assert_eq!(
            StaleFlow::ToRemovedEndpoint {
                service_ip: "10.0.0.10".parse().unwrap(),
                endpoint: "10.88.0.5".parse().unwrap()
            }
            .args()
            .join(" "),
            "-D -p udp --orig-dst 10.0.0.10 --dst-nat 10.88.0.5"
        );
    }

    #[test]
    fn tcp_services_never_need_clearing() {
        let (mut spn, port) = dns();
        spn.protocol = Protocol::Tcp;
        let mut a = ServiceMap::default();
        a.ports.insert(spn.clone(), port);
        let mut b = a.clone();
        b.endpoints.insert(spn, vec![ep("10.88.0.5")]);
        assert!(stale_udp(&a, &b).is_empty());
    }
}
