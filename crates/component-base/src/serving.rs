//! A component's secure port (upstream's `SecureServingOptions` plus the
//! debugging handlers every component installs): HTTPS serving `/healthz`,
//! `/livez`, `/readyz` (see [`crate::healthz`]) and `/metrics`. With no
//! `--tls-cert-file`, a self-signed certificate is generated in memory, as
//! upstream does (it writes one to `--cert-dir`).
//!
//! Not yet: delegated authentication/authorization of `/metrics` (upstream
//! asks the API server via TokenReview/SubjectAccessReview); today every
//! path here is served to any TLS client.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::healthz::Checks;
use crate::metrics::Metrics;

/// Upstream's secure-serving flags; the port's default differs per
/// component, so it is an `Option` completed with [`Self::addr`].
#[derive(Debug, Clone, clap::Args)]
pub struct SecureServingOptions {
    /// The IP address on which to listen for the --secure-port port.
    #[arg(long = "bind-address", default_value = "0.0.0.0")]
    pub bind_address: IpAddr,
    /// The port on which to serve HTTPS with authentication and
    /// authorization. If 0, don't serve HTTPS at all.
    #[arg(long = "secure-port")]
    pub secure_port: Option<u16>,
    /// File containing the default x509 certificate for HTTPS; without it a
    /// self-signed certificate is generated.
    #[arg(long = "tls-cert-file")]
    pub tls_cert_file: Option<PathBuf>,
    /// File containing the default x509 private key matching --tls-cert-file.
    #[arg(long = "tls-private-key-file")]
    pub tls_private_key_file: Option<PathBuf>,
}

impl SecureServingOptions {
    /// The listen address, `None` when `--secure-port=0` turns serving off.
    pub fn addr(&self, default_port: u16) -> Option<SocketAddr> {
        match self.secure_port.unwrap_or(default_port) {
            0 => None,
            port => Some(SocketAddr::new(self.bind_address, port)),
        }
    }
}

/// Why serving could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServingError {
    /// A certificate or key file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The PEM data held no usable certificate or key.
    #[error("{0}")]
    Pem(String),
    /// rustls rejected the certificate and key.
    #[error("tls: {0}")]
    Tls(#[from] rustls::Error),
    /// The self-signed certificate could not be generated.
    #[error("self-signed certificate: {0}")]
    SelfSigned(#[from] rcgen::Error),
    /// The port could not be bound.
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// What the secure port answers.
#[derive(Clone, Default)]
pub struct Endpoints {
    pub healthz: Checks,
    pub livez: Checks,
    pub readyz: Checks,
    pub metrics: Option<Arc<Metrics>>,
}

impl Endpoints {
    /// The status, content type and body for `path`; 404 for anything else.
    pub fn route(&self, path: &str, query: &str) -> (u16, &'static str, String) {
        let path = path.trim_end_matches('/');
        if path == "/metrics" {
            return match &self.metrics {
                Some(m) => (
                    200,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    m.encode(),
                ),
                None => (
                    404,
                    "text/plain; charset=utf-8",
                    "404 page not found\n".into(),
                ),
            };
        }
        for (endpoint, checks) in [
            ("healthz", &self.healthz),
            ("livez", &self.livez),
            ("readyz", &self.readyz),
        ] {
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
                return (a.status, "text/plain; charset=utf-8", a.body);
            }
        }
        (
            404,
            "text/plain; charset=utf-8",
            "404 page not found\n".into(),
        )
    }
}

/// Binds `addr` and returns the bound address and the serving future, so a
/// caller (or a test with port 0) learns the port before serving starts.
pub async fn bind(
    addr: SocketAddr,
    opts: &SecureServingOptions,
    endpoints: Endpoints,
) -> Result<(SocketAddr, impl std::future::Future<Output = ()>), ServingError> {
    let tls = TlsAcceptor::from(Arc::new(tls_config(opts)?));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServingError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| ServingError::Bind { addr, source })?;
    tracing::info!(address = %local, "serving securely");
    let endpoints = Arc::new(endpoints);
    Ok((local, accept_loop(listener, tls, endpoints)))
}

