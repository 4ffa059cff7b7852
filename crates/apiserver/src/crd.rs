//! The CRD controllers of the API server (upstream's apiextensions-apiserver
//! `establish`, `status` (naming) and `finalizer` controllers, run as one
//! post-start task): watches CustomResourceDefinitions through the watch
//! cache, serves their resources (discovery follows at once), marks them
//! Established, and on deletion removes every custom resource before
//! letting the CRD go.

use std::sync::Arc;

use apiextensions::crd::{self, CLEANUP_FINALIZER};
use apimachinery::meta;
use serde_json::{json, Value};
use storage::cacher::WatchStart;
use storage::{EventType, ListOptions, Preconditions};
use tokio::sync::broadcast::error::RecvError;

use crate::state::ApiState;

fn crd_prefix(state: &ApiState) -> String {
    format!(
        "{}apiextensions.k8s.io/customresourcedefinitions/",
        state.prefix
    )
}

/// Runs until the watch cache closes.
pub async fn run(state: Arc<ApiState>) {
    state.cacher.wait_ready().await;
    let prefix = crd_prefix(&state);
    loop {
        let mut watch = match state.cacher.watch(&prefix, &prefix, WatchStart::Now) {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, "cannot watch CustomResourceDefinitions");
                return;
            }
        };
        for ev in std::mem::take(&mut watch.initial) {
            handle(&state, ev.kind, &ev.object).await;
        }
        loop {
            match watch.live.recv().await {
                Ok(ev) => handle(&state, ev.kind, &ev.object).await,
                // Fell behind: start over from the current state.
                Err(RecvError::Lagged(_)) => break,
                Err(RecvError::Closed) => return,
            }
        }
    }
}

async fn handle(state: &ApiState, kind: EventType, object: &storage::CachedObject) {
    let Ok(crd) = object.value() else { return };
    let names = crd::names(&crd);
    if kind == EventType::Deleted {
        uninstall(state, &names.group, &names.plural);
        state.openapi_custom.remove_crd(meta::name(&crd));
        return;
    }
    if meta::deletion_timestamp(&crd).is_some() {
        uninstall(state, &names.group, &names.plural);
        state.openapi_custom.remove_crd(meta::name(&crd));
        if let Err(e) = finalize(state, &crd, &object.key).await {
            tracing::warn!(crd = meta::name(&crd), error = %e, "deleting custom resources");
        }
        return;
    }
    if !crd::is_established(&crd) {
        let prefix = crd_prefix(state);
        let others: Vec<Value> = state
            .cacher
            .list(&prefix, &|_| true)
            .0
            .iter()
            .filter_map(|o| o.value().ok())
            .collect();
        if let Some(message) = crd::name_conflict(&crd, &others) {
            if let Err(e) = refuse_names(state, &object.key, &message).await {
                tracing::warn!(crd = meta::name(&crd), error = %e, "marking CRD names conflicting");
            }
            return;
        }
    }
    if install(state, &crd) && !crd::is_established(&crd) {
        if let Err(e) = establish(state, &object.key).await {
            tracing::warn!(crd = meta::name(&crd), error = %e, "marking CRD established");
        }
    }
}

/// Whether a built-in resource already has these names (a CRD may never
/// replace one).
fn clashes_with_builtin(state: &ApiState, group: &str, plural: &str) -> bool {
    let resources = state.resources.read().unwrap_or_else(|p| p.into_inner());
    resources
        .list
        .iter()
        .any(|d| d.group == group && d.plural == plural && d.custom.is_none())
}

/// Serves the CRD's versions (replacing what an earlier generation served).
/// Returns false when it cannot be served.
fn install(state: &ApiState, crd: &Value) -> bool {
    let defs = api::custom::resources_of(crd);
    let Some(first) = defs.first() else {
        return false;
    };
    if clashes_with_builtin(state, &first.group, &first.plural) {
        tracing::warn!(
            crd = meta::name(crd),
            "CRD names a built-in resource; not served"
        );
        return false;
    }
    state
        .cacher
        .register(&format!("{}{}/", state.prefix, first.storage), None);
    let mut resources = state.resources.write().unwrap_or_else(|p| p.into_inner());
    resources.remove(&first.group, &first.plural);
    for d in defs {
        tracing::debug!(group = %d.group, version = %d.version, resource = %d.plural, "serving custom resource");
        resources.add(d);
    }
    drop(resources);
    state.openapi_custom.set_crd(crd);
    true
}

