//! Dynamic provisioning and deletion by the in-tree hostPath plugin
//! (upstream's pkg/volume/hostpath `hostPathProvisioner`/`hostPathDeleter`,
//! driven by pv_controller.go's `provisionClaim` and `deleteVolume`), on
//! with `--enable-hostpath-provisioner`: a claim of a StorageClass whose
//! provisioner is `kubernetes.io/host-path` gets a volume `pvc-<claim uid>`
//! backed by a directory under `/tmp/hostpath_pv/`, pre-bound to the claim;
//! when such a volume with reclaim policy Delete is released, the directory
//! and the volume are deleted. Meant for single-node and test clusters, as
//! upstream's is: the directory is made on the controller manager's host.

use std::path::Path;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::json;

use super::{claim_key, Ctx};
use crate::{is_already_exists, is_not_found, Error};

pub const HOST_PATH_PROVISIONER: &str = "kubernetes.io/host-path";
/// Where the plugin makes volumes (upstream's `/tmp/hostpath_pv`).
pub const HOST_PATH_ROOT: &str = "/tmp/hostpath_pv";
pub const ANN_PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
pub const ANN_STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
pub const ANN_BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";

/// What a claim without a matching volume waits for.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// No class, an external provisioner, or provisioning is off: wait for
    /// a volume to appear.
    Wait,
    /// WaitForFirstConsumer and no pod has been scheduled with it yet.
    WaitForConsumer,
    /// Make a hostPath volume.
    Provision,
}

/// Upstream's `shouldProvision` for the hostPath plugin.
pub fn plan(claim: &PersistentVolumeClaim, class: Option<&StorageClass>, enabled: bool) -> Plan {
    let Some(class) = class else {
        return Plan::Wait;
    };
    if !enabled || class.provisioner != HOST_PATH_PROVISIONER {
        return Plan::Wait;
    }
    let delayed = class.volume_binding_mode.as_deref() == Some("WaitForFirstConsumer");
    if delayed && !claim.annotations().contains_key(ANN_SELECTED_NODE) {
        return Plan::WaitForConsumer;
    }
    Plan::Provision
}

/// The volume the plugin makes for `claim` (upstream's
/// `hostPathProvisioner.Provision`).
pub fn volume_for(claim: &PersistentVolumeClaim, class: &StorageClass) -> Option<PersistentVolume> {
    let uid = claim.metadata.uid.as_deref()?;
    let spec = claim.spec.as_ref()?;
    let request = spec.resources.as_ref()?.requests.as_ref()?.get("storage")?;
    let v = json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": format!("pvc-{uid}"),
            "annotations": {ANN_PROVISIONED_BY: HOST_PATH_PROVISIONER}},
        "spec": {
            "capacity": {"storage": request},
            "accessModes": spec.access_modes,
            "persistentVolumeReclaimPolicy": class.reclaim_policy.as_deref().unwrap_or("Delete"),
            "storageClassName": class.metadata.name,
            "volumeMode": spec.volume_mode,
            "mountOptions": class.mount_options,
            "hostPath": {"path": format!("{HOST_PATH_ROOT}/pvc-{uid}"), "type": ""},
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "namespace": claim.metadata.namespace, "name": claim.metadata.name,
                "uid": uid, "resourceVersion": claim.metadata.resource_version},
        },
    });
    serde_json::from_value(v).ok()
}

/// Whether `path` is one the deleter may remove (upstream refuses anything
/// outside `/tmp`).
pub fn deletable(path: &str) -> bool {
    path.starts_with(&format!("{HOST_PATH_ROOT}/")) && !path.contains("..")
}

/// Marks the claim as handled by the plugin, makes the directory and
/// creates the volume; the binder then binds the two.
pub(super) async fn provision(
    ctx: &Ctx,
    claim: &PersistentVolumeClaim,
    class: &StorageClass,
) -> Result<(), Error> {
    let key = claim_key(claim);
    if claim
        .annotations()
        .get(ANN_STORAGE_PROVISIONER)
        .map(String::as_str)
        != Some(HOST_PATH_PROVISIONER)
    {
        let claims: Api<PersistentVolumeClaim> =
            Api::namespaced(ctx.client.clone(), &claim.namespace().unwrap_or_default());
        let ann = json!({ANN_STORAGE_PROVISIONER: HOST_PATH_PROVISIONER,
            ANN_BETA_STORAGE_PROVISIONER: HOST_PATH_PROVISIONER});
        claims
            .patch(
                &claim.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"annotations": ann}})),
            )
            .await
            .map_err(Error::api("annotate", key.clone()))?;
    }
    let Some(pv) = volume_for(claim, class) else {
        return Err(Error::Pending(format!(
            "claim {key} has no storage request or uid"
        )));
    };
    if let Some(path) = pv
        .spec
        .as_ref()
        .and_then(|s| s.host_path.as_ref())
        .map(|h| h.path.clone())
    {
        make_dir(Path::new(&path))
            .map_err(|e| Error::Pending(format!("provision {key}: create {path}: {e}")))?;
    }
    let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
    match pvs.create(&PostParams::default(), &pv).await {
        Ok(_) => {
            tracing::info!(claim = %key, volume = %pv.name_any(), "provisioned a hostPath volume");
            Ok(())
        }
        Err(e) if is_already_exists(&e) => Ok(()),
        Err(e) => Err(Error::api(
            "create",
            format!("persistentvolume {}", pv.name_any()),
        )(e)),
    }
}

