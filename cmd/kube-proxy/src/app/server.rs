//! Running kube-proxy (upstream's `cmd/kube-proxy/app/server.go`): the
//! node's name and IP, the proxier for the chosen mode, the health and
//! metrics servers, or `--cleanup`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use anyhow::{bail, Context};
use k8s_openapi::api::core::v1::Node;
use proxy::backend::Backend;
use proxy::iptables::{apply::IptablesCommand, IptablesBackend};
use proxy::nftables::{apply::NftCommand, NftablesBackend};
use proxy::proxier::{self, Health, Proxier, ProxierConfig, ProxierMetrics};
use proxy::types::Settings;

use super::options::Options;

fn duration(flag: &str, s: &str) -> anyhow::Result<std::time::Duration> {
    apimachinery::duration::parse_go_duration(s).with_context(|| format!("--{flag}={s:?}"))
}

fn node_name(opts: &Options) -> String {
    opts.hostname_override
        .clone()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_lowercase())
        .unwrap_or_else(|| "localhost".into())
}

/// The address the default route would use (no packet is sent).
fn primary_ip() -> Option<Ipv4Addr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    match s.local_addr().ok()?.ip() {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    }
}

/// The node's InternalIP from its Node object, else the primary address.
async fn node_ip(client: &kube::Client, name: &str) -> Option<Ipv4Addr> {
    let nodes: kube::Api<Node> = kube::Api::all(client.clone());
    let from_node = nodes.get_opt(name).await.ok().flatten().and_then(|n| {
        n.status?
            .addresses?
            .into_iter()
            .find(|a| a.type_ == "InternalIP")
            .and_then(|a| a.address.parse().ok())
    });
    from_node.or_else(primary_ip)
}

/// `--nodeport-addresses`: `primary` is the node IP; CIDRs select the
/// local addresses inside them (only the node IP is known here, so a CIDR
/// containing it selects it); empty means every local address.
fn nodeport_ips(spec: &[String], node_ip: Option<Ipv4Addr>) -> anyhow::Result<Vec<Ipv4Addr>> {
    let mut out = Vec::new();
    for s in spec.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        if s == "primary" {
            out.extend(node_ip);
            continue;
        }
        let (net, bits) = s
            .split_once('/')
            .with_context(|| format!("--nodeport-addresses: {s:?} is not a CIDR or 'primary'"))?;
        let net: Ipv4Addr = net
            .parse()
            .with_context(|| format!("--nodeport-addresses: {s:?} is not an IPv4 CIDR"))?;
        let bits: u32 = bits
            .parse()
            .ok()
            .filter(|b| *b <= 32)
            .with_context(|| format!("--nodeport-addresses: {s:?} has a bad prefix length"))?;
        if bits == 0 {
            return Ok(Vec::new());
        }
        let mask = u32::MAX << (32 - bits);
        if let Some(ip) = node_ip.filter(|ip| u32::from(*ip) & mask == u32::from(net) & mask) {
            out.push(ip);
        }
    }
    out.dedup();
    Ok(out)
}

/// The proxier of `mode` on the host's packet filter.
fn make_backend(mode: &str, settings: Settings) -> Box<dyn Backend> {
    if mode == "iptables" {
        Box::new(IptablesBackend::new(
            Arc::new(IptablesCommand::default()),
            settings,
        ))
    } else {
        Box::new(NftablesBackend::new(
            Arc::new(NftCommand::default()),
            settings,
        ))
    }
}

pub async fn run(opts: Options) -> anyhow::Result<()> {
    let opts = match &opts.config {
        Some(path) => super::config::load(path, opts.clone())?,
        None => opts,
    };
    // Upstream's default on Linux is iptables.
    let mode = match opts.proxy_mode.as_str() {
        "" | "iptables" => "iptables",
        "nftables" => "nftables",
        other => bail!("--proxy-mode={other:?}: unknown proxy mode (want iptables or nftables)"),
    };
    if opts.cleanup {
        // Upstream's --cleanup removes what either mode made; one failing
        // does not keep the other in place.
        let mut failed = Vec::new();
        for m in ["iptables", "nftables"] {
            if let Err(e) = make_backend(m, Settings::default()).cleanup().await {
                tracing::error!(mode = m, error = %e, "cleanup failed");
                failed.push(m);
            }
        }
        if !failed.is_empty() {
            bail!("removing the {} rules failed", failed.join(" and "));
        }
        tracing::info!("removed kube-proxy's iptables chains and nftables table");
        return Ok(());
    }
    let client = opts
        .kube
        .client()
        .await
        .context("building the API client")?;
    let name = node_name(&opts);
    let ip = node_ip(&client, &name).await;
    // Without --nodeport-addresses: the node's primary IP in nftables
    // mode, every local address in iptables mode (upstream's defaults).
    let nodeport_spec =
        if opts.nodeport_addresses.iter().all(|s| s.trim().is_empty()) && mode == "nftables" {
            vec!["primary".to_string()]
        } else {
            opts.nodeport_addresses.clone()
        };
    let settings = Settings {
        cluster_cidr: opts.cluster_cidr.clone().filter(|c| !c.is_empty()),
        masquerade_all: opts.masquerade_all,
        nodeport_ips: nodeport_ips(&nodeport_spec, ip)?,
    };
    tracing::info!(node = %name, node_ip = ?ip, nodeport_ips = ?settings.nodeport_ips, mode, "using the {mode} proxier");
    let config = ProxierConfig {
        node_name: name.clone(),
        sync_period: duration("iptables-sync-period", &opts.sync_period)?,
        min_sync_period: duration("iptables-min-sync-period", &opts.min_sync_period)?,
    };
    let backend = make_backend(mode, settings);

    let metrics = Arc::new(component_base::metrics::Metrics::default());
    let proxier_metrics = ProxierMetrics::default();
    proxier_metrics.register(&metrics, mode);
    let health = Arc::new(Health::default());
    let state = proxy::server::State {
        health: health.clone(),
        health_timeout: config.sync_period * 2,
        metrics,
    };
    let (healthz_addr, healthz) = proxy::server::bind(opts.healthz_bind_address, state.clone())
        .await
        .with_context(|| format!("--healthz-bind-address={}", opts.healthz_bind_address))?;
    let (metrics_addr, metrics_server) = proxy::server::bind(opts.metrics_bind_address, state)
        .await
        .with_context(|| format!("--metrics-bind-address={}", opts.metrics_bind_address))?;
    tracing::info!(healthz = %healthz_addr, metrics = %metrics_addr, "serving");
    tokio::spawn(healthz);
    tokio::spawn(metrics_server);

    let proxier = Proxier::new(backend, proxier_metrics, health);
    tokio::select! {
        () = proxier::run(client, proxier, config) => bail!("the sync loop ended"),
        r = tokio::signal::ctrl_c() => {
            r.context("waiting for a signal")?;
            tracing::info!("shutting down; the rules stay in place");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodeport_addresses_select_the_node_ip() {
        let ip: Ipv4Addr = "192.168.1.5".parse().unwrap();
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(nodeport_ips(&s(&["primary"]), Some(ip)).unwrap(), vec![ip]);
        assert_eq!(
            nodeport_ips(&s(&["192.168.0.0/16"]), Some(ip)).unwrap(),
            vec![ip]
        );
        assert!(nodeport_ips(&s(&["10.0.0.0/8"]), Some(ip))
            .unwrap()
            .is_empty());
        assert!(nodeport_ips(&s(&["0.0.0.0/0"]), Some(ip))
            .unwrap()
            .is_empty());
        assert!(nodeport_ips(&s(&["bogus"]), Some(ip)).is_err());
    }
}
