//! Starting the whole server (what `cmd/kube-dns/app/server.go` wires up
//! upstream): validate the configuration, read the upstream resolvers, bind
//! the DNS and health ports, then serve while the reflectors keep the index
//! current. Split in [`start`] (binds, so a test learns the ports) and the
//! returned future (serves).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::forward::{self, Forwarder};
use crate::health::{self, HealthState};
use crate::index::{Index, IndexConfig, IndexError};
use crate::metrics::DnsMetrics;
use crate::server::{self, Dns, ServeError};
use crate::watch::{self, Readiness};

/// Everything the server needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub index: IndexConfig,
    /// UDP and TCP address of the DNS server.
    pub dns_addr: SocketAddr,
    /// Plain HTTP `/healthz`, `/readyz`, `/metrics`; `None` turns it off.
    pub health_addr: Option<SocketAddr>,
    /// Where the upstream resolvers are read from.
    pub resolv_conf: PathBuf,
    /// How long one upstream gets to answer.
    pub forward_timeout: Duration,
    /// Receive loops on the UDP socket.
    pub udp_workers: usize,
    /// The least time between two index rebuilds.
    pub min_rebuild: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            index: IndexConfig::default(),
            dns_addr: ([0, 0, 0, 0], 53).into(),
            health_addr: Some(([0, 0, 0, 0], 8080).into()),
            resolv_conf: "/etc/resolv.conf".into(),
            forward_timeout: Duration::from_secs(2),
            udp_workers: 2,
            min_rebuild: Duration::from_millis(100),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The cluster domain is not a valid name.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The DNS port could not be bound.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The health port could not be bound.
    #[error("listening on {addr} (health): {source}")]
    Health {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A started server: where it listens, and what it answers from.
pub struct Running {
    pub dns_addr: SocketAddr,
    pub health_addr: Option<SocketAddr>,
    pub dns: Arc<Dns>,
    pub ready: Arc<Readiness>,
}

/// Binds everything; the future serves until dropped.
pub async fn start(
    config: Config,
    client: kube::Client,
    registry: Arc<component_base::metrics::Metrics>,
) -> Result<(Running, impl std::future::Future<Output = ()>), StartError> {
    let index = Index::empty(&config.index)?;
    let listeners = server::bind(config.dns_addr).await?;
    let dns_addr = listeners.local_addr().map_err(|source| ServeError::Bind {
        addr: config.dns_addr,
        proto: "udp",
        source,
    })?;
    let upstreams = match forward::read_resolv_conf(&config.resolv_conf) {
        Ok(u) => forward::without_self(u, &[config.dns_addr, dns_addr]),
        Err(e) => {
            tracing::warn!(error = %e, "no upstream resolvers: names outside the cluster get SERVFAIL");
            Vec::new()
        }
    };
    tracing::info!(upstreams = ?upstreams, "forwarding names outside the cluster domain");
    let metrics = DnsMetrics::default();
    metrics.register(&registry);
    let dns = Dns::new(
        index,
        Forwarder::new(upstreams, config.forward_timeout),
        metrics,
    );
    let ready = Arc::new(Readiness::default());
    let (health_addr, health) = match config.health_addr {
        Some(addr) => {
            let (a, f) = health::bind(addr, HealthState::new(ready.clone(), registry))
                .await
                .map_err(|source| StartError::Health { addr, source })?;
            (Some(a), Some(f))
        }
        None => (None, None),
    };
    tracing::info!(dns = %dns_addr, health = ?health_addr, domain = %config.index.domain, "serving");
    let running = Running {
        dns_addr,
        health_addr,
        dns: dns.clone(),
        ready: ready.clone(),
    };
    let serve = async move {
        let health = async move {
            match health {
                Some(h) => h.await,
                None => std::future::pending().await,
            }
        };
        tokio::join!(
            listeners.serve(dns.clone(), config.udp_workers),
            watch::run(client, config.index, dns, ready, config.min_rebuild),
            health,
        );
    };
    Ok((running, serve))
}
