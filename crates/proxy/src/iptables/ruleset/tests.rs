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

fn ep(ip: &str, local: bool) -> Endpoint {
    Endpoint {
        ip: ip.parse().unwrap(),
        port: 80,
        ready: true,
        serving: true,
        terminating: false,
        local,
    }
}

fn settings() -> Settings {
    Settings {
        cluster_cidr: Some("10.0.0.0/8".into()),
        masquerade_all: false,
        nodeport_ips: vec![],
    }
}

fn one(spn: ServicePortName, p: ServicePort, eps: Vec<Endpoint>) -> ServiceMap {
    let mut m = ServiceMap::default();
    m.ports.insert(spn.clone(), p);
    m.endpoints.insert(spn, eps);
    m
}

#[test]
fn cluster_ip_balances_over_endpoint_chains() {
    let s = spn("svc1", "p80");
    let rs = build(
        &one(
            s.clone(),
            port("172.30.0.41", 80),
            vec![ep("10.180.0.1", false), ep("10.180.0.2", false)],
        ),
        &settings(),
    );
    let svc = names::service_chain(&s);
    let sep1 = names::endpoint_chain(&s, "10.180.0.1".parse().unwrap(), 80);
    let sep2 = names::endpoint_chain(&s, "10.180.0.2".parse().unwrap(), 80);
    assert_eq!(
        rs.nat["KUBE-SERVICES"],
        [
            format!("-m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j {svc}"),
            "-m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS".to_string(),
        ]
    );
    assert_eq!(
        rs.nat[&svc],
        [
            "-m comment --comment \"ns1/svc1:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ".to_string(),
            format!("-m comment --comment \"ns1/svc1:p80 -> 10.180.0.1:80\" -m statistic --mode random --probability 0.5000000000 -j {sep1}"),
            format!("-m comment --comment \"ns1/svc1:p80 -> 10.180.0.2:80\" -j {sep2}"),
        ]
    );
    assert_eq!(
        rs.nat[&sep1],
        [
            "-m comment --comment \"ns1/svc1:p80\" -s 10.180.0.1 -j KUBE-MARK-MASQ",
            "-m comment --comment \"ns1/svc1:p80\" -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80",
        ]
    );
    assert!(rs.filter["KUBE-SERVICES"].is_empty());
    // Localhost NodePorts are on (every local address), so martians to
    // 127/8 are dropped.
    assert_eq!(rs.filter["KUBE-FIREWALL"].len(), 1);
}

#[test]
fn services_without_endpoints_are_rejected_in_the_filter_table() {
    let s = spn("empty", "");
    let mut p = port("172.30.0.42", 80);
    p.node_port = Some(30042);
    p.external_ips = vec!["192.168.99.1".parse().unwrap()];
    let rs = build(&one(s.clone(), p, vec![]), &settings());
    assert_eq!(
        rs.filter["KUBE-SERVICES"],
        ["-m comment --comment \"ns1/empty has no endpoints\" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j REJECT"]
    );
    assert_eq!(
        rs.filter["KUBE-EXTERNAL-SERVICES"],
        [
            "-m comment --comment \"ns1/empty has no endpoints\" -m tcp -p tcp -d 192.168.99.1 --dport 80 -j REJECT",
            "-m comment --comment \"ns1/empty has no endpoints\" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30042 -j REJECT",
        ]
    );
    assert!(!rs.nat.contains_key(&names::service_chain(&s)));
    assert!(rs.nat["KUBE-NODEPORTS"].is_empty());
}

#[test]
fn external_traffic_policy_local_uses_local_endpoints_or_drops() {
    let s = spn("local", "http");
    let mut p = port("172.30.0.43", 80);
    p.node_port = Some(30043);
    p.external_policy_local = true;
    let np = Settings {
        nodeport_ips: vec!["192.168.1.10".parse().unwrap()],
        ..settings()
    };
    // Only a remote endpoint: external traffic is dropped, internal works.
    let rs = build(
        &one(s.clone(), p.clone(), vec![ep("10.180.1.1", false)]),
        &np,
    );
    assert_eq!(
        rs.filter["KUBE-EXTERNAL-SERVICES"],
        ["-m comment --comment \"ns1/local:http has no local endpoints\" -d 192.168.1.10 -m tcp -p tcp --dport 30043 -j DROP"]
    );
    assert!(rs.nat.contains_key(&names::service_chain(&s)));
    assert!(
        rs.filter["KUBE-FIREWALL"].is_empty(),
        "no localhost NodePorts"
    );

    // A local endpoint: the EXT chain short-circuits pods and the node
    // itself to the cluster chain, everything else to the local chain.
    let rs = build(
        &one(
            s.clone(),
            p,
            vec![ep("10.180.1.1", false), ep("10.180.1.2", true)],
        ),
        &np,
    );
    let (svc, svl, ext) = (
        names::service_chain(&s),
        names::local_chain(&s),
        names::external_chain(&s),
    );
    assert_eq!(
        rs.nat[&ext],
        [
            format!("-m comment --comment \"pod traffic for ns1/local:http external destinations\" -s 10.0.0.0/8 -j {svc}"),
            "-m comment --comment \"masquerade LOCAL traffic for ns1/local:http external destinations\" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ".to_string(),
            format!("-m comment --comment \"route LOCAL traffic for ns1/local:http external destinations\" -m addrtype --src-type LOCAL -j {svc}"),
            format!("-j {svl}"),
        ]
    );
    assert_eq!(
        rs.nat[&svl].len(),
        1,
        "one local endpoint, no masquerade rule"
    );
    assert_eq!(
        rs.nat["KUBE-NODEPORTS"],
        [format!(
            "-m comment --comment \"ns1/local:http\" -m tcp -p tcp --dport 30043 -j {ext}"
        )]
    );
    assert_eq!(
        rs.nat["KUBE-SERVICES"].last().unwrap(),
        "-m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -d 192.168.1.10 -j KUBE-NODEPORTS"
    );
}

