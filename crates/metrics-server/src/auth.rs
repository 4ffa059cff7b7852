//! Delegated authentication and authorization (upstream's
//! `k8s.io/apiserver` `DelegatingAuthenticationOptions` and
//! `DelegatingAuthorizationOptions`, which metrics-server uses):
//!
//! - who: the front proxy's headers when the connection's certificate was
//!   signed by the request-header CA of `kube-system/
//!   extension-apiserver-authentication` (how the aggregator forwards
//!   callers), else the certificate's own subject when the client CA of
//!   that ConfigMap signed it, else a bearer token the API server vouches
//!   for by TokenReview, else `system:anonymous`;
//! - may they: `--authorization-always-allow-paths` (the health paths)
//!   pass, everything else is a SubjectAccessReview. Both reviews are
//!   cached for 10 s, as upstream's webhook caches are by default.

use std::sync::Arc;
use std::time::Duration;

use apimachinery::resource::GroupResource;
use apimachinery::ApiError;
use client::delegated::{CacheTtls, Reviews};
use component_base::authn::{Authorities, Peer, RequestHeader, User};
use http::HeaderMap;
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::{json, Value};

const CACHE_TTL: Duration = Duration::from_secs(10);

/// The request-header settings read from the ConfigMap.
#[derive(Debug, Clone, Default)]
pub struct RequestHeaderSettings {
    pub allowed_names: Vec<String>,
    pub username_headers: Vec<String>,
    pub group_headers: Vec<String>,
    pub extra_headers_prefix: Vec<String>,
}

impl RequestHeaderSettings {
    fn borrowed(&self) -> RequestHeader<'_> {
        RequestHeader {
            allowed_names: &self.allowed_names,
            username_headers: &self.username_headers,
            group_headers: &self.group_headers,
            extra_headers_prefix: &self.extra_headers_prefix,
        }
    }
}

/// What `kube-system/extension-apiserver-authentication` says.
#[derive(Debug, Clone, Default)]
pub struct AuthenticationInfo {
    pub client_ca: Option<String>,
    pub requestheader_ca: Option<String>,
    pub requestheader: RequestHeaderSettings,
}

impl AuthenticationInfo {
    /// From the ConfigMap's data (the list values are JSON arrays).
    pub fn from_data(data: &std::collections::BTreeMap<String, String>) -> Self {
        let list = |k: &str| -> Vec<String> {
            data.get(k)
                .and_then(|v| serde_json::from_str(v).ok())
                .unwrap_or_default()
        };
        Self {
            client_ca: data.get("client-ca-file").cloned(),
            requestheader_ca: data.get("requestheader-client-ca-file").cloned(),
            requestheader: RequestHeaderSettings {
                allowed_names: list("requestheader-allowed-names"),
                username_headers: list("requestheader-username-headers"),
                group_headers: list("requestheader-group-headers"),
                extra_headers_prefix: list("requestheader-extra-headers-prefix"),
            },
        }
    }

    /// Reads the ConfigMap through `client`.
    pub async fn load(client: &kube::Client) -> Result<Self, kube::Error> {
        let api: kube::Api<ConfigMap> = kube::Api::namespaced(client.clone(), "kube-system");
        let cm = api.get("extension-apiserver-authentication").await?;
        Ok(Self::from_data(&cm.data.unwrap_or_default()))
    }

    /// Both CAs' PEM, for the TLS handshake's client verifier.
    pub fn client_roots(&self) -> Vec<u8> {
        let mut pem = Vec::new();
        for ca in [&self.client_ca, &self.requestheader_ca]
            .into_iter()
            .flatten()
        {
            pem.extend_from_slice(ca.as_bytes());
            pem.push(b'\n');
        }
        pem
    }
}

/// What a request asks to do (upstream's `authorizer.Attributes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attributes {
    Resource {
        verb: String,
        group: String,
        version: String,
        resource: String,
        namespace: String,
        name: String,
    },
    NonResource {
        verb: String,
        path: String,
    },
}

