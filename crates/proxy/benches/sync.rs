//! Full-sync cost of the nftables proxier (issue 6's benchmark): render and
//! apply the rule set for 1,000, 10,000 and 30,000 Services with 5
//! endpoints each, inside a throw-away network namespace, then one
//! endpoint change at 10,000 Services. Prints figures; asserts nothing.
//! Run: `cargo bench -p proxy --bench sync` (root, needs `ip` and `nft`).

use std::process::Command;
use std::time::Instant;

use proxy::nftables::apply::{Nft, NftCommand};
use proxy::nftables::ruleset::{build, diff, full, Settings};
use proxy::types::{Endpoint, Protocol, ServiceMap, ServicePort, ServicePortName};

fn map(services: usize) -> ServiceMap {
    let mut m = ServiceMap::default();
    for i in 0..services {
        let spn = ServicePortName {
            namespace: format!("ns{}", i % 50),
            name: format!("svc{i}"),
            port: "http".into(),
            protocol: Protocol::Tcp,
        };
        let ip = |base: u32| std::net::Ipv4Addr::from(base + i as u32);
        m.ports.insert(
            spn.clone(),
            ServicePort {
                cluster_ip: Some(ip(0x0a40_0000)), // 10.64.0.0 onwards
                port: 80,
                node_port: None,
                external_ips: vec![],
                load_balancer_ips: vec![],
                affinity_timeout: None,
                external_policy_local: false,
                internal_policy_local: false,
            },
        );
        let eps = (0..5u32)
            .map(|e| Endpoint {
                ip: std::net::Ipv4Addr::from(0x0a50_0000 + (i as u32) * 8 + e),
                port: 8080,
                ready: true,
                serving: true,
                terminating: false,
                local: false,
            })
            .collect();
        m.endpoints.insert(spn, eps);
    }
    m
}

#[tokio::main]
async fn main() {
    let ns = format!("kp-bench-{}", std::process::id());
    let status = Command::new("ip").args(["netns", "add", &ns]).status();
    if !matches!(status, Ok(s) if s.success()) {
        eprintln!("cannot create a network namespace (needs root and iproute2)");
        std::process::exit(1);
    }
    let nft = NftCommand {
        netns: Some(ns.clone()),
    };
    let settings = Settings {
        cluster_cidr: Some("10.80.0.0/12".into()),
        masquerade_all: false,
        nodeport_ips: vec![],
    };
    println!("services  render      apply       script");
    for n in [1_000usize, 10_000, 30_000] {
        let m = map(n);
        let t = Instant::now();
        let rules = build(&m, &settings);
        let script = full(&rules, &settings);
        let rendered = t.elapsed();
        if let Ok(dir) = std::env::var("KP_BENCH_DUMP") {
            let _ = std::fs::write(format!("{dir}/rules-{n}.nft"), &script);
            continue;
        }
        let t = Instant::now();
        if let Err(e) = nft.apply(&script).await {
            eprintln!("apply failed at {n} services: {e}");
            break;
        }
        let applied = t.elapsed();
        println!(
            "{n:>8}  {:>8.1}ms  {:>8.1}ms  {:.1} MiB",
            rendered.as_secs_f64() * 1e3,
            applied.as_secs_f64() * 1e3,
            script.len() as f64 / (1024.0 * 1024.0)
        );
        if n == 10_000 {
            let mut changed = m.clone();
            if let Some(eps) = changed.endpoints.values_mut().next() {
                eps[0].ip = std::net::Ipv4Addr::new(10, 95, 0, 1);
            }
            let t = Instant::now();
            let new_rules = build(&changed, &settings);
            let built = t.elapsed();
            let script = diff(&rules, &new_rules).unwrap_or_default();
            let diffed = t.elapsed() - built;
            if let Ok(dir) = std::env::var("KP_BENCH_DIFF") {
                let _ = std::fs::write(format!("{dir}/diff-10000.nft"), &script);
                let _ = std::fs::write(format!("{dir}/full-10000.nft"), full(&rules, &settings));
            }
            let t = Instant::now();
            let r = nft.apply(&script).await;
            println!(
                "one endpoint change at 10,000 services (partial sync): build {:.1}ms, diff {:.1}ms, nft {:.1}ms ({} bytes){}",
                built.as_secs_f64() * 1e3,
                diffed.as_secs_f64() * 1e3,
                t.elapsed().as_secs_f64() * 1e3,
                script.len(),
                if let Err(e) = &r { format!(" (failed: {e})") } else { String::new() }
            );
        }
    }
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
}
