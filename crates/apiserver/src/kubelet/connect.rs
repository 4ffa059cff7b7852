//! The connect subresources, served from the raw request because they
//! stream or upgrade (upstream's `pkg/registry/core/pod/rest/log.go`,
//! `subresources.go`, and the node and service `ProxyREST`s): `pods/log`,
//! `pods/exec`, `pods/attach`, `pods/portforward` go to the pod's kubelet;
//! `pods/proxy`, `services/proxy` and `nodes/proxy` to the pod, an
//! endpoint or the kubelet.
//!
//! Upgrades are passed through to the kubelet, which passes them on to the
//! runtime's streaming server: SPDY, and WebSocket with the protocols
//! containerd 1.6 speaks (`channel.k8s.io` up to `v4.channel.k8s.io`,
//! which client libraries such as Python's use). kubectl 1.30+ asks for
//! `v5.channel.k8s.io` (1.31+ port-forward for the SPDY-over-WebSocket
//! tunnel) only, gets the runtime's 403 and falls back to SPDY; upstream's
//! API server would translate those to SPDY instead.

use std::sync::Arc;

use apimachinery::ApiError;
use http::{Method, Request, Response};
use hyper::body::Incoming;

use super::containers::{self, Wording};
use crate::backend::{self, Target};
use crate::handlers::{Query, User};
use crate::request_info::RequestInfo;
use crate::response::Body;
use crate::state::ApiState;

/// The connect subresources this module serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connect {
    Log,
    Exec,
    Attach,
    PortForward,
    PodProxy,
    NodeProxy,
    ServiceProxy,
}

/// Which connect subresource `info` names, if any.
pub fn wanted(info: &RequestInfo) -> Option<Connect> {
    if !info.is_resource || info.api_prefix != "api" || info.version != "v1" || info.name.is_empty()
    {
        return None;
    }
    let first = info.subresource.split('/').next().unwrap_or("");
    Some(match (info.resource.as_str(), first) {
        ("pods", "log") => Connect::Log,
        ("pods", "exec") => Connect::Exec,
        ("pods", "attach") => Connect::Attach,
        ("pods", "portforward") => Connect::PortForward,
        ("pods", "proxy") => Connect::PodProxy,
        ("nodes", "proxy") => Connect::NodeProxy,
        ("services", "proxy") => Connect::ServiceProxy,
        _ => return None,
    })
}

fn method_not_allowed(what: &str, method: &Method) -> ApiError {
    ApiError::method_not_supported(
        &apimachinery::GroupResource::new("", what),
        &method.as_str().to_lowercase(),
    )
}

fn unreachable(e: backend::DialError) -> ApiError {
    tracing::info!(error = %e, "proxying to a backend failed");
    ApiError::service_unavailable(format!("error trying to reach service: {e}"))
}

/// Makes the watch cache at least as new as etcd is now, so that the pod,
/// node, Service or Endpoints a connect request names is read like
/// upstream's quorum `Get` (a pod created just before its `log` is found).
async fn consistent(state: &ApiState) -> Result<(), ApiError> {
    let gone = |e: storage::Error| ApiError::internal(format!("reading the current revision: {e}"));
    let current = state
        .store
        .backend()
        .current_revision()
        .await
        .map_err(gone)?;
    state.cacher.wait_until_fresh(current).await.map_err(gone)
}

/// Serves one connect request.
pub async fn serve(
    state: &Arc<ApiState>,
    kind: Connect,
    info: &RequestInfo,
    req: Request<Incoming>,
    user: &User,
) -> Result<Response<Body>, ApiError> {
    let _ = user;
    consistent(state).await?;
    match kind {
        Connect::Log => log(state, info, req).await,
        Connect::Exec | Connect::Attach | Connect::PortForward => {
            stream(state, kind, info, req).await
        }
        Connect::PodProxy | Connect::NodeProxy | Connect::ServiceProxy => {
            super::proxy::serve(state, kind, info, req).await
        }
    }
}

fn kubelet_target(
    state: &ApiState,
    node: &str,
    path_and_query: String,
) -> Result<Target, ApiError> {
    Ok(Target {
        authority: super::node_authority(state, node)?,
        tls: Some(state.kubelet_tls.clone()),
        path_and_query,
    })
}

fn node_of(pod: &serde_json::Value) -> &str {
    pod.pointer("/spec/nodeName")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
}

/// Upstream's `GenericHttpResponseChecker`: a failed kubelet answer
/// becomes a `Status` carrying the kubelet's own words.
pub async fn checked(
    resp: Response<Body>,
    what: &str,
    name: &str,
) -> Result<Response<Body>, ApiError> {
    let status = resp.status().as_u16();
    if (200..=206).contains(&status) || status == 101 {
        return Ok(resp);
    }
    use http_body_util::BodyExt;
    let body = http_body_util::Limited::new(resp.into_body(), 4096)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body).trim_end().to_string();
    Err(match status {
        400 => ApiError::bad_request(text),
        500 => ApiError::internal(text),
        code => ApiError::generic_server_response(
            code,
            &apimachinery::GroupResource::new("", what),
            name,
            &text,
        ),
    })
}

