//! The whole server (upstream metrics-server's `pkg/server`): informers
//! for nodes (full objects, filtered by `--node-selector`) and pods
//! (metadata only), a scrape every `--metric-resolution`, and the secure
//! port answering the metrics API, `/healthz`, `/livez`, `/readyz` and
//! `/metrics`. [`start`] binds (so a caller learns the port) and returns
//! the future that serves.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use apimachinery::labels::Selector;
use bytes::Bytes;
use component_base::authn::Peer;
use component_base::healthz::{Check, Checks};
use component_base::metrics::{Histogram, Metrics};
use component_base::serving::{Endpoints, SecureServingOptions};
use futures::StreamExt;
use http_body_util::Full;
use hyper::{Request, Response};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::core::PartialObjectMeta;
use kube::runtime::{reflector, watcher, WatchStreamExt};
use prometheus_client::metrics::gauge::Gauge;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::auth::{Attributes, AuthenticationInfo, Delegated};
use crate::handler::{self, MetricsApi};
use crate::scrape::{KubeletClient, ScrapeMetrics};
use crate::storage::Storage;

/// Everything the server needs.
#[derive(Clone)]
pub struct Config {
    /// `--metric-resolution`: the time between scrapes.
    pub resolution: Duration,
    pub kubelet: KubeletClient,
    /// `--node-selector` (its text, for the watch, and parsed).
    pub node_selector: String,
    pub serving: SecureServingOptions,
    /// The address of the secure port.
    pub addr: SocketAddr,
    /// `--authorization-always-allow-paths`.
    pub always_allow_paths: Vec<String>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("--node-selector: {0}")]
    NodeSelector(String),
    #[error("unable to load configmap based request-header-client-ca-file: {0}")]
    AuthenticationInfo(kube::Error),
    #[error("client CAs: {0}")]
    ClientCa(String),
    #[error(transparent)]
    Serving(#[from] component_base::serving::ServingError),
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Liveness and readiness state the checks read.
#[derive(Default)]
struct Progress {
    /// Unix ns of the start of the last tick (0: none yet).
    tick_start: AtomicI64,
    nodes_synced: AtomicBool,
    pods_synced: AtomicBool,
    /// Woken when either informer syncs.
    synced: tokio::sync::Notify,
}

impl Progress {
    fn both_synced(&self) -> bool {
        self.nodes_synced.load(Ordering::Relaxed) && self.pods_synced.load(Ordering::Relaxed)
    }
}

struct Server {
    api: MetricsApi,
    auth: Arc<Delegated>,
    endpoints: Endpoints,
}

/// Binds the secure port and returns its address and the future that
/// informs, scrapes and serves until the process ends.
pub async fn start(
    config: Config,
    client: kube::Client,
    registry: Arc<Metrics>,
) -> Result<(SocketAddr, impl std::future::Future<Output = ()>), StartError> {
    let node_selector = Selector::parse(&config.node_selector).map_err(StartError::NodeSelector)?;
    let info = AuthenticationInfo::load(&client)
        .await
        .map_err(StartError::AuthenticationInfo)?;
    let tls =
        component_base::serving::tls_config_with_client_cas(&config.serving, &info.client_roots())?;
    let auth = Delegated::new(client.clone(), info, config.always_allow_paths.clone())
        .map_err(StartError::ClientCa)?;
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.addr,
            source,
        })?;
    let local = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.addr,
        source,
    })?;
    tracing::info!(address = %local, "serving securely");

    let storage = Arc::new(RwLock::new(Storage::new(config.resolution)));
    let (nodes, node_writer) = reflector::store();
    let (pods, pod_writer) = reflector::store();
    let api = MetricsApi {
        storage: storage.clone(),
        nodes,
        pods,
        node_selector,
    };
    let progress = Arc::new(Progress::default());
    let endpoints = health_endpoints(&api, &progress, config.resolution, registry.clone());
    let scrape_metrics = ScrapeMetrics::new(&registry);
    let tick = Histogram::new([0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]);
    registry.register(
        "metrics_server_manager_tick_duration_seconds",
        "The total time spent collecting and storing metrics in seconds.",
        tick.clone(),
    );
    let points: prometheus_client::metrics::family::Family<Vec<(String, String)>, Gauge> =
        Default::default();
    registry.register(
        "metrics_server_storage_points",
        "Number of metrics points stored.",
        points.clone(),
    );
    let server = Arc::new(Server {
        api: api.clone(),
        auth,
        endpoints,
    });

    let nodes_api: kube::Api<Node> = kube::Api::all(client.clone());
    let pods_api: kube::Api<PartialObjectMeta<Pod>> = kube::Api::all(client);
    let node_watch = watcher::Config::default().labels(&config.node_selector);
    let p = progress.clone();
    let follow_nodes = async move {
        let stream = watcher(nodes_api, node_watch)
            .default_backoff()
            .reflect(node_writer);
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(watcher::Event::InitDone) => {
                    p.nodes_synced.store(true, Ordering::Relaxed);
                    p.synced.notify_waiters();
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "watching nodes failed; retrying"),
            }
        }
    };
    let p = progress.clone();
    let follow_pods = async move {
        let stream = watcher(pods_api, watcher::Config::default())
            .default_backoff()
            .reflect(pod_writer);
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(watcher::Event::InitDone) => {
                    p.pods_synced.store(true, Ordering::Relaxed);
                    p.synced.notify_waiters();
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "watching pods failed; retrying"),
            }
        }
    };
    let kubelet = config.kubelet.clone();
    let resolution = config.resolution;
    let scrape_loop = async move {
        // Upstream starts scraping once both informers have synced.
        loop {
            let woken = progress.synced.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if progress.both_synced() {
                break;
            }
            woken.await;
        }
        let mut ticker = tokio::time::interval(resolution);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            progress.tick_start.store(now_ns(), Ordering::Relaxed);
            let started = Instant::now();
            let nodes: Vec<Arc<Node>> = api
                .nodes
                .state()
                .into_iter()
                .filter(|n| {
                    api.node_selector.is_empty()
                        || n.metadata
                            .labels
                            .as_ref()
                            .is_some_and(|l| api.node_selector.matches(l))
                })
                .collect();
            let batch =
                match tokio::time::timeout(resolution, kubelet.scrape_all(nodes, &scrape_metrics))
                    .await
                {
                    Ok(b) => b,
                    Err(_) => {
                        tracing::warn!("scraping took longer than the metric resolution");
                        continue;
                    }
                };
            let mut s = storage.write().unwrap_or_else(|p| p.into_inner());
            let was_ready = s.ready();
            s.store(batch);
            if s.ready() != was_ready {
                tracing::info!(ready = s.ready(), "metric storage readiness changed");
            }
            points
                .get_or_create(&vec![("type".into(), "node".into())])
                .set(s.node_points() as i64);
            points
                .get_or_create(&vec![("type".into(), "container".into())])
                .set(s.container_points() as i64);
            drop(s);
            tick.observe(started.elapsed().as_secs_f64());
        }
    };
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let serve = async move {
        tokio::select! {
            _ = follow_nodes => {},
            _ = follow_pods => {},
            _ = scrape_loop => {},
            _ = accept_loop(listener, acceptor, server) => {},
        }
    };
    Ok((local, serve))
}

