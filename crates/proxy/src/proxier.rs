//! The sync loop (upstream's `pkg/proxy/config` handlers plus the
//! `BoundedFrequencyRunner` that drives `syncProxyRules`): kube-rs
//! reflectors keep Services and EndpointSlices; any change asks for a
//! sync; syncs run no more often than `min_sync_period` and at least every
//! `sync_period`; a rule set identical to the one applied last is not
//! applied again; a failed apply is retried on the next round and counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use client::reflect::follow;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector;
use kube::Api;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::Notify;

use crate::backend::{Backend, Synced};
use crate::types::ServiceMap;

/// How the proxier runs.
#[derive(Debug, Clone)]
pub struct ProxierConfig {
    /// This node's name: endpoints on it are local.
    pub node_name: String,
    pub sync_period: Duration,
    pub min_sync_period: Duration,
}

/// Upstream's `kubeproxy_sync_proxy_rules_*` metrics.
#[derive(Clone)]
pub struct ProxierMetrics {
    pub sync_duration: Histogram,
    pub full_sync_duration: Histogram,
    pub last_sync_timestamp: Gauge<f64, AtomicU64>,
    pub sync_failures: Counter,
    pub services: Gauge,
    pub endpoints: Gauge,
}

const BUCKETS: [f64; 15] = [
    0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096,
    8.192, 16.384,
];

impl Default for ProxierMetrics {
    fn default() -> Self {
        Self {
            sync_duration: Histogram::new(BUCKETS.into_iter()),
            full_sync_duration: Histogram::new(BUCKETS.into_iter()),
            last_sync_timestamp: Gauge::default(),
            sync_failures: Counter::default(),
            services: Gauge::default(),
            endpoints: Gauge::default(),
        }
    }
}

