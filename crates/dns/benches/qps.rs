//! Queries per second for a ClusterIP name over UDP on loopback (issue 6's
//! target: 50,000 from one client core). The server runs in this process
//! on its own runtime with an index of 10,000 Services; one client thread
//! keeps a window of queries in flight on one socket. Also prints the cost
//! of parsing and answering one query without sockets.
//!
//! `cargo bench -p dns --bench qps` (env: `DNS_BENCH_SECONDS`,
//! `DNS_BENCH_SERVER_THREADS`, `DNS_BENCH_WINDOW`). Never run in CI.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use dns::forward::Forwarder;
use dns::index::{Index, IndexConfig};
use dns::metrics::DnsMetrics;
use dns::query::{self, Transport};
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use k8s_openapi::api::core::v1::Service;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn index(n: usize) -> Index {
    let services: Vec<Service> = (0..n)
        .map(|i| {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": format!("svc-{i}"), "namespace": format!("ns-{}", i % 100)},
                "spec": {"clusterIP": format!("10.96.{}.{}", i / 250, i % 250 + 1),
                    "ports": [{"name": "http", "port": 80}]}}))
            .unwrap_or_default()
        })
        .collect();
    let start = Instant::now();
    let idx = match Index::build(&IndexConfig::default(), &services, []) {
        Ok(i) => i,
        Err(e) => panic!("{e}"),
    };
    println!(
        "index of {n} Services built in {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    idx
}

fn main() {
    let seconds = env("DNS_BENCH_SECONDS", 5);
    let threads = env("DNS_BENCH_SERVER_THREADS", 1) as usize;
    let window = env("DNS_BENCH_WINDOW", 32) as usize;
    let idx = index(10_000);

    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(
        Name::from_ascii("svc-4242.ns-42.svc.cluster.local.").unwrap_or_default(),
        RecordType::A,
    ));
    let mut q = m.to_vec().unwrap_or_default();

    // In memory: parse + lookup + assemble.
    let n = 1_000_000;
    let start = Instant::now();
    let mut bytes = 0;
    for _ in 0..n {
        if let Ok(parsed) = query::parse(&q) {
            if let query::Outcome::Reply(b, _) = query::answer(&idx, &parsed, Transport::Udp) {
                bytes += b.len();
            }
        }
    }
    let per = start.elapsed().as_secs_f64() / n as f64;
    println!(
        "in memory: {:.0} ns per query ({:.0} queries/s on one core, {} bytes per answer)",
        per * 1e9,
        1.0 / per,
        bytes / n
    );

    // Over loopback.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let dns = dns::server::Dns::new(
        idx,
        Forwarder::new(vec![], Duration::from_secs(1)),
        DnsMetrics::default(),
    );
    let listeners = rt
        .block_on(dns::server::bind(
            "127.0.0.1:0".parse().unwrap_or_else(|_| unreachable!()),
        ))
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listeners.local_addr().unwrap_or_else(|e| panic!("{e}"));
    rt.spawn(listeners.serve(dns, threads));

    let sock = UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    sock.connect(addr).unwrap_or_else(|e| panic!("{e}"));
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut buf = [0u8; 1500];
    let mut id: u16 = 0;
    let mut send = |sock: &UdpSocket, q: &mut Vec<u8>| {
        id = id.wrapping_add(1);
        q[0..2].copy_from_slice(&id.to_be_bytes());
        let _ = sock.send(q);
    };
    // Warm up, then measure.
    for phase in [Duration::from_millis(500), Duration::from_secs(seconds)] {
        for _ in 0..window {
            send(&sock, &mut q);
        }
        let start = Instant::now();
        let mut answered: u64 = 0;
        let mut lost: u64 = 0;
        while start.elapsed() < phase {
            match sock.recv(&mut buf) {
                Ok(n) if n > 12 && buf[3] & 0x0f == 0 => answered += 1,
                Ok(_) => {}
                Err(_) => {
                    lost += window as u64;
                    for _ in 0..window {
                        send(&sock, &mut q);
                    }
                    continue;
                }
            }
            send(&sock, &mut q);
        }
        // Drain what is still in flight.
        while sock.recv(&mut buf).is_ok() {}
        if phase.as_secs() >= 1 {
            let secs = start.elapsed().as_secs_f64();
            println!(
                "udp loopback: {:.0} queries/s ({answered} answers in {secs:.1} s, window {window}, {threads} server thread(s), {lost} resent after a timeout)",
                answered as f64 / secs
            );
        }
    }
}
