//! The whole `ip kube-proxy` table for a service map, as one `nft -f`
//! transaction (upstream's `syncProxyRules` in
//! `pkg/proxy/nftables/proxier.go`, same chain, set and map names): base
//! chains jump to `services`, whose verdict maps send each ClusterIP,
//! external IP and NodePort to a per-service chain that load-balances with
//! `numgen` over per-endpoint chains doing the DNAT; Services without
//! endpoints are rejected by the filter chains; traffic marked 0x4000 is
//! masqueraded on the way out.

use std::fmt::Write;
use std::net::Ipv4Addr;

use super::names;
use crate::types::{categorize, Endpoint, ServiceMap, ServicePort, ServicePortName};

/// The table this proxier owns; nothing outside it is ever touched.
pub const TABLE: &str = "kube-proxy";
const MASQ_MARK: &str = "0x4000";

/// What the rules depend on besides the service map.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `--cluster-cidr`: ClusterIP traffic from outside it is masqueraded.
    pub cluster_cidr: Option<String>,
    /// `--masquerade-all`.
    pub masquerade_all: bool,
    /// The addresses NodePorts answer on (`--nodeport-addresses`, by
    /// default the node's primary IP). Empty: every local address except
    /// loopback.
    pub nodeport_ips: Vec<Ipv4Addr>,
}

fn line(out: &mut String, indent: usize, text: &str) {
    for _ in 0..indent {
        out.push('\t');
    }
    out.push_str(text);
    out.push('\n');
}

fn elements(out: &mut String, items: &[String]) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(out, "\t\telements = {{ {} }}", items.join(",\n\t\t\t"));
}

/// `numgen random mod N vmap { 0 : goto a, 1 : goto b }`, or the single
/// `goto` for one endpoint.
fn balance(out: &mut String, spn: &ServicePortName, eps: &[Endpoint]) {
    if eps.len() == 1 {
        let _ = writeln!(
            out,
            "\t\tgoto {}",
            names::endpoint_chain(spn, eps[0].ip, eps[0].port)
        );
        return;
    }
    let targets: Vec<String> = eps
        .iter()
        .enumerate()
        .map(|(i, e)| format!("{i} : goto {}", names::endpoint_chain(spn, e.ip, e.port)))
        .collect();
    let _ = writeln!(
        out,
        "\t\tnumgen random mod {} vmap {{ {} }}",
        eps.len(),
        targets.join(" , ")
    );
}

/// Affinity: a client seen recently goes back to the same endpoint.
fn affinity_lookups(out: &mut String, spn: &ServicePortName, port: &ServicePort, eps: &[Endpoint]) {
    if port.affinity_timeout.is_none() {
        return;
    }
    for e in eps {
        let _ = writeln!(
            out,
            "\t\tip saddr @{} goto {}",
            names::affinity_set(spn, e.ip, e.port),
            names::endpoint_chain(spn, e.ip, e.port)
        );
    }
}

