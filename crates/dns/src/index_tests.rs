//! Table-driven checks of the records each kind of Service gets, asked
//! through the whole query path (hickory message in, hickory message out).

use super::*;
use crate::query::{self, Outcome, Transport};
use hickory_proto::op::{Message, Query, ResponseCode};
use serde_json::json;

fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    match serde_json::from_value(v) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

pub(crate) fn fixtures() -> (Vec<Service>, Vec<EndpointSlice>) {
    let services = vec![
        from(json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ports": [
                {"name": "http", "port": 80, "protocol": "TCP"},
                {"port": 8080},
                {"name": "dns", "port": 53, "protocol": "UDP"}]}})),
        from(json!({"metadata": {"name": "dual", "namespace": "default"},
            "spec": {"clusterIP": "10.96.0.11", "clusterIPs": ["10.96.0.11", "fd00::11"]}})),
        from(json!({"metadata": {"name": "db", "namespace": "prod"},
            "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}})),
        from(json!({"metadata": {"name": "empty", "namespace": "prod"},
            "spec": {"clusterIP": "None"}})),
        from(json!({"metadata": {"name": "ext", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "www.example.com"}})),
        from(
            json!({"metadata": {"name": "pending", "namespace": "default"},
            "spec": {}}),
        ),
    ];
    let slices = vec![
        from(json!({"metadata": {"name": "db-abc", "namespace": "prod",
                "labels": {"kubernetes.io/service-name": "db"}},
            "addressType": "IPv4",
            "ports": [{"name": "pg", "port": 15432, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.0.0.1"], "hostname": "db-0", "conditions": {"ready": true}},
                {"addresses": ["10.0.0.2"], "conditions": {"ready": true}},
                {"addresses": ["10.0.0.3"], "hostname": "db-2", "conditions": {"ready": false}}]})),
        // A slice of a ClusterIP Service changes nothing of its records.
        from(
            json!({"metadata": {"name": "web-abc", "namespace": "default",
                "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.1.1"]}]}),
        ),
    ];
    (services, slices)
}

pub(crate) fn index() -> Index {
    let (s, e) = fixtures();
    match Index::build(&IndexConfig::default(), &s, &e) {
        Ok(i) => i,
        Err(e) => panic!("{e}"),
    }
}

/// The response code, answers and authority types, as text.
fn ask(idx: &Index, name: &str, qtype: RecordType) -> (ResponseCode, Vec<String>, Vec<String>) {
    let mut m = Message::query();
    m.metadata.id = 7;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    let bytes = m.to_vec().unwrap();
    let q = query::parse(&bytes).unwrap();
    let (out, code) = match query::answer(idx, &q, Transport::Tcp) {
        Outcome::Reply(out, code) => (out, code),
        Outcome::Chase(_) => (
            query::answer_chased(idx, &q, Transport::Tcp, &Default::default()),
            ResponseCode::NoError,
        ),
        Outcome::Forward => return (ResponseCode::Refused, vec!["forward".into()], vec![]),
    };
    let r = Message::from_vec(&out).unwrap();
    assert_eq!(r.metadata.response_code, code);
    assert_eq!(r.metadata.id, 7);
    assert_eq!(
        r.queries[0].name.to_ascii().trim_end_matches('.'),
        name.trim_end_matches('.'),
        "question echoed as asked"
    );
    let mut answers: Vec<String> = r.answers.iter().map(|a| a.to_string()).collect();
    answers.extend(r.additionals.iter().map(|a| format!("+ {a}")));
    let auth = r
        .authorities
        .iter()
        .map(|a| format!("{} {}", a.name, a.record_type()))
        .collect();
    (code, answers, auth)
}