fn make_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(path)
}

/// Whether the released `pv` is the plugin's to delete.
pub fn ours_to_delete(pv: &PersistentVolume, enabled: bool) -> bool {
    let spec = pv.spec.as_ref();
    enabled
        && spec.and_then(|s| s.persistent_volume_reclaim_policy.as_deref()) == Some("Delete")
        && pv.annotations().get(ANN_PROVISIONED_BY).map(String::as_str)
            == Some(HOST_PATH_PROVISIONER)
        && spec.and_then(|s| s.host_path.as_ref()).is_some()
}

/// Removes the released volume's directory, then the volume (upstream's
/// `deleteVolumeOperation`).
pub(super) async fn delete(ctx: &Ctx, pv: &PersistentVolume) -> Result<(), Error> {
    let name = pv.name_any();
    let path = pv
        .spec
        .as_ref()
        .and_then(|s| s.host_path.as_ref())
        .map(|h| h.path.clone())
        .unwrap_or_default();
    if !deletable(&path) {
        return Err(Error::Pending(format!(
            "host_path deleter only supports {HOST_PATH_ROOT}/.+ but received provided {path}"
        )));
    }
    match std::fs::remove_dir_all(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::Pending(format!("delete volume {name}: {path}: {e}"))),
    }
    let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
    match pvs.delete(&name, &DeleteParams::default()).await {
        Ok(_) => {
            tracing::info!(volume = %name, "deleted a released hostPath volume");
            Ok(())
        }
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(Error::api("delete", format!("persistentvolume {name}"))(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(provisioner: &str, mode: Option<&str>) -> StorageClass {
        serde_json::from_value(json!({"metadata": {"name": "standard"},
            "provisioner": provisioner, "volumeBindingMode": mode}))
        .expect("class")
    }

    fn claim(annotations: serde_json::Value) -> PersistentVolumeClaim {
        serde_json::from_value(
            json!({"metadata": {"name": "data", "namespace": "ns", "uid": "u-1",
            "resourceVersion": "7", "annotations": annotations},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
                     "resources": {"requests": {"storage": "2Gi"}}}}),
        )
        .expect("claim")
    }

    #[test]
    fn only_enabled_host_path_classes_provision_and_consumers_are_awaited() {
        let hp = class(HOST_PATH_PROVISIONER, None);
        assert_eq!(plan(&claim(json!({})), Some(&hp), true), Plan::Provision);
        assert_eq!(plan(&claim(json!({})), Some(&hp), false), Plan::Wait);
        assert_eq!(plan(&claim(json!({})), None, true), Plan::Wait);
        let external = class("ebs.csi.aws.com", None);
        assert_eq!(plan(&claim(json!({})), Some(&external), true), Plan::Wait);
        let wffc = class(HOST_PATH_PROVISIONER, Some("WaitForFirstConsumer"));
        assert_eq!(
            plan(&claim(json!({})), Some(&wffc), true),
            Plan::WaitForConsumer
        );
        let picked = claim(json!({ANN_SELECTED_NODE: "n1"}));
        assert_eq!(plan(&picked, Some(&wffc), true), Plan::Provision);
    }

    #[test]
    fn the_volume_is_prebound_and_sized_like_the_claim() {
        let pv = volume_for(&claim(json!({})), &class(HOST_PATH_PROVISIONER, None)).expect("pv");
        assert_eq!(pv.metadata.name.as_deref(), Some("pvc-u-1"));
        let spec = pv.spec.expect("spec");
        assert_eq!(spec.capacity.expect("capacity")["storage"].0, "2Gi");
        assert_eq!(
            spec.persistent_volume_reclaim_policy.as_deref(),
            Some("Delete")
        );
        assert_eq!(
            spec.host_path.expect("hostPath").path,
            "/tmp/hostpath_pv/pvc-u-1"
        );
        let r = spec.claim_ref.expect("claimRef");
        assert_eq!(
            (r.namespace.as_deref(), r.name.as_deref(), r.uid.as_deref()),
            (Some("ns"), Some("data"), Some("u-1"))
        );
        assert!(deletable("/tmp/hostpath_pv/pvc-u-1"));
        assert!(!deletable("/var/lib/data"));
        assert!(!deletable("/tmp/hostpath_pv/../etc"));
    }
}