fn uninstall(state: &ApiState, group: &str, plural: &str) {
    if clashes_with_builtin(state, group, plural) {
        return;
    }
    state
        .resources
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .remove(group, plural);
}

/// NamesAccepted=False (NameConflict): the CRD is not served.
async fn refuse_names(state: &ApiState, key: &str, message: &str) -> Result<(), storage::Error> {
    let now = meta::now_rfc3339();
    let result = state
        .store
        .guaranteed_update(key, false, &Preconditions::default(), None, |cur| {
            let mut c = cur.map(|c| c.value.clone()).unwrap_or(Value::Null);
            let same = c
                .pointer("/status/conditions/0/message")
                .and_then(Value::as_str)
                == Some(message);
            if same {
                return Err(storage::Error::Api(apimachinery::ApiError::new(
                    0,
                    "Unchanged",
                    "",
                )));
            }
            c["status"] = crd::conflict_status(&c, message, &now);
            Ok(c)
        })
        .await;
    match result {
        Err(storage::Error::Api(e)) if e.reason == "Unchanged" => Ok(()),
        r => r.map(|_| ()),
    }
}

async fn establish(state: &ApiState, key: &str) -> Result<(), storage::Error> {
    let now = meta::now_rfc3339();
    state
        .store
        .guaranteed_update(key, false, &Preconditions::default(), None, |cur| {
            let mut c = cur.map(|c| c.value.clone()).unwrap_or(Value::Null);
            if !crd::is_established(&c) {
                c["status"] = crd::established_status(&c, &now);
            }
            Ok(c)
        })
        .await
        .map(|_| ())
}

/// Deletes every custom resource of a deleted CRD, then drops the cleanup
/// finalizer (and the CRD with it when no other finalizer remains).
async fn finalize(state: &ApiState, crd: &Value, key: &str) -> Result<(), storage::Error> {
    if !meta::finalizers(crd).iter().any(|f| f == CLEANUP_FINALIZER) {
        return Ok(());
    }
    let names = crd::names(crd);
    let prefix = format!("{}{}/{}/", state.prefix, names.group, names.plural);
    // A CRD that names a built-in resource never served anything; the keys
    // under its prefix (apiextensions.k8s.io/customresourcedefinitions …)
    // belong to the built-in and are left alone.
    let owned = !clashes_with_builtin(state, &names.group, &names.plural);
    let all = |_: &Value| true;
    let items = if owned {
        state
            .store
            .list(&prefix, &ListOptions::default(), &all)
            .await?
            .items
    } else {
        Vec::new()
    };
    for o in items {
        let (ns, name) = (meta::namespace(&o.value), meta::name(&o.value));
        let k = if ns.is_empty() {
            format!("{prefix}{name}")
        } else {
            format!("{prefix}{ns}/{name}")
        };
        match state
            .store
            .delete(&k, &Preconditions::default(), |_| Ok(()))
            .await
        {
            Ok(_) | Err(storage::Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let updated = state
        .store
        .guaranteed_update(key, false, &Preconditions::default(), None, |cur| {
            let mut c = cur.map(|c| c.value.clone()).unwrap_or(Value::Null);
            let rest: Vec<String> = meta::finalizers(&c).into_iter().filter(|f| f != CLEANUP_FINALIZER).collect();
            meta::set_finalizers(&mut c, &rest);
            if let Some(conds) = c.pointer_mut("/status/conditions").and_then(Value::as_array_mut) {
                conds.retain(|x| x["type"] != "Terminating");
                conds.push(json!({"type": "Terminating", "status": "True", "reason": "InstanceDeletionCompleted",
                    "message": "removed all instances", "lastTransitionTime": meta::now_rfc3339()}));
            }
            Ok(c)
        })
        .await?;
    if meta::finalizers(&updated.value).is_empty() {
        let pre = Preconditions {
            uid: None,
            resource_version: Some(updated.revision.to_string()),
        };
        match state.store.delete(key, &pre, |_| Ok(())).await {
            Ok(_) | Err(storage::Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