impl Attributes {
    /// The attributes of `method path?query` on this server.
    pub fn of(method: &str, path: &str, query: &str) -> Attributes {
        let watch = query
            .split('&')
            .any(|kv| kv == "watch=true" || kv == "watch=1");
        let http_verb = match method {
            "POST" => "create",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => "delete",
            _ => "get",
        };
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        if let ["apis", group, version, rest @ ..] = parts.as_slice() {
            let (namespace, rest) = match rest {
                ["namespaces", ns, rest @ ..] if !rest.is_empty() => (ns.to_string(), rest),
                r => (String::new(), r),
            };
            if let Some((resource, name)) = match rest {
                [r] => Some((r.to_string(), String::new())),
                [r, n] => Some((r.to_string(), n.to_string())),
                _ => None,
            } {
                let verb = match (http_verb, name.is_empty()) {
                    ("get", true) if watch => "watch",
                    ("get", true) => "list",
                    (v, _) => v,
                };
                return Attributes::Resource {
                    verb: verb.into(),
                    group: group.to_string(),
                    version: version.to_string(),
                    resource,
                    namespace,
                    name,
                };
            }
        }
        Attributes::NonResource {
            verb: http_verb.to_lowercase(),
            path: path.to_string(),
        }
    }

    fn spec(&self, user: &User) -> Value {
        let mut spec = client::delegated::subject(user);
        match self {
            Attributes::Resource {
                verb,
                group,
                version,
                resource,
                namespace,
                name,
            } => {
                spec["resourceAttributes"] = json!({
                    "verb": verb, "group": group, "version": version,
                    "resource": resource, "namespace": namespace, "name": name,
                })
            }
            Attributes::NonResource { verb, path } => {
                spec["nonResourceAttributes"] = json!({"verb": verb, "path": path})
            }
        }
        spec
    }

    /// Upstream's 403 (`responsewriters.forbiddenMessage`).
    pub fn forbidden(&self, user: &User, reason: &str) -> ApiError {
        let why = |msg: String| match reason {
            "" => msg,
            r => format!("{msg}: {r}"),
        };
        match self {
            Attributes::NonResource { verb, path } => ApiError::forbidden(why(format!(
                "User {:?} cannot {verb} path {path:?}",
                user.name
            ))),
            Attributes::Resource {
                verb,
                group,
                resource,
                namespace,
                name,
                ..
            } => {
                let scope = match namespace.as_str() {
                    "" => "at the cluster scope".to_string(),
                    ns => format!("in the namespace {ns:?}"),
                };
                ApiError::forbidden_named(
                    &GroupResource::new(group, resource),
                    name,
                    why(format!(
                        "User {:?} cannot {verb} resource {resource:?} in API group {group:?} {scope}",
                        user.name
                    )),
                )
            }
        }
    }
}

/// Authentication and authorization for the secure port.
pub struct Delegated {
    pub info: AuthenticationInfo,
    authorities: Authorities,
    always_allow_paths: Vec<String>,
    reviews: Reviews,
}

/// Why a request goes no further.
pub type Denied = ApiError;

impl Delegated {
    pub fn new(
        client: kube::Client,
        info: AuthenticationInfo,
        always_allow_paths: Vec<String>,
    ) -> Result<Arc<Self>, String> {
        let authorities = Authorities::new(
            info.client_ca.as_deref().map(str::as_bytes),
            info.requestheader_ca.as_deref().map(str::as_bytes),
        )?;
        Ok(Arc::new(Self {
            info,
            authorities,
            always_allow_paths,
            reviews: Reviews::new(
                client,
                CacheTtls {
                    authentication: CACHE_TTL,
                    authorized: CACHE_TTL,
                    unauthorized: CACHE_TTL,
                },
            ),
        }))
    }

