//! kube-proxy's plain-HTTP endpoints (upstream's `pkg/proxy/healthcheck`
//! proxier health server and the metrics server): `/healthz` and `/livez`
//! on `--healthz-bind-address` (default 0.0.0.0:10256) answer upstream's
//! JSON `{"lastUpdated": …, "currentTime": …, "nodeEligible": true}` with
//! 200 or 503; `/metrics` on `--metrics-bind-address` (127.0.0.1:10249).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use tokio::net::TcpListener;

use crate::proxier::Health;

/// What the endpoints answer from.
#[derive(Clone)]
pub struct State {
    pub health: Arc<Health>,
    /// How long a queued change may wait before the proxier is unhealthy
    /// (upstream: twice the sync period).
    pub health_timeout: Duration,
    pub metrics: Arc<component_base::metrics::Metrics>,
}

fn rfc3339(ms: u64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
        .unwrap_or_default()
}

/// The answer to one request.
pub fn answer(state: &State, path: &str) -> (u16, &'static str, String) {
    match path {
        "/healthz" | "/livez" => {
            let (healthy, last) = state.health.status(state.health_timeout);
            let now = chrono::Utc::now().timestamp_millis().max(0) as u64;
            let body = serde_json::json!({
                "lastUpdated": if last == 0 { String::new() } else { rfc3339(last) },
                "currentTime": rfc3339(now),
                "nodeEligible": true,
            });
            (
                if healthy { 200 } else { 503 },
                "application/json",
                body.to_string(),
            )
        }
        "/metrics" => (
            200,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            state.metrics.encode(),
        ),
        _ => (
            404,
            "text/plain; charset=utf-8",
            "404 page not found\n".into(),
        ),
    }
}

/// Binds `addr` and returns the serving future.
pub async fn bind(
    addr: SocketAddr,
    state: State,
) -> std::io::Result<(SocketAddr, impl std::future::Future<Output = ()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((local, async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let state = state.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (code, ct, body) = answer(&state, req.uri().path());
                    let resp = Response::builder()
                        .status(code)
                        .header("Content-Type", ct)
                        .body(Full::new(Bytes::from(body)))
                        .unwrap_or_default();
                    async move { Ok::<_, Infallible>(resp) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                    .await;
            });
        }
    }))
}