/// The full script: create-then-delete makes the table's removal safe
/// when it does not exist yet, and everything is one atomic transaction.
pub fn render(map: &ServiceMap, settings: &Settings) -> String {
    let mut out = String::with_capacity(4096 + map.ports.len() * 1024);
    let _ = writeln!(
        out,
        "add table ip {TABLE} {{ comment \"rules for kube-proxy\" ; }}"
    );
    let _ = writeln!(out, "delete table ip {TABLE}");
    let _ = writeln!(out, "table ip {TABLE} {{");
    line(&mut out, 1, "comment \"rules for kube-proxy\"");
    base_chains(&mut out, settings);

    let mut service_ips = Vec::new();
    let mut service_nodeports = Vec::new();
    let mut no_endpoint_services = Vec::new();
    let mut no_endpoint_nodeports = Vec::new();
    let mut cluster_ips = Vec::new();
    let mut chains = String::new();
    let mut sets = String::new();
    let empty = Vec::new();

    for (spn, port) in &map.ports {
        let all = map.endpoints.get(spn).unwrap_or(&empty);
        let (cluster, local) = categorize(port, all);
        let proto = spn.protocol.nft();
        let svc_chain = names::service_chain(spn);
        let ext_chain = names::external_chain(spn);
        let external_eps = if port.external_policy_local {
            &local
        } else {
            &cluster
        };
        let mut used: Vec<&Endpoint> = cluster.iter().collect();
        for e in external_eps {
            if !used.contains(&e) {
                used.push(e);
            }
        }

        if let Some(ip) = port.cluster_ip {
            cluster_ips.push(ip.to_string());
            if cluster.is_empty() {
                no_endpoint_services.push(format!(
                    "{ip} . {proto} . {} : goto reject-chain",
                    port.port
                ));
            } else {
                service_ips.push(format!("{ip} . {proto} . {} : goto {svc_chain}", port.port));
            }
        }
        let external_verdict = if external_eps.is_empty() {
            // Upstream: Local policy without local endpoints drops,
            // no endpoints at all rejects.
            if port.external_policy_local && !cluster.is_empty() {
                None
            } else {
                Some("goto reject-chain")
            }
        } else {
            None
        };
        for ip in port.external_ips.iter().chain(&port.load_balancer_ips) {
            if external_eps.is_empty() {
                let v = external_verdict.unwrap_or("drop");
                no_endpoint_services.push(format!("{ip} . {proto} . {} : {v}", port.port));
            } else {
                service_ips.push(format!("{ip} . {proto} . {} : goto {ext_chain}", port.port));
            }
        }
        if let Some(np) = port.node_port {
            if external_eps.is_empty() {
                let v = external_verdict.unwrap_or("drop");
                no_endpoint_nodeports.push(format!("{proto} . {np} : {v}"));
            } else {
                service_nodeports.push(format!("{proto} . {np} : goto {ext_chain}"));
            }
        }

        if !cluster.is_empty() && port.cluster_ip.is_some() {
            let _ = writeln!(chains, "\tchain {svc_chain} {{");
            if let Some(ip) = port.cluster_ip {
                if settings.masquerade_all {
                    let _ = writeln!(
                        chains,
                        "\t\tip daddr {ip} {proto} dport {} jump mark-for-masquerade",
                        port.port
                    );
                } else if let Some(cidr) = &settings.cluster_cidr {
                    let _ = writeln!(
                        chains,
                        "\t\tip daddr {ip} {proto} dport {} ip saddr != {cidr} jump mark-for-masquerade",
                        port.port
                    );
                }
            }
            affinity_lookups(&mut chains, spn, port, &cluster);
            balance(&mut chains, spn, &cluster);
            chains.push_str("\t}\n");
        }
        if port.has_external() && !external_eps.is_empty() {
            let _ = writeln!(chains, "\tchain {ext_chain} {{");
            if port.external_policy_local {
                // Traffic from this node itself may use any endpoint.
                if !cluster.is_empty() {
                    chains.push_str("\t\tfib saddr type local jump mark-for-masquerade comment \"masquerade local traffic\"\n");
                    let _ = writeln!(
                        chains,
                        "\t\tfib saddr type local goto {svc_chain} comment \"short-circuit local traffic\""
                    );
                }
                affinity_lookups(&mut chains, spn, port, &local);
                balance(&mut chains, spn, &local);
            } else {
                chains.push_str("\t\tjump mark-for-masquerade\n");
                let _ = writeln!(chains, "\t\tgoto {svc_chain}");
            }
            chains.push_str("\t}\n");
        }
        for e in used {
            let ep_chain = names::endpoint_chain(spn, e.ip, e.port);
            let _ = writeln!(chains, "\tchain {ep_chain} {{");
            let _ = writeln!(chains, "\t\tip saddr {} jump mark-for-masquerade", e.ip);
            if let Some(timeout) = port.affinity_timeout {
                let set = names::affinity_set(spn, e.ip, e.port);
                let _ = writeln!(chains, "\t\tupdate @{set} {{ ip saddr }}");
                let _ = writeln!(
                    sets,
                    "\tset {set} {{\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n\t\ttimeout {timeout}s\n\t}}"
                );
            }
            let _ = writeln!(
                chains,
                "\t\tmeta l4proto {proto} dnat to {}:{}",
                e.ip, e.port
            );
            chains.push_str("\t}\n");
        }
    }

    cluster_ips.sort();
    cluster_ips.dedup();
    out.push_str("\tset cluster-ips {\n\t\ttype ipv4_addr\n\t\tcomment \"Active ClusterIPs\"\n");
    elements(&mut out, &cluster_ips);
    out.push_str("\t}\n");
    out.push_str("\tset nodeport-ips {\n\t\ttype ipv4_addr\n\t\tcomment \"IPs that accept NodePort traffic\"\n");
    let np_ips: Vec<String> = settings
        .nodeport_ips
        .iter()
        .map(|i| i.to_string())
        .collect();
    elements(&mut out, &np_ips);
    out.push_str("\t}\n");
    for (name, key, comment, items) in [
        (
            "service-ips",
            "ipv4_addr . inet_proto . inet_service",
            "ClusterIP, ExternalIP and LoadBalancer IP traffic",
            &service_ips,
        ),
        (
            "service-nodeports",
            "inet_proto . inet_service",
            "NodePort traffic",
            &service_nodeports,
        ),
        (
            "no-endpoint-services",
            "ipv4_addr . inet_proto . inet_service",
            "vmap to drop or reject packets to services with no endpoints",
            &no_endpoint_services,
        ),
        (
            "no-endpoint-nodeports",
            "inet_proto . inet_service",
            "vmap to drop or reject packets to service nodeports with no endpoints",
            &no_endpoint_nodeports,
        ),
    ] {
        let _ = writeln!(
            out,
            "\tmap {name} {{\n\t\ttype {key} : verdict\n\t\tcomment \"{comment}\""
        );
        elements(&mut out, items);
        out.push_str("\t}\n");
    }
    out.push_str(&sets);
    out.push_str(&chains);
    out.push_str("}\n");
    out
}

