//! What the garbage collector's workers do (upstream's
//! garbagecollector.go `attemptToDeleteItem`, `processDeletingDependentsItem`,
//! `attemptToOrphanWorker`, and operations.go/patch.go). Every decision
//! starts from a live GET; writes carry the uid or resourceVersion they
//! were decided on, so a changed object makes the write fail and the item
//! retried rather than a wrong deletion.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy,
};
use serde_json::json;

use super::graph::{Identity, FOREGROUND, ORPHAN};
use super::Gc;
use crate::{is_conflict, is_not_found, Error};

fn api_for(gc: &Gc, identity: &Identity) -> Result<Api<DynamicObject>, Error> {
    let gvr = gc
        .gvr_for(&identity.api_version, &identity.kind)
        .ok_or_else(|| {
            Error::Pending(format!(
                "no resource known for {} {}",
                identity.api_version, identity.kind
            ))
        })?;
    let ar = gvr.api_resource();
    Ok(match (&identity.namespace, gvr.namespaced) {
        (Some(ns), true) => Api::namespaced_with(gc.client.clone(), ns, &ar),
        _ => Api::all_with(gc.client.clone(), &ar),
    })
}

/// The live object when it still is the one with this uid.
async fn live(gc: &Gc, identity: &Identity) -> Result<Option<DynamicObject>, Error> {
    let api = api_for(gc, identity)?;
    match api.get_opt(&identity.name).await {
        Ok(Some(o)) if o.metadata.uid.as_deref() == Some(identity.uid.as_str()) => Ok(Some(o)),
        Ok(_) => Ok(None),
        Err(e) => Err(Error::api("get", identity.to_string())(e)),
    }
}

fn has_finalizer(o: &DynamicObject, f: &str) -> bool {
    o.metadata
        .finalizers
        .as_ref()
        .is_some_and(|fs| fs.iter().any(|x| x == f))
}

/// The object is gone: drop it from the graph and look at its dependents.
fn forget(gc: &Gc, uid: &str) {
    let work = gc.graph().remove(uid);
    gc.schedule(work);
}

/// Upstream's `attemptToDeleteItem`.
pub(super) async fn attempt_to_delete(gc: Arc<Gc>, uid: String) -> Result<(), Error> {
    let Some(node) = gc.graph().get(&uid).cloned() else {
        return Ok(());
    };
    let Some(latest) = live(&gc, &node.identity).await? else {
        forget(&gc, &uid);
        return Ok(());
    };
    if node.is_virtual {
        // It exists after all; its own monitor will add it properly.
        return Ok(());
    }
    if latest.metadata.deletion_timestamp.is_some() {
        if has_finalizer(&latest, FOREGROUND) {
            return process_deleting_dependents(&gc, &node.identity, &latest).await;
        }
        return Ok(());
    }
    let owners = latest.metadata.owner_references.clone().unwrap_or_default();
    if owners.is_empty() {
        return Ok(());
    }
    let ns = node.identity.namespace.clone();
    let (mut solid, mut dangling, mut waiting) = (Vec::new(), Vec::new(), Vec::new());
    for r in &owners {
        let owner = Identity {
            api_version: r.api_version.clone(),
            kind: r.kind.clone(),
            namespace: ns.clone(),
            name: r.name.clone(),
            uid: r.uid.clone(),
        };
        match live(&gc, &owner).await? {
            None => dangling.push(r.clone()),
            Some(o) if o.metadata.deletion_timestamp.is_some() && has_finalizer(&o, FOREGROUND) => {
                waiting.push(r.clone())
            }
            Some(_) => solid.push(r.clone()),
        }
    }
    let api = api_for(&gc, &node.identity)?;
    let name = node.identity.name.clone();
    let rv = latest.metadata.resource_version.clone();
    if !solid.is_empty() {
        if dangling.is_empty() && waiting.is_empty() {
            return Ok(());
        }
        // Still owned: only the references to gone or going owners are dropped.
        let keep: Vec<&OwnerReference> = owners
            .iter()
            .filter(|o| !dangling.iter().chain(&waiting).any(|d| d.uid == o.uid))
            .collect();
        tracing::info!(object = %node.identity, "removing references to deleted owners");
        return patch_owner_refs(&api, &name, rv, json!(keep), &node.identity).await;
    }
    let has_dependents = !gc.graph().dependents(&uid).is_empty();
    let policy = if !waiting.is_empty() && has_dependents {
        // This object blocks a foreground-deleting owner through its own
        // dependents: stop blocking it, then delete in the foreground too.
        let unblocked: Vec<OwnerReference> = owners
            .iter()
            .map(|o| {
                let mut o = o.clone();
                if waiting.iter().any(|w| w.uid == o.uid) {
                    o.block_owner_deletion = Some(false);
                }
                o
            })
            .collect();
        patch_owner_refs(&api, &name, rv, json!(unblocked), &node.identity).await?;
        PropagationPolicy::Foreground
    } else if has_finalizer(&latest, ORPHAN) {
        PropagationPolicy::Orphan
    } else if has_finalizer(&latest, FOREGROUND) {
        PropagationPolicy::Foreground
    } else {
        PropagationPolicy::Background
    };
    tracing::info!(object = %node.identity, ?policy, "deleting object whose owners are gone");
    solid.clear();
    let dp = DeleteParams {
        propagation_policy: Some(policy),
        preconditions: Some(Preconditions {
            uid: Some(uid.clone()),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&name, &dp).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) || is_conflict(&e) => Ok(()),
        Err(e) => Err(Error::api("delete", node.identity.to_string())(e)),
    }
}

