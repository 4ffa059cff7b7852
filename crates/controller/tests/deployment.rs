//! The deployment controller (with the ReplicaSet controller) against a
//! real API server. A test stands in for the kubelet, marking pods Ready
//! one at a time through pods/status, and checks the rollout bounds at
//! every step.

mod common;

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    match serde_json::from_value(v) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

fn deployment(name: &str, replicas: i32, strategy: serde_json::Value) -> Deployment {
    from(json!({
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "strategy": strategy,
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}}
    }))
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn image(p: &Pod) -> String {
    p.spec
        .as_ref()
        .map(|s| s.containers[0].image.clone().unwrap_or_default())
        .unwrap_or_default()
}

async fn mark_ready(pods: &Api<Pod>, p: &Pod) {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let status = json!({"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": now}]}});
    let name = p.metadata.name.clone().unwrap_or_default();
    // A pod deleted meanwhile is fine.
    let _ = pods
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await;
}

fn complete(d: &Deployment, image_now: &str) -> bool {
    let Some(s) = &d.status else { return false };
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let img = d
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|s| s.containers[0].image.clone().unwrap_or_default());
    img.as_deref() == Some(image_now)
        && s.observed_generation >= d.metadata.generation
        && s.updated_replicas == Some(want)
        && s.replicas == Some(want)
        && s.available_replicas == Some(want)
        && s.conditions.iter().flatten().any(|c| {
            c.type_ == "Progressing" && c.reason.as_deref() == Some("NewReplicaSetAvailable")
        })
}

/// Plays the kubelet until the rollout to `image_now` completes, calling
/// `check` on the live pods before each pod is marked Ready.
async fn drive_rollout(
    deps: &Api<Deployment>,
    pods: &Api<Pod>,
    name: &str,
    image_now: &str,
    mut check: impl FnMut(&[Pod]),
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let lp = ListParams::default().labels(&format!("app={name}"));
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for the rollout of {name} to {image_now}"
        );
        let live: Vec<Pod> = match pods.list(&lp).await {
            Ok(l) => l
                .items
                .into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .collect(),
            Err(_) => continue,
        };
        check(&live);
        if let Some(p) = live.iter().find(|p| !is_ready(p)) {
            mark_ready(pods, p).await;
            continue;
        }
        if deps
            .get(name)
            .await
            .ok()
            .is_some_and(|d| complete(&d, image_now))
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn set_image(deps: &Api<Deployment>, name: &str, image: &str) {
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}});
    deps.patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("set image");
}

fn revision(rs: &ReplicaSet) -> String {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("deployment.kubernetes.io/revision"))
        .cloned()
        .unwrap_or_default()
}

async fn setup(ns: &str) -> (common::Cluster, Api<Deployment>, Api<ReplicaSet>, Api<Pod>) {
    let c = common::start(&["deployment", "replicaset"], |_, _| {}).await;
    let nss: Api<Namespace> = Api::all(c.client.clone());
    nss.create(&PostParams::default(), &common::ns(ns))
        .await
        .expect("namespace");
    let deps = Api::namespaced(c.client.clone(), ns);
    let rss = Api::namespaced(c.client.clone(), ns);
    let pods = Api::namespaced(c.client.clone(), ns);
    (c, deps, rss, pods)
}

