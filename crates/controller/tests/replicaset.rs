//! The ReplicaSet and ReplicationController controllers against a real API
//! server: scaling, replacement, adoption and release by selector and
//! controllerRef, status from pod readiness, and a controller-manager
//! restart that creates and deletes nothing.

mod common;

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Namespace, Pod, ReplicationController};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    match serde_json::from_value(v) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

fn rs(name: &str, app: &str, replicas: i32) -> ReplicaSet {
    from(json!({
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
            "template": {"metadata": {"labels": {"app": app}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
    }))
}

/// The active pods controlled by `uid`.
async fn owned(pods: &Api<Pod>, uid: &str) -> Vec<Pod> {
    pods.list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            p.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == uid && o.controller == Some(true))
        })
        .collect()
}

async fn wait_owned(pods: &Api<Pod>, uid: &str, n: usize) -> Vec<Pod> {
    common::eventually(&format!("{n} owned pods"), || async {
        let p = owned(pods, uid).await;
        (p.len() == n).then_some(p)
    })
    .await
}

/// What a kubelet would report: the pod running and Ready.
async fn mark_ready(pods: &Api<Pod>, name: &str) {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let status = json!({"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": now}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("mark pod ready");
}

fn uids(pods: &[Pod]) -> BTreeSet<String> {
    pods.iter().filter_map(|p| p.metadata.uid.clone()).collect()
}

#[tokio::test]
async fn replicaset_scales_replaces_adopts_releases_and_reports_status() {
    let c = common::start(&["replicaset"], |_, _| {}).await;
    let nss: Api<Namespace> = Api::all(c.client.clone());
    nss.create(&PostParams::default(), &common::ns("rs"))
        .await
        .expect("namespace");
    let rss: Api<ReplicaSet> = Api::namespaced(c.client.clone(), "rs");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "rs");
    let created = rss
        .create(&PostParams::default(), &rs("web", "web", 3))
        .await
        .expect("create");
    let uid = created.metadata.uid.clone().expect("uid");
    let three = wait_owned(&pods, &uid, 3).await;
    for p in &three {
        assert!(p
            .metadata
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with("web-")));
        assert_eq!(
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("app"))
                .map(String::as_str),
            Some("web")
        );
        let r = &p.metadata.owner_references.as_ref().expect("refs")[0];
        assert_eq!(
            (r.kind.as_str(), r.block_owner_deletion),
            ("ReplicaSet", Some(true))
        );
    }

    // Readiness flows into status.
    for p in &three {
        mark_ready(&pods, p.metadata.name.as_deref().unwrap_or_default()).await;
    }
    let st = common::eventually("status with 3 ready", || async {
        let s = rss.get("web").await.ok()?.status?;
        (s.replicas == 3
            && s.ready_replicas == Some(3)
            && s.available_replicas == Some(3)
            && s.fully_labeled_replicas == Some(3))
        .then_some(s)
    })
    .await;
    assert_eq!(st.observed_generation, created.metadata.generation);

    // A deleted pod is replaced.
    let victim = three[0].metadata.name.clone().unwrap_or_default();
    pods.delete(&victim, &DeleteParams::default())
        .await
        .expect("delete pod");
    let after = wait_owned(&pods, &uid, 3).await;
    assert!(!after
        .iter()
        .any(|p| p.metadata.name.as_deref() == Some(victim.as_str())));

    // Scale up and down; unready pods go first.
    rss.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"replicas": 5}})),
    )
    .await
    .expect("scale up");
    let five = wait_owned(&pods, &uid, 5).await;
    let ready_before: BTreeSet<String> = five
        .iter()
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    assert_eq!(ready_before.len(), 2);
    rss.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"replicas": 2}})),
    )
    .await
    .expect("scale down");
    let two = wait_owned(&pods, &uid, 2).await;
    assert_eq!(uids(&two), ready_before, "the two ready pods are kept");

    // A matching orphan is adopted (and then, being one too many, a pod goes).
    let orphan: Pod = from(
        json!({"metadata": {"name": "orphan", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
    );
    pods.create(&PostParams::default(), &orphan)
        .await
        .expect("create orphan");
    common::eventually("the orphan adopted or removed", || async {
        match pods.get_opt("orphan").await.ok()? {
            None => Some(()),
            Some(p)
                if p.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.uid == uid) =>
            {
                Some(())
            }
            Some(_) => None,
        }
    })
    .await;
    wait_owned(&pods, &uid, 2).await;

    // A pod relabelled out of the selector is released and replaced.
    let kept = owned(&pods, &uid).await;
    let released = kept[0].metadata.name.clone().unwrap_or_default();
    pods.patch(
        &released,
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"labels": {"app": "other"}}})),
    )
    .await
    .expect("relabel");
    common::eventually("the relabelled pod released", || async {
        let p = pods.get(&released).await.ok()?;
        (!p.metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.uid == uid))
        .then_some(())
    })
    .await;
    let now = wait_owned(&pods, &uid, 2).await;
    assert!(!now
        .iter()
        .any(|p| p.metadata.name.as_deref() == Some(released.as_str())));
}

