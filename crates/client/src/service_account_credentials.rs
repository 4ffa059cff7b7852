//! Controller clients with their own service-account credentials
//! (upstream's `controller-manager/pkg/clientbuilder`
//! `DynamicControllerClientBuilder`, behind the controller manager's
//! `--use-service-account-credentials`): each controller acts as
//! `system:serviceaccount:kube-system:<name>`, so that RBAC gives it only
//! its own role. The ServiceAccount is created when missing, a token is
//! asked with a TokenRequest and renewed at 80 % of its life; requests carry
//! the current token.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::HeaderValue;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use kube::client::ClientBuilder;

use crate::options::rate_window;

/// Upstream asks for tokens of one hour.
const EXPIRATION_SECONDS: i64 = 3600;
/// Where controllers' service accounts live.
pub const NAMESPACE: &str = "kube-system";

/// Why a controller's client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("service account {NAMESPACE}/{name}: {source}")]
    Api {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("no usable token for {NAMESPACE}/{0}")]
    Token(String),
}

/// Builds controller clients from the controller manager's own client and
/// connection settings.
#[derive(Clone)]
pub struct ServiceAccountClients {
    root: kube::Client,
    /// The server and its CA, without the root credentials.
    config: kube::Config,
    qps: f32,
    burst: u32,
}

impl ServiceAccountClients {
    pub fn new(root: kube::Client, mut config: kube::Config, qps: f32, burst: u32) -> Self {
        config.auth_info = Default::default();
        ServiceAccountClients {
            root,
            config,
            qps,
            burst,
        }
    }

    async fn token(&self, name: &str) -> Result<(HeaderValue, Duration), CredentialsError> {
        let err = |source| CredentialsError::Api {
            name: name.to_string(),
            source,
        };
        let sas: Api<ServiceAccount> = Api::namespaced(self.root.clone(), NAMESPACE);
        if sas.get_opt(name).await.map_err(err)?.is_none() {
            let sa = ServiceAccount {
                metadata: kube::api::ObjectMeta {
                    name: Some(name.to_string()),
                    ..Default::default()
                },
                ..Default::default()
            };
            match sas.create(&PostParams::default(), &sa).await {
                Ok(_) => tracing::info!(
                    service_account = name,
                    "created the controller's service account"
                ),
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(e) => return Err(err(e)),
            }
        }
        let request = TokenRequest {
            spec: k8s_openapi::api::authentication::v1::TokenRequestSpec {
                expiration_seconds: Some(EXPIRATION_SECONDS),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = sas
            .create_token_request(name, &PostParams::default(), &request)
            .await
            .map_err(err)?;
        let Some(status) = answer.status else {
            return Err(CredentialsError::Token(name.to_string()));
        };
        let value = HeaderValue::from_str(&format!("Bearer {}", status.token))
            .map_err(|_| CredentialsError::Token(name.to_string()))?;
        let left = status.expiration_timestamp.0.as_second()
            - k8s_openapi::jiff::Timestamp::now().as_second();
        let life = Duration::from_secs(if left > 0 {
            left as u64
        } else {
            EXPIRATION_SECONDS as u64
        });
        Ok((value, life))
    }

    /// A client acting as `kube-system/<name>`, its token kept fresh by a
    /// background task for as long as the process runs.
    pub async fn client(&self, name: &str) -> Result<kube::Client, CredentialsError> {
        let (token, life) = self.token(name).await?;
        let current = Arc::new(RwLock::new(token));
        let refresh = {
            let (me, current, name) = (self.clone(), current.clone(), name.to_string());
            async move {
                let mut wait = life.mul_f64(0.8);
                loop {
                    tokio::time::sleep(wait).await;
                    match me.token(&name).await {
                        Ok((t, life)) => {
                            *current.write().unwrap_or_else(|p| p.into_inner()) = t;
                            wait = life.mul_f64(0.8);
                            tracing::debug!(service_account = %name, "controller token renewed");
                        }
                        Err(e) => {
                            tracing::warn!(service_account = %name, error = %e, "renewing the controller's token failed; retrying");
                            wait = Duration::from_secs(10);
                        }
                    }
                }
            }
        };
        tokio::spawn(refresh);
        let bearer =
            tower::util::MapRequestLayer::new(move |mut req: http::Request<kube::client::Body>| {
                let t = current.read().unwrap_or_else(|p| p.into_inner()).clone();
                req.headers_mut().insert(http::header::AUTHORIZATION, t);
                req
            });
        let builder = ClientBuilder::try_from(self.config.clone())
            .map_err(|source| CredentialsError::Api {
                name: name.to_string(),
                source,
            })?
            .with_layer(&bearer);
        Ok(match rate_window(self.qps, self.burst) {
            Some((n, per)) => builder
                .with_layer(&tower::limit::RateLimitLayer::new(n, per))
                .build(),
            None => builder.build(),
        })
    }
}