    /// Tells apart the authorities that signed a connection's certificate.
    pub fn classify(&self, chain: &[rustls::pki_types::CertificateDer<'static>]) -> Peer {
        self.authorities.classify(chain)
    }

    /// Who sent the request; 401 for a token the API server refuses.
    pub async fn authenticate(&self, peer: &Peer, headers: &HeaderMap) -> Result<User, Denied> {
        if let Some(u) = peer.front_proxy.as_deref().and_then(|cn| {
            component_base::authn::user_from_headers(
                &self.info.requestheader.borrowed(),
                cn,
                headers,
            )
        }) {
            return Ok(u);
        }
        if let Some(u) = &peer.client_user {
            return Ok(u.clone());
        }
        let Some(token) = client::delegated::bearer_token(headers) else {
            return Ok(User::anonymous());
        };
        self.reviews
            .authenticate_token(token)
            .await?
            .ok_or_else(|| ApiError::unauthorized("Unauthorized"))
    }

    /// Whether `user` may do `attrs`; the 403 when not.
    pub async fn authorize(&self, user: &User, attrs: &Attributes) -> Result<(), Denied> {
        if let Attributes::NonResource { path, .. } = attrs {
            if self.always_allow_paths.iter().any(|p| allow_path(p, path)) {
                return Ok(());
            }
        }
        let d = self.reviews.authorize(attrs.spec(user)).await?;
        if d.allowed {
            Ok(())
        } else {
            Err(attrs.forbidden(user, &d.reason))
        }
    }
}

/// Upstream's always-allow path match: exact, or a `prefix/*` pattern.
fn allow_path(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => pattern == path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_of_metrics_requests() {
        let a = Attributes::of(
            "GET",
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
            "",
        );
        assert_eq!(
            a,
            Attributes::Resource {
                verb: "list".into(),
                group: "metrics.k8s.io".into(),
                version: "v1beta1".into(),
                resource: "pods".into(),
                namespace: "default".into(),
                name: String::new(),
            }
        );
        let a = Attributes::of("GET", "/apis/metrics.k8s.io/v1beta1/nodes/n1", "");
        assert!(
            matches!(a, Attributes::Resource { ref verb, ref name, .. } if verb == "get" && name == "n1")
        );
        let a = Attributes::of("GET", "/apis/metrics.k8s.io/v1beta1/pods", "watch=true");
        assert!(matches!(a, Attributes::Resource { ref verb, .. } if verb == "watch"));
        assert_eq!(
            Attributes::of("GET", "/apis/metrics.k8s.io/v1beta1", ""),
            Attributes::NonResource {
                verb: "get".into(),
                path: "/apis/metrics.k8s.io/v1beta1".into()
            }
        );
        assert!(matches!(
            Attributes::of("GET", "/metrics", ""),
            Attributes::NonResource { .. }
        ));
    }

    #[test]
    fn forbidden_messages_are_upstreams() {
        let bob = User {
            name: "bob".into(),
            ..User::default()
        };
        let e = Attributes::of("GET", "/apis/metrics.k8s.io/v1beta1/nodes", "").forbidden(&bob, "");
        assert_eq!(
            e.message,
            "nodes.metrics.k8s.io is forbidden: User \"bob\" cannot list resource \"nodes\" in API group \"metrics.k8s.io\" at the cluster scope"
        );
        let e = Attributes::of(
            "GET",
            "/apis/metrics.k8s.io/v1beta1/namespaces/ns1/pods/p",
            "",
        )
        .forbidden(&bob, "no RBAC");
        assert_eq!(
            e.message,
            "pods.metrics.k8s.io \"p\" is forbidden: User \"bob\" cannot get resource \"pods\" in API group \"metrics.k8s.io\" in the namespace \"ns1\": no RBAC"
        );
        let e = Attributes::of("GET", "/metrics", "").forbidden(&User::anonymous(), "");
        assert_eq!(
            e.message,
            "User \"system:anonymous\" cannot get path \"/metrics\""
        );
        assert_eq!(e.code, 403);
    }

    #[test]
    fn configmap_data_and_always_allowed_paths() {
        let data = [
            ("client-ca-file".to_string(), "CA1".to_string()),
            (
                "requestheader-client-ca-file".to_string(),
                "CA2".to_string(),
            ),
            (
                "requestheader-allowed-names".to_string(),
                "[\"front-proxy-client\"]".to_string(),
            ),
            (
                "requestheader-username-headers".to_string(),
                "[\"X-Remote-User\"]".to_string(),
            ),
        ]
        .into_iter()
        .collect();
        let info = AuthenticationInfo::from_data(&data);
        assert_eq!(info.requestheader.allowed_names, ["front-proxy-client"]);
        assert_eq!(info.requestheader.username_headers, ["X-Remote-User"]);
        assert!(info.requestheader.group_headers.is_empty());
        assert_eq!(info.client_roots(), b"CA1\nCA2\n");
        assert!(allow_path("/healthz", "/healthz"));
        assert!(!allow_path("/healthz", "/healthz/ping"));
        assert!(allow_path("/healthz/*", "/healthz/ping"));
    }
}
