//! Flags checked and turned into the server's configuration.

use std::net::SocketAddr;

use anyhow::{bail, Context};

use super::options::Options;

pub fn from_options(o: &Options) -> anyhow::Result<dns::run::Config> {
    let domain = o.domain.trim().trim_end_matches('.').to_string();
    if domain.is_empty() {
        bail!("--domain must not be empty");
    }
    dns::names::key(&domain).with_context(|| format!("--domain={:?}", o.domain))?;
    if o.ttl > 3600 {
        bail!("--ttl={}: at most 3600 seconds", o.ttl);
    }
    let forward_timeout = apimachinery::duration::parse_go_duration(&o.forward_timeout)
        .with_context(|| format!("--forward-timeout={:?}", o.forward_timeout))?;
    if forward_timeout.is_zero() {
        bail!("--forward-timeout must be positive");
    }
    Ok(dns::run::Config {
        index: dns::index::IndexConfig { domain, ttl: o.ttl },
        dns_addr: SocketAddr::new(o.dns_bind_address, o.dns_port),
        health_addr: (o.health_port != 0)
            .then(|| SocketAddr::new(o.health_bind_address, o.health_port)),
        resolv_conf: o.resolv_conf.clone(),
        forward_timeout,
        udp_workers: o.udp_workers.max(1),
        ..dns::run::Config::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn defaults_and_checks() {
        let c = from_options(&Options::parse_from(["kube-dns"])).unwrap();
        assert_eq!(c.index.domain, "cluster.local");
        assert_eq!(c.index.ttl, 30);
        assert_eq!(c.dns_addr, "0.0.0.0:53".parse().unwrap());
        assert_eq!(c.health_addr, Some("0.0.0.0:8080".parse().unwrap()));
        let c = from_options(&Options::parse_from([
            "kube-dns",
            "--domain=corp.example.",
            "--dns-port=5353",
            "--dns-bind-address=127.0.0.1",
            "--health-port=0",
            "--ttl=5",
        ]))
        .unwrap();
        assert_eq!(c.index.domain, "corp.example");
        assert_eq!(c.dns_addr, "127.0.0.1:5353".parse().unwrap());
        assert_eq!(c.health_addr, None);
        for bad in ["--domain=a..b", "--ttl=99999", "--forward-timeout=soon"] {
            assert!(
                from_options(&Options::parse_from(["kube-dns", bad])).is_err(),
                "{bad}"
            );
        }
    }
}
