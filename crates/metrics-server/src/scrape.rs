//! Scraping kubelets (upstream metrics-server's `pkg/scraper`): each node
//! is asked for `GET /metrics/resource` at the first of its addresses whose
//! type `--kubelet-preferred-address-types` names, on the port its status
//! reports (`--kubelet-use-node-status-port`) or `--kubelet-port`, with the
//! component's bearer token. Nodes are scraped concurrently, each after a
//! small random delay that spreads the requests (8 ms per node, at most
//! 4 s), every request bounded by `--kubelet-request-timeout`; a node that
//! fails is logged and counted and leaves the others' figures intact.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use component_base::metrics::{Counter, Family, Histogram, Metrics};
use component_base::proxy::{DialError, Target};
use k8s_openapi::api::core::v1::Node;
use prometheus_client::metrics::gauge::Gauge;

use crate::decode::{self, Batch, DecodeError};

const DELAY_PER_NODE: Duration = Duration::from_millis(8);
const MAX_DELAY: Duration = Duration::from_secs(4);
/// A kubelet's answer larger than this is refused.
const MAX_BODY: usize = 64 << 20;

/// How the bearer token sent to kubelets is found.
#[derive(Debug, Clone, Default)]
pub enum Token {
    #[default]
    None,
    Static(String),
    /// Read at every scrape, as bound ServiceAccount tokens rotate.
    File(PathBuf),
}

impl Token {
    fn get(&self) -> Option<String> {
        match self {
            Token::None => None,
            Token::Static(t) => Some(t.clone()),
            Token::File(p) => std::fs::read_to_string(p)
                .map(|t| t.trim().to_string())
                .ok(),
        }
    }
}

/// How kubelets are reached.
#[derive(Clone)]
pub struct KubeletClient {
    pub tls: Arc<rustls::ClientConfig>,
    pub port: u16,
    pub use_node_status_port: bool,
    pub address_types: Vec<String>,
    pub timeout: Duration,
    pub token: Token,
}

/// Why one node gave no figures.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("node has no address of the types {0:?}")]
    NoAddress(Vec<String>),
    #[error("request failed: {0}")]
    Dial(#[from] DialError),
    #[error("request failed, status: {0:?}")]
    Status(http::StatusCode),
    #[error("request timed out after {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("answer is not UTF-8")]
    Utf8,
}

/// The scraper's metrics, upstream's names.
#[derive(Clone)]
pub struct ScrapeMetrics {
    pub duration: Family<Vec<(String, String)>, Histogram, fn() -> Histogram>,
    pub total: Family<Vec<(String, String)>, Counter>,
    pub last_request: Family<Vec<(String, String)>, Gauge<f64, std::sync::atomic::AtomicU64>>,
}

impl ScrapeMetrics {
    pub fn new(registry: &Metrics) -> Self {
        fn histogram() -> Histogram {
            Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
        }
        let m = Self {
            duration: Family::new_with_constructor(histogram),
            total: Family::default(),
            last_request: Family::default(),
        };
        registry.register(
            "metrics_server_kubelet_request_duration_seconds",
            "Duration of requests to Kubelet API in seconds",
            m.duration.clone(),
        );
        registry.register(
            "metrics_server_kubelet_request",
            "Number of requests sent to Kubelet API",
            m.total.clone(),
        );
        registry.register(
            "metrics_server_kubelet_last_request_time_seconds",
            "Time of last request performed to Kubelet API since unix epoch in seconds",
            m.last_request.clone(),
        );
        m
    }
}

