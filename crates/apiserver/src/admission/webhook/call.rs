//! Calling a webhook (upstream's `webhookutil.ClientManager` and the REST
//! client behind it): the address comes from the URL or, for a Service,
//! from the same resolver as the aggregator's; TLS verifies the
//! webhook's certificate against its CA bundle for the URL's host or
//! `<service>.<namespace>.svc`; the request is a POST with `?timeout=`
//! and the whole exchange is bounded by the webhook's timeout. Connections
//! are kept open per webhook and reused.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

use super::hook::{Conn, Endpoint, Hook};
use crate::state::ApiState;

/// The largest answer read from a webhook.
const MAX_RESPONSE: usize = 16 * 1024 * 1024;

/// The URL upstream's client names in its errors.
pub fn url(hook: &Hook) -> String {
    let timeout = hook.timeout.as_secs();
    match &hook.endpoint {
        Endpoint::Url { authority, path } => {
            format!("https://{authority}{path}?timeout={timeout}s")
        }
        Endpoint::Service {
            namespace,
            name,
            port,
            path,
        } => format!("https://{name}.{namespace}.svc:{port}{path}?timeout={timeout}s"),
    }
}

fn path(hook: &Hook) -> String {
    let p = match &hook.endpoint {
        Endpoint::Url { path, .. } | Endpoint::Service { path, .. } => path,
    };
    format!("{p}?timeout={}s", hook.timeout.as_secs())
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connect: connection refused".into(),
        _ => e.to_string(),
    }
}

async fn dial(state: &ApiState, hook: &Hook) -> Result<Conn, String> {
    let authority = match &hook.endpoint {
        Endpoint::Url { authority, .. } => authority.clone(),
        Endpoint::Service {
            namespace,
            name,
            port,
            ..
        } => crate::aggregator::client::resolve_service(state, namespace, name, *port)
            .map_err(|e| e.to_string())?
            .to_string(),
    };
    let tcp = tokio::net::TcpStream::connect(authority.as_str())
        .await
        .map_err(|e| format!("dial tcp {authority}: {}", io_reason(&e)))?;
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from(hook.endpoint.server_name()).map_err(|e| e.to_string())?;
    let tls = TlsConnector::from(Arc::clone(&hook.tls))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("tls: {e}"))?;
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "webhook connection ended");
        }
    });
    Ok(sender)
}

async fn send(
    conn: &mut Conn,
    hook: &Hook,
    body: Bytes,
) -> Result<http::Response<hyper::body::Incoming>, String> {
    conn.ready().await.map_err(|e| e.to_string())?;
    let req = http::Request::post(path(hook))
        .header(http::header::HOST, hook.endpoint.server_name())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json, */*")
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    conn.send_request(req).await.map_err(|e| e.to_string())
}

async fn exchange(state: &ApiState, hook: &Hook, body: Bytes) -> Result<Bytes, String> {
    let (conn, resp) = match hook.take_idle() {
        // A kept connection the webhook has closed meanwhile fails before
        // any answer: the request goes once more on a new one.
        Some(mut c) => match send(&mut c, hook, body.clone()).await {
            Ok(resp) => (c, resp),
            Err(_) => {
                let mut c = dial(state, hook).await?;
                let resp = send(&mut c, hook, body).await?;
                (c, resp)
            }
        },
        None => {
            let mut c = dial(state, hook).await?;
            let resp = send(&mut c, hook, body).await?;
            (c, resp)
        }
    };
    let status = resp.status();
    let body = Limited::new(resp.into_body(), MAX_RESPONSE)
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    hook.put_idle(conn);
    if !status.is_success() {
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            });
        return Err(message.unwrap_or_else(|| {
            format!(
                "the server responded with the status code {} but did not return more information",
                status.as_u16()
            )
        }));
    }
    Ok(body)
}

/// Posts `review` to `hook` and returns the answer's body; the error is
/// upstream's `failed to call webhook: Post "<url>": <why>`.
pub async fn post(state: &ApiState, hook: &Hook, review: Bytes) -> Result<Bytes, String> {
    let timed = tokio::time::timeout(hook.timeout, exchange(state, hook, review)).await;
    let why = match timed {
        Ok(Ok(body)) => return Ok(body),
        Ok(Err(why)) => why,
        Err(_) => "context deadline exceeded".to_string(),
    };
    Err(format!(
        "failed to call webhook: Post {:?}: {why}",
        url(hook)
    ))
}
