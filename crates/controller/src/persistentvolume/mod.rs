//! The PersistentVolume binder (upstream's
//! pkg/controller/volume/persistentvolume/pv_controller.go, `syncClaim`
//! and `syncVolume`): binds each pending claim to the smallest fitting
//! volume (or the one it or the volume names), writes both halves of the
//! bind with upstream's annotations, keeps the phases, and releases a
//! volume whose claim is gone (reclaim policy Retain; Delete leaves it
//! Released too, as no deleter plugin exists yet).
//!
//! With `--enable-hostpath-provisioner`, claims of a `kubernetes.io/host-path`
//! class get a volume made for them and released Delete volumes are
//! deleted ([`provision`]).
//!
//! Not yet: external provisioners' hand-off beyond the annotations, Events.

pub mod index;
pub mod provision;

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::ResourceExt;
use serde_json::json;

use crate::descriptors::ControllerFuture;
use crate::{is_not_found, ControllerContext, Error, StartError};

const NAME: &str = "persistentvolume-binder-controller";
/// Set on a claim once the controller has finished binding it.
pub const ANN_BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// Set on whichever half of the bind the controller (not a user) wrote.
pub const ANN_BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";

struct Ctx {
    client: kube::Client,
    claims: Store<PersistentVolumeClaim>,
    volumes: Store<PersistentVolume>,
    classes: Store<StorageClass>,
    /// `--enable-hostpath-provisioner`.
    hostpath_provisioner: bool,
}

/// Upstream's `startPersistentVolumeBinderController`.
pub fn start(ctx: &ControllerContext) -> Result<ControllerFuture, StartError> {
    let claims = ctx.informers.informer::<PersistentVolumeClaim>();
    let volumes = ctx.informers.informer::<PersistentVolume>();
    let classes = ctx.informers.informer::<StorageClass>();
    let c = Arc::new(Ctx {
        client: ctx.client.clone(),
        claims: claims.store(),
        volumes: volumes.store(),
        classes: classes.store(),
        hostpath_provisioner: ctx.config.enable_hostpath_provisioner,
    });
    // Claims are synced when they or a volume naming them change; a
    // volume naming no claim wakes every unbound claim.
    let cstore = claims.store();
    let claim_controller = Controller::for_shared_stream(claims.subscribe(), claims.store())
        .watches_shared_stream(
            volumes.subscribe(),
            move |pv: Arc<PersistentVolume>| match pv
                .spec
                .as_ref()
                .and_then(|s| s.claim_ref.as_ref())
            {
                Some(r) => match (r.name.as_deref(), r.namespace.as_deref()) {
                    (Some(n), Some(ns)) => vec![ObjectRef::new(n).within(ns)],
                    _ => Vec::new(),
                },
                None => cstore
                    .state()
                    .iter()
                    .filter(|c| {
                        c.spec
                            .as_ref()
                            .and_then(|s| s.volume_name.as_deref())
                            .is_none_or(str::is_empty)
                    })
                    .map(|c| ObjectRef::from_obj(c.as_ref()))
                    .collect(),
            },
        );
    // A class that appears or changes may let its waiting claims provision.
    let cstore = claims.store();
    let claim_controller = claim_controller.watches_shared_stream(
        classes.subscribe(),
        move |sc: Arc<StorageClass>| {
            let name = sc.name_any();
            cstore
                .state()
                .iter()
                .filter(|c| {
                    index::claim_class(c) == name
                        && c.spec
                            .as_ref()
                            .and_then(|s| s.volume_name.as_deref())
                            .is_none_or(str::is_empty)
                })
                .map(|c| ObjectRef::from_obj(c.as_ref()))
                .collect::<Vec<_>>()
        },
    );
    // Volumes are synced when they or the claim they name change.
    let vstore = volumes.store();
    let volume_controller = Controller::for_shared_stream(volumes.subscribe(), volumes.store())
        .watches_shared_stream(
            claims.subscribe(),
            move |pvc: Arc<PersistentVolumeClaim>| {
                let ns = pvc.namespace();
                let name = pvc.name_any();
                vstore
                    .state()
                    .iter()
                    .find(|pv| {
                        pv.spec
                            .as_ref()
                            .and_then(|s| s.claim_ref.as_ref())
                            .is_some_and(|r| r.name.as_ref() == Some(&name) && r.namespace == ns)
                    })
                    .map(|pv| ObjectRef::from_obj(pv.as_ref()))
            },
        );
    let metrics = ctx.metrics.clone();
    Ok(Box::pin(async move {
        futures::future::join(
            crate::runner::drive(
                NAME,
                claim_controller,
                metrics.clone(),
                c.clone(),
                sync_claim,
            ),
            crate::runner::drive(NAME, volume_controller, metrics, c, sync_volume),
        )
        .await;
    }))
}

