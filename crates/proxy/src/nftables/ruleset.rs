//! The whole `ip kube-proxy` table for a service map, as one `nft -f`
//! transaction (upstream's `syncProxyRules` in
//! `pkg/proxy/nftables/proxier.go`, same chain, set and map names): base
//! chains jump to `services`, whose verdict maps send each ClusterIP,
//! external IP and NodePort to a per-service chain that load-balances with
//! `numgen` over per-endpoint chains doing the DNAT; Services without
//! endpoints are rejected by the filter chains; traffic marked 0x4000 is
//! masqueraded on the way out.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::names;
use crate::types::{categorize, Endpoint, ServiceMap, ServicePort, ServicePortName};

/// The table this proxier owns; nothing outside it is ever touched.
pub const TABLE: &str = "kube-proxy";
const MASQ_MARK: &str = "0x4000";

pub use crate::types::Settings;

/// Chain name → its rules, in order.
pub type Chains = BTreeMap<String, Vec<String>>;

/// Everything the Services add to the table: verdict-map and set
/// elements, regular chains, and ClientIP-affinity sets (name → timeout).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSet {
    /// `(set or map, element)`.
    pub elements: BTreeSet<(&'static str, String)>,
    pub chains: Chains,
    pub affinity_sets: BTreeMap<String, u32>,
    /// The base chains; a change means a full sync.
    pub base: String,
    /// The settings the rules were made with; likewise.
    pub settings: String,
}

/// Load-balancing with one `numgen` rule per endpoint — rule `i` of `n`
/// takes 1/(n-i) of what reaches it, the last takes the rest. Anonymous
/// verdict maps would be shorter, but the kernel makes adding thousands of
/// them quadratic. Without ClientIP affinity the rules DNAT directly:
/// every chain costs kernel validation time on each later transaction, so
/// per-endpoint chains exist only where affinity needs them.
fn balance(rules: &mut Vec<String>, spn: &ServicePortName, port: &ServicePort, eps: &[Endpoint]) {
    let n = eps.len();
    let proto = spn.protocol.nft();
    for (i, e) in eps.iter().enumerate() {
        let target = if port.affinity_timeout.is_some() {
            format!("goto {}", names::endpoint_chain(spn, e.ip, e.port))
        } else {
            format!("meta l4proto {proto} dnat to {}:{}", e.ip, e.port)
        };
        if i + 1 == n {
            rules.push(target);
        } else {
            rules.push(format!("numgen random mod {} 0 {target}", n - i));
        }
    }
}

/// Affinity: a client seen recently goes back to the same endpoint.
fn affinity_lookups(
    rules: &mut Vec<String>,
    spn: &ServicePortName,
    port: &ServicePort,
    eps: &[Endpoint],
) {
    if port.affinity_timeout.is_none() {
        return;
    }
    for e in eps {
        rules.push(format!(
            "ip saddr @{} goto {}",
            names::affinity_set(spn, e.ip, e.port),
            names::endpoint_chain(spn, e.ip, e.port)
        ));
    }
}

