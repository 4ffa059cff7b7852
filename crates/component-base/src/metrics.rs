//! A Prometheus registry and the text exposition `/metrics` serves.

use std::sync::Mutex;

pub use prometheus_client::metrics::counter::Counter;
pub use prometheus_client::metrics::family::Family;
pub use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// A component's metrics registry.
pub struct Metrics {
    registry: Mutex<Registry>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            registry: Mutex::new(Registry::default()),
        }
    }
}

impl Metrics {
    /// Registers a metric under upstream's name.
    pub fn register<M: prometheus_client::registry::Metric>(
        &self,
        name: &str,
        help: &str,
        metric: M,
    ) {
        self.registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .register(name, help, metric);
    }

    /// The OpenMetrics text of every registered metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let reg = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        let _ = prometheus_client::encoding::text::encode(&mut out, &reg);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_registered_counters() {
        let m = Metrics::default();
        let c: Counter = Counter::default();
        c.inc();
        m.register("apiserver_requests", "requests", c);
        assert!(m.encode().contains("apiserver_requests_total 1"));
    }
}