#[test]
fn records_for_each_kind_of_service() {
    use RecordType::*;
    let idx = index();
    let ok = ResponseCode::NoError;
    let nx = ResponseCode::NXDomain;
    let soa = vec!["cluster.local. SOA".to_string()];
    #[rustfmt::skip]
    let cases: Vec<(&str, RecordType, ResponseCode, Vec<&str>, Vec<String>)> = vec![
        // ClusterIP: A, SRV for named ports only, PTR; AAAA is NODATA.
        ("web.default.svc.cluster.local.", A, ok, vec!["web.default.svc.cluster.local. 30 IN A 10.96.0.10"], vec![]),
        ("web.default.svc.cluster.local.", AAAA, ok, vec![], soa.clone()),
        ("_http._tcp.web.default.svc.cluster.local.", SRV, ok, vec![
            "_http._tcp.web.default.svc.cluster.local. 30 IN SRV 0 100 80 web.default.svc.cluster.local.",
            "+ web.default.svc.cluster.local. 30 IN A 10.96.0.10"], vec![]),
        ("_dns._udp.web.default.svc.cluster.local.", SRV, ok, vec![
            "_dns._udp.web.default.svc.cluster.local. 30 IN SRV 0 100 53 web.default.svc.cluster.local.",
            "+ web.default.svc.cluster.local. 30 IN A 10.96.0.10"], vec![]),
        ("_http._udp.web.default.svc.cluster.local.", SRV, nx, vec![], soa.clone()),
        ("_tcp.web.default.svc.cluster.local.", SRV, ok, vec![], soa.clone()),
        ("10.0.96.10.in-addr.arpa.", PTR, ok, vec!["10.0.96.10.in-addr.arpa. 30 IN PTR web.default.svc.cluster.local."], vec![]),
        ("10.0.96.10.in-addr.arpa.", A, ok, vec![], vec!["in-addr.arpa. SOA".into()]),
        // Dual stack: A and AAAA.
        ("dual.default.svc.cluster.local.", AAAA, ok, vec!["dual.default.svc.cluster.local. 30 IN AAAA fd00::11"], vec![]),
        ("dual.default.svc.cluster.local.", A, ok, vec!["dual.default.svc.cluster.local. 30 IN A 10.96.0.11"], vec![]),
        // Headless: one A per ready endpoint, hostnames, SRV per endpoint with the endpoint port, PTR.
        ("db.prod.svc.cluster.local.", A, ok, vec![
            "db.prod.svc.cluster.local. 30 IN A 10.0.0.1",
            "db.prod.svc.cluster.local. 30 IN A 10.0.0.2"], vec![]),
        ("db-0.db.prod.svc.cluster.local.", A, ok, vec!["db-0.db.prod.svc.cluster.local. 30 IN A 10.0.0.1"], vec![]),
        ("10-0-0-2.db.prod.svc.cluster.local.", A, ok, vec!["10-0-0-2.db.prod.svc.cluster.local. 30 IN A 10.0.0.2"], vec![]),
        ("db-2.db.prod.svc.cluster.local.", A, nx, vec![], soa.clone()),
        ("_pg._tcp.db.prod.svc.cluster.local.", SRV, ok, vec![
            "_pg._tcp.db.prod.svc.cluster.local. 30 IN SRV 0 50 15432 db-0.db.prod.svc.cluster.local.",
            "_pg._tcp.db.prod.svc.cluster.local. 30 IN SRV 0 50 15432 10-0-0-2.db.prod.svc.cluster.local.",
            "+ db-0.db.prod.svc.cluster.local. 30 IN A 10.0.0.1",
            "+ 10-0-0-2.db.prod.svc.cluster.local. 30 IN A 10.0.0.2"], vec![]),
        ("1.0.0.10.in-addr.arpa.", PTR, ok, vec!["1.0.0.10.in-addr.arpa. 30 IN PTR db-0.db.prod.svc.cluster.local."], vec![]),
        ("3.0.0.10.in-addr.arpa.", PTR, ResponseCode::Refused, vec!["forward"], vec![]),
        // A headless Service without ready endpoints: NXDOMAIN (spec 2.4.1).
        ("empty.prod.svc.cluster.local.", A, nx, vec![], soa.clone()),
        // ExternalName: CNAME for any type.
        ("ext.default.svc.cluster.local.", A, ok, vec!["ext.default.svc.cluster.local. 30 IN CNAME www.example.com."], vec![]),
        ("ext.default.svc.cluster.local.", CNAME, ok, vec!["ext.default.svc.cluster.local. 30 IN CNAME www.example.com."], vec![]),
        // No ClusterIP yet: nothing.
        ("pending.default.svc.cluster.local.", A, nx, vec![], soa.clone()),
        // Zone records, empty non-terminals, unknown names.
        ("dns-version.cluster.local.", TXT, ok, vec!["dns-version.cluster.local. 30 IN TXT 1.1.0"], vec![]),
        ("cluster.local.", NS, ok, vec!["cluster.local. 30 IN NS ns.dns.cluster.local."], vec![]),
        ("default.svc.cluster.local.", A, ok, vec![], soa.clone()),
        ("svc.cluster.local.", A, ok, vec![], soa.clone()),
        ("nope.default.svc.cluster.local.", A, nx, vec![], soa.clone()),
        ("nope.nowhere.svc.cluster.local.", A, nx, vec![], soa.clone()),
        ("web.default.cluster.local.", A, nx, vec![], soa.clone()),
        // pods insecure.
        ("10-244-1-5.default.pod.cluster.local.", A, ok, vec!["10-244-1-5.default.pod.cluster.local. 30 IN A 10.244.1.5"], vec![]),
        ("10-244-1-5.default.pod.cluster.local.", AAAA, ok, vec![], soa.clone()),
        ("fd00--5.default.pod.cluster.local.", AAAA, ok, vec!["fd00--5.default.pod.cluster.local. 30 IN AAAA fd00::5"], vec![]),
        ("web.default.pod.cluster.local.", A, nx, vec![], soa.clone()),
        // Outside the zone.
        ("example.com.", A, ResponseCode::Refused, vec!["forward"], vec![]),
    ];
    for (name, qtype, code, answers, auth) in cases {
        let got = ask(&idx, name, qtype);
        assert_eq!(
            got,
            (code, answers.iter().map(|s| s.to_string()).collect(), auth),
            "{name} {qtype}"
        );
    }
}