fn base_chains(out: &mut String, settings: &Settings) {
    let nodeport_match = if settings.nodeport_ips.is_empty() {
        "fib daddr type local ip daddr != 127.0.0.0/8"
    } else {
        "ip daddr @nodeport-ips"
    };
    let _ = write!(
        out,
        "\tchain filter-input {{
\t\ttype filter hook input priority -110; policy accept;
\t\tct state new jump nodeport-endpoints-check
\t\tct state new jump service-endpoints-check
\t}}
\tchain filter-forward {{
\t\ttype filter hook forward priority -110; policy accept;
\t\tct state new jump service-endpoints-check
\t\tct state new jump cluster-ips-check
\t}}
\tchain filter-output {{
\t\ttype filter hook output priority -110; policy accept;
\t\tct state new jump service-endpoints-check
\t}}
\tchain filter-output-post-dnat {{
\t\ttype filter hook output priority -90; policy accept;
\t\tct state new jump cluster-ips-check
\t}}
\tchain nat-prerouting {{
\t\ttype nat hook prerouting priority -100; policy accept;
\t\tjump services
\t}}
\tchain nat-output {{
\t\ttype nat hook output priority -100; policy accept;
\t\tjump services
\t}}
\tchain nat-postrouting {{
\t\ttype nat hook postrouting priority 100; policy accept;
\t\tjump masquerading
\t}}
\tchain masquerading {{
\t\tmeta mark & {MASQ_MARK} == 0 return
\t\tmeta mark set meta mark ^ {MASQ_MARK}
\t\tmasquerade fully-random
\t}}
\tchain mark-for-masquerade {{
\t\tmeta mark set meta mark | {MASQ_MARK}
\t}}
\tchain services {{
\t\tip daddr . meta l4proto . th dport vmap @service-ips
\t\t{nodeport_match} meta l4proto . th dport vmap @service-nodeports
\t}}
\tchain service-endpoints-check {{
\t\tip daddr . meta l4proto . th dport vmap @no-endpoint-services
\t}}
\tchain nodeport-endpoints-check {{
\t\t{nodeport_match} meta l4proto . th dport vmap @no-endpoint-nodeports
\t}}
\tchain reject-chain {{
\t\tcomment \"helper for @no-endpoint-services / @no-endpoint-nodeports\"
\t\treject
\t}}
\tchain cluster-ips-check {{
\t\tip daddr @cluster-ips reject comment \"Reject traffic to invalid ports of ClusterIPs\"
\t}}
"
    );
}

