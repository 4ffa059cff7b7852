//! The rules of upstream's iptables proxier (`syncProxyRules` in
//! `pkg/proxy/iptables/proxier.go`), as `iptables-restore` input: in the
//! nat table `KUBE-SERVICES` sends each ClusterIP, external and
//! load-balancer IP to a per-Service chain (`KUBE-SVC-…`, or `KUBE-SVL-…`
//! for local-only endpoints, `KUBE-EXT-…` for traffic from outside), which
//! picks an endpoint chain (`KUBE-SEP-…`, the DNAT) with
//! `-m statistic --mode random`; `KUBE-NODEPORTS` holds the NodePorts;
//! traffic marked 0x4000 by `KUBE-MARK-MASQ` is masqueraded in
//! `KUBE-POSTROUTING`. In the filter table, Services without endpoints are
//! rejected (or dropped, when only local endpoints would do and there are
//! none) before anything is DNATed.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::names;
use crate::types::{categorize, Endpoint, ServiceMap, ServicePort, ServicePortName, Settings};

/// Chain name → its rules (what follows `-A <chain>`), in order.
pub type Chains = BTreeMap<String, Vec<String>>;

/// The chains this proxier owns, per table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSet {
    pub filter: Chains,
    pub nat: Chains,
    /// The settings the rules were made with; a change means a full sync.
    pub settings: String,
}

/// The chains kube-proxy always has in the filter table.
pub const FILTER_CHAINS: &[&str] = &[
    "KUBE-EXTERNAL-SERVICES",
    "KUBE-FIREWALL",
    "KUBE-FORWARD",
    "KUBE-NODEPORTS",
    "KUBE-PROXY-FIREWALL",
    "KUBE-SERVICES",
];

/// The chains kube-proxy always has in the nat table.
pub const NAT_CHAINS: &[&str] = &[
    "KUBE-MARK-MASQ",
    "KUBE-NODEPORTS",
    "KUBE-POSTROUTING",
    "KUBE-SERVICES",
];

/// A rule in a built-in chain that sends traffic into kube-proxy's chains.
#[derive(Debug, Clone, Copy)]
pub struct Jump {
    pub table: &'static str,
    pub chain: &'static str,
    pub args: &'static [&'static str],
}

const fn jump(table: &'static str, chain: &'static str, args: &'static [&'static str]) -> Jump {
    Jump { table, chain, args }
}

/// Upstream's `iptablesJumpChains` and the kubelet-owned jumps upstream
/// kube-proxy also ensures, in upstream's order.
pub const JUMPS: &[Jump] = &[
    jump(
        "filter",
        "INPUT",
        &[
            "-m",
            "conntrack",
            "--ctstate",
            "NEW",
            "-m",
            "comment",
            "--comment",
            "kubernetes externally-visible service portals",
            "-j",
            "KUBE-EXTERNAL-SERVICES",
        ],
    ),
    jump(
        "filter",
        "FORWARD",
        &[
            "-m",
            "conntrack",
            "--ctstate",
            "NEW",
            "-m",
            "comment",
            "--comment",
            "kubernetes externally-visible service portals",
            "-j",
            "KUBE-EXTERNAL-SERVICES",
        ],
    ),
    jump(
        "filter",
        "INPUT",
        &[
            "-m",
            "comment",
            "--comment",
            "kubernetes health check service ports",
            "-j",
            "KUBE-NODEPORTS",
        ],
    ),
    jump(
        "filter",
        "FORWARD",
        &[
            "-m",
            "conntrack",
            "--ctstate",
            "NEW",
            "-m",
            "comment",
            "--comment",
            "kubernetes service portals",
            "-j",
            "KUBE-SERVICES",
        ],
    ),
    jump(
        "filter",
        "OUTPUT",
        &[
            "-m",
            "conntrack",
            "--ctstate",
            "NEW",
            "-m",
            "comment",
            "--comment",
            "kubernetes service portals",
            "-j",
            "KUBE-SERVICES",
        ],
    ),
    jump(
        "filter",
        "FORWARD",
        &[
            "-m",
            "comment",
            "--comment",
            "kubernetes forwarding rules",
            "-j",
            "KUBE-FORWARD",
        ],
    ),
    jump(
        "filter",
        "INPUT",
        &[
            "-m",
            "conntrack",
            "--ctstate",
            "NEW",
            "-m",
            "comment",
            "--comment",
            "kubernetes load balancer firewall",
            "-j",
            "KUBE-PROXY-FIREWALL",
        ],
    ),
    jump(
        "filter",
        "OUTPUT",
        &[
            "-m",
            "conntrack",
            "--ctstate",
            "NEW",
            "-m",
            "comment",
            "--comment",
            "kubernetes load balancer firewall",
            "-j",
            "KUBE-PROXY-FIREWALL",
        ],
    ),
    jump(
        "filter",
        "FORWARD",
        &[
            "-m",
            "conntrack",
            "--ctstate",
            "NEW",
            "-m",
            "comment",
            "--comment",
            "kubernetes load balancer firewall",
            "-j",
            "KUBE-PROXY-FIREWALL",
        ],
    ),
    jump("filter", "INPUT", &["-j", "KUBE-FIREWALL"]),
    jump("filter", "OUTPUT", &["-j", "KUBE-FIREWALL"]),
    jump(
        "nat",
        "OUTPUT",
        &[
            "-m",
            "comment",
            "--comment",
            "kubernetes service portals",
            "-j",
            "KUBE-SERVICES",
        ],
    ),
    jump(
        "nat",
        "PREROUTING",
        &[
            "-m",
            "comment",
            "--comment",
            "kubernetes service portals",
            "-j",
            "KUBE-SERVICES",
        ],
    ),
    jump(
        "nat",
        "POSTROUTING",
        &[
            "-m",
            "comment",
            "--comment",
            "kubernetes postrouting rules",
            "-j",
            "KUBE-POSTROUTING",
        ],
    ),
];

