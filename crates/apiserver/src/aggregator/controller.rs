//! Following APIServices (upstream's aggregator `APIServiceRegistrationController`
//! and `AvailableConditionController`): the registry tracks every APIService
//! with a service; each is probed at once and every 30 s by fetching
//! `/apis/<group>/<version>` from its backend, which also yields the
//! resources discovery lists; the `Available` condition is written when it
//! changes. A change to a backend's Service or Endpoints probes its
//! APIServices at once (upstream's controller follows both), so a backend
//! that just became ready is Available without waiting for the next round.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use serde_json::{json, Value};
use storage::cacher::WatchStart;
use storage::{EventType, Preconditions};
use tokio::sync::broadcast::error::RecvError;

use super::client::BackendError;
use super::Remote;
use crate::state::ApiState;

const PROBE_INTERVAL: Duration = Duration::from_secs(30);
/// A discovery document larger than this is refused.
const MAX_DISCOVERY: usize = 16 * 1024 * 1024;

fn prefix(state: &ApiState) -> String {
    format!("{}apiregistration.k8s.io/apiservices/", state.prefix)
}

/// Runs until the watch cache closes.
pub async fn run(state: Arc<ApiState>) {
    state.cacher.wait_ready().await;
    super::local::ensure(&state).await;
    tokio::spawn(probe_loop(state.clone()));
    for kind in ["services/specs/", "services/endpoints/"] {
        tokio::spawn(follow_backends(state.clone(), kind));
    }
    let prefix = prefix(&state);
    loop {
        let mut watch = match state.cacher.watch(&prefix, &prefix, WatchStart::Now) {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, "cannot watch APIServices");
                return;
            }
        };
        for ev in std::mem::take(&mut watch.initial) {
            handle(&state, ev.kind, &ev.object).await;
        }
        loop {
            match watch.live.recv().await {
                Ok(ev) => handle(&state, ev.kind, &ev.object).await,
                Err(RecvError::Lagged(_)) => break,
                Err(RecvError::Closed) => return,
            }
        }
    }
}

async fn handle(state: &Arc<ApiState>, kind: EventType, object: &storage::CachedObject) {
    let Ok(obj) = object.value() else { return };
    let name = apimachinery::meta::name(&obj).to_string();
    match (kind, Remote::from_apiservice(&obj)) {
        (EventType::Deleted, _) | (_, None) => state.aggregator.remove_named(&name),
        (_, Some(r)) => {
            let changed = state.aggregator.get(&r.group, &r.version).map(|o| {
                (
                    o.service,
                    o.namespace,
                    o.port,
                    o.ca_bundle,
                    o.insecure_skip_tls_verify,
                )
            }) != Some((
                r.service.clone(),
                r.namespace.clone(),
                r.port,
                r.ca_bundle.clone(),
                r.insecure_skip_tls_verify,
            ));
            state.aggregator.upsert(r.clone());
            if changed {
                let state = state.clone();
                tokio::spawn(async move { probe(&state, &r).await });
            }
        }
    }
}

/// Probes the APIServices whose backend Service (or its Endpoints) under
/// `kind` changes.
async fn follow_backends(state: Arc<ApiState>, kind: &'static str) {
    let prefix = format!("{}{kind}", state.prefix);
    loop {
        let mut watch = match state.cacher.watch(&prefix, &prefix, WatchStart::Now) {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, "cannot watch APIService backends");
                return;
            }
        };
        loop {
            let ev = match watch.live.recv().await {
                Ok(ev) => ev,
                Err(RecvError::Lagged(_)) => break,
                Err(RecvError::Closed) => return,
            };
            let Some((ns, name)) = ev
                .object
                .key
                .strip_prefix(&prefix)
                .and_then(|k| k.split_once('/'))
            else {
                continue;
            };
            for r in state.aggregator.all() {
                if r.namespace == ns && r.service == name {
                    let state = state.clone();
                    tokio::spawn(async move { probe(&state, &r).await });
                }
            }
        }
    }
}

async fn probe_loop(state: Arc<ApiState>) {
    loop {
        tokio::time::sleep(PROBE_INTERVAL).await;
        for r in state.aggregator.all() {
            probe(&state, &r).await;
        }
    }
}

/// Fetches the backend's discovery document for the group/version.
pub async fn discover(state: &ApiState, r: &Remote) -> Result<Value, BackendError> {
    let path = format!("/apis/{}/{}", r.group, r.version);
    let failed = |reason: String| BackendError::Failed {
        url: format!("https://{}.{}.svc{path}", r.service, r.namespace),
        reason,
    };
    let req = http::Request::get(path.as_str())
        .header("Accept", "application/json")
        .header("X-Remote-User", "system:kube-aggregator")
        .body(Empty::<Bytes>::new())
        .map_err(|e| failed(e.to_string()))?;
    let resp = tokio::time::timeout(Duration::from_secs(5), super::client::send(state, r, req))
        .await
        .map_err(|_| failed("timeout".into()))??;
    let status = resp.status();
    let body = Limited::new(resp.into_body(), MAX_DISCOVERY)
        .collect()
        .await
        .map_err(|e| failed(e.to_string()))?
        .to_bytes();
    if !status.is_success() {
        return Err(failed(format!(
            "bad status from {path}: {}",
            status.as_u16()
        )));
    }
    serde_json::from_slice(&body).map_err(|e| failed(format!("decoding discovery: {e}")))
}

async fn probe(state: &ApiState, r: &Remote) {
    // Probes of one APIService run one after another: each reads the
    // backend as it is then, so the last to run writes the newest answer
    // (concurrent ones could land out of order, leaving a stale
    // MissingEndpoints until the next periodic probe).
    let lock = state.aggregator.probe_lock(&r.name);
    let _held = lock.lock().await;
    let (available, reason, message, discovery) = match discover(state, r).await {
        Ok(d) => (
            true,
            "Passed".to_string(),
            "all checks passed".to_string(),
            Some(d),
        ),
        Err(e) => (false, e.reason().to_string(), e.to_string(), None),
    };
    state.aggregator.set_probe(&r.name, available, discovery);
    if let Err(e) = write_condition(state, &r.name, available, &reason, &message).await {
        tracing::warn!(apiservice = %r.name, error = %e, "updating APIService status");
    }
}

async fn write_condition(
    state: &ApiState,
    name: &str,
    available: bool,
    reason: &str,
    message: &str,
) -> Result<(), storage::Error> {
    let key = format!("{}{name}", prefix(state));
    let status = if available { "True" } else { "False" };
    let result = state
        .store
        .guaranteed_update(&key, false, &Preconditions::default(), None, |cur| {
            let Some(cur) = cur else {
                return Err(storage::Error::NotFound { key: key.clone() });
            };
            let mut obj = cur.value.clone();
            let old = obj
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Available"))
                .cloned();
            if let Some(o) = &old {
                if o["status"] == status && o["reason"] == reason && o["message"] == message {
                    return Err(storage::Error::Api(apimachinery::ApiError::new(
                        0,
                        "Unchanged",
                        "",
                    )));
                }
            }
            let transition = match &old {
                Some(o) if o["status"] == status => o["lastTransitionTime"].clone(),
                _ => json!(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            };
            obj["status"] = json!({"conditions": [{"type": "Available", "status": status,
                "lastTransitionTime": transition, "reason": reason, "message": message}]});
            Ok(obj)
        })
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(storage::Error::Api(e)) if e.reason == "Unchanged" => Ok(()),
        Err(storage::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}