/// The rules of one Service port, added to `rs`.
fn add_service(
    rs: &mut RuleSet,
    spn: &ServicePortName,
    port: &ServicePort,
    all: &[Endpoint],
    settings: &Settings,
) {
    let (cluster, local) = categorize(port, all);
    let proto = spn.protocol.nft();
    let svc_chain = names::service_chain(spn);
    let ext_chain = names::external_chain(spn);
    let external_eps = if port.external_policy_local {
        &local
    } else {
        &cluster
    };
    let mut el = |set: &'static str, e: String| {
        rs.elements.insert((set, e));
    };

    if let Some(ip) = port.cluster_ip {
        el("cluster-ips", ip.to_string());
        if cluster.is_empty() {
            el(
                "no-endpoint-services",
                format!("{ip} . {proto} . {} : goto reject-chain", port.port),
            );
        } else {
            el(
                "service-ips",
                format!("{ip} . {proto} . {} : goto {svc_chain}", port.port),
            );
        }
    }
    // Upstream: Local policy without local endpoints drops, no endpoints
    // at all rejects.
    let no_external = if port.external_policy_local && !cluster.is_empty() {
        "drop"
    } else {
        "goto reject-chain"
    };
    for ip in port.external_ips.iter().chain(&port.load_balancer_ips) {
        if external_eps.is_empty() {
            el(
                "no-endpoint-services",
                format!("{ip} . {proto} . {} : {no_external}", port.port),
            );
        } else {
            el(
                "service-ips",
                format!("{ip} . {proto} . {} : goto {ext_chain}", port.port),
            );
        }
    }
    if let Some(np) = port.node_port {
        if external_eps.is_empty() {
            el(
                "no-endpoint-nodeports",
                format!("{proto} . {np} : {no_external}"),
            );
        } else {
            el(
                "service-nodeports",
                format!("{proto} . {np} : goto {ext_chain}"),
            );
        }
    }

    if !cluster.is_empty() && port.cluster_ip.is_some() {
        let mut rules = Vec::new();
        if let Some(ip) = port.cluster_ip {
            if settings.masquerade_all {
                rules.push(format!(
                    "ip daddr {ip} {proto} dport {} jump mark-for-masquerade",
                    port.port
                ));
            } else if let Some(cidr) = &settings.cluster_cidr {
                rules.push(format!(
                    "ip daddr {ip} {proto} dport {} ip saddr != {cidr} jump mark-for-masquerade",
                    port.port
                ));
            }
        }
        affinity_lookups(&mut rules, spn, port, &cluster);
        balance(&mut rules, spn, port, &cluster);
        rs.chains.insert(svc_chain.clone(), rules);
    }
    if port.has_external() && !external_eps.is_empty() {
        let mut rules = Vec::new();
        if port.external_policy_local {
            // Traffic from this node itself may use any endpoint.
            if !cluster.is_empty() {
                rules.push("fib saddr type local jump mark-for-masquerade comment \"masquerade local traffic\"".to_string());
                rules.push(format!(
                    "fib saddr type local goto {svc_chain} comment \"short-circuit local traffic\""
                ));
            }
            affinity_lookups(&mut rules, spn, port, &local);
            balance(&mut rules, spn, port, &local);
        } else {
            rules.push("jump mark-for-masquerade".to_string());
            rules.push(format!("goto {svc_chain}"));
        }
        rs.chains.insert(ext_chain, rules);
    }
    for e in cluster.iter().chain(external_eps.iter()) {
        // Hairpin (a pod reaching itself through the Service) is
        // masqueraded in nat-postrouting by this pair.
        el2(rs, "hairpin-pairs", format!("{} . {}", e.ip, e.ip));
        if port.affinity_timeout.is_none() {
            continue;
        }
        let ep_chain = names::endpoint_chain(spn, e.ip, e.port);
        if rs.chains.contains_key(&ep_chain) {
            continue;
        }
        let mut rules = vec![format!("ip saddr {} jump mark-for-masquerade", e.ip)];
        if let Some(timeout) = port.affinity_timeout {
            let set = names::affinity_set(spn, e.ip, e.port);
            rules.push(format!("update @{set} {{ ip saddr }}"));
            rs.affinity_sets.insert(set, timeout);
        }
        rules.push(format!("meta l4proto {proto} dnat to {}:{}", e.ip, e.port));
        rs.chains.insert(ep_chain, rules);
    }
}

fn el2(rs: &mut RuleSet, set: &'static str, e: String) {
    rs.elements.insert((set, e));
}

/// The rule set for a service map.
pub fn build(map: &ServiceMap, settings: &Settings) -> RuleSet {
    let mut rs = RuleSet::default();
    base_chains(&mut rs.base, settings);
    rs.settings = format!("{settings:?}");
    let empty = Vec::new();
    for (spn, port) in &map.ports {
        add_service(
            &mut rs,
            spn,
            port,
            map.endpoints.get(spn).unwrap_or(&empty),
            settings,
        );
    }
    rs
}

const SETS: &[(&str, &str, &str)] = &[
    ("cluster-ips", "ipv4_addr", "Active ClusterIPs"),
    (
        "nodeport-ips",
        "ipv4_addr",
        "IPs that accept NodePort traffic",
    ),
    (
        "hairpin-pairs",
        "ipv4_addr . ipv4_addr",
        "endpoint . endpoint: a pod reaching itself through a Service",
    ),
];
const MAPS: &[(&str, &str, &str)] = &[
    (
        "service-ips",
        "ipv4_addr . inet_proto . inet_service",
        "ClusterIP, ExternalIP and LoadBalancer IP traffic",
    ),
    (
        "service-nodeports",
        "inet_proto . inet_service",
        "NodePort traffic",
    ),
    (
        "no-endpoint-services",
        "ipv4_addr . inet_proto . inet_service",
        "vmap to drop or reject packets to services with no endpoints",
    ),
    (
        "no-endpoint-nodeports",
        "inet_proto . inet_service",
        "vmap to drop or reject packets to service nodeports with no endpoints",
    ),
];

