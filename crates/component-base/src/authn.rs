//! Who sent a request, as every server here reads it (upstream's
//! `k8s.io/apiserver` request authenticators that the API server and the
//! extension servers share):
//!
//! - x509 client certificates (`authentication/request/x509`): verified
//!   during the TLS handshake, the subject's CN is the user and each O a
//!   group;
//! - front-proxy headers (`authentication/request/headerrequest`): a
//!   certificate signed by the request-header CA (and, when allowed names
//!   are set, with one of those CNs) vouches for the user named in
//!   `X-Remote-User`, `X-Remote-Group` and `X-Remote-Extra-<key>` (or the
//!   configured header names), the way the API server's aggregator speaks
//!   to extension servers.
//!
//! [`Authorities`] tells the two apart on a connection whose handshake
//! accepted either authority.

use std::sync::Arc;

use http::HeaderMap;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;

/// The authenticated user (upstream's `user.Info`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: std::collections::BTreeMap<String, Vec<String>>,
}

impl User {
    /// `system:anonymous` in `system:unauthenticated`.
    pub fn anonymous() -> Self {
        User {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
            ..User::default()
        }
    }
}

/// The user a verified client certificate names.
pub fn user_from_cert(der: &[u8]) -> Option<User> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let mut groups: Vec<String> = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    groups.push("system:authenticated".into());
    Some(User {
        name,
        groups,
        ..User::default()
    })
}

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
        let user = user_from_cert(end);
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

/// The `--requestheader-*` settings a front proxy's requests are read with
/// (borrowed, so a caller holding them elsewhere builds one per request).
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestHeader<'a> {
    /// CNs that may vouch; empty: any certificate of the authority.
    pub allowed_names: &'a [String],
    pub username_headers: &'a [String],
    pub group_headers: &'a [String],
    pub extra_headers_prefix: &'a [String],
}

/// The user a front proxy names in `headers`, when `cn` may vouch and a
/// username header is set.
pub fn user_from_headers(cfg: &RequestHeader<'_>, cn: &str, headers: &HeaderMap) -> Option<User> {
    if !cfg.allowed_names.is_empty() && !cfg.allowed_names.iter().any(|n| n == cn) {
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
        .username_headers
        .iter()
        .flat_map(|h| values(h))
        .find(|v| !v.is_empty())?;
    let mut groups: Vec<String> = cfg.group_headers.iter().flat_map(|h| values(h)).collect();
    if !groups.iter().any(|g| g == "system:authenticated") {
        groups.push("system:authenticated".into());
    }
    let mut extra = std::collections::BTreeMap::<String, Vec<String>>::new();
    for (k, v) in headers {
        let key = k.as_str();
        for prefix in cfg.extra_headers_prefix {
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

    struct Owned {
        allowed: Vec<String>,
        user: Vec<String>,
        group: Vec<String>,
        extra: Vec<String>,
    }

    impl Owned {
        fn cfg(&self) -> RequestHeader<'_> {
            RequestHeader {
                allowed_names: &self.allowed,
                username_headers: &self.user,
                group_headers: &self.group,
                extra_headers_prefix: &self.extra,
            }
        }
    }

    fn owned(allowed: &[&str]) -> Owned {
        Owned {
            allowed: allowed.iter().map(|s| s.to_string()).collect(),
            user: vec!["X-Remote-User".into()],
            group: vec!["X-Remote-Group".into()],
            extra: vec!["X-Remote-Extra-".into()],
        }
    }

    #[test]
    fn headers_name_the_user_for_an_allowed_proxy() {
        let mut h = HeaderMap::new();
        h.insert("x-remote-user", "jane".parse().unwrap());
        h.append("x-remote-group", "devs".parse().unwrap());
        h.append("x-remote-group", "ops".parse().unwrap());
        h.insert("x-remote-extra-scopes%2fa", "x".parse().unwrap());
        let (proxy, any) = (owned(&["front-proxy-client"]), owned(&[]));
        let u = user_from_headers(&proxy.cfg(), "front-proxy-client", &h).unwrap();
        assert_eq!(u.name, "jane");
        assert_eq!(u.groups, ["devs", "ops", "system:authenticated"]);
        assert_eq!(u.extra.get("scopes/a"), Some(&vec!["x".to_string()]));
        assert!(user_from_headers(&proxy.cfg(), "intruder", &h).is_none());
        assert!(user_from_headers(&any.cfg(), "anyone", &h).is_some());
        assert!(user_from_headers(&any.cfg(), "anyone", &HeaderMap::new()).is_none());
    }
}