#[tokio::test]
async fn rolling_update_respects_surge_and_unavailable_then_rolls_back() {
    let (_c, deps, rss, pods) = setup("rolling").await;
    let strategy =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}});
    deps.create(&PostParams::default(), &deployment("web", 4, strategy))
        .await
        .expect("create");
    drive_rollout(&deps, &pods, "web", "busybox:1", |live| {
        assert!(live.len() <= 5, "{} pods", live.len())
    })
    .await;
    let d = deps.get("web").await.expect("get");
    assert!(d
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c
            .iter()
            .any(|c| c.type_ == "Available" && c.status == "True")));

    set_image(&deps, "web", "busybox:2").await;
    drive_rollout(&deps, &pods, "web", "busybox:2", |live| {
        assert!(live.len() <= 5, "maxSurge exceeded: {} pods", live.len());
        let ready = live.iter().filter(|p| is_ready(p)).count();
        assert!(ready >= 3, "maxUnavailable exceeded: {ready} ready");
    })
    .await;
    let all = rss.list(&ListParams::default()).await.expect("list").items;
    assert_eq!(all.len(), 2);
    let revs: BTreeSet<String> = all.iter().map(revision).collect();
    assert_eq!(revs, BTreeSet::from(["1".to_string(), "2".to_string()]));
    let first = all.iter().find(|r| revision(r) == "1").expect("revision 1");
    assert_eq!(first.spec.as_ref().and_then(|s| s.replicas), Some(0));
    let d = deps.get("web").await.expect("get");
    assert_eq!(
        d.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("deployment.kubernetes.io/revision"))
            .map(String::as_str),
        Some("2")
    );
    assert!(pods
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .iter()
        .all(|p| image(p) == "busybox:2"));

    // Rolling back is putting the old template back: the old ReplicaSet returns as revision 3.
    set_image(&deps, "web", "busybox:1").await;
    drive_rollout(&deps, &pods, "web", "busybox:1", |live| {
        assert!(live.len() <= 5)
    })
    .await;
    let again = rss
        .get(first.metadata.name.as_deref().unwrap_or_default())
        .await
        .expect("the first replica set is reused");
    assert_eq!(revision(&again), "3");
    assert_eq!(
        rss.list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        2
    );

    // What `kubectl describe` shows: the deployment controller's scaling
    // Events on the Deployment, the ReplicaSet controller's on the sets.
    let first = first.metadata.name.clone().unwrap_or_default();
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(_c.client.clone(), "rolling");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let list = events
            .list(&ListParams::default())
            .await
            .expect("events")
            .items;
        let has = |kind: &str, reason: &str, message: &dyn Fn(&str) -> bool| {
            list.iter().any(|e| {
                e.involved_object.kind.as_deref() == Some(kind)
                    && e.reason.as_deref() == Some(reason)
                    && message(e.message.as_deref().unwrap_or(""))
            })
        };
        let created = has("Deployment", "ScalingReplicaSet", &|m| {
            m == format!("Scaled up replica set {first} to 4")
        });
        let down = has("Deployment", "ScalingReplicaSet", &|m| {
            m.starts_with(&format!("Scaled down replica set {first} to ")) && m.contains(" from ")
        });
        let pods_created = has("ReplicaSet", "SuccessfulCreate", &|m| {
            m.starts_with("Created pod: web-")
        });
        let pods_deleted = has("ReplicaSet", "SuccessfulDelete", &|m| {
            m.starts_with("Deleted pod: web-")
        });
        if created && down && pods_created && pods_deleted {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "missing events (created {created}, down {down}, pods created {pods_created}, deleted {pods_deleted}): {:?}",
            list.iter().map(|e| (e.reason.clone(), e.message.clone())).collect::<Vec<_>>()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn recreate_never_runs_two_templates_at_once() {
    let (_c, deps, _rss, pods) = setup("recreate").await;
    deps.create(
        &PostParams::default(),
        &deployment("db", 2, json!({"type": "Recreate"})),
    )
    .await
    .expect("create");
    drive_rollout(&deps, &pods, "db", "busybox:1", |_| {}).await;
    set_image(&deps, "db", "busybox:2").await;
    drive_rollout(&deps, &pods, "db", "busybox:2", |live| {
        let images: BTreeSet<String> = live.iter().map(image).collect();
        assert!(images.len() <= 1, "old and new pods together: {images:?}");
    })
    .await;
}

#[tokio::test]
async fn pause_holds_the_rollout_and_history_is_limited() {
    let (_c, deps, rss, pods) = setup("pause").await;
    let mut d = deployment("app", 1, json!({"type": "RollingUpdate"}));
    if let Some(s) = d.spec.as_mut() {
        s.revision_history_limit = Some(1);
    }
    deps.create(&PostParams::default(), &d)
        .await
        .expect("create");
    drive_rollout(&deps, &pods, "app", "busybox:1", |_| {}).await;
    set_image(&deps, "app", "busybox:2").await;
    drive_rollout(&deps, &pods, "app", "busybox:2", |_| {}).await;
    set_image(&deps, "app", "busybox:3").await;
    drive_rollout(&deps, &pods, "app", "busybox:3", |_| {}).await;
    common::eventually("history trimmed to one old replica set", || async {
        (rss.list(&ListParams::default()).await.ok()?.items.len() == 2).then_some(())
    })
    .await;

    deps.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"paused": true}})),
    )
    .await
    .expect("pause");
    set_image(&deps, "app", "busybox:4").await;
    common::eventually("the paused condition", || async {
        let d = deps.get("app").await.ok()?;
        let s = d.status?;
        (s.observed_generation >= d.metadata.generation
            && s.conditions?.iter().any(|c| {
                c.type_ == "Progressing" && c.reason.as_deref() == Some("DeploymentPaused")
            }))
        .then_some(())
    })
    .await;
    let images: BTreeSet<String> = rss
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .iter()
        .filter_map(|r| {
            r.spec
                .as_ref()?
                .template
                .as_ref()?
                .spec
                .as_ref()
                .map(|s| s.containers[0].image.clone().unwrap_or_default())
        })
        .collect();
    assert!(!images.contains("busybox:4"), "no rollout while paused");
    deps.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"paused": false}})),
    )
    .await
    .expect("resume");
    drive_rollout(&deps, &pods, "app", "busybox:4", |_| {}).await;
}

