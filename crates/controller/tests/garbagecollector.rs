//! The garbage collector against a real API server: cascading deletion in
//! all three modes (Background, Foreground with blockOwnerDeletion,
//! Orphan), and dependents created after their owner is already gone.

mod common;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, PostParams, PropagationPolicy};
use serde_json::json;

fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    match serde_json::from_value(v) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

/// An owner ConfigMap and two dependents (one blocking its owner's deletion).
async fn family(cms: &Api<ConfigMap>, owner: &str) -> (String, String, String) {
    let o = cms
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": owner}})),
        )
        .await
        .expect("create owner");
    let uid = o.metadata.uid.clone().expect("uid");
    let dep = |name: String, block: bool| -> ConfigMap {
        from(json!({"metadata": {"name": name, "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": owner, "uid": uid, "blockOwnerDeletion": block}]}}))
    };
    let a = format!("{owner}-blocking");
    let b = format!("{owner}-plain");
    cms.create(&PostParams::default(), &dep(a.clone(), true))
        .await
        .expect("create dependent");
    cms.create(&PostParams::default(), &dep(b.clone(), false))
        .await
        .expect("create dependent");
    (uid, a, b)
}

/// Puts a finalizer on `name` (holding its deletion) or takes it off.
async fn set_hold(cms: &Api<ConfigMap>, name: &str, hold: bool) {
    let finalizers = if hold {
        json!(["example.com/hold"])
    } else {
        json!(null)
    };
    cms.patch(
        name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&json!({"metadata": {"finalizers": finalizers}})),
    )
    .await
    .expect("set the hold finalizer");
}

async fn gone(cms: &Api<ConfigMap>, name: &str) {
    common::eventually(&format!("{name} to be deleted"), || async {
        cms.get_opt(name).await.ok()?.is_none().then_some(())
    })
    .await;
}

async fn setup(ns: &str) -> (common::Cluster, Api<ConfigMap>) {
    let c = common::start(&["garbagecollector"], |_, _| {}).await;
    let nss: Api<Namespace> = Api::all(c.client.clone());
    nss.create(&PostParams::default(), &common::ns(ns))
        .await
        .expect("create namespace");
    let cms = Api::namespaced(c.client.clone(), ns);
    (c, cms)
}

#[tokio::test]
async fn background_deletion_removes_dependents() {
    let (_c, cms) = setup("gc-bg").await;
    let (_, a, b) = family(&cms, "owner").await;
    cms.delete("owner", &DeleteParams::background())
        .await
        .expect("delete");
    gone(&cms, &a).await;
    gone(&cms, &b).await;
}

#[tokio::test]
async fn foreground_deletion_waits_for_blocking_dependents() {
    let (_c, cms) = setup("gc-fg").await;
    let (_, a, b) = family(&cms, "owner").await;
    // A finalizer on the blocking dependent holds the owner in foreground deletion.
    set_hold(&cms, &a, true).await;
    cms.delete("owner", &DeleteParams::foreground())
        .await
        .expect("delete");
    gone(&cms, &b).await;
    let held = common::eventually("the blocking dependent to be deleting", || async {
        cms.get_opt(&a)
            .await
            .ok()?
            .filter(|d| d.metadata.deletion_timestamp.is_some())
    })
    .await;
    assert!(held.metadata.deletion_timestamp.is_some());
    let owner = cms
        .get("owner")
        .await
        .expect("the owner waits for its blocking dependent");
    assert!(owner
        .metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == "foregroundDeletion")));
    set_hold(&cms, &a, false).await;
    gone(&cms, &a).await;
    gone(&cms, "owner").await;
}

#[tokio::test]
async fn orphan_deletion_keeps_dependents_without_the_owner_reference() {
    let (_c, cms) = setup("gc-orphan").await;
    let (uid, a, b) = family(&cms, "owner").await;
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Orphan),
        ..Default::default()
    };
    cms.delete("owner", &dp).await.expect("delete");
    gone(&cms, "owner").await;
    for name in [&a, &b] {
        let d = cms.get(name).await.expect("an orphaned dependent stays");
        assert!(
            !d.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == uid),
            "{name} still names its owner"
        );
    }
}

#[tokio::test]
async fn dependent_of_an_absent_owner_is_deleted_but_one_with_a_live_owner_stays() {
    let (_c, cms) = setup("gc-dangling").await;
    let live = cms
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "alive"}})),
        )
        .await
        .expect("create");
    let live_uid = live.metadata.uid.clone().expect("uid");
    let dangling: ConfigMap = from(
        json!({"metadata": {"name": "dangling", "ownerReferences": [{
        "apiVersion": "v1", "kind": "ConfigMap", "name": "never", "uid": "00000000-0000-0000-0000-000000000001"}]}}),
    );
    cms.create(&PostParams::default(), &dangling)
        .await
        .expect("create");
    let both: ConfigMap = from(json!({"metadata": {"name": "both", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "never", "uid": "00000000-0000-0000-0000-000000000001"},
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "alive", "uid": live_uid}]}}));
    cms.create(&PostParams::default(), &both)
        .await
        .expect("create");
    gone(&cms, "dangling").await;
    // The one still owned by a live owner loses only the dangling reference.
    let kept = common::eventually("the dangling reference to be removed", || async {
        cms.get_opt("both").await.ok()?.filter(|b| {
            b.metadata
                .owner_references
                .as_ref()
                .is_some_and(|o| o.len() == 1)
        })
    })
    .await;
    assert_eq!(
        kept.metadata.owner_references.expect("refs")[0].uid,
        live_uid
    );
}

/// The garbage collector starts after the owner's foreground deletion began:
/// its first list has the owner before its dependents, which must still be
/// deleted (the plain one at once, the owner after the blocking one).
#[tokio::test]
async fn foreground_deletion_begun_before_the_collector_starts_completes() {
    let server = integration::TestApiServer::start().await;
    let nss: Api<Namespace> = Api::all(server.client.clone());
    nss.create(&PostParams::default(), &common::ns("gc-late"))
        .await
        .expect("create namespace");
    let cms: Api<ConfigMap> = Api::namespaced(server.client.clone(), "gc-late");
    let (_, a, b) = family(&cms, "owner").await;
    set_hold(&cms, &a, true).await;
    cms.delete("owner", &DeleteParams::foreground())
        .await
        .expect("delete");
    let _c = common::start_on(server, &["garbagecollector"], |_, _| {}).await;
    gone(&cms, &b).await;
    set_hold(&cms, &a, false).await;
    gone(&cms, &a).await;
    gone(&cms, "owner").await;
}
