//! The PVC and PV protection controllers with the
//! StorageObjectInUseProtection admission plugin, against a real API
//! server: a deleted claim stays while a scheduled pod uses it, a deleted
//! volume stays while it is Bound, and both go once released.

mod common;

use integration::TestApiServer;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn pvc(name: &str) -> PersistentVolumeClaim {
    serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                 "resources": {"requests": {"storage": "1Gi"}}}}))
    .expect("pvc")
}

fn pv(name: &str) -> PersistentVolume {
    serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "hostPath": {"path": format!("/tmp/{name}")}}}))
    .expect("pv")
}

fn finalizers<K: kube::Resource>(obj: &K) -> Vec<String> {
    obj.meta().finalizers.clone().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_and_volumes_in_use_outlive_their_deletion() {
    let server = TestApiServer::start_with(|c| {
        c.admission
            .disable
            .retain(|p| p != "StorageObjectInUseProtection");
    })
    .await;
    let _task = common::spawn_controllers(
        &server,
        &["pvc-protection", "pv-protection"],
        Default::default(),
    )
    .await;
    let c = server.client.clone();
    let pp = PostParams::default();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let volumes: Api<PersistentVolume> = Api::all(c.clone());

    let used = claims.create(&pp, &pvc("used")).await.expect("claim");
    assert_eq!(finalizers(&used), ["kubernetes.io/pvc-protection"]);
    claims.create(&pp, &pvc("idle")).await.expect("claim");
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "user"},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}],
                 "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "used"}}]}}))
    .expect("pod");
    pods.create(&pp, &pod).await.expect("pod");

    for name in ["used", "idle"] {
        claims
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete claim");
    }
    // Once the idle claim is gone the controller has seen both; the used
    // one stays, marked for deletion.
    common::eventually("the unused claim to go", || async {
        claims.get_opt("idle").await.ok()?.is_none().then_some(())
    })
    .await;
    let held = claims.get("used").await.expect("the used claim stays");
    assert!(held.metadata.deletion_timestamp.is_some());
    pods.delete(
        "user",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .expect("delete pod");
    common::eventually("the released claim to go", || async {
        claims.get_opt("used").await.ok()?.is_none().then_some(())
    })
    .await;

    let bound = volumes.create(&pp, &pv("bound")).await.expect("volume");
    assert_eq!(finalizers(&bound), ["kubernetes.io/pv-protection"]);
    volumes.create(&pp, &pv("free")).await.expect("volume");
    volumes
        .patch_status(
            "bound",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Bound"}})),
        )
        .await
        .expect("bind");
    for name in ["bound", "free"] {
        volumes
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete volume");
    }
    common::eventually("the unbound volume to go", || async {
        volumes.get_opt("free").await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(volumes
        .get("bound")
        .await
        .expect("the bound volume stays")
        .metadata
        .deletion_timestamp
        .is_some());
    volumes
        .patch_status(
            "bound",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Released"}})),
        )
        .await
        .expect("release");
    common::eventually("the released volume to go", || async {
        volumes.get_opt("bound").await.ok()?.is_none().then_some(())
    })
    .await;
}
