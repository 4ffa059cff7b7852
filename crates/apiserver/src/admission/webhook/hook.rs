//! One webhook, compiled from its configuration (upstream's
//! `webhook.WebhookAccessor` and `predicates/rules`): its rules, selectors,
//! policies, where to call it and a TLS client trusting its CA bundle.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use apimachinery::labels::Selector;
use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use serde_json::Value;

use super::source::Kind;
use crate::admission::{Attributes, Operation};

/// One entry of `rules` (upstream's `RuleWithOperations`).
#[derive(Debug)]
struct Rule {
    operations: Vec<String>,
    groups: Vec<String>,
    versions: Vec<String>,
    /// `resource` and `subresource` patterns (`pods`, `pods/status`, `*/*`).
    resources: Vec<(String, String)>,
    scope: String,
}

fn exact_or_wildcard(items: &[String], requested: &str) -> bool {
    items.iter().any(|i| i == "*" || i == requested)
}

impl Rule {
    fn parse(v: &Value) -> Rule {
        let list = |k: &str| -> Vec<String> {
            v.get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        Rule {
            operations: list("operations"),
            groups: list("apiGroups"),
            versions: list("apiVersions"),
            resources: list("resources")
                .into_iter()
                .map(|r| match r.split_once('/') {
                    Some((res, sub)) => (res.to_string(), sub.to_string()),
                    None => (r, String::new()),
                })
                .collect(),
            scope: v
                .get("scope")
                .and_then(Value::as_str)
                .unwrap_or("*")
                .to_string(),
        }
    }

    /// Upstream's `rules.Matcher.Matches`.
    fn matches(&self, a: &Attributes<'_>) -> bool {
        let is_namespace = a.group.is_empty() && a.resource == "namespaces";
        let scope = match self.scope.as_str() {
            "Namespaced" => !is_namespace && !a.namespace.is_empty(),
            "Cluster" => is_namespace || a.namespace.is_empty(),
            _ => true,
        };
        let op = operation_name(a.operation);
        scope
            && self.operations.iter().any(|o| o == "*" || o == op)
            && exact_or_wildcard(&self.groups, a.group)
            && exact_or_wildcard(&self.versions, a.version)
            && self.resources.iter().any(|(res, sub)| {
                (res == "*" || res == a.resource) && (sub == "*" || sub == a.subresource)
            })
    }
}

/// The operation as AdmissionReview and rules spell it.
pub fn operation_name(op: Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
    }
}

/// Where the webhook listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `clientConfig.url`: `https://authority/path`.
    Url { authority: String, path: String },
    /// `clientConfig.service`.
    Service {
        namespace: String,
        name: String,
        port: i64,
        path: String,
    },
}

impl Endpoint {
    fn parse(cc: &Value) -> Result<Endpoint, String> {
        if let Some(url) = cc.get("url").and_then(Value::as_str) {
            let rest = url
                .strip_prefix("https://")
                .ok_or_else(|| format!("{url:?}: only https is allowed"))?;
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            let has_port = match authority.strip_prefix('[') {
                Some(v6) => v6.contains("]:"),
                None => authority.contains(':'),
            };
            let authority = if has_port {
                authority.to_string()
            } else {
                format!("{authority}:443")
            };
            return Ok(Endpoint::Url {
                authority,
                path: path.to_string(),
            });
        }
        let svc = cc.get("service").ok_or("no url or service")?;
        let s = |k: &str| svc.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        Ok(Endpoint::Service {
            namespace: s("namespace"),
            name: s("name"),
            port: svc.get("port").and_then(Value::as_i64).unwrap_or(443),
            path: Some(s("path"))
                .filter(|p| !p.is_empty())
                .unwrap_or("/".into()),
        })
    }

    /// The host name the webhook's certificate must carry.
    pub fn server_name(&self) -> String {
        match self {
            Endpoint::Url { authority, .. } => authority
                .rsplit_once(':')
                .map(|(h, _)| h)
                .unwrap_or(authority)
                .trim_matches(|c| c == '[' || c == ']')
                .to_string(),
            Endpoint::Service {
                namespace, name, ..
            } => format!("{name}.{namespace}.svc"),
        }
    }
}

/// An idle HTTP/1.1 connection to the webhook, kept for the next call.
pub type Conn = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// Idle connections kept per webhook.
const MAX_IDLE: usize = 8;

