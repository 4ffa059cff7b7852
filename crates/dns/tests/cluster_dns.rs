//! The DNS server against a real API server (in process, on a real etcd):
//! Services and EndpointSlices created through the API appear as records,
//! asked over real UDP and TCP on loopback with hickory-proto messages;
//! names outside the cluster go to a fake upstream resolver on loopback;
//! a silent or missing upstream is SERVFAIL; garbage is FORMERR.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use integration::TestApiServer;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    match serde_json::from_value(v) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

fn query(name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = rand_id();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
    if let Some(p) = edns {
        let mut e = Edns::new();
        e.set_max_payload(p);
        m.set_edns(e);
    }
    m.to_vec().expect("encode")
}

fn rand_id() -> u16 {
    (Instant::now().elapsed().subsec_nanos() & 0xffff) as u16 ^ 0x5a5a
}

async fn udp_raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let s = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    s.send_to(bytes, addr).await.expect("send");
    let mut buf = vec![0u8; 65535];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), s.recv_from(&mut buf))
        .await
        .expect("udp answer in time")
        .expect("recv");
    buf.truncate(n);
    buf
}

async fn udp(addr: SocketAddr, name: &str, qtype: RecordType, edns: Option<u16>) -> Message {
    Message::from_vec(&udp_raw(addr, &query(name, qtype, edns)).await).expect("decode")
}

async fn tcp(addr: SocketAddr, name: &str, qtype: RecordType) -> Message {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let q = query(name, qtype, None);
    let mut out = (q.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&q);
    s.write_all(&out).await.expect("write");
    let n = tokio::time::timeout(Duration::from_secs(5), s.read_u16())
        .await
        .expect("tcp answer in time")
        .expect("len");
    let mut buf = vec![0u8; usize::from(n)];
    s.read_exact(&mut buf).await.expect("read");
    Message::from_vec(&buf).expect("decode")
}

fn addrs(m: &Message) -> Vec<String> {
    let mut v: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
    v.sort();
    v
}

/// Asks over UDP until `want` holds, or panics after 10 s.
async fn eventually(
    addr: SocketAddr,
    name: &str,
    qtype: RecordType,
    want: impl Fn(&Message) -> bool,
) -> Message {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = udp(addr, name, qtype, None).await;
        if want(&m) {
            return m;
        }
        if Instant::now() > deadline {
            panic!("{name} {qtype}: last answer {m:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A fake upstream resolver on loopback UDP: every A question gets 192.0.2.7.
async fn fake_upstream() -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").await.expect("bind upstream");
    let addr = s.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = s.recv_from(&mut buf).await else {
                continue;
            };
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut r = Message::response(q.metadata.id, q.metadata.op_code);
            r.metadata.recursion_available = true;
            for question in &q.queries {
                r.add_query(question.clone());
                if question.query_type == RecordType::A {
                    r.add_answer(Record::from_rdata(
                        question.name.clone(),
                        60,
                        RData::A(A::new(192, 0, 2, 7)),
                    ));
                }
            }
            if let Ok(b) = r.to_vec() {
                let _ = s.send_to(&b, peer).await;
            }
        }
    });
    addr
}

async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect health");
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    (code, body)
}

