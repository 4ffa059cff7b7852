//! Asking the API server who a caller is and what they may do (upstream's
//! webhook token authenticator and webhook authorizer of
//! `k8s.io/apiserver/pkg/authentication/token/webhook` and
//! `.../authorization/authorizerfactory`, as the kubelet and aggregated API
//! servers use them): a TokenReview per bearer token and a
//! SubjectAccessReview per request's attributes, each answer cached for its
//! own time (upstream's `cacheTTL`, `cacheAuthorizedTTL`,
//! `cacheUnauthorizedTTL`), in bounded caches.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use apimachinery::ApiError;
use component_base::authn::User;
use serde_json::{json, Value};

/// Entries beyond this are dropped wholesale (a bound, not an LRU).
const CACHE_MAX: usize = 4096;

struct Cache<V> {
    entries: Mutex<HashMap<String, (Instant, V)>>,
}

impl<V: Clone> Cache<V> {
    fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &str) -> Option<V> {
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key)
            .filter(|(until, _)| Instant::now() < *until)
            .map(|(_, v)| v.clone())
    }

    fn put(&self, key: String, v: V, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= CACHE_MAX {
            map.clear();
        }
        map.insert(key, (Instant::now() + ttl, v));
    }
}

/// How long answers are kept.
#[derive(Debug, Clone, Copy)]
pub struct CacheTtls {
    /// A TokenReview's answer, either way.
    pub authentication: Duration,
    pub authorized: Duration,
    pub unauthorized: Duration,
}

/// A decision: allowed or not, and the authorizer's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

/// The review client.
pub struct Reviews {
    client: kube::Client,
    ttls: CacheTtls,
    tokens: Cache<Option<User>>,
    decisions: Cache<Decision>,
}

impl Reviews {
    pub fn new(client: kube::Client, ttls: CacheTtls) -> Self {
        Self {
            client,
            ttls,
            tokens: Cache::new(),
            decisions: Cache::new(),
        }
    }

    /// The user a bearer token belongs to, None when the API server does
    /// not vouch for it; an error when it cannot be asked.
    pub async fn authenticate_token(&self, token: &str) -> Result<Option<User>, ApiError> {
        if let Some(u) = self.tokens.get(token) {
            return Ok(u);
        }
        let review = json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        });
        let out = self
            .create("/apis/authentication.k8s.io/v1/tokenreviews", &review)
            .await?;
        let user = (out.pointer("/status/authenticated") == Some(&Value::Bool(true))).then(|| {
            let u = out.pointer("/status/user").cloned().unwrap_or_default();
            User {
                name: u["username"].as_str().unwrap_or_default().to_string(),
                uid: u["uid"].as_str().unwrap_or_default().to_string(),
                groups: serde_json::from_value(u["groups"].clone()).unwrap_or_default(),
                extra: serde_json::from_value(u["extra"].clone()).unwrap_or_default(),
            }
        });
        self.tokens
            .put(token.to_string(), user.clone(), self.ttls.authentication);
        Ok(user)
    }

    /// The decision on a SubjectAccessReview `spec` (its user and
    /// resource or non-resource attributes).
    pub async fn authorize(&self, spec: Value) -> Result<Decision, ApiError> {
        let key = spec.to_string();
        if let Some(d) = self.decisions.get(&key) {
            return Ok(d);
        }
        let review = json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": spec,
        });
        let out = self
            .create(
                "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                &review,
            )
            .await?;
        let d = Decision {
            allowed: out.pointer("/status/allowed") == Some(&Value::Bool(true)),
            reason: out
                .pointer("/status/reason")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        };
        let ttl = if d.allowed {
            self.ttls.authorized
        } else {
            self.ttls.unauthorized
        };
        self.decisions.put(key, d.clone(), ttl);
        Ok(d)
    }

    async fn create(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        let req = http::Request::post(path)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body.to_string().into_bytes())
            .map_err(|e| ApiError::internal(e.to_string()))?;
        self.client.request::<Value>(req).await.map_err(|e| {
            tracing::warn!(path, error = %e, "review request failed");
            ApiError::internal(format!("delegated review failed: {e}"))
        })
    }
}

/// The bearer token of a request's `Authorization` header.
pub fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The `user`-part of a SubjectAccessReview spec.
pub fn subject(user: &User) -> Value {
    let mut spec = json!({"user": user.name, "groups": user.groups});
    if !user.uid.is_empty() {
        spec["uid"] = json!(user.uid);
    }
    if !user.extra.is_empty() {
        spec["extra"] = json!(user.extra);
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_answers_expire_and_zero_ttls_are_not_kept() {
        let c: Cache<u8> = Cache::new();
        c.put("a".into(), 1, Duration::from_secs(60));
        assert_eq!(c.get("a"), Some(1));
        c.put("b".into(), 2, Duration::ZERO);
        assert_eq!(c.get("b"), None);
        c.put("c".into(), 3, Duration::from_nanos(1));
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(c.get("c"), None);
    }

    #[test]
    fn subjects_carry_the_whole_user() {
        let u = User {
            name: "system:node:n1".into(),
            uid: "u1".into(),
            groups: vec!["system:nodes".into()],
            extra: [("scopes".to_string(), vec!["a".to_string()])]
                .into_iter()
                .collect(),
        };
        assert_eq!(
            subject(&u),
            json!({"user": "system:node:n1", "groups": ["system:nodes"], "uid": "u1", "extra": {"scopes": ["a"]}})
        );
    }
}