/// The script that removes everything this proxier created (`--cleanup`).
pub fn cleanup() -> String {
    format!("add table ip {TABLE}\ndelete table ip {TABLE}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Endpoint, Protocol, ServicePort};

    fn spn(name: &str, port: &str) -> ServicePortName {
        ServicePortName {
            namespace: "ns1".into(),
            name: name.into(),
            port: port.into(),
            protocol: Protocol::Tcp,
        }
    }

    fn port(ip: &str, p: u16) -> ServicePort {
        ServicePort {
            cluster_ip: Some(ip.parse().unwrap()),
            port: p,
            node_port: None,
            external_ips: vec![],
            load_balancer_ips: vec![],
            affinity_timeout: None,
            external_policy_local: false,
            internal_policy_local: false,
        }
    }

    fn ep(ip: &str, port: u16, local: bool) -> Endpoint {
        Endpoint {
            ip: ip.parse().unwrap(),
            port,
            ready: true,
            serving: true,
            terminating: false,
            local,
        }
    }

    fn settings() -> Settings {
        Settings {
            cluster_cidr: Some("10.88.0.0/16".into()),
            masquerade_all: false,
            nodeport_ips: vec!["192.168.1.5".parse().unwrap()],
        }
    }

    #[test]
    fn cluster_ip_load_balances_over_endpoint_chains() {
        let mut map = ServiceMap::default();
        let s = spn("svc1", "p80");
        map.ports.insert(s.clone(), port("10.0.0.41", 80));
        map.endpoints.insert(
            s.clone(),
            vec![ep("10.88.1.2", 8080, false), ep("10.88.1.3", 8080, false)],
        );
        let out = render(&map, &settings());
        let svc = names::service_chain(&s);
        let e1 = names::endpoint_chain(&s, "10.88.1.2".parse().unwrap(), 8080);
        let e2 = names::endpoint_chain(&s, "10.88.1.3".parse().unwrap(), 8080);
        assert!(
            out.contains(&format!("10.0.0.41 . tcp . 80 : goto {svc}")),
            "{out}"
        );
        assert!(out.contains(&format!(
            "ip daddr 10.0.0.41 tcp dport 80 ip saddr != 10.88.0.0/16 jump mark-for-masquerade"
        )));
        assert!(out.contains(&format!(
            "numgen random mod 2 vmap {{ 0 : goto {e1} , 1 : goto {e2} }}"
        )));
        assert!(out.contains(&format!("chain {e1} {{\n\t\tip saddr 10.88.1.2 jump mark-for-masquerade\n\t\tmeta l4proto tcp dnat to 10.88.1.2:8080\n")));
        assert!(out.contains("elements = { 10.0.0.41 }"));
        assert!(!out.contains("reject-chain\n\t\telements"));
    }

    #[test]
    fn services_without_endpoints_are_rejected_and_get_no_chains() {
        let mut map = ServiceMap::default();
        let s = spn("empty", "");
        let mut p = port("10.0.0.42", 80);
        p.node_port = Some(30080);
        map.ports.insert(s.clone(), p);
        let out = render(&map, &settings());
        assert!(
            out.contains("10.0.0.42 . tcp . 80 : goto reject-chain"),
            "{out}"
        );
        assert!(out.contains("tcp . 30080 : goto reject-chain"), "{out}");
        assert!(!out.contains(&format!("chain {}", names::service_chain(&s))));
    }

    #[test]
    fn node_ports_with_local_policy_use_local_endpoints_and_drop_without() {
        let mut map = ServiceMap::default();
        let s = spn("np", "http");
        let mut p = port("10.0.0.43", 80);
        p.node_port = Some(30081);
        p.external_policy_local = true;
        map.ports.insert(s.clone(), p.clone());
        map.endpoints.insert(
            s.clone(),
            vec![ep("10.88.1.2", 8080, true), ep("10.88.2.2", 8080, false)],
        );
        let out = render(&map, &settings());
        let ext = names::external_chain(&s);
        let local = names::endpoint_chain(&s, "10.88.1.2".parse().unwrap(), 8080);
        assert!(out.contains(&format!("tcp . 30081 : goto {ext}")));
        assert!(out.contains(&format!(
            "chain {ext} {{\n\t\tfib saddr type local jump mark-for-masquerade"
        )));
        assert!(out.contains(&format!("\t\tgoto {local}\n\t}}")), "{out}");
        assert!(
            out.contains("ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports")
        );

        // No local endpoint: external traffic is dropped, cluster traffic still flows.
        map.endpoints
            .insert(s.clone(), vec![ep("10.88.2.2", 8080, false)]);
        let out = render(&map, &settings());
        assert!(out.contains("tcp . 30081 : drop"), "{out}");
        assert!(out.contains(&format!(
            "10.0.0.43 . tcp . 80 : goto {}",
            names::service_chain(&s)
        )));
    }

    #[test]
    fn client_ip_affinity_remembers_the_endpoint() {
        let mut map = ServiceMap::default();
        let s = spn("sticky", "");
        let mut p = port("10.0.0.44", 80);
        p.affinity_timeout = Some(600);
        map.ports.insert(s.clone(), p);
        map.endpoints
            .insert(s.clone(), vec![ep("10.88.1.2", 80, false)]);
        let out = render(&map, &settings());
        let set = names::affinity_set(&s, "10.88.1.2".parse().unwrap(), 80);
        assert!(out.contains(&format!(
            "set {set} {{\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n\t\ttimeout 600s"
        )));
        assert!(out.contains(&format!("ip saddr @{set} goto")));
        assert!(out.contains(&format!("update @{set} {{ ip saddr }}")));
    }

    #[test]
    fn the_same_map_renders_the_same_text() {
        let mut map = ServiceMap::default();
        for i in 0..20u16 {
            let s = spn(&format!("s{i}"), "");
            map.ports
                .insert(s.clone(), port(&format!("10.0.1.{}", i + 1), 80));
            map.endpoints
                .insert(s, vec![ep(&format!("10.88.3.{}", i + 1), 80, false)]);
        }
        assert_eq!(render(&map, &settings()), render(&map, &settings()));
    }
}
