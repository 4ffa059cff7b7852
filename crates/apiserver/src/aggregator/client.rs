//! Reaching an extension API server (upstream's aggregator
//! `ServiceResolver` and proxy transport): the APIService's Service is
//! resolved to its cluster IP, or with `--enable-aggregator-routing` to an
//! endpoint address; TLS trusts `spec.caBundle` for the name
//! `<service>.<namespace>.svc` (or nothing, with `insecureSkipTLSVerify`),
//! and presents the proxy client certificate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use tokio_rustls::TlsConnector;

use super::Remote;
use crate::state::ApiState;

/// Why a backend could not be reached; the messages are upstream's
/// (they become the APIService's Available condition).
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("service/{service} in {namespace:?} is not present")]
    ServiceNotFound { service: String, namespace: String },
    #[error("service/{service} in {namespace:?} is not listening on port {port}")]
    PortNotFound {
        service: String,
        namespace: String,
        port: i64,
    },
    #[error("endpoints for service/{service} in {namespace:?} have no addresses with port name {port_name:?}")]
    MissingEndpoints {
        service: String,
        namespace: String,
        port_name: String,
    },
    #[error("failing or missing response from {url}: {reason}")]
    Failed { url: String, reason: String },
}

impl BackendError {
    /// The condition reason upstream's availability controller uses.
    pub fn reason(&self) -> &'static str {
        match self {
            BackendError::ServiceNotFound { .. } => "ServiceNotFound",
            BackendError::PortNotFound { .. } => "ServicePortError",
            BackendError::MissingEndpoints { .. } => "MissingEndpoints",
            BackendError::Failed { .. } => "FailedDiscoveryCheck",
        }
    }
}

fn cached(state: &ApiState, key: &str) -> Option<Value> {
    state.cacher.get(key).0.and_then(|o| o.value().ok())
}

/// The address to dial for `r`.
pub fn resolve(state: &ApiState, r: &Remote) -> Result<SocketAddr, BackendError> {
    resolve_service(state, &r.namespace, &r.service, r.port)
}

/// The address to dial for port `port` of Service `namespace/service`
/// (upstream's `ClusterIPServiceResolver`, or its endpoint resolver with
/// `--enable-aggregator-routing`); webhooks are reached the same way.
pub fn resolve_service(
    state: &ApiState,
    namespace: &str,
    service: &str,
    port: i64,
) -> Result<SocketAddr, BackendError> {
    let not_found = || BackendError::ServiceNotFound {
        service: service.to_string(),
        namespace: namespace.to_string(),
    };
    let svc = cached(
        state,
        &format!("{}services/specs/{}/{}", state.prefix, namespace, service),
    )
    .ok_or_else(not_found)?;
    let svc_port = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .and_then(|ps| {
            ps.iter()
                .find(|p| p.get("port").and_then(Value::as_i64) == Some(port))
        })
        .ok_or_else(|| BackendError::PortNotFound {
            service: service.to_string(),
            namespace: namespace.to_string(),
            port,
        })?
        .clone();
    if !state.config.aggregator.enable_aggregator_routing {
        let ip = svc
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("");
        if let Ok(ip) = ip.parse() {
            return Ok(SocketAddr::new(ip, port as u16));
        }
    }
    let port_name = svc_port
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let missing = || BackendError::MissingEndpoints {
        service: service.to_string(),
        namespace: namespace.to_string(),
        port_name: port_name.clone(),
    };
    let eps = cached(
        state,
        &format!(
            "{}services/endpoints/{}/{}",
            state.prefix, namespace, service
        ),
    )
    .ok_or_else(missing)?;
    for subset in eps
        .get("subsets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let ep_port = subset
            .get("ports")
            .and_then(Value::as_array)
            .and_then(|ps| {
                ps.iter()
                    .find(|p| p.get("name").and_then(Value::as_str).unwrap_or("") == port_name)
            })
            .and_then(|p| p.get("port").and_then(Value::as_i64));
        let ip = subset
            .pointer("/addresses/0/ip")
            .and_then(Value::as_str)
            .and_then(|ip| ip.parse().ok());
        if let (Some(port), Some(ip)) = (ep_port, ip) {
            return Ok(SocketAddr::new(ip, port as u16));
        }
    }
    Err(missing())
}

/// The proxy's client identity, read once from the configured files.
pub type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// Loads `--proxy-client-cert-file`/`--proxy-client-key-file`.
pub fn load_identity(cfg: &super::AggregatorConfig) -> Result<Option<Identity>, String> {
    let (Some(cert), Some(key)) = (&cfg.proxy_client_cert_file, &cfg.proxy_client_key_file) else {
        return Ok(None);
    };
    let read =
        |p: &std::path::PathBuf| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let certs = rustls_pemfile::certs(&mut read(cert)?.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    let key = rustls_pemfile::private_key(&mut read(key)?.as_slice())
        .map_err(|e| format!("{}: {e}", key.display()))?
        .ok_or_else(|| format!("{}: no private key", key.display()))?;
    Ok(Some((certs, key)))
}

fn tls_config(state: &ApiState, r: &Remote) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if r.insecure_skip_tls_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(crate::backend::AcceptAny(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pemfile::certs(&mut r.ca_bundle.as_slice()).flatten() {
            let _ = roots.add(c);
        }
        builder.with_root_certificates(roots)
    };
    let mut cfg = match &state.proxy_identity {
        Some((certs, key)) => builder
            .with_client_auth_cert(certs.clone(), key.clone_key())
            .map_err(|e| e.to_string())?,
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Sends `req` (path and query only in its URI) to the backend of `r`.
pub async fn send<B>(
    state: &ApiState,
    r: &Remote,
    req: Request<B>,
) -> Result<Response<Incoming>, BackendError>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let addr = resolve(state, r)?;
    let host = format!("{}.{}.svc", r.service, r.namespace);
    let url = format!("https://{addr}{}", req.uri());
    let failed = |reason: String| BackendError::Failed {
        url: url.clone(),
        reason,
    };
    let cfg = tls_config(state, r).map_err(failed)?;
    let tcp = tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| failed("dial timeout".into()))?
        .map_err(|e| failed(e.to_string()))?;
    let name = ServerName::try_from(host.clone()).map_err(|e| failed(e.to_string()))?;
    let tls = TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| failed(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "aggregator backend connection ended");
        }
    });
    let mut req = req;
    req.headers_mut().insert(
        http::header::HOST,
        http::HeaderValue::from_str(&host).unwrap_or(http::HeaderValue::from_static("localhost")),
    );
    sender
        .send_request(req)
        .await
        .map_err(|e| failed(e.to_string()))
}
