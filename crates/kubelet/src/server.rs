//! The kubelet's HTTP endpoints (upstream's `pkg/kubelet/server/server.go`):
//! HTTPS on `--port` (10250) with `/healthz`, `/pods` and
//! `/containerLogs/{namespace}/{pod}/{container}` (`follow`, `tailLines`,
//! `timestamps`, `previous`), and plain `/healthz` on 127.0.0.1:10248
//! (`--healthz-port`).
//!
//! `/exec`, `/attach` and `/portForward` are proxied to the runtime's
//! streaming server (`streaming.rs`).
//!
//! `/stats/summary` (`only_cpu_and_memory`), `/metrics/resource` and
//! `/metrics` are gathered on request by [`crate::stats`].
//!
//! Every request on the secure port passes [`crate::auth`] first: client
//! certificates, bearer tokens by TokenReview, anonymous callers as
//! configured, then the AlwaysAllow or Webhook (SubjectAccessReview)
//! decision.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Request, Response};
use k8s_openapi::api::core::v1::Pod;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use component_base::healthz::Checks;

use crate::cri::api::ContainerState;
use crate::kuberuntime::labels::pod_uid;
use crate::kuberuntime::manager::RuntimeManager;
use crate::logs::{self, LogOptions};
use crate::pod_workers::PodStore;
use crate::stats::{resource_metrics, Detail, StatsProvider};

type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// What the server reads.
#[derive(Clone)]
pub struct ServerState {
    pub pods: Arc<PodStore>,
    pub manager: Arc<RuntimeManager>,
    pub healthz: Checks,
    pub stats: Arc<StatsProvider>,
    /// Who may call the secure port.
    pub auth: Arc<crate::auth::KubeletAuth>,
}

fn text(status: u16, b: impl Into<String>) -> Response<Body> {
    body(status, "text/plain; charset=utf-8", b.into())
}

fn body(status: u16, content_type: &str, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("Content-Type", content_type)
        .body(
            Full::new(Bytes::from(body))
                .map_err(|e| match e {})
                .boxed_unsync(),
        )
        .unwrap_or_default()
}

/// Prometheus text exposition format 0.0.4.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|p| p.split_once('=').or(Some((p, ""))))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

fn truthy(v: Option<&str>) -> bool {
    matches!(v, Some("true") | Some("1") | Some(""))
}

/// The `PodLogOptions` of a `/containerLogs` query.
fn log_options(query: &str, previous: bool) -> Result<LogOptions, String> {
    fn number<T: std::str::FromStr>(query: &str, key: &str) -> Result<Option<T>, String> {
        query_param(query, key)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse()
                    .map_err(|_| format!("invalid value {v:?} for {key}"))
            })
            .transpose()
    }
    let since_seconds: Option<i64> = number(query, "sinceSeconds")?;
    if since_seconds.is_some_and(|s| s < 1) {
        return Err("sinceSeconds: must be greater than 0".into());
    }
    let since_time = match query_param(query, "sinceTime").filter(|v| !v.is_empty()) {
        Some(v) => {
            let v = percent_encoding::percent_decode_str(v).decode_utf8_lossy();
            let t = chrono::DateTime::parse_from_rfc3339(&v)
                .map_err(|_| format!("invalid value {v:?} for sinceTime"))?;
            Some(t.with_timezone(&chrono::Utc))
        }
        None => None,
    };
    let limit_bytes: Option<u64> = number(query, "limitBytes")?;
    if limit_bytes == Some(0) {
        return Err("limitBytes: must be greater than 0".into());
    }
    Ok(LogOptions {
        tail_lines: number(query, "tailLines")?,
        timestamps: truthy(query_param(query, "timestamps")),
        follow: truthy(query_param(query, "follow")) && !previous,
        since: logs::since(since_seconds, since_time, chrono::Utc::now()),
        limit_bytes,
    })
}

