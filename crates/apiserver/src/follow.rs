//! Following a collection in the watch cache for in-memory state compiled
//! from it (the webhook configurations, the RBAC policy): the whole
//! collection is handed over now and again after each burst of changes, so
//! that readers only ever see a complete, ready value.

use std::sync::Arc;

use serde_json::Value;
use storage::cacher::WatchStart;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use crate::state::ApiState;

/// Calls `reload` with every object under `prefix` now and after each burst
/// of changes, until the watch cache closes. `what` names the collection
/// in logs.
pub async fn reload_on_change(
    state: Arc<ApiState>,
    prefix: String,
    what: &'static str,
    reload: impl Fn(&ApiState, Vec<Value>),
) {
    let load = |state: &ApiState| {
        let (items, _) = state.cacher.list(&prefix, &|_| true);
        reload(state, items.iter().filter_map(|o| o.value().ok()).collect());
    };
    loop {
        let mut watch = match state.cacher.watch(&prefix, &prefix, WatchStart::Now) {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, what, "cannot watch");
                return;
            }
        };
        load(&state);
        loop {
            match watch.live.recv().await {
                Ok(_) => {}
                // Fell behind: start over from the current state.
                Err(RecvError::Lagged(_)) => break,
                Err(RecvError::Closed) => return,
            }
            loop {
                match watch.live.try_recv() {
                    Ok(_) | Err(TryRecvError::Lagged(_)) => {}
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Closed) => return,
                }
            }
            load(&state);
        }
    }
}
