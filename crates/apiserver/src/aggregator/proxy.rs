//! Forwarding a request to an extension API server (upstream's
//! `proxyHandler`): the caller was authenticated here, so its identity
//! travels in the front-proxy headers (`X-Remote-User`, `X-Remote-Group`,
//! `X-Remote-Extra-*`) over a connection made with the proxy client
//! certificate; the caller's own credentials and hop-by-hop headers are
//! not forwarded. Responses, watches included, stream back as they come.

use http::{HeaderName, HeaderValue, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::Remote;
use crate::handlers::User;
use crate::response::Body;
use crate::state::ApiState;
use apimachinery::ApiError;

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn forwarded(name: &HeaderName) -> bool {
    let n = name.as_str();
    !(HOP_BY_HOP.contains(&n)
        || n == "authorization"
        || n == "host"
        || n.starts_with("impersonate-")
        || n.starts_with("x-remote-"))
}

/// Proxies `req` to `remote`'s backend on behalf of `user`.
pub async fn proxy(
    state: &ApiState,
    remote: &Remote,
    req: Request<Incoming>,
    user: &User,
) -> Result<Response<Body>, ApiError> {
    if !remote.available {
        return Err(ApiError::service_unavailable("service unavailable"));
    }
    let (parts, body) = req.into_parts();
    let uri = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let mut out = Request::builder().method(parts.method.clone()).uri(uri);
    for (k, v) in parts.headers.iter().filter(|(k, _)| forwarded(k)) {
        out = out.header(k, v);
    }
    let value = |s: &str| {
        HeaderValue::from_str(s)
            .map_err(|_| ApiError::bad_request("user information cannot be forwarded"))
    };
    out = out.header("X-Remote-User", value(&user.name)?);
    for g in &user.groups {
        out = out.header("X-Remote-Group", value(g)?);
    }
    for (k, vs) in &user.extra {
        let key = percent_encoding::utf8_percent_encode(k, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
        for v in vs {
            out = out.header(format!("X-Remote-Extra-{key}"), value(v)?);
        }
    }
    let out = out
        .body(body)
        .map_err(|e| ApiError::bad_request(format!("proxying request: {e}")))?;
    let resp = super::client::send(state, remote, out).await.map_err(|e| {
        tracing::info!(apiservice = %remote.name, error = %e, "proxying to the extension API server failed");
        ApiError::service_unavailable(format!("error trying to reach service: {e}"))
    })?;
    let (mut parts, body) = resp.into_parts();
    for h in HOP_BY_HOP {
        parts.headers.remove(*h);
    }
    let body: Body = body.map_err(std::io::Error::other).boxed();
    Ok(Response::from_parts(parts, body))
}
