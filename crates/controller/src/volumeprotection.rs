//! The storage-object-in-use protection controllers (upstream's
//! pkg/controller/volume/pvcprotection and pvprotection): every claim
//! carries the `kubernetes.io/pvc-protection` finalizer and every volume
//! `kubernetes.io/pv-protection` (the StorageObjectInUseProtection admission
//! plugin adds them on create, these controllers to older objects). A
//! deleted claim keeps its finalizer while a scheduled, unfinished pod uses
//! it; a deleted volume keeps its finalizer while it is Bound. Then the
//! finalizer goes and the deletion completes.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::descriptors::ControllerFuture;
use crate::{is_conflict, is_not_found, ControllerContext, Error, StartError};

pub const PVC_FINALIZER: &str = "kubernetes.io/pvc-protection";
pub const PV_FINALIZER: &str = "kubernetes.io/pv-protection";
const PVC_NAME: &str = "persistentvolumeclaim-protection-controller";
const PV_NAME: &str = "persistentvolume-protection-controller";

struct ClaimCtx {
    client: kube::Client,
    pods: Store<Pod>,
}

/// Whether `pod` keeps claim `name` in use (upstream's `podUsesPVC`: only
/// scheduled pods count, as the kubelet refuses to start a pod whose claim
/// is being deleted; finished pods no longer use anything).
pub fn pod_uses_claim(pod: &Pod, name: &str) -> bool {
    let spec = pod.spec.as_ref();
    let scheduled = spec
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if !scheduled || matches!(phase, Some("Succeeded" | "Failed")) {
        return false;
    }
    let pod_name = pod.name_any();
    spec.and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .any(|v| {
            let direct = v
                .persistent_volume_claim
                .as_ref()
                .is_some_and(|c| c.claim_name == name);
            // A generic ephemeral volume's claim is `<pod>-<volume>`.
            let ephemeral = v.ephemeral.is_some() && format!("{pod_name}-{}", v.name) == name;
            direct || ephemeral
        })
}

fn has_finalizer<K: Resource>(obj: &K, finalizer: &str) -> bool {
    obj.meta()
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == finalizer)
}

/// Adds or removes `finalizer` with a merge patch guarded by the object's
/// resourceVersion; a conflict or a vanished object just waits for the
/// next event.
async fn set_finalizer<K>(
    api: &Api<K>,
    obj: &K,
    finalizer: &str,
    present: bool,
) -> Result<(), Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut list: Vec<String> = obj.meta().finalizers.clone().unwrap_or_default();
    list.retain(|f| f != finalizer);
    if present {
        list.push(finalizer.to_string());
    }
    let patch = json!({"metadata": {"finalizers": list,
        "resourceVersion": obj.meta().resource_version}});
    match api
        .patch(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) || is_conflict(&e) => Ok(()),
        Err(e) => Err(Error::api("update finalizers of", obj.name_any())(e)),
    }
}

async fn sync_claim(pvc: Arc<PersistentVolumeClaim>, ctx: Arc<ClaimCtx>) -> Result<Action, Error> {
    let ns = pvc.namespace().unwrap_or_default();
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    let protected = has_finalizer(pvc.as_ref(), PVC_FINALIZER);
    if pvc.metadata.deletion_timestamp.is_none() {
        if !protected {
            set_finalizer(&api, pvc.as_ref(), PVC_FINALIZER, true).await?;
        }
        return Ok(Action::await_change());
    }
    if !protected {
        return Ok(Action::await_change());
    }
    let name = pvc.name_any();
    let in_use = |pods: &[Arc<Pod>]| {
        pods.iter()
            .any(|p| p.namespace().as_deref() == Some(ns.as_str()) && pod_uses_claim(p, &name))
    };
    if in_use(&ctx.pods.state()) {
        tracing::debug!(claim = %format!("{ns}/{name}"), "claim in use; keeping its finalizer");
        return Ok(Action::await_change());
    }
    // The cache may lag a pod that was just scheduled: ask the API server
    // before letting the claim go, like upstream's live check.
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let live = pods
        .list(&Default::default())
        .await
        .map_err(Error::api("list pods in", ns.clone()))?;
    let live: Vec<Arc<Pod>> = live.items.into_iter().map(Arc::new).collect();
    if in_use(&live) {
        return Ok(Action::await_change());
    }
    tracing::info!(claim = %format!("{ns}/{name}"), "claim unused; removing its protection finalizer");
    set_finalizer(&api, pvc.as_ref(), PVC_FINALIZER, false).await?;
    Ok(Action::await_change())
}

