//! Reaching kubelets (upstream's `pkg/kubelet/client/kubelet_client.go`):
//! the `--kubelet-*` flags, the TLS client this server presents to
//! kubelets, and where a node's kubelet listens — the first of its
//! `status.addresses` in `--kubelet-preferred-address-types` order, on
//! `status.daemonEndpoints.kubeletEndpoint.Port`.

pub mod connect;
mod containers;
mod proxy;

use std::path::PathBuf;
use std::sync::Arc;

use apimachinery::ApiError;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;

use crate::state::ApiState;

/// Upstream's default `--kubelet-preferred-address-types`.
pub const DEFAULT_ADDRESS_TYPES: &[&str] = &[
    "Hostname",
    "InternalDNS",
    "InternalIP",
    "ExternalDNS",
    "ExternalIP",
];

/// The kubelet client flags.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    /// `--kubelet-client-certificate`/`--kubelet-client-key`.
    pub client_certificate: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// `--kubelet-certificate-authority`; without it kubelets' serving
    /// certificates are not verified, as upstream.
    pub certificate_authority: Option<PathBuf>,
    /// `--kubelet-preferred-address-types`.
    pub preferred_address_types: Vec<String>,
    /// The port used when a Node does not say (upstream's 10250).
    pub default_port: u16,
}

impl Default for KubeletConfig {
    fn default() -> Self {
        KubeletConfig {
            client_certificate: None,
            client_key: None,
            certificate_authority: None,
            preferred_address_types: DEFAULT_ADDRESS_TYPES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            default_port: 10250,
        }
    }
}

fn read_pem(path: &PathBuf) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Builds the TLS client for kubelets from the configured files.
pub fn tls_client(cfg: &KubeletConfig) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match &cfg.certificate_authority {
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(crate::backend::AcceptAny(provider))),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in rustls_pemfile::certs(&mut read_pem(ca)?.as_slice()) {
                roots
                    .add(c.map_err(|e| format!("{}: {e}", ca.display()))?)
                    .map_err(|e| format!("{}: {e}", ca.display()))?;
            }
            builder.with_root_certificates(roots)
        }
    };
    let mut config = match (&cfg.client_certificate, &cfg.client_key) {
        (Some(cert), Some(key)) => {
            let certs: Vec<CertificateDer<'static>> =
                rustls_pemfile::certs(&mut read_pem(cert)?.as_slice())
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("{}: {e}", cert.display()))?;
            let key: PrivateKeyDer<'static> =
                rustls_pemfile::private_key(&mut read_pem(key)?.as_slice())
                    .map_err(|e| format!("{}: {e}", key.display()))?
                    .ok_or_else(|| format!("{}: no private key", key.display()))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| e.to_string())?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err("--kubelet-client-certificate and --kubelet-client-key go together".into())
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// `host:port` of the kubelet on `node`, chosen like upstream's
/// `GetPreferredNodeAddress`.
pub fn node_authority(state: &ApiState, node_name: &str) -> Result<String, ApiError> {
    let key = format!("{}minions/{node_name}", state.prefix);
    let node: Value = state
        .cacher
        .get(&key)
        .0
        .and_then(|o| o.value().ok())
        .ok_or_else(|| {
            ApiError::not_found(&apimachinery::GroupResource::new("", "nodes"), node_name)
        })?;
    let addresses = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let kind_of = |a: &Value| {
        a.get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let address = state
        .config
        .kubelet
        .preferred_address_types
        .iter()
        .find_map(|t| {
            addresses
                .iter()
                .find(|a| &kind_of(a) == t)
                .and_then(|a| a.get("address").and_then(Value::as_str))
        })
        .map(str::to_string)
        .or_else(|| {
            // Upstream falls back to the node's hostname label.
            node.pointer("/metadata/labels/kubernetes.io~1hostname")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "no preferred addresses found; known addresses: {}",
                serde_json::to_string(&addresses).unwrap_or_default()
            ))
        })?;
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .filter(|p| *p > 0 && *p < 65536)
        .map(|p| p as u16)
        .unwrap_or(state.config.kubelet.default_port);
    Ok(if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    })
}