async fn log(
    state: &Arc<ApiState>,
    info: &RequestInfo,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Err(method_not_allowed("pods/log", req.method()));
    }
    let query = Query::parse(req.uri().query());
    let pod = containers::pod(state, &info.namespace, &info.name)?;
    let container = containers::choose(
        &pod,
        &info.name,
        query.get("container").unwrap_or(""),
        Wording::Log,
    )?;
    let params = containers::log_query(&query, &info.name)?;
    let node = node_of(&pod);
    if node.is_empty() {
        // Upstream streams nothing for a pod that has no node yet.
        return Ok(Response::builder()
            .status(204)
            .body(crate::response::full(""))
            .unwrap_or_default());
    }
    let mut path = format!(
        "/containerLogs/{}/{}/{container}",
        info.namespace, info.name
    );
    if !params.is_empty() {
        path = format!("{path}?{params}");
    }
    let target = kubelet_target(state, node, path)?;
    let mut resp = backend::forward(&target, req, &[])
        .await
        .map_err(unreachable)?;
    if resp.status().is_success() {
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain"),
        );
    }
    checked(resp, "pods/log", &info.name).await
}

async fn stream(
    state: &Arc<ApiState>,
    kind: Connect,
    info: &RequestInfo,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let (what, path) = match kind {
        Connect::Exec => ("pods/exec", "exec"),
        Connect::Attach => ("pods/attach", "attach"),
        _ => ("pods/portforward", "portForward"),
    };
    if req.method() != Method::GET && req.method() != Method::POST {
        return Err(method_not_allowed(what, req.method()));
    }
    let pod = containers::pod(state, &info.namespace, &info.name)?;
    let query = Query::parse(req.uri().query());
    let location = if kind == Connect::PortForward {
        let ports = query_values(req.uri().query(), "ports");
        let params: Vec<(&str, String)> = ports.into_iter().map(|p| ("port", p)).collect();
        let q = containers::encode(&params);
        format!("/{path}/{}/{}{}", info.namespace, info.name, opt_query(&q))
    } else {
        let container = containers::choose(
            &pod,
            &info.name,
            query.get("container").unwrap_or(""),
            Wording::Stream,
        )?;
        let q = containers::stream_query(req.uri().query(), kind == Connect::Exec);
        format!(
            "/{path}/{}/{}/{container}{}",
            info.namespace,
            info.name,
            opt_query(&q)
        )
    };
    let node = node_of(&pod);
    if node.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {} does not have a host assigned",
            info.name
        )));
    }
    let target = kubelet_target(state, node, location)?;
    let resp = backend::forward(&target, req, &[])
        .await
        .map_err(unreachable)?;
    checked(resp, what, &info.name).await
}

fn opt_query(q: &str) -> String {
    if q.is_empty() {
        String::new()
    } else {
        format!("?{q}")
    }
}

/// Every value of `key` in a raw query (repeated keys kept).
pub fn query_values(raw: Option<&str>, key: &str) -> Vec<String> {
    raw.unwrap_or("")
        .split('&')
        .filter_map(|p| p.split_once('=').or(Some((p, ""))))
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
        .flat_map(|v| v.split(',').map(str::to_string).collect::<Vec<_>>())
        .filter(|v| !v.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request_info::parse;

    #[test]
    fn connect_subresources_are_recognised() {
        let w = |m, p| wanted(&parse(m, p, false));
        assert_eq!(
            w("GET", "/api/v1/namespaces/a/pods/p/log"),
            Some(Connect::Log)
        );
        assert_eq!(
            w("POST", "/api/v1/namespaces/a/pods/p/exec"),
            Some(Connect::Exec)
        );
        assert_eq!(
            w("GET", "/api/v1/namespaces/a/pods/p:80/proxy/x/y"),
            Some(Connect::PodProxy)
        );
        assert_eq!(
            w("GET", "/api/v1/nodes/n/proxy/metrics"),
            Some(Connect::NodeProxy)
        );
        assert_eq!(
            w("GET", "/api/v1/namespaces/a/services/https:s:443/proxy/"),
            Some(Connect::ServiceProxy)
        );
        assert_eq!(w("GET", "/api/v1/namespaces/a/pods/p/status"), None);
        assert_eq!(
            w("GET", "/apis/apps/v1/namespaces/a/deployments/d/proxy"),
            None
        );
    }

    #[test]
    fn port_forward_ports_may_repeat_or_be_comma_separated() {
        assert_eq!(
            query_values(Some("ports=80,443&ports=8080&x=1"), "ports"),
            ["80", "443", "8080"]
        );
    }
}
