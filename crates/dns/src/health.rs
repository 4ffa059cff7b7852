//! The plain-HTTP health port (`--health-port`, like CoreDNS's `health` and
//! `ready` plugins and kube-dns's healthz sidecar): `/healthz` answers `ok`
//! while the process serves, `/readyz` only once the index was built from
//! synced reflectors (upstream's `[+]name ok` text with `?verbose`), and
//! `/metrics` the Prometheus text.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use component_base::healthz::{Check, Checks};
use component_base::metrics::Metrics;
use http_body_util::Full;
use hyper::{Request, Response};
use tokio::net::TcpListener;

use crate::watch::Readiness;

/// What the health port answers from.
#[derive(Clone)]
pub struct HealthState {
    healthz: Checks,
    readyz: Checks,
    metrics: Arc<Metrics>,
}

impl HealthState {
    pub fn new(ready: Arc<Readiness>, metrics: Arc<Metrics>) -> Self {
        let synced = Check::new("kubernetes-informers-synced", move || {
            if ready.is_ready() {
                Ok(())
            } else {
                Err("services and endpointslices not yet listed".into())
            }
        });
        Self {
            healthz: Checks::new(vec![Check::ping()]),
            readyz: Checks::new(vec![Check::ping(), synced]),
            metrics,
        }
    }

    /// `(status, content type, body)` for a path and query string.
    pub fn answer(&self, path: &str, query: &str) -> (u16, &'static str, String) {
        let text = "text/plain; charset=utf-8";
        let path = path.trim_end_matches('/');
        if path == "/metrics" {
            return (
                200,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                self.metrics.encode(),
            );
        }
        for (endpoint, checks) in [("healthz", &self.healthz), ("readyz", &self.readyz)] {
            let Some(rest) = path
                .strip_prefix('/')
                .and_then(|p| p.strip_prefix(endpoint))
            else {
                continue;
            };
            let name = match rest {
                "" => None,
                r => match r.strip_prefix('/') {
                    Some(n) => Some(n),
                    None => continue,
                },
            };
            if let Some(a) = checks.answer(endpoint, name, query) {
                return (a.status, text, a.body);
            }
        }
        (404, text, "404 page not found\n".into())
    }
}

/// Binds `addr`; returns the bound address and the serving future.
pub async fn bind(
    addr: SocketAddr,
    state: HealthState,
) -> std::io::Result<(SocketAddr, impl std::future::Future<Output = ()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let state = Arc::new(state);
    Ok((local, async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let state = state.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (code, ct, body) =
                        state.answer(req.uri().path(), req.uri().query().unwrap_or(""));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_after_sync() {
        let ready = Arc::new(Readiness::default());
        let s = HealthState::new(ready.clone(), Arc::new(Metrics::default()));
        assert_eq!(s.answer("/healthz", "").0, 200);
        let (code, _, body) = s.answer("/readyz", "");
        assert_eq!(code, 500, "{body}");
        assert!(
            body.contains("[-]kubernetes-informers-synced failed"),
            "{body}"
        );
        ready.set();
        assert_eq!(s.answer("/readyz", "").0, 200);
        assert_eq!(s.answer("/nope", "").0, 404);
        assert_eq!(s.answer("/metrics", "").0, 200);
    }
}