impl ProxierMetrics {
    /// Registers the metrics; `mode` names the failure counter like
    /// upstream's (`…_iptables_restore_failures`, `…_nftables_sync_failures`).
    pub fn register(&self, m: &component_base::metrics::Metrics, mode: &str) {
        m.register(
            "kubeproxy_sync_proxy_rules_duration_seconds",
            "SyncProxyRules latency in seconds",
            self.sync_duration.clone(),
        );
        m.register(
            "kubeproxy_sync_full_proxy_rules_duration_seconds",
            "SyncProxyRules latency in seconds for full resyncs",
            self.full_sync_duration.clone(),
        );
        m.register(
            "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
            "The last time proxy rules were successfully synced",
            self.last_sync_timestamp.clone(),
        );
        let (name, help) = if mode == "iptables" {
            (
                "kubeproxy_sync_proxy_rules_iptables_restore_failures",
                "Cumulative proxy iptables restore failures",
            )
        } else {
            (
                "kubeproxy_sync_proxy_rules_nftables_sync_failures",
                "Number of times the nftables rule set failed to apply",
            )
        };
        m.register(name, help, self.sync_failures.clone());
        m.register(
            "kubeproxy_sync_proxy_rules_service_ports",
            "Service ports programmed in the last sync",
            self.services.clone(),
        );
        m.register(
            "kubeproxy_sync_proxy_rules_endpoints",
            "Endpoints programmed in the last sync",
            self.endpoints.clone(),
        );
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// What the health server reports (upstream's `ProxierHealthServer`):
/// healthy unless a change has waited longer than the allowed time for a
/// sync.
#[derive(Debug, Default)]
pub struct Health {
    /// Unix milliseconds of the last successful sync; 0: none yet.
    last_updated_ms: AtomicU64,
    /// Unix milliseconds of the oldest change not yet synced; 0: none.
    pending_since_ms: AtomicU64,
}

impl Health {
    fn now_ms() -> u64 {
        (unix_now() * 1000.0) as u64
    }
    pub fn queued(&self) {
        let _ = self.pending_since_ms.compare_exchange(
            0,
            Self::now_ms(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }
    pub fn updated(&self) {
        self.last_updated_ms
            .store(Self::now_ms(), Ordering::Relaxed);
        self.pending_since_ms.store(0, Ordering::Relaxed);
    }
    /// `(healthy, last_updated_ms)` given how long a change may wait.
    pub fn status(&self, timeout: Duration) -> (bool, u64) {
        let last = self.last_updated_ms.load(Ordering::Relaxed);
        let pending = self.pending_since_ms.load(Ordering::Relaxed);
        let healthy =
            pending == 0 || Self::now_ms().saturating_sub(pending) < timeout.as_millis() as u64;
        (healthy, last)
    }
}

/// Computes and applies rule sets; one per sync.
pub struct Proxier {
    backend: Box<dyn Backend>,
    metrics: ProxierMetrics,
    health: Arc<Health>,
    /// The service map of the last successful sync (for conntrack).
    last_map: ServiceMap,
    /// Where `conntrack` runs (a network namespace in tests).
    conntrack_netns: Option<String>,
}

impl Proxier {
    pub fn new(backend: Box<dyn Backend>, metrics: ProxierMetrics, health: Arc<Health>) -> Self {
        Self {
            backend,
            metrics,
            health,
            last_map: ServiceMap::default(),
            conntrack_netns: None,
        }
    }

    /// Runs `conntrack` in the network namespace `ns` (tests).
    pub fn with_conntrack_netns(mut self, ns: Option<String>) -> Self {
        self.conntrack_netns = ns;
        self
    }

    /// One `syncProxyRules`: true when the kernel now has `map`'s rules.
    /// Only what changed since the last successful apply is sent; the
    /// first sync, a settings change or a failed apply send everything.
    pub async fn sync(&mut self, map: &ServiceMap) -> bool {
        let start = Instant::now();
        let mode = self.backend.mode();
        match self.backend.sync(map).await {
            Ok(Synced::Unchanged) => {
                tracing::trace!("rules unchanged; nothing to apply");
                self.health.updated();
                true
            }
            Ok(synced) => {
                let took = start.elapsed();
                self.metrics.sync_duration.observe(took.as_secs_f64());
                if synced == Synced::Full {
                    self.metrics.full_sync_duration.observe(took.as_secs_f64());
                }
                self.metrics.last_sync_timestamp.set(unix_now());
                self.metrics.services.set(map.ports.len() as i64);
                self.metrics
                    .endpoints
                    .set(map.endpoints.values().map(Vec::len).sum::<usize>() as i64);
                tracing::debug!(mode, services = map.ports.len(), ?synced, elapsed = ?took, "synced proxy rules");
                self.health.updated();
                let stale = crate::conntrack::stale_udp(&self.last_map, map);
                if !stale.is_empty() {
                    crate::conntrack::clear(&stale, self.conntrack_netns.as_deref()).await;
                }
                self.last_map = map.clone();
                true
            }
            Err(e) => {
                self.metrics.sync_failures.inc();
                tracing::error!(mode, error = %e, "applying proxy rules failed; will retry with a full sync");
                false
            }
        }
    }
}

/// Watches Services and EndpointSlices and keeps the rules in sync until
/// the watches end (they do not, short of the process ending).
pub async fn run(client: kube::Client, mut proxier: Proxier, config: ProxierConfig) {
    let (services, svc_writer) = reflector::store::<Service>();
    let (slices, slice_writer) = reflector::store::<EndpointSlice>();
    let changed = Arc::new(Notify::new());
    let health = proxier.health.clone();

    // Every event asks for a sync, and the health check counts the wait.
    let on_change = || {
        health.queued();
        changed.notify_one();
    };
    let watch_services = follow(Api::<Service>::all(client.clone()), svc_writer, on_change);
    let watch_slices = follow(
        Api::<EndpointSlice>::all(client.clone()),
        slice_writer,
        on_change,
    );
    let wake = changed.clone();
    let sync_loop = async move {
        // Programming a half-listed cluster would drop rules for Services
        // not seen yet: wait for both initial lists.
        let _ = services.wait_until_ready().await;
        let _ = slices.wait_until_ready().await;
        let mut last_sync: Option<Instant> = None;
        loop {
            if let Some(at) = last_sync {
                let earliest = at + config.min_sync_period;
                tokio::time::sleep_until(earliest.into()).await;
            }
            let svcs = services.state();
            let eps = slices.state();
            let map = ServiceMap::build(
                svcs.iter().map(|s| s.as_ref()),
                eps.iter().map(|s| s.as_ref()),
                &config.node_name,
            );
            let ok = proxier.sync(&map).await;
            last_sync = Some(Instant::now());
            if !ok {
                // Retry after the minimum period even without a change.
                continue;
            }
            let _ = tokio::time::timeout(config.sync_period, wake.notified()).await;
        }
    };
    tokio::join!(watch_services, watch_slices, sync_loop);
}