fn claim_phase(pvc: &PersistentVolumeClaim) -> Option<&str> {
    pvc.status.as_ref().and_then(|s| s.phase.as_deref())
}

fn volume_phase(pv: &PersistentVolume) -> Option<&str> {
    pv.status.as_ref().and_then(|s| s.phase.as_deref())
}

fn claim_key(pvc: &PersistentVolumeClaim) -> String {
    format!("{}/{}", pvc.namespace().unwrap_or_default(), pvc.name_any())
}

async fn set_claim_phase(
    ctx: &Ctx,
    pvc: &PersistentVolumeClaim,
    phase: &str,
    pv: Option<&PersistentVolume>,
) -> Result<(), Error> {
    let mut status = json!({"phase": phase});
    if let Some(pv) = pv {
        let spec = pv.spec.clone().unwrap_or_default();
        status["accessModes"] = json!(spec.access_modes);
        status["capacity"] = json!(spec.capacity);
    }
    let api: Api<PersistentVolumeClaim> =
        Api::namespaced(ctx.client.clone(), &pvc.namespace().unwrap_or_default());
    api.patch_status(
        &pvc.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await
    .map_err(Error::api("update status", claim_key(pvc)))?;
    Ok(())
}

async fn set_volume_phase(ctx: &Ctx, pv: &PersistentVolume, phase: &str) -> Result<(), Error> {
    if volume_phase(pv) == Some(phase) {
        return Ok(());
    }
    let api: Api<PersistentVolume> = Api::all(ctx.client.clone());
    api.patch_status(
        &pv.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": phase}})),
    )
    .await
    .map_err(Error::api(
        "update status",
        format!("persistentvolume {}", pv.name_any()),
    ))?;
    Ok(())
}

/// Upstream's `bind`: the volume's claimRef first, then the claim's
/// volumeName and annotations, then both phases.
async fn bind(ctx: &Ctx, pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> Result<(), Error> {
    let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let pv_name = pv.name_any();
    let bound_ref = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
    if bound_ref.and_then(|r| r.uid.as_ref()) != pvc.metadata.uid.as_ref() {
        let claim_ref = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("PersistentVolumeClaim".into()),
            name: pvc.metadata.name.clone(),
            namespace: pvc.metadata.namespace.clone(),
            uid: pvc.metadata.uid.clone(),
            resource_version: pvc.metadata.resource_version.clone(),
            field_path: None,
        };
        let mut meta = json!({"resourceVersion": pv.metadata.resource_version});
        if bound_ref.is_none() {
            meta["annotations"] = json!({ANN_BOUND_BY_CONTROLLER: "yes"});
        }
        pvs.patch(
            &pv_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": meta, "spec": {"claimRef": claim_ref}})),
        )
        .await
        .map_err(Error::api("bind", format!("persistentvolume {pv_name}")))?;
    }
    let claims: Api<PersistentVolumeClaim> =
        Api::namespaced(ctx.client.clone(), &pvc.namespace().unwrap_or_default());
    let named = pvc.spec.as_ref().and_then(|s| s.volume_name.as_deref());
    let completed = pvc.annotations().contains_key(ANN_BIND_COMPLETED);
    if named != Some(pv_name.as_str()) || !completed {
        let mut ann = json!({ANN_BIND_COMPLETED: "yes"});
        if named.is_none_or(str::is_empty) {
            ann[ANN_BOUND_BY_CONTROLLER] = json!("yes");
        }
        claims
            .patch(
                &pvc.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": ann,
                    "resourceVersion": pvc.metadata.resource_version},
                    "spec": {"volumeName": pv_name}})),
            )
            .await
            .map_err(Error::api("bind", claim_key(pvc)))?;
    }
    set_volume_phase(ctx, pv, "Bound").await?;
    set_claim_phase(ctx, pvc, "Bound", Some(pv)).await?;
    tracing::info!(claim = %claim_key(pvc), volume = %pv_name, "bound claim to volume");
    Ok(())
}