impl ServerState {
    /// Routes one request.
    pub async fn handle(&self, path: &str, query: &str) -> Response<Body> {
        if let Some(rest) = path.strip_prefix("/healthz") {
            let name = rest.strip_prefix('/').filter(|n| !n.is_empty());
            return match self.healthz.answer("healthz", name, query) {
                Some(a) => text(a.status, a.body),
                None => text(404, "404 page not found\n"),
            };
        }
        if path == "/pods" || path == "/pods/" {
            let items: Vec<Pod> = self.pods.list().iter().map(|p| (**p).clone()).collect();
            let list = serde_json::json!({
                "kind": "PodList",
                "apiVersion": "v1",
                "metadata": {},
                "items": items,
            });
            return Response::builder()
                .header("Content-Type", "application/json")
                .body(
                    Full::new(Bytes::from(list.to_string()))
                        .map_err(|e| match e {})
                        .boxed_unsync(),
                )
                .unwrap_or_default();
        }
        if path == "/stats/summary" || path == "/stats/summary/" {
            let detail = if truthy(query_param(query, "only_cpu_and_memory")) {
                Detail::CpuAndMemory
            } else {
                Detail::Full
            };
            return match self.stats.summary(detail).await {
                Ok(s) => match serde_json::to_string(&s) {
                    Ok(j) => body(200, "application/json", j),
                    Err(e) => text(500, format!("{e}\n")),
                },
                Err(e) => text(500, format!("{e}\n")),
            };
        }
        if path == "/metrics/resource" {
            let s = self.stats.summary(Detail::CpuAndMemory).await;
            if let Err(e) = &s {
                tracing::warn!(error = %e, "resource metrics");
            }
            return body(200, PROMETHEUS_TEXT, resource_metrics::render(&s));
        }
        if path == "/metrics/cadvisor" {
            return body(200, PROMETHEUS_TEXT, self.stats.cadvisor_metrics().await);
        }
        if path == "/metrics/probes" {
            return body(200, PROMETHEUS_TEXT, self.stats.probe_metrics().render());
        }
        if path == "/metrics" {
            return match crate::stats::kubelet_metrics::render(&*self.manager.runtime).await {
                Ok(t) => body(200, PROMETHEUS_TEXT, t),
                Err(e) => text(500, format!("{e}\n")),
            };
        }
        if let Some(rest) = path.strip_prefix("/containerLogs/") {
            let parts: Vec<&str> = rest.split('/').collect();
            if let [ns, pod, container] = parts[..] {
                return self.container_logs(ns, pod, container, query).await;
            }
            return text(
                400,
                "expected /containerLogs/{namespace}/{pod}/{container}\n",
            );
        }
        text(404, "404 page not found\n")
    }

    async fn container_logs(
        &self,
        ns: &str,
        name: &str,
        container: &str,
        query: &str,
    ) -> Response<Body> {
        let Some(pod) = self.pods.find(ns, name) else {
            return text(404, format!("pod {ns}/{name} not found\n"));
        };
        let rs = match self.manager.pod_status(pod_uid(&pod)).await {
            Ok(rs) => rs,
            Err(e) => return text(500, format!("{e}\n")),
        };
        let previous = truthy(query_param(query, "previous"));
        let instance = if previous {
            rs.previous(container)
        } else {
            rs.latest(container)
        };
        let Some(c) = instance.cloned() else {
            return text(
                400,
                format!("container \"{container}\" in pod \"{name}\" is waiting to start\n"),
            );
        };
        let opts = match log_options(query, previous) {
            Ok(o) => o,
            Err(e) => return text(400, format!("{e}\n")),
        };
        let runtime = self.manager.runtime.clone();
        let id = c.id.clone();
        let running = move || {
            let runtime = runtime.clone();
            let id = id.clone();
            Box::pin(async move {
                matches!(runtime.container_status(&id).await, Ok(s) if s.state == ContainerState::ContainerRunning as i32)
            }) as futures::future::BoxFuture<'static, bool>
        };
        match logs::read(c.log_path.clone().into(), opts, running).await {
            Ok(stream) => Response::builder()
                .header("Content-Type", "text/plain")
                .body(BodyExt::boxed_unsync(StreamBody::new(
                    stream.map(|r| r.map(Frame::data)),
                )))
                .unwrap_or_default(),
            Err(e) => text(500, format!("{e}\n")),
        }
    }
}