fn health_endpoints(
    api: &MetricsApi,
    progress: &Arc<Progress>,
    resolution: Duration,
    registry: Arc<Metrics>,
) -> Endpoints {
    let synced = {
        let p = progress.clone();
        move || match (
            p.nodes_synced.load(Ordering::Relaxed),
            p.pods_synced.load(Ordering::Relaxed),
        ) {
            (true, true) => Ok(()),
            (n, _) => Err(format!(
                "informers not started yet: {}",
                if n { "pods" } else { "nodes" }
            )),
        }
    };
    let timely = {
        let p = progress.clone();
        move || {
            let last = p.tick_start.load(Ordering::Relaxed);
            let max = resolution.mul_f64(1.5).as_nanos() as i64;
            if last != 0 && now_ns() - last > max {
                return Err("metric collection didn't finish on time".into());
            }
            Ok(())
        }
    };
    let storage = api.storage.clone();
    let ready = move || {
        if storage.read().map(|s| s.ready()).unwrap_or(false) {
            Ok(())
        } else {
            Err("no metrics to serve".into())
        }
    };
    Endpoints {
        healthz: Checks::new(vec![
            Check::ping(),
            Check::new("metadata-informer-sync", synced.clone()),
        ]),
        livez: Checks::new(vec![
            Check::ping(),
            Check::new("metric-collection-timely", timely),
        ]),
        readyz: Checks::new(vec![
            Check::ping(),
            Check::new("metric-storage-ready", ready),
            Check::new("metric-informer-sync", synced),
        ]),
        metrics: Some(registry),
    }
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, server: Arc<Server>) {
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "accept failed");
                continue;
            }
        };
        let (acceptor, server) = (acceptor.clone(), server.clone());
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%remote, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let peer = tls
                .get_ref()
                .1
                .peer_certificates()
                .map(|c| server.auth.classify(c))
                .unwrap_or_default();
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let (server, peer) = (server.clone(), peer.clone());
                async move { Ok::<_, std::convert::Infallible>(handle(&server, &peer, req).await) }
            });
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                .await
            {
                tracing::debug!(%remote, error = %e, "connection ended");
            }
        });
    }
}

fn reply(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("Content-Type", content_type)
        .header("X-Content-Type-Options", "nosniff")
        .body(Full::new(body.into()))
        .unwrap_or_default()
}

fn status_reply(e: &apimachinery::ApiError) -> Response<Full<Bytes>> {
    reply(e.code, "application/json", e.to_status().to_string())
}

fn is_health_path(path: &str) -> bool {
    ["/healthz", "/livez", "/readyz"]
        .iter()
        .any(|p| path == *p || path.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
}

async fn handle(
    server: &Server,
    peer: &Peer,
    req: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let method = req.method().as_str().to_string();
    let user = match server.auth.authenticate(peer, req.headers()).await {
        Ok(u) => u,
        Err(e) => return status_reply(&e),
    };
    let attrs = Attributes::of(&method, &path, &query);
    if let Err(e) = server.auth.authorize(&user, &attrs).await {
        tracing::debug!(user = %user.name, %path, "forbidden");
        return status_reply(&e);
    }
    if is_health_path(&path) || path == "/metrics" {
        let (status, content_type, body) = server.endpoints.route(&path, &query);
        return reply(status, content_type, body);
    }
    let accept = req
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let r = handler::Request {
        method: &method,
        path: &path,
        query: &query,
        accept: &accept,
    };
    match server.api.serve(&r, now_ns()) {
        Ok(v) => {
            let body = serde_json::to_vec(&v).unwrap_or_default();
            reply(200, "application/json", body)
        }
        Err(e) => status_reply(&e),
    }
}