/// Upstream's `startPVCProtectionController`.
pub fn start_pvc_protection(ctx: &ControllerContext) -> Result<ControllerFuture, StartError> {
    let claims = ctx.informers.informer::<PersistentVolumeClaim>();
    let pods = ctx.informers.informer::<Pod>();
    let c = Arc::new(ClaimCtx {
        client: ctx.client.clone(),
        pods: pods.store(),
    });
    // A pod that changes or goes away may release the claims it names.
    let controller = Controller::for_shared_stream(claims.subscribe(), claims.store())
        .watches_shared_stream(pods.subscribe(), |pod: Arc<Pod>| {
            let ns = pod.namespace().unwrap_or_default();
            let pod_name = pod.name_any();
            let volumes = pod
                .spec
                .as_ref()
                .and_then(|s| s.volumes.clone())
                .unwrap_or_default();
            volumes
                .into_iter()
                .filter_map(|v| match (&v.persistent_volume_claim, &v.ephemeral) {
                    (Some(c), _) => Some(c.claim_name.clone()),
                    (None, Some(_)) => Some(format!("{pod_name}-{}", v.name)),
                    _ => None,
                })
                .map(|claim| ObjectRef::new(&claim).within(&ns))
                .collect::<Vec<_>>()
        });
    Ok(Box::pin(crate::runner::drive(
        PVC_NAME,
        controller,
        ctx.metrics.clone(),
        c,
        sync_claim,
    )))
}

struct VolumeCtx {
    client: kube::Client,
}

async fn sync_volume(pv: Arc<PersistentVolume>, ctx: Arc<VolumeCtx>) -> Result<Action, Error> {
    let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let protected = has_finalizer(pv.as_ref(), PV_FINALIZER);
    if pv.metadata.deletion_timestamp.is_none() {
        if !protected {
            set_finalizer(&api, pv.as_ref(), PV_FINALIZER, true).await?;
        }
        return Ok(Action::await_change());
    }
    let bound = pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    if protected && !bound {
        tracing::info!(volume = %pv.name_any(), "volume not bound; removing its protection finalizer");
        set_finalizer(&api, pv.as_ref(), PV_FINALIZER, false).await?;
    }
    Ok(Action::await_change())
}

/// Upstream's `startPVProtectionController`.
pub fn start_pv_protection(ctx: &ControllerContext) -> Result<ControllerFuture, StartError> {
    let volumes = ctx.informers.informer::<PersistentVolume>();
    let controller = Controller::for_shared_stream(volumes.subscribe(), volumes.store());
    let c = Arc::new(VolumeCtx {
        client: ctx.client.clone(),
    });
    Ok(Box::pin(crate::runner::drive(
        PV_NAME,
        controller,
        ctx.metrics.clone(),
        c,
        sync_volume,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(node: Option<&str>, phase: &str, volumes: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "web"},
            "spec": {"nodeName": node, "containers": [], "volumes": volumes},
            "status": {"phase": phase}}))
        .expect("pod")
    }

    #[test]
    fn only_scheduled_unfinished_pods_use_claims() {
        let vols = json!([{"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
            {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}}]);
        let running = pod(Some("n1"), "Running", vols.clone());
        assert!(pod_uses_claim(&running, "data"));
        assert!(pod_uses_claim(&running, "web-scratch"));
        assert!(!pod_uses_claim(&running, "other"));
        assert!(!pod_uses_claim(&pod(None, "Pending", vols.clone()), "data"));
        assert!(!pod_uses_claim(&pod(Some("n1"), "Succeeded", vols), "data"));
    }
}
