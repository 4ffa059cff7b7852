//! Front-proxy authentication (upstream's `authentication/request/headerrequest`):
//! a client certificate signed by `--requestheader-client-ca-file` (and, when
//! `--requestheader-allowed-names` is set, with one of those CNs) vouches for
//! the user named in the request headers (`X-Remote-User`, `X-Remote-Group`,
//! `X-Remote-Extra-<key>`, or the configured names), the way this server's
//! own aggregator speaks to extension servers.

use std::sync::Arc;

use http::HeaderMap;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;

use crate::aggregator::AggregatorConfig;
use crate::handlers::User;

/// Which authorities a connection's client certificate chains to.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    /// The user of a certificate signed by `--client-ca-file`.
    pub client_user: Option<User>,
    /// The CN of a certificate signed by the request-header CA.
    pub front_proxy: Option<String>,
}

/// Verifiers of the two client authorities, built once.
pub struct Authorities {
    client: Option<Arc<dyn ClientCertVerifier>>,
    front_proxy: Option<Arc<dyn ClientCertVerifier>>,
}

fn verifier(pem: &[u8]) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut &pem[..]) {
        roots
            .add(c.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| e.to_string())
}

impl Authorities {
    /// From the CA files' PEM contents.
    pub fn new(client_ca: Option<&[u8]>, front_proxy_ca: Option<&[u8]>) -> Result<Self, String> {
        Ok(Self {
            client: client_ca.map(verifier).transpose()?,
            front_proxy: front_proxy_ca.map(verifier).transpose()?,
        })
    }

    /// Classifies a verified chain (end entity first).
    pub fn classify(&self, chain: &[CertificateDer<'static>]) -> Peer {
        let Some((end, rest)) = chain.split_first() else {
            return Peer::default();
        };
        let ok = |v: &Option<Arc<dyn ClientCertVerifier>>| {
            v.as_ref()
                .is_some_and(|v| v.verify_client_cert(end, rest, UnixTime::now()).is_ok())
        };
        let user = super::x509::user_from_cert(end);
        Peer {
            client_user: if ok(&self.client) { user.clone() } else { None },
            front_proxy: if ok(&self.front_proxy) {
                user.map(|u| u.name)
            } else {
                None
            },
        }
    }
}

/// The user a front proxy names in `headers`, when `cn` may vouch and a
/// username header is set.
pub fn user_from_headers(cfg: &AggregatorConfig, cn: &str, headers: &HeaderMap) -> Option<User> {
    if !cfg.requestheader_allowed_names.is_empty()
        && !cfg.requestheader_allowed_names.iter().any(|n| n == cn)
    {
        return None;
    }
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect()
    };
    let name = cfg
        .requestheader_username_headers
        .iter()
        .flat_map(|h| values(h))
        .find(|v| !v.is_empty())?;
    let mut groups: Vec<String> = cfg
        .requestheader_group_headers
        .iter()
        .flat_map(|h| values(h))
        .collect();
    if !groups.iter().any(|g| g == "system:authenticated") {
        groups.push("system:authenticated".into());
    }
    let mut extra = std::collections::BTreeMap::<String, Vec<String>>::new();
    for (k, v) in headers {
        let key = k.as_str();
        for prefix in &cfg.requestheader_extra_headers_prefix {
            let p = prefix.to_ascii_lowercase();
            if let Some(rest) = key.strip_prefix(p.as_str()) {
                let rest = percent_encoding::percent_decode_str(rest)
                    .decode_utf8_lossy()
                    .to_lowercase();
                if let Ok(v) = v.to_str() {
                    extra.entry(rest).or_default().push(v.to_string());
                }
            }
        }
    }
    Some(User {
        name,
        uid: String::new(),
        groups,
        extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(allowed: &[&str]) -> AggregatorConfig {
        AggregatorConfig {
            requestheader_allowed_names: allowed.iter().map(|s| s.to_string()).collect(),
            requestheader_username_headers: vec!["X-Remote-User".into()],
            requestheader_group_headers: vec!["X-Remote-Group".into()],
            requestheader_extra_headers_prefix: vec!["X-Remote-Extra-".into()],
            ..Default::default()
        }
    }

    #[test]
    fn headers_name_the_user_for_an_allowed_proxy() {
        let mut h = HeaderMap::new();
        h.insert("x-remote-user", "jane".parse().unwrap());
        h.append("x-remote-group", "devs".parse().unwrap());
        h.append("x-remote-group", "ops".parse().unwrap());
        h.insert("x-remote-extra-scopes%2fa", "x".parse().unwrap());
        let u = user_from_headers(&cfg(&["front-proxy-client"]), "front-proxy-client", &h).unwrap();
        assert_eq!(u.name, "jane");
        assert_eq!(u.groups, ["devs", "ops", "system:authenticated"]);
        assert_eq!(u.extra.get("scopes/a"), Some(&vec!["x".to_string()]));
        assert!(user_from_headers(&cfg(&["front-proxy-client"]), "intruder", &h).is_none());
        assert!(user_from_headers(&cfg(&[]), "anyone", &h).is_some());
        assert!(user_from_headers(&cfg(&[]), "anyone", &HeaderMap::new()).is_none());
    }
}
