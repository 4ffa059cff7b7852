//! Secret-based (legacy) service-account tokens (upstream's
//! `serviceaccount.NewLegacyValidator`): JWTs the token controller signs
//! into `kubernetes.io/service-account-token` Secrets, issuer
//! `kubernetes/serviceaccount`, no expiry. With `--service-account-lookup`
//! a token works only while its Secret holds it and its ServiceAccount
//! (same uid) exists, and the Secret's `kubernetes.io/legacy-token-last-used`
//! label records the day it was last used (upstream's legacy token
//! tracking).

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::serviceaccount::{Ref, TokenError, Tokens};
use crate::handlers::User;
use crate::state::ApiState;

/// The issuer of legacy tokens.
pub const ISSUER: &str = "kubernetes/serviceaccount";
/// The label with the last day (UTC, `YYYY-MM-DD`) a Secret's token worked.
pub const LAST_USED_LABEL: &str = "kubernetes.io/legacy-token-last-used";

/// A legacy token's claims, as the token controller writes them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LegacyClaims {
    pub iss: String,
    pub sub: String,
    #[serde(rename = "kubernetes.io/serviceaccount/namespace")]
    pub namespace: String,
    #[serde(rename = "kubernetes.io/serviceaccount/secret.name")]
    pub secret_name: String,
    #[serde(rename = "kubernetes.io/serviceaccount/service-account.name")]
    pub service_account_name: String,
    #[serde(rename = "kubernetes.io/serviceaccount/service-account.uid")]
    pub service_account_uid: String,
}

impl LegacyClaims {
    pub fn user_name(&self) -> String {
        format!(
            "system:serviceaccount:{}:{}",
            self.namespace, self.service_account_name
        )
    }
}

/// The stored object at `key`: the watch cache first, then storage.
async fn stored(state: &ApiState, resource: &str, namespace: &str, name: &str) -> Option<Value> {
    let def = state.resource("", "v1", resource)?;
    let key = state.object_key(&def, namespace, name);
    match state.cacher.get(&key).0.and_then(|o| o.value().ok()) {
        Some(v) => Some(v),
        None => state.store.get(&key).await.ok().map(|o| o.value),
    }
}

/// Authenticates a legacy token for `audiences` (legacy tokens carry none:
/// they are good for this server's own audiences only).
pub async fn authenticate(
    state: &ApiState,
    tokens: &Tokens,
    token: &str,
    audiences: &[String],
) -> Result<User, TokenError> {
    let claims = tokens.verify_legacy(token)?;
    if claims.sub != claims.user_name() {
        return Err(TokenError::Invalid);
    }
    let own = tokens.default_audiences();
    if !audiences.is_empty() && !audiences.iter().any(|a| own.contains(a)) {
        return Err(TokenError::Audience(own, audiences.to_vec()));
    }
    if tokens.config.lookup {
        let ns = claims.namespace.as_str();
        let secret = stored(state, "secrets", ns, &claims.secret_name)
            .await
            .ok_or(TokenError::Invalidated)?;
        let held = secret
            .pointer("/data/token")
            .and_then(Value::as_str)
            .unwrap_or("");
        let encoded = base64::engine::general_purpose::STANDARD.encode(token);
        if held != encoded || apimachinery::meta::deletion_timestamp(&secret).is_some() {
            return Err(TokenError::Invalidated);
        }
        let sa = stored(state, "serviceaccounts", ns, &claims.service_account_name)
            .await
            .ok_or(TokenError::Invalidated)?;
        let want = Ref {
            name: claims.service_account_name.clone(),
            uid: claims.service_account_uid.clone(),
        };
        if apimachinery::meta::uid(&sa) != want.uid
            || apimachinery::meta::deletion_timestamp(&sa).is_some()
        {
            return Err(TokenError::Invalidated);
        }
        record_use(state, &secret).await;
    }
    Ok(User {
        name: claims.user_name(),
        uid: claims.service_account_uid.clone(),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{}", claims.namespace),
            "system:authenticated".into(),
        ],
        extra: Default::default(),
    })
}

/// Sets the last-used label to today unless it already says so; a failure
/// is logged and does not refuse the token (as upstream's).
async fn record_use(state: &ApiState, secret: &Value) {
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let label = secret
        .pointer(&format!(
            "/metadata/labels/{}",
            LAST_USED_LABEL.replace('/', "~1")
        ))
        .and_then(Value::as_str);
    if label == Some(today.as_str()) {
        return;
    }
    let Some(def) = state.resource("", "v1", "secrets") else {
        return;
    };
    let key = state.object_key(
        &def,
        apimachinery::meta::namespace(secret),
        apimachinery::meta::name(secret),
    );
    let uid = apimachinery::meta::uid(secret).to_string();
    let result = state
        .store
        .guaranteed_update(&key, false, &Default::default(), None, move |cur| {
            let cur = cur.ok_or_else(|| storage::Error::NotFound { key: String::new() })?;
            let mut v = cur.value.clone();
            if apimachinery::meta::uid(&v) != uid {
                return Ok(v);
            }
            let meta = apimachinery::meta::metadata_mut(&mut v);
            let labels = meta
                .entry("labels")
                .or_insert_with(|| serde_json::json!({}));
            if !labels.is_object() {
                *labels = serde_json::json!({});
            }
            labels[LAST_USED_LABEL] = serde_json::json!(today.clone());
            Ok(v)
        })
        .await;
    if let Err(e) = result {
        tracing::warn!(secret = apimachinery::meta::name(secret), error = %e, "recording the legacy token's use");
    }
}
