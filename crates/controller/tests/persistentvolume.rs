//! The PersistentVolume binder against a real API server: a claim binds to
//! the smallest fitting volume with upstream's annotations and phases, a
//! claim with no fitting volume stays Pending until one appears, and a
//! deleted claim's volume becomes Released.

mod common;

use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, PersistentVolumeClaim};
use kube::api::{Api, DeleteParams, PostParams};
use kube::ResourceExt;
use serde_json::json;

fn pv(name: &str, size: &str) -> PersistentVolume {
    serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                 "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
                 "hostPath": {"path": format!("/tmp/{name}")}}}))
    .expect("pv")
}

fn pvc(name: &str, size: &str) -> PersistentVolumeClaim {
    serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                 "resources": {"requests": {"storage": size}}}}))
    .expect("pvc")
}

fn claim_phase(c: &PersistentVolumeClaim) -> Option<String> {
    c.status.as_ref().and_then(|s| s.phase.clone())
}

fn volume_phase(v: &PersistentVolume) -> Option<String> {
    v.status.as_ref().and_then(|s| s.phase.clone())
}

#[tokio::test]
async fn claims_bind_to_smallest_fitting_volume_and_release() {
    let c = common::start(&["persistentvolume-binder"], |_, _| {}).await;
    let nss: Api<Namespace> = Api::all(c.client.clone());
    nss.create(&PostParams::default(), &common::ns("pv"))
        .await
        .expect("namespace");
    let pvs: Api<PersistentVolume> = Api::all(c.client.clone());
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.client.clone(), "pv");
    for (name, size) in [("big", "10Gi"), ("small", "2Gi"), ("tiny", "500Mi")] {
        pvs.create(&PostParams::default(), &pv(name, size))
            .await
            .expect("pv");
    }
    common::eventually("volumes Available", || async {
        let list = pvs.list(&Default::default()).await.ok()?;
        list.items
            .iter()
            .all(|v| volume_phase(v).as_deref() == Some("Available"))
            .then_some(())
    })
    .await;

    pvcs.create(&PostParams::default(), &pvc("data", "1Gi"))
        .await
        .expect("pvc");
    let claim = common::eventually("claim Bound", || async {
        let got = pvcs.get("data").await.ok()?;
        (claim_phase(&got).as_deref() == Some("Bound")).then_some(got)
    })
    .await;
    let spec = claim.spec.clone().expect("spec");
    assert_eq!(spec.volume_name.as_deref(), Some("small"));
    let ann = claim.annotations();
    assert_eq!(
        ann.get("pv.kubernetes.io/bind-completed")
            .map(String::as_str),
        Some("yes")
    );
    assert_eq!(
        ann.get("pv.kubernetes.io/bound-by-controller")
            .map(String::as_str),
        Some("yes")
    );
    let status = claim.status.clone().expect("status");
    assert_eq!(
        status
            .capacity
            .and_then(|c| c.get("storage").cloned())
            .map(|q| q.0),
        Some("2Gi".to_string())
    );
    let small = common::eventually("volume Bound", || async {
        let got = pvs.get("small").await.ok()?;
        (volume_phase(&got).as_deref() == Some("Bound")).then_some(got)
    })
    .await;
    let r = small
        .spec
        .as_ref()
        .and_then(|s| s.claim_ref.clone())
        .expect("claimRef");
    assert_eq!(r.name.as_deref(), Some("data"));
    assert_eq!(r.namespace.as_deref(), Some("pv"));
    assert_eq!(r.uid, claim.metadata.uid);
    assert_eq!(
        small
            .annotations()
            .get("pv.kubernetes.io/bound-by-controller")
            .map(String::as_str),
        Some("yes")
    );

    // Nothing fits 20Gi: Pending, until a volume big enough appears.
    pvcs.create(&PostParams::default(), &pvc("huge", "20Gi"))
        .await
        .expect("pvc");
    common::eventually("claim Pending", || async {
        let got = pvcs.get("huge").await.ok()?;
        (claim_phase(&got).as_deref() == Some("Pending")).then_some(())
    })
    .await;
    assert!(pvcs
        .get("huge")
        .await
        .expect("get")
        .spec
        .and_then(|s| s.volume_name)
        .is_none());
    pvs.create(&PostParams::default(), &pv("giant", "30Gi"))
        .await
        .expect("pv");
    common::eventually("huge bound to giant", || async {
        let got = pvcs.get("huge").await.ok()?;
        let ok = claim_phase(&got).as_deref() == Some("Bound")
            && got.spec?.volume_name.as_deref() == Some("giant");
        ok.then_some(())
    })
    .await;

    // Deleting the claim releases its Retain volume.
    pvcs.delete("data", &DeleteParams::default())
        .await
        .expect("delete");
    common::eventually("small Released", || async {
        let got = pvs.get("small").await.ok()?;
        (volume_phase(&got).as_deref() == Some("Released")).then_some(())
    })
    .await;
}

