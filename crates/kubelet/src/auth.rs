//! Who may use the kubelet's API (upstream's `pkg/kubelet/server/auth.go`
//! and the filter in `server.go`): a caller is the subject of a client
//! certificate signed by `--client-ca-file`, else the owner of a bearer
//! token the API server vouches for (`--authentication-token-webhook`,
//! TokenReview), else `system:anonymous` when `--anonymous-auth` allows it
//! (401 `Unauthorized` otherwise). With `--authorization-mode=Webhook` the
//! API server decides (SubjectAccessReview) on the verb of the HTTP method
//! and the `nodes/<subresource>`s of the path, for this node's name (403
//! `Forbidden (user=…, verb=…, resource=nodes, subresource(s)=[…])`).

use std::time::Duration;

use client::delegated::{CacheTtls, Reviews};
use component_base::authn::{Authorities, User};
use http::HeaderMap;
use rustls::pki_types::CertificateDer;
use serde_json::json;

/// `--authorization-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    AlwaysAllow,
    Webhook,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "AlwaysAllow" => Ok(Mode::AlwaysAllow),
            "Webhook" => Ok(Mode::Webhook),
            other => Err(format!(
                "unknown authorization mode {other:?}, must be AlwaysAllow or Webhook"
            )),
        }
    }
}

/// The kubelet's authentication and authorization settings
/// (`KubeletConfiguration.authentication` and `.authorization`).
#[derive(Debug, Clone, PartialEq)]
pub struct AuthConfig {
    pub anonymous: bool,
    /// PEM of `--client-ca-file`.
    pub client_ca: Option<Vec<u8>>,
    pub token_webhook: bool,
    pub token_webhook_cache_ttl: Duration,
    pub mode: Mode,
    pub authorized_ttl: Duration,
    pub unauthorized_ttl: Duration,
}

impl AuthConfig {
    /// The flags' defaults (upstream's `applyLegacyDefaults`): anyone may do
    /// anything, as without a config file.
    pub fn legacy() -> Self {
        Self {
            anonymous: true,
            client_ca: None,
            token_webhook: false,
            token_webhook_cache_ttl: Duration::from_secs(120),
            mode: Mode::AlwaysAllow,
            authorized_ttl: Duration::from_secs(300),
            unauthorized_ttl: Duration::from_secs(30),
        }
    }

    /// `kubelet.config.k8s.io/v1beta1`'s defaults: no anonymous callers,
    /// tokens and decisions from the API server.
    pub fn v1beta1() -> Self {
        Self {
            anonymous: false,
            token_webhook: true,
            mode: Mode::Webhook,
            ..Self::legacy()
        }
    }
}

/// Why a request goes no further: the status and upstream's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

/// The verb and the `nodes` subresources a request is authorized as, in
/// the order tried: with upstream's `KubeletFineGrainedAuthz` (beta, on in
/// 1.33) `/pods`, `/healthz` and `/configz` first ask for `nodes/pods`,
/// `nodes/healthz` and `nodes/configz`, then for the `nodes/proxy` that
/// covered them before.
pub fn attributes(method: &str, path: &str) -> (&'static str, Vec<&'static str>) {
    let verb = match method {
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => "delete",
        _ => "get",
    };
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    let mut subresources = Vec::with_capacity(2);
    if under("/pods") || under("/runningpods") {
        subresources.push("pods");
    } else if under("/healthz") {
        subresources.push("healthz");
    } else if under("/configz") {
        subresources.push("configz");
    }
    let subresource = if under("/stats") {
        "stats"
    } else if under("/metrics") {
        "metrics"
    } else if under("/logs") {
        "log"
    } else if under("/spec") {
        "spec"
    } else if under("/checkpoint") {
        "checkpoint"
    } else {
        "proxy"
    };
    subresources.push(subresource);
    (verb, subresources)
}

/// The checks, ready.
pub struct KubeletAuth {
    anonymous: bool,
    authorities: Option<Authorities>,
    token_webhook: bool,
    mode: Mode,
    reviews: Option<Reviews>,
    node_name: String,
}

impl KubeletAuth {
    /// `client` is needed for the webhooks (None without an API server:
    /// then neither may be on).
    pub fn new(
        config: &AuthConfig,
        client: Option<kube::Client>,
        node_name: &str,
    ) -> Result<Self, String> {
        let authorities = config
            .client_ca
            .as_deref()
            .map(|pem| Authorities::new(Some(pem), None))
            .transpose()?;
        let needs_api = config.token_webhook || config.mode == Mode::Webhook;
        let reviews = match (needs_api, client) {
            (false, _) => None,
            (true, Some(c)) => Some(Reviews::new(
                c,
                CacheTtls {
                    authentication: config.token_webhook_cache_ttl,
                    authorized: config.authorized_ttl,
                    unauthorized: config.unauthorized_ttl,
                },
            )),
            (true, None) => {
                return Err(
                    "no API server to ask: the token webhook and the Webhook authorization mode need --kubeconfig"
                        .into(),
                )
            }
        };
        Ok(Self {
            anonymous: config.anonymous,
            authorities,
            token_webhook: config.token_webhook,
            mode: config.mode,
            reviews,
            node_name: node_name.to_string(),
        })
    }

    /// Anyone may do anything (the legacy defaults, no API server needed):
    /// for tests and kubelets without a `--kubeconfig`.
    pub fn allow_all(node_name: &str) -> Self {
        Self {
            anonymous: true,
            authorities: None,
            token_webhook: false,
            mode: Mode::AlwaysAllow,
            reviews: None,
            node_name: node_name.to_string(),
        }
    }