async fn serve_conn<S>(
    stream: S,
    state: Arc<ServerState>,
    peer: SocketAddr,
    cert_user: Option<component_base::authn::User>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let state = state.clone();
        let cert_user = cert_user.clone();
        async move {
            let path = req.uri().path().to_string();
            let checked = state
                .auth
                .check(cert_user, req.headers(), req.method().as_str(), &path)
                .await;
            if let Err(r) = checked {
                return Ok::<_, Infallible>(text(r.status, r.message));
            }
            if let Some(stream) = crate::streaming::parse(&path) {
                return Ok::<_, Infallible>(crate::streaming::serve(&state, stream, req).await);
            }
            let query = req.uri().query().unwrap_or("").to_string();
            Ok::<_, Infallible>(state.handle(&path, &query).await)
        }
    });
    let builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    // Upgrades: exec, attach and port-forward switch protocols.
    if let Err(e) = builder
        .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(stream), service)
        .await
    {
        tracing::debug!(%peer, error = %e, "connection ended");
    }
}

/// Binds `addr`; returns the bound address and the HTTPS serving future.
pub async fn bind_https(
    addr: SocketAddr,
    tls: rustls::ServerConfig,
    state: ServerState,
) -> std::io::Result<(SocketAddr, impl std::future::Future<Output = ()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let tls = TlsAcceptor::from(Arc::new(tls));
    let state = Arc::new(state);
    tracing::info!(address = %local, "kubelet serving securely");
    Ok((local, async move {
        loop {
            let Ok((tcp, peer)) = listener.accept().await else {
                continue;
            };
            let tls = tls.clone();
            let state = state.clone();
            tokio::spawn(async move {
                match tls.accept(tcp).await {
                    Ok(s) => {
                        let cert_user = s
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|chain| state.auth.certificate_user(chain));
                        serve_conn(s, state, peer, cert_user).await
                    }
                    Err(e) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                }
            });
        }
    }))
}

/// Binds `addr`; returns the bound address and the plain-HTTP `/healthz`
/// serving future.
pub async fn bind_healthz(
    addr: SocketAddr,
    checks: Checks,
) -> std::io::Result<(SocketAddr, impl std::future::Future<Output = ()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let checks = Arc::new(checks);
    Ok((local, async move {
        loop {
            let Ok((tcp, peer)) = listener.accept().await else {
                continue;
            };
            let checks = checks.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let checks = checks.clone();
                        async move {
                            let path = req.uri().path();
                            let name = path
                                .strip_prefix("/healthz")
                                .map(|r| r.trim_start_matches('/'))
                                .map(|n| (!n.is_empty()).then_some(n));
                            let resp = match name {
                                Some(name) => match checks.answer(
                                    "healthz",
                                    name,
                                    req.uri().query().unwrap_or(""),
                                ) {
                                    Some(a) => text(a.status, a.body),
                                    None => text(404, "404 page not found\n"),
                                },
                                None => text(404, "404 page not found\n"),
                            };
                            Ok::<_, Infallible>(resp)
                        }
                    });
                let builder = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                );
                if let Err(e) = builder
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                    .await
                {
                    tracing::debug!(%peer, error = %e, "connection ended");
                }
            });
        }
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn log_options_from_the_query() {
        let o = log_options(
            "follow=true&tailLines=3&timestamps=true&limitBytes=100&sinceTime=2026-01-01T00%3A00%3A05Z",
            false,
        )
        .unwrap();
        assert!(o.follow && o.timestamps);
        assert_eq!(o.tail_lines, Some(3));
        assert_eq!(o.limit_bytes, Some(100));
        assert_eq!(o.since.unwrap().to_rfc3339(), "2026-01-01T00:00:05+00:00");
        let s = log_options("sinceSeconds=60", true).unwrap();
        let age = chrono::Utc::now() - s.since.unwrap();
        assert!((59..=61).contains(&age.num_seconds()), "{age}");
        // previous never follows.
        assert!(!log_options("follow=true", true).unwrap().follow);
        assert!(log_options("limitBytes=0", false).is_err());
        assert!(log_options("sinceSeconds=-1", false).is_err());
        assert!(log_options("sinceTime=yesterday", false).is_err());
        assert!(log_options("tailLines=x", false).is_err());
    }
}