#[test]
fn client_ip_affinity_uses_recent() {
    let s = spn("sticky", "");
    let mut p = port("172.30.0.44", 80);
    p.affinity_timeout = Some(10800);
    let rs = build(
        &one(s.clone(), p, vec![ep("10.180.2.1", false)]),
        &settings(),
    );
    let sep = names::endpoint_chain(&s, "10.180.2.1".parse().unwrap(), 80);
    assert_eq!(
        rs.nat[&names::service_chain(&s)][1],
        format!("-m comment --comment \"ns1/sticky -> 10.180.2.1:80\" -m recent --name {sep} --rcheck --seconds 10800 --reap -j {sep}")
    );
    assert_eq!(
        rs.nat[&sep][1],
        format!("-m comment --comment \"ns1/sticky\" -m recent --name {sep} --set -m tcp -p tcp -j DNAT --to-destination 10.180.2.1:80")
    );
}

#[test]
fn partial_syncs_rewrite_only_changed_chains() {
    let s = spn("svc1", "p80");
    let before = build(
        &one(
            s.clone(),
            port("172.30.0.41", 80),
            vec![ep("10.180.0.1", false)],
        ),
        &settings(),
    );
    assert_eq!(diff(&before, &before).as_deref(), Some(""));
    let after = build(
        &one(
            s.clone(),
            port("172.30.0.41", 80),
            vec![ep("10.180.0.2", false)],
        ),
        &settings(),
    );
    let script = diff(&before, &after).unwrap();
    let svc = names::service_chain(&s);
    let old = names::endpoint_chain(&s, "10.180.0.1".parse().unwrap(), 80);
    let new = names::endpoint_chain(&s, "10.180.0.2".parse().unwrap(), 80);
    let lines: Vec<&str> = script.lines().collect();
    assert_eq!(
        lines[0], "*nat",
        "the filter table did not change: {script}"
    );
    assert!(lines.contains(&format!(":{svc} - [0:0]").as_str()));
    assert!(lines.contains(&format!(":{new} - [0:0]").as_str()));
    assert!(lines.contains(&format!("-X {old}").as_str()));
    assert!(!script.contains("KUBE-SERVICES"), "{script}");
    assert_eq!(lines.last(), Some(&"COMMIT"));
    // A settings change needs everything.
    let other = build(
        &one(s, port("172.30.0.41", 80), vec![]),
        &Settings {
            masquerade_all: true,
            ..settings()
        },
    );
    assert!(diff(&before, &other).is_none());
}

#[test]
fn full_syncs_delete_stale_service_chains_only() {
    let rs = build(&ServiceMap::default(), &settings());
    let script = full(
        &rs,
        &[
            ("nat".into(), "KUBE-SVC-AAAAAAAAAAAAAAAA".into()),
            ("nat".into(), "KUBE-SERVICES".into()),
        ],
    );
    assert!(script.contains("-X KUBE-SVC-AAAAAAAAAAAAAAAA\n"));
    assert!(!script.contains("-X KUBE-SERVICES"));
    assert!(script.starts_with("*filter\n:KUBE-EXTERNAL-SERVICES - [0:0]\n"));
    let cleanup = cleanup(&[
        ("nat".into(), "KUBE-SVC-AAAAAAAAAAAAAAAA".into()),
        ("nat".into(), "KUBE-SERVICES".into()),
        ("nat".into(), "DOCKER".into()),
    ]);
    assert!(cleanup.contains("-X KUBE-SERVICES\n") && !cleanup.contains("DOCKER"));
}
