//! Bound service-account tokens (upstream's `pkg/serviceaccount` and
//! `pkg/registry/core/serviceaccount/storage/token.go`): JWTs signed with
//! `--service-account-signing-key-file`, verified with
//! `--service-account-key-file` keys, issuer and audiences, and looked up
//! so that a token dies with its ServiceAccount, Pod, Secret or Node.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::{Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::keys::{self, KeyError, SigningKey, VerifyingKey};
use crate::handlers::User;

/// Service-account token flags, completed.
#[derive(Debug, Clone, Default)]
pub struct ServiceAccountConfig {
    /// `--service-account-issuer`: the first signs, all are accepted.
    pub issuers: Vec<String>,
    pub key_files: Vec<PathBuf>,
    pub signing_key_file: Option<PathBuf>,
    /// `--api-audiences`; defaults to the issuers.
    pub api_audiences: Vec<String>,
    /// `--service-account-max-token-expiration`.
    pub max_token_expiration: Option<Duration>,
    /// `--service-account-lookup`.
    pub lookup: bool,
}

/// An object a token is bound to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ref {
    pub name: String,
    pub uid: String,
}

/// The `kubernetes.io` private claims.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KubernetesClaims {
    pub namespace: String,
    pub serviceaccount: Ref,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Ref>,
}

/// A bound token's claims, as upstream writes them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    pub jti: String,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaims,
    pub nbf: i64,
    pub sub: String,
}

/// Signs and verifies service-account tokens.
pub struct Tokens {
    pub config: ServiceAccountConfig,
    signing: Option<SigningKey>,
    verifying: Vec<VerifyingKey>,
}

/// Why a token was refused (the message a TokenReview reports).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("invalid bearer token")]
    Invalid,
    #[error("token audiences {0:?} is invalid for the target audiences {1:?}")]
    Audience(Vec<String>, Vec<String>),
    #[error("service account token has been invalidated")]
    Invalidated,
}

impl Tokens {
    pub fn load(config: ServiceAccountConfig) -> Result<Option<Self>, KeyError> {
        let mut verifying = Vec::new();
        for f in &config.key_files {
            verifying.extend(keys::load_verifying_keys(f)?);
        }
        let signing = config
            .signing_key_file
            .as_deref()
            .map(keys::load_signing_key)
            .transpose()?;
        if verifying.is_empty() && signing.is_none() {
            return Ok(None);
        }
        Ok(Some(Tokens {
            config,
            signing,
            verifying,
        }))
    }

    /// The audiences a token gets when its request names none.
    pub fn default_audiences(&self) -> Vec<String> {
        if self.config.api_audiences.is_empty() {
            self.config.issuers.clone()
        } else {
            self.config.api_audiences.clone()
        }
    }

    pub fn can_issue(&self) -> bool {
        self.signing.is_some() && !self.config.issuers.is_empty()
    }

    /// Signs a token for these claims.
    pub fn sign(&self, claims: &Claims) -> Result<String, String> {
        let key = self
            .signing
            .as_ref()
            .ok_or("no --service-account-signing-key-file is configured")?;
        let mut header = Header::new(key.alg);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.key).map_err(|e| e.to_string())
    }

    /// The issuer new tokens carry.
    pub fn issuer(&self) -> &str {
        self.config.issuers.first().map_or("", String::as_str)
    }

    /// Checks signature, issuer, time and audiences (the ones the server
    /// accepts, or `audiences` for a TokenReview that names them).
    pub fn verify(&self, token: &str, audiences: &[String]) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        let wanted = if audiences.is_empty() {
            self.default_audiences()
        } else {
            audiences.to_vec()
        };
        for key in self.verifying.iter().filter(|k| k.alg == header.alg) {
            if header.kid.as_ref().is_some_and(|kid| kid != &key.kid) {
                continue;
            }
            let mut v = Validation::new(key.alg);
            v.set_issuer(&self.config.issuers);
            v.validate_aud = false;
            v.validate_nbf = true;
            v.set_required_spec_claims(&["exp", "iss", "sub"]);
            if let Ok(data) = jsonwebtoken::decode::<Claims>(token, &key.key, &v) {
                let claims = data.claims;
                if !claims.aud.iter().any(|a| wanted.contains(a)) {
                    return Err(TokenError::Audience(claims.aud.clone(), wanted));
                }
                return Ok(claims);
            }
        }
        Err(TokenError::Invalid)
    }

    /// Checks a legacy (Secret-based) token's signature and issuer; such
    /// tokens have no expiry and no audience.
    pub fn verify_legacy(&self, token: &str) -> Result<super::legacy::LegacyClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        for key in self.verifying.iter().filter(|k| k.alg == header.alg) {
            if header.kid.as_ref().is_some_and(|kid| kid != &key.kid) {
                continue;
            }
            let mut v = Validation::new(key.alg);
            v.set_issuer(&[super::legacy::ISSUER]);
            v.validate_aud = false;
            v.validate_exp = false;
            v.set_required_spec_claims(&["iss", "sub"]);
            if let Ok(data) =
                jsonwebtoken::decode::<super::legacy::LegacyClaims>(token, &key.key, &v)
            {
                return Ok(data.claims);
            }
        }
        Err(TokenError::Invalid)
    }

    /// The OpenID discovery document (`/.well-known/openid-configuration`).
    pub fn openid_configuration(&self) -> Value {
        let issuer = self.issuer().trim_end_matches('/');
        json!({
            "issuer": self.issuer(),
            "jwks_uri": format!("{issuer}/openid/v1/jwks"),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [self.signing.as_ref().map_or("RS256", |k| if k.alg == jsonwebtoken::Algorithm::ES256 { "ES256" } else { "RS256" })],
        })
    }

    /// The key set (`/openid/v1/jwks`).
    pub fn jwks(&self) -> Value {
        json!({"keys": self.verifying.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()})
    }
}

/// The user a verified token stands for (upstream's `serviceaccount.UserInfo`).
pub fn user(claims: &Claims) -> User {
    let k = &claims.kubernetes;
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(pod) = &k.pod {
        extra.insert(
            "authentication.kubernetes.io/pod-name".into(),
            vec![pod.name.clone()],
        );
        extra.insert(
            "authentication.kubernetes.io/pod-uid".into(),
            vec![pod.uid.clone()],
        );
    }
    if let Some(node) = &k.node {
        extra.insert(
            "authentication.kubernetes.io/node-name".into(),
            vec![node.name.clone()],
        );
        extra.insert(
            "authentication.kubernetes.io/node-uid".into(),
            vec![node.uid.clone()],
        );
    }
    if !claims.jti.is_empty() {
        extra.insert(
            "authentication.kubernetes.io/credential-id".into(),
            vec![format!("JTI={}", claims.jti)],
        );
    }
    User {
        name: format!(
            "system:serviceaccount:{}:{}",
            k.namespace, k.serviceaccount.name
        ),
        uid: k.serviceaccount.uid.clone(),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{}", k.namespace),
            "system:authenticated".into(),
        ],
        extra,
    }
}

#[cfg(test)]
mod tests;
