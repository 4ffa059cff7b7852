//! Talking to a backend a component proxies to — for the API server a
//! kubelet, a pod or a Service endpoint, for the kubelet the runtime's
//! streaming server (upstream's `apimachinery/pkg/util/proxy`
//! `UpgradeAwareHandler` and the transports behind it): dial, TLS with or
//! without verification, one HTTP/1.1 request, and for a `101 Switching
//! Protocols` answer (exec, attach, port-forward over SPDY) the two upgraded
//! connections spliced together until either side closes.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::TlsConnector;

/// The body of a proxied answer.
pub type Body = http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error>;

/// A verifier that accepts any server certificate: upstream's
/// `InsecureSkipVerify`, used when no CA is configured for kubelets and for
/// APIServices marked `insecureSkipTLSVerify`.
#[derive(Debug)]
pub struct AcceptAny(pub Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Where a proxied request goes.
#[derive(Clone)]
pub struct Target {
    /// `host:port`; the host may be a name, resolved when dialling.
    pub authority: String,
    /// `None` for plain HTTP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Path and query sent to the backend.
    pub path_and_query: String,
}

/// Why a backend could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("dial tcp {0}: i/o timeout")]
    Timeout(String),
    #[error("dial tcp {authority}: {source}")]
    Connect {
        authority: String,
        #[source]
        source: std::io::Error,
    },
    #[error("tls handshake with {authority}: {source}")]
    Tls {
        authority: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Http(String),
}

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

fn is_upgrade(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        })
}

/// Whether `req` asks for a WebSocket upgrade.
pub fn is_websocket(headers: &http::HeaderMap) -> bool {
    is_upgrade(headers)
        && headers
            .get(http::header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The request headers a proxy passes on: end-to-end ones, without the
/// caller's credentials, plus the upgrade pair when the caller upgrades.
fn forwarded_headers(headers: &http::HeaderMap) -> http::HeaderMap {
    let upgrade = is_upgrade(headers);
    let mut out = http::HeaderMap::new();
    for (k, v) in headers {
        let n = k.as_str();
        let drop = HOP_BY_HOP.contains(&n)
            || n == "authorization"
            || n == "host"
            || n.starts_with("impersonate-")
            || n.starts_with("x-remote-");
        if !drop {
            out.append(k.clone(), v.clone());
        }
    }
    if upgrade {
        if let Some(v) = headers.get(http::header::UPGRADE) {
            out.insert(http::header::UPGRADE, v.clone());
            out.insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("Upgrade"),
            );
        }
    }
    out
}

async fn connect<B>(
    target: &Target,
) -> Result<hyper::client::conn::http1::SendRequest<B>, DialError>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let authority = target.authority.clone();
    let tcp = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(&authority),
    )
    .await
    .map_err(|_| DialError::Timeout(authority.clone()))?
    .map_err(|source| DialError::Connect {
        authority: authority.clone(),
        source,
    })?;
    let _ = tcp.set_nodelay(true);
    macro_rules! handshake {
        ($io:expr) => {{
            let (sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new($io))
                    .await
                    .map_err(|e| DialError::Http(e.to_string()))?;
            tokio::spawn(async move {
                if let Err(e) = conn.with_upgrades().await {
                    tracing::debug!(error = %e, "backend connection ended");
                }
            });
            sender
        }};
    }
    Ok(match &target.tls {
        None => handshake!(tcp),
        Some(cfg) => {
            let host = authority
                .rsplit_once(':')
                .map(|(h, _)| h)
                .unwrap_or(&authority)
                .trim_matches(|c| c == '[' || c == ']')
                .to_string();
            let name = ServerName::try_from(host).map_err(|e| DialError::Tls {
                authority: authority.clone(),
                source: std::io::Error::other(e),
            })?;
            let tls = TlsConnector::from(cfg.clone())
                .connect(name, tcp)
                .await
                .map_err(|source| DialError::Tls {
                    authority: authority.clone(),
                    source,
                })?;
            handshake!(tls)
        }
    })
}