fn unix_ns(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

impl KubeletClient {
    /// `host:port` of `node`'s kubelet.
    pub fn authority(&self, node: &Node) -> Result<String, ScrapeError> {
        let status = node.status.as_ref();
        let addresses = status.and_then(|s| s.addresses.as_ref());
        let address = self
            .address_types
            .iter()
            .find_map(|t| {
                addresses?
                    .iter()
                    .find(|a| &a.type_ == t && !a.address.is_empty())
            })
            .ok_or_else(|| ScrapeError::NoAddress(self.address_types.clone()))?;
        let mut port = self.port;
        if self.use_node_status_port {
            if let Some(p) = status
                .and_then(|s| s.daemon_endpoints.as_ref())
                .and_then(|d| d.kubelet_endpoint.as_ref())
                .map(|e| e.port)
                .filter(|p| *p > 0)
            {
                port = p as u16;
            }
        }
        Ok(match address.address.parse::<std::net::Ipv6Addr>() {
            Ok(v6) => format!("[{v6}]:{port}"),
            Err(_) => format!("{}:{port}", address.address),
        })
    }

    /// One node's figures.
    pub async fn scrape(&self, node: &Node) -> Result<Batch, ScrapeError> {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        let target = Target {
            authority: self.authority(node)?,
            tls: Some(self.tls.clone()),
            path_and_query: "/metrics/resource".into(),
        };
        let mut headers = vec![];
        if let Some(t) = self.token.get() {
            if let Ok(v) = http::HeaderValue::from_str(&format!("Bearer {t}")) {
                headers.push((http::header::AUTHORIZATION, v));
            }
        }
        let started = SystemTime::now();
        let (status, body) = tokio::time::timeout(
            self.timeout,
            component_base::proxy::get(&target, &headers, MAX_BODY),
        )
        .await
        .map_err(|_| ScrapeError::Timeout(self.timeout))??;
        if !status.is_success() {
            return Err(ScrapeError::Status(status));
        }
        let text = std::str::from_utf8(&body).map_err(|_| ScrapeError::Utf8)?;
        Ok(decode::decode(text, unix_ns(started), name)?)
    }

    /// Every node's figures, scraped concurrently.
    pub async fn scrape_all(&self, nodes: Vec<Arc<Node>>, metrics: &ScrapeMetrics) -> Batch {
        let spread = (DELAY_PER_NODE * nodes.len() as u32).min(MAX_DELAY);
        let jobs = nodes.into_iter().map(|node| async move {
            let delay = spread.mul_f64(rand::random::<f64>());
            tokio::time::sleep(delay).await;
            let name = node.metadata.name.clone().unwrap_or_default();
            let started = Instant::now();
            let result = self.scrape(&node).await;
            let label = vec![("node".to_string(), name.clone())];
            metrics
                .duration
                .get_or_create(&label)
                .observe(started.elapsed().as_secs_f64());
            metrics
                .last_request
                .get_or_create(&label)
                .set(unix_ns(SystemTime::now()) as f64 / 1e9);
            let success = vec![("success".to_string(), result.is_ok().to_string())];
            metrics.total.get_or_create(&success).inc();
            match result {
                Ok(b) => Some(b),
                Err(e) => {
                    tracing::warn!(node = %name, error = %e, "failed to scrape node");
                    None
                }
            }
        });
        let mut batch = Batch::default();
        for b in futures::future::join_all(jobs).await.into_iter().flatten() {
            batch.merge(b);
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        DaemonEndpoint, NodeAddress, NodeDaemonEndpoints, NodeStatus,
    };

    fn client(types: &[&str], use_status_port: bool) -> KubeletClient {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        KubeletClient {
            tls: Arc::new(tls),
            port: 10250,
            use_node_status_port: use_status_port,
            address_types: types.iter().map(|s| s.to_string()).collect(),
            timeout: Duration::from_secs(1),
            token: Token::None,
        }
    }

    fn node() -> Node {
        let mut n = Node::default();
        n.metadata.name = Some("n1".into());
        n.status = Some(NodeStatus {
            addresses: Some(vec![
                NodeAddress {
                    type_: "Hostname".into(),
                    address: "host-1".into(),
                },
                NodeAddress {
                    type_: "InternalIP".into(),
                    address: "192.0.2.7".into(),
                },
                NodeAddress {
                    type_: "ExternalIP".into(),
                    address: "2001:db8::1".into(),
                },
            ]),
            daemon_endpoints: Some(NodeDaemonEndpoints {
                kubelet_endpoint: Some(DaemonEndpoint { port: 10255 }),
            }),
            ..Default::default()
        });
        n
    }

    #[test]
    fn the_preferred_address_type_and_port_are_used() {
        let c = client(&["InternalIP", "ExternalIP", "Hostname"], true);
        assert_eq!(c.authority(&node()).unwrap(), "192.0.2.7:10255");
        let c = client(&["ExternalIP", "Hostname"], false);
        assert_eq!(c.authority(&node()).unwrap(), "[2001:db8::1]:10250");
        let c = client(&["InternalDNS"], false);
        assert!(matches!(
            c.authority(&node()),
            Err(ScrapeError::NoAddress(_))
        ));
    }

    #[tokio::test]
    async fn an_unreachable_kubelet_is_an_error_not_a_panic() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let mut n = node();
        if let Some(s) = n.status.as_mut() {
            s.addresses = Some(vec![NodeAddress {
                type_: "InternalIP".into(),
                address: "127.0.0.1".into(),
            }]);
        }
        let mut c = client(&["InternalIP"], false);
        c.port = port;
        assert!(c.scrape(&n).await.is_err());
        let m = ScrapeMetrics::new(&Metrics::default());
        let b = c.scrape_all(vec![Arc::new(n)], &m).await;
        assert!(b.nodes.is_empty());
    }
}