async fn start_dns(
    server: &TestApiServer,
    resolv: &std::path::Path,
    timeout: Duration,
) -> dns::run::Running {
    let config = dns::run::Config {
        dns_addr: "127.0.0.1:0".parse().expect("addr"),
        health_addr: Some("127.0.0.1:0".parse().expect("addr")),
        resolv_conf: resolv.to_path_buf(),
        forward_timeout: timeout,
        min_rebuild: Duration::from_millis(20),
        ..dns::run::Config::default()
    };
    let client = server.new_client().await.expect("client");
    let registry = Arc::new(component_base::metrics::Metrics::default());
    let (running, serve) = dns::run::start(config, client, registry)
        .await
        .expect("start dns");
    tokio::spawn(serve);
    running
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_follow_the_api_and_the_rest_is_forwarded() {
    if std::env::var_os("RUST_LOG").is_some() {
        component_base::logs::init(0);
    }
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let upstream = fake_upstream().await;
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        format!("search example\nnameserver {upstream}\noptions ndots:5\n"),
    )
    .expect("resolv.conf");
    let running = start_dns(&server, &resolv, Duration::from_secs(2)).await;
    let dns = running.dns_addr;
    let health = running.health_addr.expect("health port");

    // Ready once the reflectors listed.
    let deadline = Instant::now() + Duration::from_secs(10);
    while http_get(health, "/readyz").await.0 != 200 {
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(http_get(health, "/healthz").await, (200, "ok".into()));

    let services: Api<Service> = Api::namespaced(server.client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(server.client.clone(), "default");
    let web = services
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})),
        )
        .await
        .expect("create web");
    let ip = web
        .spec
        .and_then(|s| s.cluster_ip)
        .expect("allocated cluster IP");
    services
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "db"},
                "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"name": "pg", "port": 5432}]}})),
        )
        .await
        .expect("create db");
    let eps: Vec<_> = (0..40)
        .map(|i| {
            json!({"addresses": [format!("10.244.0.{}", i + 10)], "hostname": format!("db-{i}"),
            "conditions": {"ready": i != 39}})
        })
        .collect();
    slices
        .create(
            &PostParams::default(),
            &from(
                json!({"metadata": {"name": "db-1", "labels": {"kubernetes.io/service-name": "db"}},
                "addressType": "IPv4", "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
                "endpoints": eps}),
            ),
        )
        .await
        .expect("create slice");

    // ClusterIP A over UDP, then TCP, any case.
    let m = eventually(dns, "web.default.svc.cluster.local.", RecordType::A, |m| {
        !m.answers.is_empty()
    })
    .await;
    assert_eq!(addrs(&m), vec![ip.clone()]);
    assert!(m.metadata.authoritative);
    let m = tcp(dns, "WEB.default.svc.Cluster.Local.", RecordType::A).await;
    assert_eq!(addrs(&m), vec![ip.clone()]);
    // SRV for the named port, with the A record as additional.
    let m = udp(
        dns,
        "_http._tcp.web.default.svc.cluster.local.",
        RecordType::SRV,
        None,
    )
    .await;
    assert_eq!(
        addrs(&m),
        vec!["0 100 80 web.default.svc.cluster.local.".to_string()]
    );
    assert_eq!(m.additionals.len(), 1);
    // PTR of the ClusterIP.
    let rev = dns::names::reverse(ip.parse::<IpAddr>().expect("ip"));
    let m = udp(dns, &format!("{rev}."), RecordType::PTR, None).await;
    assert_eq!(
        addrs(&m),
        vec!["web.default.svc.cluster.local.".to_string()]
    );
    // NODATA and NXDOMAIN, both with the SOA.
    let m = udp(
        dns,
        "web.default.svc.cluster.local.",
        RecordType::AAAA,
        None,
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
    let m = udp(dns, "nope.default.svc.cluster.local.", RecordType::A, None).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
    // The schema version.
    let m = udp(dns, "dns-version.cluster.local.", RecordType::TXT, None).await;
    assert_eq!(addrs(&m), vec!["1.1.0".to_string()]);

    // Headless: 39 ready endpoints are too many for 512 bytes: TC over UDP,
    // everything over TCP and over UDP with a large EDNS buffer.
    let m = eventually(
        dns,
        "db-0.db.default.svc.cluster.local.",
        RecordType::A,
        |m| !m.answers.is_empty(),
    )
    .await;
    assert_eq!(addrs(&m), vec!["10.244.0.10".to_string()]);
    let m = udp(dns, "db.default.svc.cluster.local.", RecordType::A, None).await;
    assert!(m.metadata.truncation);
    assert!(m.answers.is_empty());
    let m = tcp(dns, "db.default.svc.cluster.local.", RecordType::A).await;
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 39);
    let m = udp(
        dns,
        "db.default.svc.cluster.local.",
        RecordType::A,
        Some(4096),
    )
    .await;
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 39);
    let m = tcp(
        dns,
        "_pg._tcp.db.default.svc.cluster.local.",
        RecordType::SRV,
    )
    .await;
    assert_eq!(m.answers.len(), 39);
    let m = udp(
        dns,
        "db-39.db.default.svc.cluster.local.",
        RecordType::A,
        None,
    )
    .await;
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NXDomain,
        "not ready"
    );
    let m = udp(dns, "12.0.244.10.in-addr.arpa.", RecordType::PTR, None).await;
    assert_eq!(
        addrs(&m),
        vec!["db-2.db.default.svc.cluster.local.".to_string()]
    );

    // Pods by address.
    let m = udp(
        dns,
        "10-1-2-3.default.pod.cluster.local.",
        RecordType::A,
        None,
    )
    .await;
    assert_eq!(addrs(&m), vec!["10.1.2.3".to_string()]);

    // Outside the zone: forwarded to the fake upstream, over UDP and TCP
    // (the fake has no TCP listener, so TCP fails cleanly: SERVFAIL).
    let m = udp(dns, "example.com.", RecordType::A, None).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addrs(&m), vec!["192.0.2.7".to_string()]);
    assert_eq!(m.metadata.message_type, MessageType::Response);
    let m = tcp(dns, "example.com.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);

    // ExternalName: the CNAME, and the target's address from upstream.
    services
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "ext"},
                "spec": {"type": "ExternalName", "externalName": "www.example.com"}})),
        )
        .await
        .expect("create ext");
    let m = eventually(dns, "ext.default.svc.cluster.local.", RecordType::A, |m| {
        !m.answers.is_empty()
    })
    .await;
    assert_eq!(
        addrs(&m),
        vec!["192.0.2.7".to_string(), "www.example.com.".to_string()]
    );
    assert_eq!(m.answers[0].record_type(), RecordType::CNAME);

    // Garbage is FORMERR, and the server still answers afterwards.
    let mut junk = vec![0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0];
    junk.extend_from_slice(&[0x3f, 0xff, 0xff]);
    let r = Message::from_vec(&udp_raw(dns, &junk).await).expect("formerr decodes");
    assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(r.metadata.id, 0x1234);
    let m = udp(dns, "web.default.svc.cluster.local.", RecordType::A, None).await;
    assert_eq!(addrs(&m), vec![ip.clone()]);

    // Deleting the Service removes its records.
    services
        .delete("web", &DeleteParams::default())
        .await
        .expect("delete web");
    eventually(dns, "web.default.svc.cluster.local.", RecordType::A, |m| {
        m.metadata.response_code == ResponseCode::NXDomain
    })
    .await;

    // Metrics counted all of it.
    let (code, text) = http_get(health, "/metrics").await;
    assert_eq!(code, 200);
    assert!(
        text.contains(r#"coredns_dns_requests_total{proto="udp",family="1",type="A"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"coredns_dns_responses_total{rcode="FORMERR"} 1"#),
        "{text}"
    );
    assert!(text.contains("coredns_dns_request_duration_seconds_bucket"));
    assert!(text.contains("coredns_forward_requests_total 3"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_or_missing_upstreams_are_servfail() {
    let server = TestApiServer::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let resolv = dir.path().join("silent.conf");
    std::fs::write(
        &resolv,
        format!("nameserver {}\n", silent.local_addr().expect("addr")),
    )
    .expect("write");
    let running = start_dns(&server, &resolv, Duration::from_millis(200)).await;
    let start = Instant::now();
    let m = udp(running.dns_addr, "example.com.", RecordType::A, None).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(m.queries[0].name.to_ascii(), "example.com.");
    assert!(start.elapsed() < Duration::from_secs(2));

    // No resolv.conf at all: SERVFAIL at once. A resolv.conf naming only
    // this server itself is the same (never forwarded to itself).
    let running = start_dns(
        &server,
        &dir.path().join("missing.conf"),
        Duration::from_secs(2),
    )
    .await;
    let m = udp(running.dns_addr, "example.com.", RecordType::A, None).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(running.dns.forwarder().upstreams().is_empty());
}
