//! Secure serving (upstream's `server/secure_serving.go` and the filter chain):
//! rustls with optional client certificates verified against `--client-ca-file`,
//! then per request: panic recovery → authentication (`authn`) → health/metrics
//! or the API handlers.

use std::net::SocketAddr;
use std::sync::Arc;

use apimachinery::ApiError;
use futures::FutureExt;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prometheus_client::encoding::EncodeLabelSet;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::authn::{self, Outcome};
use crate::handlers::{self, User};
use crate::response::{self, Body};
use crate::state::ApiState;
use component_base::authn::{self as requestheader, Authorities, Peer};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no usable {what} in {path}")]
    Pem { what: &'static str, path: String },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("client CA: {0}")]
    ClientCa(String),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, ServeError> {
    std::fs::read(path).map_err(|source| ServeError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn certs(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, ServeError> {
    let data = read(path)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut data.as_slice())
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(ServeError::Pem {
            what: "certificate",
            path: path.display().to_string(),
        });
    }
    Ok(certs)
}

/// Builds the rustls server configuration from the config's files.
pub fn tls_config(state: &ApiState) -> Result<rustls::ServerConfig, ServeError> {
    let cfg = &state.config;
    let chain = certs(&cfg.tls_cert_file)?;
    let key_data = read(&cfg.tls_key_file)?;
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_data.as_slice())
        .ok()
        .flatten()
        .ok_or(ServeError::Pem {
            what: "private key",
            path: cfg.tls_key_file.display().to_string(),
        })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let cas: Vec<&std::path::PathBuf> = cfg
        .client_ca_file
        .iter()
        .chain(cfg.aggregator.requestheader_client_ca_file.iter())
        .collect();
    let mut config = match cas.is_empty() {
        false => {
            // Either authority's certificates are accepted here; which one
            // signed a connection's certificate is told apart per connection.
            let mut roots = rustls::RootCertStore::empty();
            for ca in cas {
                for c in certs(ca)? {
                    roots
                        .add(c)
                        .map_err(|e| ServeError::ClientCa(e.to_string()))?;
                }
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| ServeError::ClientCa(e.to_string()))?;
            builder
                .with_client_cert_verifier(verifier)
                .with_single_cert(chain, key)?
        }
        true => builder.with_no_client_auth().with_single_cert(chain, key)?,
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    verb: String,
    resource: String,
    code: String,
}

/// Request metrics with upstream's names.
pub struct ServerMetrics {
    pub registry: component_base::metrics::Metrics,
    requests: component_base::metrics::Family<RequestLabels, component_base::metrics::Counter>,
}

impl ServerMetrics {
    fn new(state: &ApiState) -> Self {
        let registry = component_base::metrics::Metrics::default();
        let requests = component_base::metrics::Family::<
            RequestLabels,
            component_base::metrics::Counter,
        >::default();
        registry.register("apiserver_request", "Counter of apiserver requests broken out for each verb, resource and HTTP response code.", requests.clone());
        state.webhooks.metrics.register(&registry);
        state.authorizer.register(&registry);
        Self { registry, requests }
    }
}

fn health(state: &ApiState, path: &str, verbose: bool) -> Response<Body> {
    let ready = state.cacher.ready();
    let mut checks = vec![("ping", true), ("etcd", ready)];
    if path == "/readyz" {
        checks.push(("informer-sync", ready));
        checks.push(("poststarthook/bootstrap-controller", ready));
    }
    let ok = checks.iter().all(|(_, ok)| *ok);
    let name = path.trim_start_matches('/');
    let body = if verbose || !ok {
        let mut s: String = checks
            .iter()
            .map(|(n, ok)| {
                if *ok {
                    format!("[+]{n} ok\n")
                } else {
                    format!("[-]{n} failed: reason withheld\n")
                }
            })
            .collect();
        s.push_str(&if ok {
            format!("{name} check passed\n")
        } else {
            format!("{name} check failed\n")
        });
        s
    } else {
        "ok".to_string()
    };
    response::text(if ok { 200 } else { 500 }, body)
}

async fn handle(
    state: Arc<ApiState>,
    metrics: Arc<ServerMetrics>,
    peer: Peer,
    req: Request<Incoming>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    let verbose = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .any(|p| p == "verbose" || p.starts_with("verbose="));
    let public = matches!(
        path.as_str(),
        "/healthz" | "/livez" | "/readyz" | "/version" | "/version/"
    ) || path.starts_with("/healthz/")
        || path.starts_with("/livez/")
        || path.starts_with("/readyz/");
    if path == "/healthz" || path == "/livez" || path == "/readyz" {
        return health(&state, &path, verbose);
    }
    let authorization = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    // A front proxy's word first (upstream's union order), then the certificate's own user.
    let user = peer
        .front_proxy
        .as_deref()
        .and_then(|cn| {
            requestheader::user_from_headers(
                &state.config.aggregator.requestheader(),
                cn,
                req.headers(),
            )
        })
        .or(peer.client_user);
    let user = match authn::authenticate(&state, user, authorization).await {
        Outcome::User(u) => u,
        Outcome::Anonymous if public => User {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
            ..User::default()
        },
        Outcome::Anonymous | Outcome::Refused => {
            return response::error(&ApiError::unauthorized("Unauthorized"))
        }
    };
    let mut req = req;
    let user = match crate::authz::impersonation::apply(&state, req.headers_mut(), user) {
        Ok(u) => u,
        Err(e) => return response::error(&e),
    };
    if path == "/metrics" {
        let info = crate::request_info::parse("GET", &path, false);
        let asked = crate::authz::Attributes::of_request(&user, &info, &path, None);
        if let Err(e) = crate::authz::check(&state, &asked) {
            return response::error(&e);
        }
        return response::text(200, metrics.registry.encode());
    }
    let method = req.method().as_str().to_string();
    let info = crate::request_info::parse(&method, &path, false);
    let resp = handlers::dispatch(state, req, user).await;
    metrics
        .requests
        .get_or_create(&RequestLabels {
            verb: method,
            resource: info.resource,
            code: resp.status().as_u16().to_string(),
        })
        .inc();
    resp
}

/// Serves until the listener fails.
pub async fn serve(state: Arc<ApiState>) -> Result<(), ServeError> {
    let acceptor = TlsAcceptor::from(Arc::new(tls_config(&state)?));
    let read_ca = |p: &Option<std::path::PathBuf>| -> Result<Option<Vec<u8>>, ServeError> {
        p.as_deref().map(read).transpose()
    };
    let authorities = Arc::new(
        Authorities::new(
            read_ca(&state.config.client_ca_file)?.as_deref(),
            read_ca(&state.config.aggregator.requestheader_client_ca_file)?.as_deref(),
        )
        .map_err(ServeError::ClientCa)?,
    );
    let addr = state.config.bind;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen { addr, source })?;
    let metrics = Arc::new(ServerMetrics::new(&state));
    // Post-start hook: the CRD controllers.
    tokio::spawn(crate::crd::run(state.clone()));
    tokio::spawn(crate::aggregator::controller::run(state.clone()));
    tokio::spawn(crate::admission::webhook::source::run(state.clone()));
    tokio::spawn(crate::authz::rbac::run(state.clone()));
    tracing::info!(%addr, "serving securely");
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, state, metrics) = (acceptor.clone(), state.clone(), metrics.clone());
        let authorities = authorities.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let peer_cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .map(|c| authorities.classify(c))
                .unwrap_or_default();
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let (state, metrics, peer_cert) =
                    (state.clone(), metrics.clone(), peer_cert.clone());
                async move {
                    // Panic recovery: a bug answers 500 and is logged; the server goes on.
                    let path = req.uri().path().to_string();
                    let r = std::panic::AssertUnwindSafe(handle(state, metrics, peer_cert, req))
                        .catch_unwind()
                        .await;
                    Ok::<_, std::convert::Infallible>(r.unwrap_or_else(|_| {
                        tracing::error!(%path, "panic while serving request");
                        response::error(&ApiError::internal("an error on the server (\"panic\") has prevented the request from succeeding"))
                    }))
                }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection_with_upgrades(TokioIo::new(tls), svc)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
}