/// One compiled webhook.
pub struct Hook {
    pub kind: Kind,
    pub configuration: String,
    pub name: String,
    rules: Vec<Rule>,
    /// `failurePolicy: Ignore`.
    pub ignore_failures: bool,
    pub namespace_selector: Selector,
    pub object_selector: Selector,
    pub timeout: Duration,
    /// The AdmissionReview version sent: the first of
    /// `admissionReviewVersions` this server speaks.
    pub review_version: &'static str,
    /// `reinvocationPolicy: IfNeeded` (mutating webhooks).
    pub reinvoke: bool,
    /// Whether the webhook has `matchConditions` (CEL, not evaluated here:
    /// the webhook is called as if they held).
    pub has_match_conditions: bool,
    pub endpoint: Endpoint,
    pub tls: Arc<rustls::ClientConfig>,
    idle: Mutex<Vec<Conn>>,
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hook")
            .field("configuration", &self.configuration)
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

fn selector(v: Option<&Value>) -> Result<Selector, String> {
    match v {
        None | Some(Value::Null) => Ok(Selector::everything()),
        Some(s) => Selector::from_label_selector(s),
    }
}

/// Verifies a webhook's certificate against its CA bundle. A self-signed
/// certificate that is itself in the bundle but marked as a CA (what
/// `openssl req -x509` makes by default) is refused by webpki as an end
/// entity, yet accepted by upstream's Go client, which trusts a leaf found
/// in its roots: such a pinned certificate is accepted here too, when it
/// names the server.
#[derive(Debug)]
struct BundleVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    bundle: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for BundleVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(_)))
                if self
                    .bundle
                    .iter()
                    .any(|c| c.as_ref() == end_entity.as_ref()) =>
            {
                let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&parsed, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(m, c, d)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A TLS client that trusts `ca_bundle` (PEM, as base64 in the JSON),
/// speaking HTTP/1.1.
fn tls_client(ca_bundle: Option<&str>) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let mut bundle = Vec::new();
    if let Some(b64) = ca_bundle.filter(|b| !b.is_empty()) {
        let pem = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("caBundle: {e}"))?;
        for c in rustls_pemfile::certs(&mut pem.as_slice()) {
            let c = c.map_err(|e| format!("caBundle: {e}"))?;
            roots.add(c.clone()).map_err(|e| format!("caBundle: {e}"))?;
            bundle.push(c);
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let mut cfg = if roots.is_empty() {
        // Nothing to trust: every handshake fails, as upstream's would
        // without system roots.
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        let inner =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| e.to_string())?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(BundleVerifier { inner, bundle }))
            .with_no_client_auth()
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

impl Hook {
    /// Compiles webhook `w` of configuration `configuration`.
    pub fn compile(kind: Kind, configuration: &str, w: &Value) -> Result<Hook, String> {
        let s = |k: &str| w.get(k).and_then(Value::as_str).unwrap_or("");
        let review_version = w
            .get("admissionReviewVersions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .find_map(|v| match v {
                "v1" => Some("v1"),
                "v1beta1" => Some("v1beta1"),
                _ => None,
            })
            .ok_or("webhook does not accept known AdmissionReview versions (v1, v1beta1)")?;
        let cc = w.get("clientConfig").cloned().unwrap_or(Value::Null);
        Ok(Hook {
            kind,
            configuration: configuration.to_string(),
            name: s("name").to_string(),
            rules: w
                .get("rules")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(Rule::parse)
                .collect(),
            ignore_failures: s("failurePolicy") == "Ignore",
            namespace_selector: selector(w.get("namespaceSelector"))?,
            object_selector: selector(w.get("objectSelector"))?,
            timeout: Duration::from_secs(
                w.get("timeoutSeconds")
                    .and_then(Value::as_u64)
                    .unwrap_or(10)
                    .clamp(1, 30),
            ),
            review_version,
            reinvoke: s("reinvocationPolicy") == "IfNeeded",
            has_match_conditions: w
                .get("matchConditions")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty()),
            endpoint: Endpoint::parse(&cc)?,
            tls: Arc::new(tls_client(cc.get("caBundle").and_then(Value::as_str))?),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Whether a rule covers the request (upstream's `ShouldCallHook`
    /// before the selectors; `matchPolicy: Equivalent` adds nothing here,
    /// as each resource is served in the version it is stored in).
    pub fn matches_rules(&self, a: &Attributes<'_>) -> bool {
        self.rules.iter().any(|r| r.matches(a))
    }

    /// An idle connection, if one is still open.
    pub fn take_idle(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(c) = idle.pop() {
            if !c.is_closed() {
                return Some(c);
            }
        }
        None
    }

    /// Keeps `c` for the next call.
    pub fn put_idle(&self, c: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE && !c.is_closed() {
            idle.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use component_base::authn::User;
    use serde_json::json;

    fn attrs<'a>(
        user: &'a User,
        op: Operation,
        resource: &'a str,
        sub: &'a str,
        ns: &'a str,
    ) -> Attributes<'a> {
        Attributes {
            operation: op,
            group: "",
            version: "v1",
            kind: "Pod",
            resource,
            subresource: sub,
            namespace: ns,
            name: "x",
            old: None,
            dry_run: false,
            user,
        }
    }

    fn hook(rules: Value) -> Hook {
        Hook::compile(
            Kind::Validating,
            "c",
            &json!({"name": "a.b.c", "admissionReviewVersions": ["v2", "v1beta1", "v1"],
                    "clientConfig": {"url": "https://127.0.0.1:9443/check"}, "rules": rules}),
        )
        .unwrap()
    }

    #[test]
    fn rules_match_like_upstream() {
        let u = User::anonymous();
        let h = hook(
            json!([{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]),
        );
        assert_eq!(h.review_version, "v1beta1");
        assert!(h.matches_rules(&attrs(&u, Operation::Create, "pods", "", "ns")));
        assert!(!h.matches_rules(&attrs(&u, Operation::Update, "pods", "", "ns")));
        assert!(!h.matches_rules(&attrs(&u, Operation::Create, "pods", "status", "ns")));
        assert!(!h.matches_rules(&attrs(&u, Operation::Create, "configmaps", "", "ns")));
        let h = hook(
            json!([{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/status"]}]),
        );
        assert!(h.matches_rules(&attrs(&u, Operation::Update, "pods", "status", "ns")));
        assert!(!h.matches_rules(&attrs(&u, Operation::Update, "pods", "", "ns")));
        let h = hook(
            json!([{"operations": ["*"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["*"], "scope": "Namespaced"}]),
        );
        assert!(h.matches_rules(&attrs(&u, Operation::Delete, "pods", "", "ns")));
        assert!(!h.matches_rules(&attrs(&u, Operation::Create, "namespaces", "", "ns")));
        assert!(!h.matches_rules(&attrs(&u, Operation::Create, "nodes", "", "")));
        let h = hook(
            json!([{"operations": ["*"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["*"], "scope": "Cluster"}]),
        );
        assert!(h.matches_rules(&attrs(&u, Operation::Create, "namespaces", "", "ns")));
        assert!(!h.matches_rules(&attrs(&u, Operation::Create, "pods", "", "ns")));
    }

    #[test]
    fn endpoints_and_names() {
        let url = |u: &str| Endpoint::parse(&json!({"url": u})).unwrap();
        assert_eq!(
            url("https://127.0.0.1:9443/check"),
            Endpoint::Url {
                authority: "127.0.0.1:9443".into(),
                path: "/check".into()
            }
        );
        assert_eq!(
            url("https://hooks.example.com"),
            Endpoint::Url {
                authority: "hooks.example.com:443".into(),
                path: "/".into()
            }
        );
        assert_eq!(url("https://[::1]:8443/x").server_name(), "::1");
        assert_eq!(
            url("https://[::1]/x"),
            Endpoint::Url {
                authority: "[::1]:443".into(),
                path: "/x".into()
            }
        );
        let svc =
            Endpoint::parse(&json!({"service": {"namespace": "ns", "name": "hook"}})).unwrap();
        assert_eq!(svc.server_name(), "hook.ns.svc");
        assert_eq!(
            svc,
            Endpoint::Service {
                namespace: "ns".into(),
                name: "hook".into(),
                port: 443,
                path: "/".into()
            }
        );
        assert!(Hook::compile(Kind::Mutating, "c", &json!({"name": "a.b.c", "admissionReviewVersions": ["v2"], "clientConfig": {"url": "https://x"}})).is_err());
    }
}