/// Upstream's `processDeletingDependentsItem`: an owner in foreground
/// deletion loses its finalizer once no blocking dependent is left.
async fn process_deleting_dependents(
    gc: &Gc,
    identity: &Identity,
    latest: &DynamicObject,
) -> Result<(), Error> {
    let blocking = gc.graph().blocking_dependents(&identity.uid);
    if blocking.is_empty() {
        tracing::info!(object = %identity, "all blocking dependents gone; removing the foregroundDeletion finalizer");
        return remove_finalizer(gc, identity, latest, FOREGROUND).await;
    }
    for d in blocking {
        if !d.being_deleted {
            gc.delete_queue.add(d.identity.uid.clone());
        }
    }
    Ok(())
}

/// Upstream's `attemptToOrphanWorker`: the owner's dependents drop their
/// reference to it, then its `orphan` finalizer goes.
pub(super) async fn attempt_to_orphan(gc: Arc<Gc>, uid: String) -> Result<(), Error> {
    let Some(node) = gc.graph().get(&uid).cloned() else {
        return Ok(());
    };
    let Some(latest) = live(&gc, &node.identity).await? else {
        forget(&gc, &uid);
        return Ok(());
    };
    if !has_finalizer(&latest, ORPHAN) {
        return Ok(());
    }
    let dependents = gc.graph().dependents(&uid);
    for d in dependents {
        let Some(dep) = live(&gc, &d.identity).await? else {
            continue;
        };
        let owners = dep.metadata.owner_references.clone().unwrap_or_default();
        if !owners.iter().any(|o| o.uid == uid) {
            continue;
        }
        let keep: Vec<&OwnerReference> = owners.iter().filter(|o| o.uid != uid).collect();
        let api = api_for(&gc, &d.identity)?;
        patch_owner_refs(
            &api,
            &d.identity.name,
            dep.metadata.resource_version.clone(),
            json!(keep),
            &d.identity,
        )
        .await?;
    }
    tracing::info!(object = %node.identity, "dependents orphaned; removing the orphan finalizer");
    remove_finalizer(&gc, &node.identity, &latest, ORPHAN).await
}

async fn patch_owner_refs(
    api: &Api<DynamicObject>,
    name: &str,
    rv: Option<String>,
    refs: serde_json::Value,
    identity: &Identity,
) -> Result<(), Error> {
    let refs = if refs.as_array().is_some_and(|a| a.is_empty()) {
        serde_json::Value::Null
    } else {
        refs
    };
    let patch = json!({"metadata": {"resourceVersion": rv, "ownerReferences": refs}});
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(Error::api("patch ownerReferences of", identity.to_string())(e)),
    }
}

async fn remove_finalizer(
    gc: &Gc,
    identity: &Identity,
    latest: &DynamicObject,
    finalizer: &str,
) -> Result<(), Error> {
    let api = api_for(gc, identity)?;
    let rest: Vec<&String> = latest
        .metadata
        .finalizers
        .iter()
        .flatten()
        .filter(|f| f.as_str() != finalizer)
        .collect();
    let rest = if rest.is_empty() {
        serde_json::Value::Null
    } else {
        json!(rest)
    };
    let patch = json!({"metadata": {"resourceVersion": latest.metadata.resource_version, "finalizers": rest}});
    match api
        .patch(
            &identity.name,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(Error::api("remove finalizer from", identity.to_string())(e)),
    }
}