/// Upstream's `syncClaim` (`syncUnboundClaim` / `syncBoundClaim`).
async fn sync_claim(pvc: Arc<PersistentVolumeClaim>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if pvc.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let volume_name = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .filter(|n| !n.is_empty());
    let volumes = ctx.volumes.state();
    match volume_name {
        None => match index::find_matching(volumes.iter().map(|v| v.as_ref()), &pvc) {
            Some(pv) => bind(&ctx, pv, &pvc).await?,
            None => {
                let class_name = index::claim_class(&pvc);
                let class = (!class_name.is_empty())
                    .then(|| ctx.classes.get(&ObjectRef::new(&class_name)))
                    .flatten();
                if let Some(class) = class.as_deref() {
                    if provision::plan(&pvc, Some(class), ctx.hostpath_provisioner)
                        == provision::Plan::Provision
                    {
                        provision::provision(&ctx, &pvc, class).await?;
                    }
                }
                if claim_phase(&pvc) != Some("Pending") {
                    set_claim_phase(&ctx, &pvc, "Pending", None).await?;
                }
            }
        },
        Some(name) => {
            let Some(pv) = ctx.volumes.get(&ObjectRef::new(&name)) else {
                // The claim names a volume that does not exist (yet): a
                // bound claim becomes Lost, an unbound one waits.
                let phase = if pvc.annotations().contains_key(ANN_BIND_COMPLETED) {
                    "Lost"
                } else {
                    "Pending"
                };
                if claim_phase(&pvc) != Some(phase) {
                    set_claim_phase(&ctx, &pvc, phase, None).await?;
                }
                return Ok(Action::await_change());
            };
            let claim_ref = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
            if claim_ref.is_none() || index::is_bound_to(&pv, &pvc) {
                bind(&ctx, &pv, &pvc).await?;
            } else if pvc.annotations().contains_key(ANN_BIND_COMPLETED) {
                // Bound to a volume that now belongs to someone else.
                if claim_phase(&pvc) != Some("Lost") {
                    set_claim_phase(&ctx, &pvc, "Lost", None).await?;
                }
            } else if claim_phase(&pvc) != Some("Pending") {
                set_claim_phase(&ctx, &pvc, "Pending", None).await?;
            }
        }
    }
    Ok(Action::await_change())
}

/// Upstream's `syncVolume`.
async fn sync_volume(pv: Arc<PersistentVolume>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if pv.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let Some(claim_ref) = pv.spec.as_ref().and_then(|s| s.claim_ref.clone()) else {
        set_volume_phase(&ctx, &pv, "Available").await?;
        return Ok(Action::await_change());
    };
    let (Some(ns), Some(name)) = (claim_ref.namespace.clone(), claim_ref.name.clone()) else {
        set_volume_phase(&ctx, &pv, "Failed").await?;
        return Ok(Action::await_change());
    };
    let cached = ctx.claims.get(&ObjectRef::new(&name).within(&ns));
    let claim = match cached {
        Some(c) => Some((*c).clone()),
        // The cache may lag: upstream re-checks the API server before
        // declaring a claim gone.
        None => {
            let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
            match api.get(&name).await {
                Ok(c) => Some(c),
                Err(e) if is_not_found(&e) => None,
                Err(e) => return Err(Error::api("get", format!("{ns}/{name}"))(e)),
            }
        }
    };
    let gone = match &claim {
        None => true,
        Some(c) => claim_ref.uid.is_some() && claim_ref.uid != c.metadata.uid,
    };
    if gone {
        if claim_ref.uid.is_none() {
            // Pre-bound to a claim that does not exist yet.
            set_volume_phase(&ctx, &pv, "Available").await?;
        } else {
            // Retain, and Delete without a deleter: Released.
            set_volume_phase(&ctx, &pv, "Released").await?;
            if provision::ours_to_delete(&pv, ctx.hostpath_provisioner) {
                provision::delete(&ctx, &pv).await?;
            }
        }
        return Ok(Action::await_change());
    }
    if let Some(c) = claim {
        let named = c.spec.as_ref().and_then(|s| s.volume_name.as_deref());
        if named == Some(pv.name_any().as_str()) {
            set_volume_phase(&ctx, &pv, "Bound").await?;
        } else if claim_ref.uid.is_none() {
            set_volume_phase(&ctx, &pv, "Available").await?;
        }
        // Otherwise the claim's own sync completes the bind.
    }
    Ok(Action::await_change())
}
