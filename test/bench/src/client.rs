//! A lean HTTPS client for the API server: one HTTP/1.1 connection per worker
//! (like one client process each), rustls with the admin's client certificate,
//! no pooling, no compression, no retries. Kept small so that client overhead
//! does not dominate the figures.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Where the API server is and how to authenticate to it.
#[derive(Clone)]
pub struct Api {
    addr: SocketAddr,
    authority: String,
    server_name: ServerName<'static>,
    tls: TlsConnector,
}

impl Api {
    /// Builds a client for `https://HOST:PORT` from PEM files: the CA that
    /// signed the serving cert and the client cert/key pair.
    pub fn new(server: &str, ca: &str, cert: &str, key: &str) -> Result<Self> {
        let authority = server
            .strip_prefix("https://")
            .ok_or_else(|| anyhow!("server {server:?} must start with https://"))?
            .trim_end_matches('/')
            .to_string();
        let addr: SocketAddr = authority
            .parse()
            .with_context(|| format!("server {server:?} must be https://IP:PORT"))?;
        let server_name = ServerName::IpAddress(addr.ip().into());

        let mut roots = rustls::RootCertStore::empty();
        for c in read_certs(ca)? {
            roots
                .add(c)
                .with_context(|| format!("adding CA from {ca}"))?;
        }
        let chain = read_certs(cert)?;
        let key_pem = std::fs::read(key).with_context(|| format!("reading {key}"))?;
        let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
            .with_context(|| format!("parsing {key}"))?
            .ok_or_else(|| anyhow!("no private key in {key}"))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            addr,
            authority,
            server_name,
            tls: TlsConnector::from(Arc::new(config)),
        })
    }

    /// Opens one TLS connection and completes the HTTP/1.1 handshake.
    pub async fn connect(&self) -> Result<Conn> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        tcp.set_nodelay(true)?;
        let tls = self
            .tls
            .connect(self.server_name.clone(), tcp)
            .await
            .context("TLS handshake with the API server")?;
        let (send, conn) = http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            // The connection ends when the benchmark drops its sender.
            let _ = conn.await;
        });
        Ok(Conn {
            send,
            authority: self.authority.clone(),
        })
    }
}

fn read_certs(path: &str) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    let pem = std::fs::read(path).with_context(|| format!("reading {path}"))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {path}"))?;
    if certs.is_empty() {
        bail!("no certificate in {path}");
    }
    Ok(certs)
}

/// One HTTP/1.1 connection; requests on it run one after the other.
pub struct Conn {
    send: http1::SendRequest<Full<Bytes>>,
    authority: String,
}

/// A request's answer with its whole body.
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Answer {
    /// Fails with the server's message unless the status is `want`.
    pub fn expect(self, want: StatusCode, what: &str) -> Result<Self> {
        if self.status != want {
            bail!(
                "{what}: HTTP {} (wanted {want}): {}",
                self.status,
                String::from_utf8_lossy(&self.body[..self.body.len().min(500)])
            );
        }
        Ok(self)
    }
}

impl Conn {
    /// Sends a request and returns the response head with the body unread
    /// (for watches).
    pub async fn start(
        &mut self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<http::Response<Incoming>> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, &self.authority)
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, "apiserver-bench");
        if let Some(ct) = content_type {
            req = req.header(http::header::CONTENT_TYPE, ct);
        }
        let req = req.body(Full::new(body))?;
        self.send.ready().await.context("connection closed")?;
        Ok(self.send.send_request(req).await?)
    }

    /// Sends a request and reads the whole response body.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<Answer> {
        let resp = self.start(method, path, content_type, body).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok(Answer { status, body })
    }

    pub async fn get(&mut self, path: &str) -> Result<Answer> {
        self.call(Method::GET, path, None, Bytes::new()).await
    }

    pub async fn post_json(&mut self, path: &str, body: Bytes) -> Result<Answer> {
        self.call(Method::POST, path, Some("application/json"), body)
            .await
    }
}