#[test]
fn lookups_ignore_case_and_keep_the_askers_spelling() {
    let idx = index();
    let (code, answers, _) = ask(&idx, "WEB.Default.SVC.Cluster.Local.", RecordType::A);
    assert_eq!(code, ResponseCode::NoError);
    assert_eq!(
        answers,
        vec!["WEB.Default.SVC.Cluster.Local. 30 IN A 10.96.0.10"]
    );
    // A name without the trailing dot is the same question.
    let (code, answers, _) = ask(&idx, "web.default.svc.cluster.local", RecordType::A);
    assert_eq!(code, ResponseCode::NoError);
    assert_eq!(answers.len(), 1);
}

#[test]
fn soa_ttl_domain_and_counts_follow_the_config() {
    let (s, e) = fixtures();
    let cfg = IndexConfig {
        domain: "Corp.Example".into(),
        ttl: 5,
    };
    let idx = Index::build(&cfg, &s, &e).unwrap();
    assert_eq!(idx.services(), 6);
    let (code, answers, _) = ask(&idx, "web.default.svc.corp.example.", RecordType::A);
    assert_eq!(code, ResponseCode::NoError);
    assert_eq!(
        answers,
        vec!["web.default.svc.corp.example. 5 IN A 10.96.0.10"]
    );
    let (_, answers, _) = ask(&idx, "corp.example.", RecordType::SOA);
    assert_eq!(answers.len(), 1);
    assert!(
        answers[0].contains("SOA ns.dns.corp.example. hostmaster.corp.example."),
        "{answers:?}"
    );
    assert!(answers[0].ends_with(" 7200 1800 86400 5"), "{answers:?}");
    let (_, answers, _) = ask(&idx, "web.default.svc.cluster.local.", RecordType::A);
    assert_eq!(answers, vec!["forward"]);
}

#[test]
fn any_returns_every_rrset_of_the_name() {
    let idx = index();
    let (code, answers, _) = ask(&idx, "dual.default.svc.cluster.local.", RecordType::ANY);
    assert_eq!(code, ResponseCode::NoError);
    assert_eq!(answers.len(), 2);
}