#[tokio::test]
async fn a_restarted_controller_creates_and_deletes_nothing() {
    let mut c = common::start(&["replicaset"], |_, _| {}).await;
    let nss: Api<Namespace> = Api::all(c.client.clone());
    nss.create(&PostParams::default(), &common::ns("restart"))
        .await
        .expect("namespace");
    let rss: Api<ReplicaSet> = Api::namespaced(c.client.clone(), "restart");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "restart");
    let a = rss
        .create(&PostParams::default(), &rs("a", "a", 20))
        .await
        .expect("create");
    let a_uid = a.metadata.uid.clone().expect("uid");
    let before = uids(&wait_owned(&pods, &a_uid, 20).await);
    c.restart_controllers(&["replicaset"]).await;
    // Once the new controller manager has synced a new ReplicaSet, it has
    // also seen the first one.
    let b = rss
        .create(&PostParams::default(), &rs("b", "b", 1))
        .await
        .expect("create");
    wait_owned(&pods, &b.metadata.uid.clone().expect("uid"), 1).await;
    let all = pods
        .list(&ListParams::default().labels("app=a"))
        .await
        .expect("list")
        .items;
    assert_eq!(
        uids(&all),
        before,
        "no pod created or deleted by the restart"
    );
}

#[tokio::test]
async fn a_large_replicaset_gets_exactly_its_replicas() {
    let c = common::start(&["replicaset"], |_, _| {}).await;
    let nss: Api<Namespace> = Api::all(c.client.clone());
    nss.create(&PostParams::default(), &common::ns("big"))
        .await
        .expect("namespace");
    let rss: Api<ReplicaSet> = Api::namespaced(c.client.clone(), "big");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "big");
    rss.create(&PostParams::default(), &rs("big", "big", 200))
        .await
        .expect("create");
    common::eventually("status with 200 replicas", || async {
        (rss.get("big").await.ok()?.status?.replicas == 200).then_some(())
    })
    .await;
    let n = pods
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .len();
    assert_eq!(n, 200);
}

#[tokio::test]
async fn replication_controller_runs_the_same_code() {
    let c = common::start(&["replicationcontroller"], |_, _| {}).await;
    let nss: Api<Namespace> = Api::all(c.client.clone());
    nss.create(&PostParams::default(), &common::ns("rc"))
        .await
        .expect("namespace");
    let rcs: Api<ReplicationController> = Api::namespaced(c.client.clone(), "rc");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "rc");
    let rc: ReplicationController = from(json!({
        "metadata": {"name": "legacy"},
        "spec": {"replicas": 2, "selector": {"app": "legacy"},
            "template": {"metadata": {"labels": {"app": "legacy"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
    }));
    let rc = rcs
        .create(&PostParams::default(), &rc)
        .await
        .expect("create");
    let uid = rc.metadata.uid.clone().expect("uid");
    let two = wait_owned(&pods, &uid, 2).await;
    let r = &two[0].metadata.owner_references.as_ref().expect("refs")[0];
    assert_eq!(
        (r.api_version.as_str(), r.kind.as_str()),
        ("v1", "ReplicationController")
    );
    common::eventually("RC status", || async {
        (rcs.get("legacy").await.ok()?.status?.replicas == 2).then_some(())
    })
    .await;
}