const MASQ_MARK: &str = "0x4000";

fn push(chains: &mut Chains, chain: &str, rule: String) {
    chains.entry(chain.to_string()).or_default().push(rule);
}

/// The destination match of NodePort traffic: every local address, or
/// the `--nodeport-addresses`.
fn nodeport_destinations(settings: &Settings) -> Vec<String> {
    if settings.nodeport_ips.is_empty() {
        vec!["-m addrtype --dst-type LOCAL".to_string()]
    } else {
        settings
            .nodeport_ips
            .iter()
            .map(|ip| format!("-d {ip}"))
            .collect()
    }
}

/// Endpoint selection in a `KUBE-SVC`/`KUBE-SVL` chain: recent clients
/// first (ClientIP affinity), then rule `i` of `n` takes 1/(n-i) of what
/// reaches it and the last takes the rest.
fn balance(rules: &mut Vec<String>, spn: &ServicePortName, port: &ServicePort, eps: &[Endpoint]) {
    let name = names::port_name(spn);
    if let Some(timeout) = port.affinity_timeout {
        for e in eps {
            let sep = names::endpoint_chain(spn, e.ip, e.port);
            rules.push(format!(
                "-m comment --comment \"{name} -> {}:{}\" -m recent --name {sep} --rcheck --seconds {timeout} --reap -j {sep}",
                e.ip, e.port
            ));
        }
    }
    let n = eps.len();
    for (i, e) in eps.iter().enumerate() {
        let sep = names::endpoint_chain(spn, e.ip, e.port);
        if i + 1 == n {
            rules.push(format!(
                "-m comment --comment \"{name} -> {}:{}\" -j {sep}",
                e.ip, e.port
            ));
        } else {
            let p = 1.0 / (n - i) as f64;
            rules.push(format!(
                "-m comment --comment \"{name} -> {}:{}\" -m statistic --mode random --probability {p:.10} -j {sep}",
                e.ip, e.port
            ));
        }
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
    let name = names::port_name(spn);
    let proto = spn.protocol.nft();
    let pm = format!("-m {proto} -p {proto}");
    let svc = names::service_chain(spn);
    let svl = names::local_chain(spn);
    let ext = names::external_chain(spn);
    let (internal_chain, internal_eps) = if port.internal_policy_local {
        (&svl, &local)
    } else {
        (&svc, &cluster)
    };
    let external_eps = if port.external_policy_local {
        &local
    } else {
        &cluster
    };
    // Upstream: no endpoints at all rejects; a Local policy without local
    // endpoints drops.
    let (none_what, none_verdict) = if cluster.is_empty() {
        ("has no endpoints", "REJECT")
    } else {
        ("has no local endpoints", "DROP")
    };
    let (mut uses_svc, mut uses_svl) = (false, false);

    if let Some(ip) = port.cluster_ip {
        if internal_eps.is_empty() {
            push(
                &mut rs.filter,
                "KUBE-SERVICES",
                format!(
                    "-m comment --comment \"{name} {none_what}\" {pm} -d {ip} --dport {} -j {none_verdict}",
                    port.port
                ),
            );
        } else {
            push(
                &mut rs.nat,
                "KUBE-SERVICES",
                format!(
                    "-m comment --comment \"{name} cluster IP\" {pm} -d {ip} --dport {} -j {internal_chain}",
                    port.port
                ),
            );
            if port.internal_policy_local {
                uses_svl = true;
            } else {
                uses_svc = true;
            }
        }
    }

    if port.has_external() {
        let ips = port
            .external_ips
            .iter()
            .map(|ip| (ip, "external IP"))
            .chain(
                port.load_balancer_ips
                    .iter()
                    .map(|ip| (ip, "loadbalancer IP")),
            );
        if external_eps.is_empty() {
            for (ip, _) in ips {
                push(
                    &mut rs.filter,
                    "KUBE-EXTERNAL-SERVICES",
                    format!(
                        "-m comment --comment \"{name} {none_what}\" {pm} -d {ip} --dport {} -j {none_verdict}",
                        port.port
                    ),
                );
            }
            if let Some(np) = port.node_port {
                for dst in nodeport_destinations(settings) {
                    push(
                        &mut rs.filter,
                        "KUBE-EXTERNAL-SERVICES",
                        format!(
                            "-m comment --comment \"{name} {none_what}\" {dst} {pm} --dport {np} -j {none_verdict}"
                        ),
                    );
                }
            }
        } else {
            for (ip, what) in ips {
                push(
                    &mut rs.nat,
                    "KUBE-SERVICES",
                    format!(
                        "-m comment --comment \"{name} {what}\" {pm} -d {ip} --dport {} -j {ext}",
                        port.port
                    ),
                );
            }
            if let Some(np) = port.node_port {
                push(
                    &mut rs.nat,
                    "KUBE-NODEPORTS",
                    format!("-m comment --comment \"{name}\" {pm} --dport {np} -j {ext}"),
                );
            }
            let mut rules = Vec::new();
            if port.external_policy_local {
                if let Some(cidr) = &settings.cluster_cidr {
                    rules.push(format!(
                        "-m comment --comment \"pod traffic for {name} external destinations\" -s {cidr} -j {svc}"
                    ));
                }
                rules.push(format!(
                    "-m comment --comment \"masquerade LOCAL traffic for {name} external destinations\" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ"
                ));
                rules.push(format!(
                    "-m comment --comment \"route LOCAL traffic for {name} external destinations\" -m addrtype --src-type LOCAL -j {svc}"
                ));
                rules.push(format!("-j {svl}"));
                uses_svc = true;
                uses_svl = true;
            } else {
                rules.push(format!(
                    "-m comment --comment \"masquerade traffic for {name} external destinations\" -j KUBE-MARK-MASQ"
                ));
                rules.push(format!("-j {svc}"));
                uses_svc = true;
            }
            rs.nat.insert(ext, rules);
        }
    }

    // ClusterIP traffic from outside the cluster network is masqueraded.
    let masq = if settings.masquerade_all {
        Some(String::new())
    } else {
        settings.cluster_cidr.as_ref().map(|c| format!(" ! -s {c}"))
    };
    let cluster_ip_masq = port.cluster_ip.zip(masq).map(|(ip, m)| {
        format!(
            "-m comment --comment \"{name} cluster IP\" {pm} -d {ip} --dport {}{m} -j KUBE-MARK-MASQ",
            port.port
        )
    });
    let mut chain_of = |chain: &str, eps: &[Endpoint], internal: bool| {
        let mut rules = Vec::new();
        if internal {
            rules.extend(cluster_ip_masq.clone());
        }
        balance(&mut rules, spn, port, eps);
        rs.nat.insert(chain.to_string(), rules);
    };
    if uses_svc && !cluster.is_empty() {
        chain_of(&svc, &cluster, !port.internal_policy_local);
    }
    if uses_svl && !local.is_empty() {
        chain_of(&svl, &local, port.internal_policy_local);
    }
    let mut used: Vec<&Endpoint> = Vec::new();
    if uses_svc {
        used.extend(cluster.iter());
    }
    if uses_svl {
        used.extend(local.iter());
    }
    for e in used {
        let sep = names::endpoint_chain(spn, e.ip, e.port);
        if rs.nat.contains_key(&sep) {
            continue;
        }
        let recent = if port.affinity_timeout.is_some() {
            format!("-m recent --name {sep} --set ")
        } else {
            String::new()
        };
        rs.nat.insert(
            sep,
            vec![
                // Hairpin: a pod reaching itself through the Service.
                format!(
                    "-m comment --comment \"{name}\" -s {} -j KUBE-MARK-MASQ",
                    e.ip
                ),
                format!(
                    "-m comment --comment \"{name}\" {recent}{pm} -j DNAT --to-destination {}:{}",
                    e.ip, e.port
                ),
            ],
        );
    }
}

/// The rule set for a service map.
pub fn build(map: &ServiceMap, settings: &Settings) -> RuleSet {
    let mut rs = RuleSet {
        filter: FILTER_CHAINS
            .iter()
            .map(|c| (c.to_string(), Vec::new()))
            .collect(),
        nat: NAT_CHAINS
            .iter()
            .map(|c| (c.to_string(), Vec::new()))
            .collect(),
        settings: format!("{settings:?}"),
    };
    let f = &mut rs.filter;
    push(
        f,
        "KUBE-FORWARD",
        "-m conntrack --ctstate INVALID -j DROP".into(),
    );
    push(
        f,
        "KUBE-FORWARD",
        format!("-m comment --comment \"kubernetes forwarding rules\" -m mark --mark {MASQ_MARK}/{MASQ_MARK} -j ACCEPT"),
    );
    push(
        f,
        "KUBE-FORWARD",
        "-m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT".into(),
    );
    if settings.nodeport_ips.is_empty() {
        // NodePorts on 127.0.0.1 need route_localnet; never let that
        // accept martian traffic to loopback from outside.
        push(
            f,
            "KUBE-FIREWALL",
            "-m comment --comment \"block incoming localnet connections\" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP".into(),
        );
    }
    let n = &mut rs.nat;
    push(
        n,
        "KUBE-POSTROUTING",
        format!("-m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN"),
    );
    push(
        n,
        "KUBE-POSTROUTING",
        format!("-j MARK --xor-mark {MASQ_MARK}"),
    );
    push(
        n,
        "KUBE-POSTROUTING",
        "-m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully".into(),
    );
    push(
        n,
        "KUBE-MARK-MASQ",
        format!("-j MARK --or-mark {MASQ_MARK}"),
    );

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
    for dst in nodeport_destinations(settings) {
        push(
            &mut rs.nat,
            "KUBE-SERVICES",
            format!("-m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" {dst} -j KUBE-NODEPORTS"),
        );
    }
    rs
}

/// One table's part of a restore: `chains` (re)written whole, `delete`d
/// chains flushed then removed. Nothing when both are empty.
fn table(out: &mut String, name: &str, chains: &[(&String, &Vec<String>)], delete: &[&str]) {
    if chains.is_empty() && delete.is_empty() {
        return;
    }
    let _ = writeln!(out, "*{name}");
    for (chain, _) in chains {
        let _ = writeln!(out, ":{chain} - [0:0]");
    }
    for chain in delete {
        let _ = writeln!(out, ":{chain} - [0:0]");
    }
    for (chain, rules) in chains {
        for r in rules.iter() {
            let _ = writeln!(out, "-A {chain} {r}");
        }
    }
    for chain in delete {
        let _ = writeln!(out, "-X {chain}");
    }
    out.push_str("COMMIT\n");
}

/// Everything, for `iptables-restore --noflush`: every owned chain
/// rewritten, and the per-Service chains in `stale` (table, chain) —
/// left from before, no longer wanted — deleted.
pub fn full(rs: &RuleSet, stale: &[(String, String)]) -> String {
    let mut out = String::with_capacity(4096 + rs.nat.len() * 200);
    for (name, chains) in [("filter", &rs.filter), ("nat", &rs.nat)] {
        let all: Vec<_> = chains.iter().collect();
        let gone: Vec<&str> = stale
            .iter()
            .filter(|(t, c)| t == name && !chains.contains_key(c))
            .map(|(_, c)| c.as_str())
            .collect();
        table(&mut out, name, &all, &gone);
    }
    out
}

/// The restore that turns `old` into `new` rewriting only the chains that
/// changed (upstream's partial sync), or `None` when the settings changed
/// and only a full sync will do. An empty script means nothing changed.
pub fn diff(old: &RuleSet, new: &RuleSet) -> Option<String> {
    if old.settings != new.settings {
        return None;
    }
    let mut out = String::new();
    for (name, o, n) in [
        ("filter", &old.filter, &new.filter),
        ("nat", &old.nat, &new.nat),
    ] {
        let changed: Vec<_> = n
            .iter()
            .filter(|(c, rules)| o.get(*c) != Some(*rules))
            .collect();
        let gone: Vec<&str> = o
            .keys()
            .filter(|c| !n.contains_key(*c))
            .map(String::as_str)
            .collect();
        table(&mut out, name, &changed, &gone);
    }
    Some(out)
}

/// `--cleanup`: every chain this proxier may have made, of those that
/// exist (`existing`: table, chain), flushed and deleted.
pub fn cleanup(existing: &[(String, String)]) -> String {
    let mut out = String::new();
    for (name, fixed) in [("filter", FILTER_CHAINS), ("nat", NAT_CHAINS)] {
        let gone: Vec<&str> = existing
            .iter()
            .filter(|(t, c)| {
                t == name && (fixed.contains(&c.as_str()) || names::is_service_chain(c))
            })
            .map(|(_, c)| c.as_str())
            .collect();
        table(&mut out, name, &[], &gone);
    }
    out
}

#[cfg(test)]
mod tests;