/// Sends `req`'s method, end-to-end headers and body to `target`, plus
/// `extra` headers. A `101` answer is passed back and, once the caller's
/// connection is upgraded too, both are spliced; anything else streams back
/// as it comes.
pub async fn forward(
    target: &Target,
    mut req: Request<Incoming>,
    extra: &[(HeaderName, http::HeaderValue)],
) -> Result<Response<Body>, DialError> {
    let upgrade = is_upgrade(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    let mut out = Request::builder()
        .method(parts.method.clone())
        .uri(target.path_and_query.as_str());
    if let Some(h) = out.headers_mut() {
        *h = forwarded_headers(&parts.headers);
        for (k, v) in extra {
            h.append(k.clone(), v.clone());
        }
        let host = http::HeaderValue::from_str(&target.authority)
            .unwrap_or(http::HeaderValue::from_static("localhost"));
        h.insert(http::header::HOST, host);
    }
    let out = out.body(body).map_err(|e| DialError::Http(e.to_string()))?;
    let mut sender = connect(target).await?;
    let mut resp = sender
        .send_request(out)
        .await
        .map_err(|e| DialError::Http(e.to_string()))?;
    if resp.status() == http::StatusCode::SWITCHING_PROTOCOLS {
        let backend_upgrade = hyper::upgrade::on(&mut resp);
        if let Some(client_upgrade) = client_upgrade {
            tokio::spawn(async move {
                let (client, backend) = match tokio::join!(client_upgrade, backend_upgrade) {
                    (Ok(c), Ok(b)) => (c, b),
                    (c, b) => {
                        tracing::debug!(client = c.is_ok(), backend = b.is_ok(), "upgrade failed");
                        return;
                    }
                };
                let mut client = hyper_util::rt::TokioIo::new(client);
                let mut backend = hyper_util::rt::TokioIo::new(backend);
                if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut backend).await {
                    tracing::debug!(error = %e, "upgraded stream ended");
                }
            });
        }
        let (parts, _) = resp.into_parts();
        let empty = http_body_util::Full::new(bytes::Bytes::new())
            .map_err(|e| match e {})
            .boxed();
        return Ok(Response::from_parts(parts, empty));
    }
    let (mut parts, body) = resp.into_parts();
    for h in HOP_BY_HOP {
        parts.headers.remove(*h);
    }
    let body: Body = body.map_err(std::io::Error::other).boxed();
    Ok(Response::from_parts(parts, body))
}

/// `GET target` with `headers` (one connection, one request), the answer's
/// status and at most `limit` bytes of its body: what a scraper needs.
pub async fn get(
    target: &Target,
    headers: &[(HeaderName, http::HeaderValue)],
    limit: usize,
) -> Result<(http::StatusCode, bytes::Bytes), DialError> {
    let mut req = Request::get(target.path_and_query.as_str());
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let req = req
        .header(http::header::HOST, target.authority.as_str())
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| DialError::Http(e.to_string()))?;
    let mut sender = connect(target).await?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| DialError::Http(e.to_string()))?;
    let status = resp.status();
    let body = http_body_util::Limited::new(resp.into_body(), limit)
        .collect()
        .await
        .map_err(|e| DialError::Http(e.to_string()))?
        .to_bytes();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_hop_by_hop_headers_stay_here() {
        let mut h = http::HeaderMap::new();
        h.insert("authorization", "Bearer x".parse().unwrap());
        h.insert("impersonate-user", "bob".parse().unwrap());
        h.insert(
            "x-stream-protocol-version",
            "v4.channel.k8s.io".parse().unwrap(),
        );
        h.insert("connection", "keep-alive, Upgrade".parse().unwrap());
        h.insert("upgrade", "SPDY/3.1".parse().unwrap());
        let out = forwarded_headers(&h);
        assert!(out.get("authorization").is_none());
        assert!(out.get("impersonate-user").is_none());
        assert_eq!(out["x-stream-protocol-version"], "v4.channel.k8s.io");
        assert_eq!(out["upgrade"], "SPDY/3.1");
        assert_eq!(out["connection"], "Upgrade");
        h.remove("upgrade");
        h.insert("connection", "keep-alive".parse().unwrap());
        let out = forwarded_headers(&h);
        assert!(out.get("connection").is_none() && out.get("upgrade").is_none());
    }

    #[test]
    fn websocket_upgrades_are_recognised() {
        let mut h = http::HeaderMap::new();
        h.insert("connection", "Upgrade".parse().unwrap());
        h.insert("upgrade", "websocket".parse().unwrap());
        assert!(is_websocket(&h));
        h.insert("upgrade", "SPDY/3.1".parse().unwrap());
        assert!(!is_websocket(&h));
    }
}