#[tokio::test]
async fn prebound_claim_gets_its_named_volume() {
    let c = common::start(&["persistentvolume-binder"], |_, _| {}).await;
    let nss: Api<Namespace> = Api::all(c.client.clone());
    nss.create(&PostParams::default(), &common::ns("pre"))
        .await
        .expect("namespace");
    let pvs: Api<PersistentVolume> = Api::all(c.client.clone());
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.client.clone(), "pre");
    pvs.create(&PostParams::default(), &pv("one", "1Gi"))
        .await
        .expect("pv");
    pvs.create(&PostParams::default(), &pv("two", "5Gi"))
        .await
        .expect("pv");
    let mut claim = pvc("mine", "1Gi");
    if let Some(s) = claim.spec.as_mut() {
        s.volume_name = Some("two".into());
    }
    pvcs.create(&PostParams::default(), &claim)
        .await
        .expect("pvc");
    let got = common::eventually("mine Bound", || async {
        let got = pvcs.get("mine").await.ok()?;
        (claim_phase(&got).as_deref() == Some("Bound")).then_some(got)
    })
    .await;
    assert_eq!(got.spec.and_then(|s| s.volume_name).as_deref(), Some("two"));
    // The user named the volume: the claim is not marked bound-by-controller.
    assert!(!got
        .metadata
        .annotations
        .unwrap_or_default()
        .contains_key("pv.kubernetes.io/bound-by-controller"));
    let two = pvs.get("two").await.expect("get");
    assert_eq!(
        two.spec
            .and_then(|s| s.claim_ref)
            .and_then(|r| r.name)
            .as_deref(),
        Some("mine")
    );
}

#[tokio::test]
async fn host_path_provisioner_makes_and_deletes_volumes() {
    use k8s_openapi::api::storage::v1::StorageClass;
    use kube::api::{Patch, PatchParams};
    let c = common::start(&["persistentvolume-binder"], |_, config| {
        config.enable_hostpath_provisioner = true;
    })
    .await;
    let nss: Api<Namespace> = Api::all(c.client.clone());
    nss.create(&PostParams::default(), &common::ns("dyn"))
        .await
        .expect("namespace");
    let classes: Api<StorageClass> = Api::all(c.client.clone());
    for (name, mode) in [("hostpath", "Immediate"), ("later", "WaitForFirstConsumer")] {
        let class = serde_json::from_value(json!({"metadata": {"name": name},
            "provisioner": "kubernetes.io/host-path", "volumeBindingMode": mode}))
        .expect("class");
        classes
            .create(&PostParams::default(), &class)
            .await
            .expect("class");
    }
    let pvs: Api<PersistentVolume> = Api::all(c.client.clone());
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.client.clone(), "dyn");
    let claim = |name: &str, class: &str| {
        let mut p = pvc(name, "1Gi");
        if let Some(s) = p.spec.as_mut() {
            s.storage_class_name = Some(class.into());
        }
        p
    };
    let created = pvcs
        .create(&PostParams::default(), &claim("data", "hostpath"))
        .await
        .expect("pvc");
    let volume_name = format!("pvc-{}", created.metadata.uid.clone().unwrap_or_default());
    let bound = common::eventually("the claim bound to a provisioned volume", || async {
        let got = pvcs.get("data").await.ok()?;
        (claim_phase(&got).as_deref() == Some("Bound")).then_some(got)
    })
    .await;
    assert_eq!(
        bound.spec.clone().and_then(|s| s.volume_name),
        Some(volume_name.clone())
    );
    assert_eq!(
        bound
            .annotations()
            .get("volume.kubernetes.io/storage-provisioner")
            .map(String::as_str),
        Some("kubernetes.io/host-path")
    );
    let volume = pvs.get(&volume_name).await.expect("pv");
    let path = volume
        .spec
        .as_ref()
        .and_then(|s| s.host_path.as_ref())
        .map(|h| h.path.clone())
        .expect("hostPath");
    assert_eq!(path, format!("/tmp/hostpath_pv/{volume_name}"));
    assert!(std::path::Path::new(&path).is_dir(), "{path} made");
    assert_eq!(
        volume
            .spec
            .as_ref()
            .and_then(|s| s.persistent_volume_reclaim_policy.as_deref()),
        Some("Delete")
    );

    // WaitForFirstConsumer: nothing until the scheduler picks a node.
    pvcs.create(&PostParams::default(), &claim("late", "later"))
        .await
        .expect("pvc");
    common::eventually("the delayed claim Pending", || async {
        let got = pvcs.get("late").await.ok()?;
        (claim_phase(&got).as_deref() == Some("Pending")).then_some(())
    })
    .await;
    assert!(
        pvs.list(&Default::default())
            .await
            .expect("list")
            .items
            .len()
            == 1
    );
    pvcs.patch(
        "late",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"annotations": {"volume.kubernetes.io/selected-node": "n1"}}}),
        ),
    )
    .await
    .expect("select node");
    common::eventually("the delayed claim bound", || async {
        let got = pvcs.get("late").await.ok()?;
        (claim_phase(&got).as_deref() == Some("Bound")).then_some(())
    })
    .await;

    // Released with reclaim policy Delete: the directory and the volume go.
    pvcs.delete("data", &DeleteParams::default())
        .await
        .expect("delete pvc");
    common::eventually("the provisioned volume deleted", || async {
        pvs.get_opt(&volume_name)
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    assert!(!std::path::Path::new(&path).exists(), "{path} removed");
}