async fn accept_loop(listener: TcpListener, tls: TlsAcceptor, endpoints: Arc<Endpoints>) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "accept failed");
                continue;
            }
        };
        let tls = tls.clone();
        let endpoints = endpoints.clone();
        tokio::spawn(async move {
            let stream = match tls.accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let endpoints = endpoints.clone();
                async move {
                    let (status, content_type, body) =
                        endpoints.route(req.uri().path(), req.uri().query().unwrap_or(""));
                    let resp = Response::builder()
                        .status(status)
                        .header("Content-Type", content_type)
                        .header("X-Content-Type-Options", "nosniff")
                        .body(Full::new(Bytes::from(body)))
                        .unwrap_or_default();
                    Ok::<_, Infallible>(resp)
                }
            });
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
}

/// The TLS server configuration the options describe (h2 and http/1.1),
/// for components that serve more than these endpoints (the kubelet).
pub fn tls_config(opts: &SecureServingOptions) -> Result<rustls::ServerConfig, ServingError> {
    tls_config_with_client_cas(opts, &[])
}

/// Like [`tls_config`], also asking clients for a certificate signed by
/// one of the PEM `client_cas` (optional: a client without one still
/// connects, to be authenticated otherwise). No CAs: no client auth.
pub fn tls_config_with_client_cas(
    opts: &SecureServingOptions,
    client_cas: &[u8],
) -> Result<rustls::ServerConfig, ServingError> {
    let (certs, key) = match (&opts.tls_cert_file, &opts.tls_private_key_file) {
        (Some(cert), Some(key)) => (read_certs(cert)?, read_key(key)?),
        (None, None) => self_signed()?,
        _ => {
            return Err(ServingError::Pem(
                "--tls-cert-file and --tls-private-key-file must be given together".into(),
            ))
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut &client_cas[..]) {
        let c = c.map_err(|e| ServingError::Pem(format!("client CA: {e}")))?;
        roots.add(c)?;
    }
    let mut cfg = if roots.is_empty() {
        builder.with_no_client_auth().with_single_cert(certs, key)?
    } else {
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| ServingError::Pem(format!("client CA: {e}")))?;
        builder
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)?
    };
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

fn read(path: &PathBuf) -> Result<Vec<u8>, ServingError> {
    std::fs::read(path).map_err(|source| ServingError::Read {
        path: path.clone(),
        source,
    })
}

fn read_certs(path: &PathBuf) -> Result<Vec<CertificateDer<'static>>, ServingError> {
    let data = read(path)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut data.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| ServingError::Pem(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(ServingError::Pem(format!(
            "{}: no certificate found",
            path.display()
        )));
    }
    Ok(certs)
}

fn read_key(path: &PathBuf) -> Result<PrivateKeyDer<'static>, ServingError> {
    let data = read(path)?;
    rustls_pemfile::private_key(&mut data.as_slice())
        .map_err(|e| ServingError::Pem(format!("{}: {e}", path.display())))?
        .ok_or_else(|| ServingError::Pem(format!("{}: no private key found", path.display())))
}

fn self_signed() -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ServingError> {
    let host = "localhost".to_string();
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec![host, "127.0.0.1".into()])?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signing_key.serialize_der()));
    Ok((vec![cert.der().clone()], key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::healthz::Check;

    #[test]
    fn routes_health_endpoints_and_metrics() {
        let e = Endpoints {
            healthz: Checks::new(vec![Check::ping()]),
            readyz: Checks::new(vec![Check::new("informer-sync", || Err("not yet".into()))]),
            metrics: Some(Arc::new(Metrics::default())),
            ..Default::default()
        };
        assert_eq!(e.route("/healthz", "").0, 200);
        assert_eq!(e.route("/healthz/ping", "").2, "ok");
        assert_eq!(e.route("/healthz/other", "").0, 404);
        assert_eq!(e.route("/healthzz", "").0, 404);
        assert_eq!(e.route("/readyz", "").0, 500);
        assert_eq!(e.route("/livez", "").0, 200);
        assert_eq!(e.route("/metrics", "").0, 200);
        assert_eq!(e.route("/nope", "").0, 404);
    }

    #[test]
    fn secure_port_zero_turns_serving_off() {
        let o = SecureServingOptions {
            bind_address: "127.0.0.1".parse().unwrap(),
            secure_port: None,
            tls_cert_file: None,
            tls_private_key_file: None,
        };
        assert_eq!(o.addr(10259).unwrap().port(), 10259);
        let off = SecureServingOptions {
            secure_port: Some(0),
            ..o
        };
        assert!(off.addr(10259).is_none());
    }
}