#[tokio::test]
async fn a_stuck_rollout_exceeds_its_progress_deadline() {
    let (_c, deps, _rss, _pods) = setup("stuck").await;
    let mut d = deployment("stuck", 1, json!({"type": "RollingUpdate"}));
    if let Some(s) = d.spec.as_mut() {
        s.progress_deadline_seconds = Some(1);
    }
    deps.create(&PostParams::default(), &d)
        .await
        .expect("create");
    // No pod ever becomes ready.
    let c = common::eventually("ProgressDeadlineExceeded", || async {
        let d = deps.get("stuck").await.ok()?;
        d.status?.conditions?.into_iter().find(|c| {
            c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
        })
    })
    .await;
    assert_eq!(c.status, "False");
    assert!(c
        .message
        .is_some_and(|m| m.ends_with("has timed out progressing.")));
}

#[tokio::test]
async fn deleting_a_deployment_removes_its_replica_sets_and_pods() {
    let c = common::start(&["deployment", "replicaset", "garbagecollector"], |_, _| {}).await;
    let nss: Api<Namespace> = Api::all(c.client.clone());
    nss.create(&PostParams::default(), &common::ns("cascade"))
        .await
        .expect("namespace");
    let deps: Api<Deployment> = Api::namespaced(c.client.clone(), "cascade");
    let rss: Api<ReplicaSet> = Api::namespaced(c.client.clone(), "cascade");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "cascade");
    deps.create(
        &PostParams::default(),
        &deployment("gone", 3, json!({"type": "RollingUpdate"})),
    )
    .await
    .expect("create");
    common::eventually("3 pods", || async {
        (pods.list(&ListParams::default()).await.ok()?.items.len() == 3).then_some(())
    })
    .await;
    // What `kubectl delete deployment gone` sends.
    deps.delete("gone", &kube::api::DeleteParams::background())
        .await
        .expect("delete");
    common::eventually("the replica sets and pods to be gone", || async {
        let r = rss.list(&ListParams::default()).await.ok()?.items.len();
        let p = pods.list(&ListParams::default()).await.ok()?.items.len();
        (r == 0 && p == 0).then_some(())
    })
    .await;
}
