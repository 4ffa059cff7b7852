//! Service account tokens for projected volumes (upstream's
//! `pkg/kubelet/token/token_manager.go`): one TokenRequest per pod, account,
//! audience and lifetime, bound to the pod, kept until 80% of its lifetime
//! or 24 h has passed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::PostParams;
use kube::Api;

/// Upstream's `maxTTL`: a token is refreshed after a day whatever its lifetime.
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    namespace: String,
    account: String,
    audience: Option<String>,
    expiration_seconds: i64,
    pod_uid: String,
}

#[derive(Debug, Clone)]
struct Cached {
    token: String,
    expires: SystemTime,
    expiration_seconds: i64,
}

/// Whether a token issued for `expiration_seconds` and expiring at
/// `expires` must be fetched again at `now` (upstream's `requiresRefresh`
/// without its jitter).
fn requires_refresh(now: SystemTime, expires: SystemTime, expiration_seconds: i64) -> bool {
    let lifetime = Duration::from_secs(expiration_seconds.max(0) as u64);
    let issued = expires.checked_sub(lifetime).unwrap_or(expires);
    if now >= issued + MAX_TTL {
        return true;
    }
    // Within 20% of the lifetime from the expiry.
    let margin = lifetime / 5;
    now >= expires.checked_sub(margin).unwrap_or(expires)
}

/// The cache of tokens the kubelet requested.
#[derive(Default)]
pub struct TokenManager {
    cache: Mutex<HashMap<Key, Cached>>,
}

/// What a projected `serviceAccountToken` source asks for.
pub struct TokenSpec<'a> {
    pub namespace: &'a str,
    pub account: &'a str,
    pub audience: Option<&'a str>,
    pub expiration_seconds: i64,
    pub pod_name: &'a str,
    pub pod_uid: &'a str,
}

impl TokenManager {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Cached>> {
        match self.cache.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// A valid token for `spec`: the cached one, or a new TokenRequest.
    pub async fn get(&self, client: &kube::Client, spec: &TokenSpec<'_>) -> Result<String, String> {
        let key = Key {
            namespace: spec.namespace.into(),
            account: spec.account.into(),
            audience: spec.audience.map(str::to_string),
            expiration_seconds: spec.expiration_seconds,
            pod_uid: spec.pod_uid.into(),
        };
        let now = SystemTime::now();
        if let Some(c) = self.lock().get(&key) {
            if !requires_refresh(now, c.expires, c.expiration_seconds) {
                return Ok(c.token.clone());
            }
        }
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: spec
                    .audience
                    .map(|a| vec![a.to_string()])
                    .unwrap_or_default(),
                expiration_seconds: Some(spec.expiration_seconds),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: Some(spec.pod_name.into()),
                    uid: Some(spec.pod_uid.into()),
                }),
            },
            ..Default::default()
        };
        let api: Api<ServiceAccount> = Api::namespaced(client.clone(), spec.namespace);
        let got: TokenRequest = api
            .create_subresource("token", spec.account, &PostParams::default(), &request)
            .await
            .map_err(|e| format!("failed to fetch token: {e}"))?;
        let status = got
            .status
            .ok_or_else(|| "failed to fetch token: no status in the TokenRequest".to_string())?;
        let expiration_seconds = got
            .spec
            .expiration_seconds
            .unwrap_or(spec.expiration_seconds);
        let expires = SystemTime::from(status.expiration_timestamp.0);
        self.lock().insert(
            key,
            Cached {
                token: status.token.clone(),
                expires,
                expiration_seconds,
            },
        );
        Ok(status.token)
    }

    /// Forgets the tokens of a removed pod (upstream's
    /// `DeleteServiceAccountToken`).
    pub fn delete_for_pod(&self, pod_uid: &str) {
        self.lock().retain(|k, _| k.pod_uid != pod_uid);
    }

    /// How many tokens are cached (for tests).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_after_80_percent_or_a_day() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let hour = 3600;
        let exp = t0 + Duration::from_secs(hour);
        assert!(!requires_refresh(t0, exp, hour as i64));
        assert!(!requires_refresh(
            t0 + Duration::from_secs(2879),
            exp,
            hour as i64
        ));
        assert!(requires_refresh(
            t0 + Duration::from_secs(2880),
            exp,
            hour as i64
        ));
        // A week-long token is refreshed after a day.
        let week = 7 * 24 * hour;
        let exp = t0 + Duration::from_secs(week);
        assert!(!requires_refresh(
            t0 + Duration::from_secs(23 * hour),
            exp,
            week as i64
        ));
        assert!(requires_refresh(
            t0 + Duration::from_secs(24 * hour),
            exp,
            week as i64
        ));
    }
}
