//! Authentication (upstream's `pkg/authentication` union authenticator):
//! a verified x509 client certificate first, then a bearer token. A request
//! with neither is anonymous (allowed only where the server says so); a
//! request with a bad bearer token is refused with 401.

pub use component_base::serviceaccount_keys as keys;
pub mod legacy;
pub mod serviceaccount;

use serde_json::Value;

use crate::handlers::User;
use crate::state::ApiState;
pub use serviceaccount::{ServiceAccountConfig, TokenError, Tokens};

/// What authentication concluded about a request.
pub enum Outcome {
    User(User),
    /// No credentials were presented.
    Anonymous,
    /// Credentials were presented and refused.
    Refused,
}

/// Authenticates one request from its certificate user and headers.
pub async fn authenticate(
    state: &ApiState,
    cert_user: Option<User>,
    authorization: Option<&str>,
) -> Outcome {
    if let Some(user) = cert_user {
        return Outcome::User(user);
    }
    let Some(token) = authorization
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return Outcome::Anonymous;
    };
    match authenticate_token(state, token, &[]).await {
        Ok(user) => Outcome::User(user),
        Err(e) => {
            tracing::debug!(error = %e, "bearer token refused");
            Outcome::Refused
        }
    }
}

/// Verifies a bearer token for these audiences (the server's when empty)
/// and checks that what it is bound to still exists.
pub async fn authenticate_token(
    state: &ApiState,
    token: &str,
    audiences: &[String],
) -> Result<User, TokenError> {
    let tokens = state.tokens.as_ref().ok_or(TokenError::Invalid)?;
    let claims = match tokens.verify(token, audiences) {
        Ok(c) => c,
        // Not a bound token: perhaps a Secret's.
        Err(TokenError::Invalid) => {
            return legacy::authenticate(state, tokens, token, audiences).await
        }
        Err(e) => return Err(e),
    };
    if tokens.config.lookup {
        let k = &claims.kubernetes;
        let ns = k.namespace.as_str();
        still_exists(state, "serviceaccounts", ns, &k.serviceaccount).await?;
        if let Some(pod) = &k.pod {
            still_exists(state, "pods", ns, pod).await?;
        }
        if let Some(secret) = &k.secret {
            still_exists(state, "secrets", ns, secret).await?;
        }
        if let Some(node) = &k.node {
            still_exists(state, "nodes", "", node).await?;
        }
    }
    Ok(serviceaccount::user(&claims))
}

/// How long after its deletionTimestamp a bound object's tokens still work
/// (upstream allows the pod's own shutdown to use them).
const DELETION_GRACE_SECONDS: i64 = 60;

async fn still_exists(
    state: &ApiState,
    resource: &str,
    namespace: &str,
    want: &serviceaccount::Ref,
) -> Result<(), TokenError> {
    let def = state
        .resource("", "v1", resource)
        .ok_or(TokenError::Invalidated)?;
    let key = state.object_key(&def, namespace, &want.name);
    // The watch cache first, then storage (a just-created object may not
    // have reached the cache yet).
    let value: Option<Value> = match state.cacher.get(&key).0.and_then(|o| o.value().ok()) {
        Some(v) => Some(v),
        None => state.store.get(&key).await.ok().map(|o| o.value),
    };
    let Some(obj) = value else {
        return Err(TokenError::Invalidated);
    };
    if apimachinery::meta::uid(&obj) != want.uid {
        return Err(TokenError::Invalidated);
    }
    if let Some(ts) = apimachinery::meta::deletion_timestamp(&obj) {
        let deleted = chrono::DateTime::parse_from_rfc3339(ts)
            .map(|t| t.timestamp())
            .unwrap_or(0);
        if deleted + DELETION_GRACE_SECONDS < chrono::Utc::now().timestamp() {
            return Err(TokenError::Invalidated);
        }
    }
    Ok(())
}