/// The whole table as one transaction: create-then-delete makes removing
/// it safe when it does not exist yet.
pub fn full(rs: &RuleSet, settings: &Settings) -> String {
    let mut out = String::with_capacity(4096 + rs.chains.len() * 160);
    let _ = writeln!(
        out,
        "add table ip {TABLE} {{ comment \"rules for kube-proxy\" ; }}"
    );
    let _ = writeln!(out, "delete table ip {TABLE}");
    let _ = writeln!(out, "table ip {TABLE} {{");
    out.push_str("\tcomment \"rules for kube-proxy\"\n");
    out.push_str(&rs.base);
    let elements_of = |name: &str| -> Vec<&str> {
        rs.elements
            .iter()
            .filter(|(s, _)| *s == name)
            .map(|(_, e)| e.as_str())
            .collect()
    };
    let np_ips: Vec<String> = settings
        .nodeport_ips
        .iter()
        .map(|i| i.to_string())
        .collect();
    for (name, key, comment) in SETS {
        let _ = writeln!(
            out,
            "\tset {name} {{\n\t\ttype {key}\n\t\tcomment \"{comment}\""
        );
        let items: Vec<&str> = if *name == "nodeport-ips" {
            np_ips.iter().map(String::as_str).collect()
        } else {
            elements_of(name)
        };
        if !items.is_empty() {
            let _ = writeln!(out, "\t\telements = {{ {} }}", items.join(",\n\t\t\t"));
        }
        out.push_str("\t}\n");
    }
    for (name, key, comment) in MAPS {
        let _ = writeln!(
            out,
            "\tmap {name} {{\n\t\ttype {key} : verdict\n\t\tcomment \"{comment}\""
        );
        let items = elements_of(name);
        if !items.is_empty() {
            let _ = writeln!(out, "\t\telements = {{ {} }}", items.join(",\n\t\t\t"));
        }
        out.push_str("\t}\n");
    }
    for (set, timeout) in &rs.affinity_sets {
        let _ = writeln!(
            out,
            "\tset {set} {{\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n\t\ttimeout {timeout}s\n\t}}"
        );
    }
    for (chain, rules) in &rs.chains {
        let _ = writeln!(out, "\tchain {chain} {{");
        for r in rules {
            let _ = writeln!(out, "\t\t{r}");
        }
        out.push_str("\t}\n");
    }
    out.push_str("}\n");
    out
}

/// The transaction that turns `old` into `new` touching only what changed
/// (upstream's partial sync), or `None` when only a full sync will do (the
/// base chains or an affinity timeout changed). An empty script means
/// nothing changed.
pub fn diff(old: &RuleSet, new: &RuleSet) -> Option<String> {
    if old.base != new.base || old.settings != new.settings {
        return None;
    }
    for (set, timeout) in &new.affinity_sets {
        if old.affinity_sets.get(set).is_some_and(|t| t != timeout) {
            return None;
        }
    }
    let mut out = String::new();
    let t = TABLE;
    for (chain, _) in new
        .chains
        .iter()
        .filter(|(c, _)| !old.chains.contains_key(*c))
    {
        let _ = writeln!(out, "add chain ip {t} {chain}");
    }
    let changed: Vec<&String> = new
        .chains
        .iter()
        .filter(|(c, rules)| old.chains.get(*c).is_some_and(|o| o != *rules))
        .map(|(c, _)| c)
        .collect();
    let removed: Vec<&String> = old
        .chains
        .keys()
        .filter(|c| !new.chains.contains_key(*c))
        .collect();
    for chain in changed.iter().chain(&removed) {
        let _ = writeln!(out, "flush chain ip {t} {chain}");
    }
    for (set, timeout) in new
        .affinity_sets
        .iter()
        .filter(|(s, _)| !old.affinity_sets.contains_key(*s))
    {
        let _ = writeln!(
            out,
            "add set ip {t} {set} {{ type ipv4_addr ; flags dynamic,timeout ; timeout {timeout}s ; }}"
        );
    }
    for (set, e) in old.elements.difference(&new.elements) {
        let _ = writeln!(
            out,
            "delete element ip {t} {set} {{ {} }}",
            element_key(set, e)
        );
    }
    for (chain, rules) in &new.chains {
        if old.chains.get(chain).is_some_and(|o| o == rules) {
            continue;
        }
        for r in rules {
            let _ = writeln!(out, "add rule ip {t} {chain} {r}");
        }
    }
    for (set, e) in new.elements.difference(&old.elements) {
        let _ = writeln!(out, "add element ip {t} {set} {{ {e} }}");
    }
    for chain in &removed {
        let _ = writeln!(out, "delete chain ip {t} {chain}");
    }
    for set in old
        .affinity_sets
        .keys()
        .filter(|s| !new.affinity_sets.contains_key(*s))
    {
        let _ = writeln!(out, "delete set ip {t} {set}");
    }
    Some(out)
}

