//! Full-sync cost of the nftables and iptables proxiers (issue 6's
//! benchmark): render and apply the rule set for 1,000, 10,000 and 30,000
//! Services with 5 endpoints each, inside a throw-away network namespace
//! per mode, then one endpoint change at 10,000 Services. Prints figures;
//! asserts nothing. Run: `cargo bench -p proxy --bench sync` (root, needs
//! `ip`, `nft` and `iptables-restore`; `KP_BENCH_MODE=iptables` for one).

use std::process::Command;
use std::time::Instant;

use proxy::iptables::apply::{Iptables, IptablesCommand};
use proxy::iptables::ruleset as ipt;
use proxy::nftables::apply::{Nft, NftCommand};
use proxy::nftables::ruleset as nft;
use proxy::types::{Endpoint, Protocol, ServiceMap, ServicePort, ServicePortName, Settings};

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

/// One mode's rendering and applying, so both modes share the loop.
enum Mode {
    Nft(NftCommand),
    Ipt(IptablesCommand),
}

/// A rendered rule set of either mode.
enum Rules {
    Nft(nft::RuleSet),
    Ipt(ipt::RuleSet),
}

impl Mode {
    fn name(&self) -> &'static str {
        match self {
            Mode::Nft(_) => "nftables",
            Mode::Ipt(_) => "iptables",
        }
    }
    fn build(&self, m: &ServiceMap, settings: &Settings) -> Rules {
        match self {
            Mode::Nft(_) => Rules::Nft(nft::build(m, settings)),
            Mode::Ipt(_) => Rules::Ipt(ipt::build(m, settings)),
        }
    }
    fn full(&self, r: &Rules, settings: &Settings) -> String {
        match r {
            Rules::Nft(r) => nft::full(r, settings),
            Rules::Ipt(r) => ipt::full(r, &[]),
        }
    }
    fn diff(&self, old: &Rules, new: &Rules) -> String {
        match (old, new) {
            (Rules::Nft(o), Rules::Nft(n)) => nft::diff(o, n).unwrap_or_default(),
            (Rules::Ipt(o), Rules::Ipt(n)) => ipt::diff(o, n).unwrap_or_default(),
            _ => String::new(),
        }
    }
    async fn apply(&self, script: &str) -> Result<(), proxy::exec::ApplyError> {
        match self {
            Mode::Nft(n) => n.apply(script).await,
            Mode::Ipt(i) => i.restore(script).await,
        }
    }
}

async fn bench(mode: &Mode, settings: &Settings) {
    println!("{} mode", mode.name());
    println!("services  render      apply       script");
    for n in [1_000usize, 10_000, 30_000] {
        let m = map(n);
        let t = Instant::now();
        let rules = mode.build(&m, settings);
        let script = mode.full(&rules, settings);
        let rendered = t.elapsed();
        if let Ok(dir) = std::env::var("KP_BENCH_DUMP") {
            let _ = std::fs::write(format!("{dir}/rules-{n}.{}", mode.name()), &script);
            continue;
        }
        let t = Instant::now();
        if let Err(e) = mode.apply(&script).await {
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
            let new_rules = mode.build(&changed, settings);
            let built = t.elapsed();
            let script = mode.diff(&rules, &new_rules);
            let diffed = t.elapsed() - built;
            let t = Instant::now();
            let r = mode.apply(&script).await;
            println!(
                "one endpoint change at 10,000 services (partial sync): build {:.1}ms, diff {:.1}ms, apply {:.1}ms ({} bytes){}",
                built.as_secs_f64() * 1e3,
                diffed.as_secs_f64() * 1e3,
                t.elapsed().as_secs_f64() * 1e3,
                script.len(),
                if let Err(e) = &r { format!(" (failed: {e})") } else { String::new() }
            );
        }
    }
}

#[tokio::main]
async fn main() {
    let which = std::env::var("KP_BENCH_MODE").unwrap_or_default();
    let settings = Settings {
        cluster_cidr: Some("10.80.0.0/12".into()),
        masquerade_all: false,
        nodeport_ips: vec![],
    };
    for name in ["nftables", "iptables"] {
        if !which.is_empty() && which != name {
            continue;
        }
        // A fresh namespace per mode, so each starts from nothing.
        let ns = format!("kp-bench-{}-{name}", std::process::id());
        let status = Command::new("ip").args(["netns", "add", &ns]).status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("cannot create a network namespace (needs root and iproute2)");
            std::process::exit(1);
        }
        let netns = Some(ns.clone());
        let mode = if name == "nftables" {
            Mode::Nft(NftCommand { netns })
        } else {
            Mode::Ipt(IptablesCommand { netns })
        };
        bench(&mode, &settings).await;
        let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    }
}