    /// The subject of a client certificate chain `--client-ca-file` signed.
    pub fn certificate_user(&self, chain: &[CertificateDer<'static>]) -> Option<User> {
        self.authorities.as_ref()?.classify(chain).client_user
    }

    async fn authenticate(
        &self,
        cert_user: Option<User>,
        headers: &HeaderMap,
    ) -> Result<User, Refusal> {
        let unauthorized = || Refusal {
            status: 401,
            message: "Unauthorized".into(),
        };
        if let Some(mut u) = cert_user {
            if !u.groups.iter().any(|g| g == "system:authenticated") {
                u.groups.push("system:authenticated".into());
            }
            return Ok(u);
        }
        let token = client::delegated::bearer_token(headers);
        if let (Some(token), true, Some(reviews)) = (token, self.token_webhook, &self.reviews) {
            match reviews.authenticate_token(token).await {
                Ok(Some(u)) => return Ok(u),
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "Unable to authenticate the request due to an error");
                    return Err(unauthorized());
                }
            }
        }
        if self.anonymous {
            return Ok(User::anonymous());
        }
        Err(unauthorized())
    }

    /// Who asks, if they may: the filter every request on the secure port
    /// passes.
    pub async fn check(
        &self,
        cert_user: Option<User>,
        headers: &HeaderMap,
        method: &str,
        path: &str,
    ) -> Result<User, Refusal> {
        let user = self.authenticate(cert_user, headers).await?;
        let Some(reviews) = self.reviews.as_ref().filter(|_| self.mode == Mode::Webhook) else {
            return Ok(user);
        };
        let (verb, subresources) = attributes(method, path);
        for subresource in &subresources {
            let mut spec = client::delegated::subject(&user);
            spec["resourceAttributes"] = json!({
                "verb": verb, "group": "", "version": "v1", "resource": "nodes",
                "subresource": subresource, "name": self.node_name,
            });
            match reviews.authorize(spec).await {
                Ok(d) if d.allowed => return Ok(user),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, user = %user.name, verb, subresource, "Authorization error");
                    return Err(Refusal {
                        status: 500,
                        message: format!(
                            "Authorization error (user={}, verb={verb}, resource=nodes, subresource={subresource})",
                            user.name
                        ),
                    });
                }
            }
        }
        tracing::debug!(user = %user.name, verb, ?subresources, "Forbidden");
        Err(Refusal {
            status: 403,
            message: format!(
                "Forbidden (user={}, verb={verb}, resource=nodes, subresource(s)=[{}])\n",
                user.name,
                subresources.join(" ")
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_upstreams_subresources() {
        let a = |m: &str, p: &str| {
            let (verb, subs) = attributes(m, p);
            format!("{verb} {}", subs.join(","))
        };
        assert_eq!(a("GET", "/stats/summary"), "get stats");
        assert_eq!(a("GET", "/metrics/resource"), "get metrics");
        assert_eq!(a("GET", "/metrics"), "get metrics");
        assert_eq!(a("GET", "/logs/"), "get log");
        assert_eq!(a("GET", "/spec/"), "get spec");
        assert_eq!(a("POST", "/exec/ns/p/c"), "create proxy");
        assert_eq!(a("GET", "/containerLogs/ns/p/c"), "get proxy");
        assert_eq!(a("GET", "/statsx"), "get proxy");
        // KubeletFineGrainedAuthz: the specific subresource, then proxy.
        assert_eq!(a("GET", "/pods"), "get pods,proxy");
        assert_eq!(a("GET", "/runningpods/"), "get pods,proxy");
        assert_eq!(a("HEAD", "/healthz"), "get healthz,proxy");
        assert_eq!(a("GET", "/healthz/ping"), "get healthz,proxy");
        assert_eq!(a("GET", "/configz"), "get configz,proxy");
    }

    fn headers(token: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(t) = token {
            h.insert(
                http::header::AUTHORIZATION,
                format!("Bearer {t}").parse().unwrap(),
            );
        }
        h
    }

    #[tokio::test]
    async fn anonymous_callers_pass_or_get_401() {
        let open = KubeletAuth::new(&AuthConfig::legacy(), None, "n1").unwrap();
        let u = open
            .check(None, &headers(None), "GET", "/pods")
            .await
            .unwrap();
        assert_eq!(u.name, "system:anonymous");
        // Without the token webhook, a token is no identity.
        let u = open
            .check(None, &headers(Some("t")), "GET", "/pods")
            .await
            .unwrap();
        assert_eq!(u.name, "system:anonymous");
        let closed = KubeletAuth::new(
            &AuthConfig {
                anonymous: false,
                ..AuthConfig::legacy()
            },
            None,
            "n1",
        )
        .unwrap();
        assert_eq!(
            closed
                .check(None, &headers(None), "GET", "/pods")
                .await
                .unwrap_err(),
            Refusal {
                status: 401,
                message: "Unauthorized".into()
            }
        );
        let cert = User {
            name: "kube-apiserver".into(),
            groups: vec!["system:masters".into()],
            ..User::default()
        };
        let u = closed
            .check(Some(cert), &headers(None), "GET", "/pods")
            .await
            .unwrap();
        assert_eq!(u.groups, ["system:masters", "system:authenticated"]);
    }

    #[test]
    fn webhooks_need_an_api_server_and_modes_parse() {
        assert!(KubeletAuth::new(&AuthConfig::v1beta1(), None, "n1").is_err());
        assert_eq!("Webhook".parse::<Mode>(), Ok(Mode::Webhook));
        assert!("RBAC".parse::<Mode>().is_err());
    }
}