/// A map element is deleted by its key alone.
fn element_key<'a>(set: &str, e: &'a str) -> &'a str {
    if SETS.iter().any(|(s, _, _)| *s == set) {
        return e;
    }
    e.split_once(" : ").map(|(k, _)| k).unwrap_or(e)
}

/// The full script for a service map.
pub fn render(map: &ServiceMap, settings: &Settings) -> String {
    full(&build(map, settings), settings)
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
\t\tip saddr . ip daddr @hairpin-pairs meta mark set meta mark | {MASQ_MARK}
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
    fn cluster_ip_load_balances_and_dnats_in_the_service_chain() {
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
        assert!(
            out.contains(&format!("10.0.0.41 . tcp . 80 : goto {svc}")),
            "{out}"
        );
        assert!(out.contains(&format!(
            "ip daddr 10.0.0.41 tcp dport 80 ip saddr != 10.88.0.0/16 jump mark-for-masquerade"
        )));
        assert!(out.contains(
            "\t\tnumgen random mod 2 0 meta l4proto tcp dnat to 10.88.1.2:8080\n\t\tmeta l4proto tcp dnat to 10.88.1.3:8080\n"
        ));
        // No per-endpoint chains without affinity; hairpin goes by pairs.
        assert!(!out.contains(&format!("chain {e1}")), "{out}");
        assert!(out.contains("10.88.1.2 . 10.88.1.2"), "{out}");
        assert!(out.contains("ip saddr . ip daddr @hairpin-pairs meta mark set meta mark | 0x4000"));
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
        assert!(out.contains(&format!("tcp . 30081 : goto {ext}")));
        assert!(out.contains(&format!(
            "chain {ext} {{\n\t\tfib saddr type local jump mark-for-masquerade"
        )));
        assert!(
            out.contains("\t\tmeta l4proto tcp dnat to 10.88.1.2:8080\n\t}"),
            "{out}"
        );
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
    fn partial_syncs_touch_only_what_changed() {
        let mut map = ServiceMap::default();
        let (a, b) = (spn("a", ""), spn("b", ""));
        map.ports.insert(a.clone(), port("10.0.0.51", 80));
        map.endpoints
            .insert(a.clone(), vec![ep("10.88.1.2", 80, false)]);
        map.ports.insert(b.clone(), port("10.0.0.52", 80));
        map.endpoints
            .insert(b.clone(), vec![ep("10.88.1.3", 80, false)]);
        let old = build(&map, &settings());
        assert_eq!(diff(&old, &old).as_deref(), Some(""));

        // b's endpoint moves: its service chain is rewritten, its hairpin
        // pair replaced, a's rules are not mentioned.
        map.endpoints
            .insert(b.clone(), vec![ep("10.88.1.4", 80, false)]);
        let new = build(&map, &settings());
        let script = diff(&old, &new).unwrap();
        let svc_b = names::service_chain(&b);
        assert!(
            script.contains(&format!("flush chain ip kube-proxy {svc_b}\n")),
            "{script}"
        );
        assert!(script.contains(&format!(
            "add rule ip kube-proxy {svc_b} meta l4proto tcp dnat to 10.88.1.4:80\n"
        )));
        assert!(
            script.contains("delete element ip kube-proxy hairpin-pairs { 10.88.1.3 . 10.88.1.3 }")
        );
        assert!(
            script.contains("add element ip kube-proxy hairpin-pairs { 10.88.1.4 . 10.88.1.4 }")
        );
        assert!(!script.contains("/a/"), "{script}");

        // b loses its endpoints: its map element moves to the reject map.
        map.endpoints.remove(&b);
        let gone = build(&map, &settings());
        let script = diff(&new, &gone).unwrap();
        assert!(
            script.contains("delete element ip kube-proxy service-ips { 10.0.0.52 . tcp . 80 }"),
            "{script}"
        );
        assert!(script.contains("add element ip kube-proxy no-endpoint-services { 10.0.0.52 . tcp . 80 : goto reject-chain }"));
        assert!(
            script.find("delete element").unwrap()
                < script
                    .find(&format!("delete chain ip kube-proxy {svc_b}"))
                    .unwrap()
        );

        // Other settings: only a full sync will do.
        let mut other = settings();
        other.masquerade_all = true;
        assert!(diff(&gone, &build(&map, &other)).is_none());
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
