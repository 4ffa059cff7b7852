//! The ResourceQuota controller against a real API server: `status.hard`
//! mirrors `spec.hard` in canonical form, `status.used` follows pods,
//! configmaps and deployments as they are created, finish and go away, and
//! a BestEffort-scoped quota counts only best-effort pods; claims count by
//! storage class, and a change that moves no usage changes no status.
//!
//! That the controller sends no write at all when the status is current is
//! checked by `resourcequota::sync::tests` only: the API server drops an
//! identical update without a watch event, so from outside a needless
//! write cannot be told from none.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolumeClaim, Pod, ResourceQuota, Service,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::{json, Value};

const NS: &str = "quota";

fn object<K: serde::de::DeserializeOwned>(v: Value) -> K {
    serde_json::from_value(v).unwrap_or_else(|e| panic!("test object: {e}"))
}

fn pod(name: &str, containers: Value, init: Value) -> Pod {
    object(json!({"metadata": {"name": name},
        "spec": {"containers": containers, "initContainers": init}}))
}

fn container(name: &str, requests: Value) -> Value {
    json!({"name": name, "image": "busybox", "resources": {"requests": requests}})
}

fn text(m: Option<&BTreeMap<String, Quantity>>) -> BTreeMap<String, String> {
    m.into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect()
}

fn want(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Polls until the quota's `status.used` is exactly `used`, failing with
/// the last seen usage after 30 s.
async fn used_becomes(quotas: &Api<ResourceQuota>, name: &str, used: &[(&str, &str)], what: &str) {
    let expected = want(used);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = quotas
            .get(name)
            .await
            .ok()
            .map(|q| text(q.status.as_ref().and_then(|s| s.used.as_ref())));
        if seen.as_ref() == Some(&expected) {
            return;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}: used {seen:?}, want {expected:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn usage_follows_objects_and_scopes() {
    // The ResourceQuota admission plugin is off: the controller must count
    // whatever exists, including pods that plugin would refuse (a
    // best-effort pod beside a requests quota, made before the quota).
    let server = integration::TestApiServer::start_with(|c| {
        c.admission.disable.push("ResourceQuota".into());
    })
    .await;
    let c = common::start_on(server, &["resourcequota"], |_, _| {}).await;
    let nss: Api<Namespace> = Api::all(c.client.clone());
    nss.create(&PostParams::default(), &common::ns(NS))
        .await
        .expect("namespace");
    let pp = PostParams::default();
    let quotas: Api<ResourceQuota> = Api::namespaced(c.client.clone(), NS);
    quotas
        .create(
            &pp,
            &object(json!({"metadata": {"name": "compute"}, "spec": {"hard": {
                "pods": "10", "requests.cpu": "2000m", "requests.memory": "2Gi",
                "configmaps": "5", "count/deployments.apps": "3"}}})),
        )
        .await
        .expect("quota");
    quotas
        .create(
            &pp,
            &object(json!({"metadata": {"name": "best-effort"},
                "spec": {"hard": {"pods": "5"}, "scopes": ["BestEffort"]}})),
        )
        .await
        .expect("scoped quota");

    let zero = [
        ("configmaps", "0"),
        ("count/deployments.apps", "0"),
        ("pods", "0"),
        ("requests.cpu", "0"),
        ("requests.memory", "0"),
    ];
    used_becomes(&quotas, "compute", &zero, "an empty namespace's usage").await;
    let q = quotas.get("compute").await.expect("quota");
    assert_eq!(
        text(q.status.as_ref().and_then(|s| s.hard.as_ref())),
        want(&[
            ("configmaps", "5"),
            ("count/deployments.apps", "3"),
            ("pods", "10"),
            ("requests.cpu", "2"),
            ("requests.memory", "2Gi"),
        ]),
        "status.hard is spec.hard in canonical form"
    );
    used_becomes(
        &quotas,
        "best-effort",
        &[("pods", "0")],
        "the scoped quota's usage",
    )
    .await;

    let pods: Api<Pod> = Api::namespaced(c.client.clone(), NS);
    pods.create(
        &pp,
        &pod(
            "big",
            json!([container("app", json!({"cpu": "500m", "memory": "512Mi"}))]),
            json!([]),
        ),
    )
    .await
    .expect("pod big");
    // Its init container needs more cpu than its app container: 1 counts.
    pods.create(
        &pp,
        &pod(
            "init-heavy",
            json!([container("app", json!({"cpu": "250m", "memory": "256Mi"}))]),
            json!([container("init", json!({"cpu": "1"}))]),
        ),
    )
    .await
    .expect("pod init-heavy");
    pods.create(
        &pp,
        &pod(
            "best-effort",
            json!([container("app", json!({}))]),
            json!([]),
        ),
    )
    .await
    .expect("pod best-effort");
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), NS);
    for name in ["one", "two"] {
        cms.create(&pp, &object(json!({"metadata": {"name": name}})))
            .await
            .expect("configmap");
    }
    let deployments: Api<Deployment> = Api::namespaced(c.client.clone(), NS);
    deployments
        .create(
            &pp,
            &object(json!({"metadata": {"name": "web"}, "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})),
        )
        .await
        .expect("deployment");

    used_becomes(
        &quotas,
        "compute",
        &[
            ("configmaps", "2"),
            ("count/deployments.apps", "1"),
            ("pods", "3"),
            ("requests.cpu", "1500m"),
            ("requests.memory", "768Mi"),
        ],
        "usage of three pods, two configmaps, one deployment",
    )
    .await;
    used_becomes(
        &quotas,
        "best-effort",
        &[("pods", "1")],
        "one best-effort pod",
    )
    .await;

    // A finished pod no longer counts.
    pods.patch_status(
        "big",
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": {"phase": "Succeeded"}})),
    )
    .await
    .expect("finish big");
    used_becomes(
        &quotas,
        "compute",
        &[
            ("configmaps", "2"),
            ("count/deployments.apps", "1"),
            ("pods", "2"),
            ("requests.cpu", "1"),
            ("requests.memory", "256Mi"),
        ],
        "usage without the succeeded pod",
    )
    .await;

    // Deletions bring usage down.
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    pods.delete("init-heavy", &now).await.expect("delete pod");
    pods.delete("best-effort", &now).await.expect("delete pod");
    cms.delete("one", &now).await.expect("delete configmap");
    deployments
        .delete("web", &now)
        .await
        .expect("delete deployment");
    used_becomes(
        &quotas,
        "compute",
        &[
            ("configmaps", "1"),
            ("count/deployments.apps", "0"),
            ("pods", "0"),
            ("requests.cpu", "0"),
            ("requests.memory", "0"),
        ],
        "usage after the deletions",
    )
    .await;
    used_becomes(
        &quotas,
        "best-effort",
        &[("pods", "0")],
        "no best-effort pod",
    )
    .await;

    // Raising a limit shows in status.hard; usage stays.
    quotas
        .patch(
            "compute",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"hard": {"configmaps": "1k"}}})),
        )
        .await
        .expect("raise configmaps");
    common::eventually("the raised limit in status.hard", || async {
        let q = quotas.get("compute").await.ok()?;
        let hard = text(q.status.as_ref().and_then(|s| s.hard.as_ref()));
        (hard.get("configmaps").map(String::as_str) == Some("1k")).then_some(())
    })
    .await;
}

fn claim(name: &str, class: Option<&str>, size: &str) -> PersistentVolumeClaim {
    let mut v = json!({"metadata": {"name": name}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}});
    if let Some(c) = class {
        v["spec"]["storageClassName"] = json!(c);
    }
    object(v)
}

#[tokio::test]
async fn claims_by_storage_class_services_and_one_status_change_per_usage_change() {
    const NS: &str = "claims";
    // Counted here are the controller's status writes: the ResourceQuota
    // admission plugin, which charges creates to the same status, is off.
    let server = integration::TestApiServer::start_with(|c| {
        c.admission.disable.push("ResourceQuota".into());
    })
    .await;
    let c = common::start_on(server, &["resourcequota"], |_, _| {}).await;
    let nss: Api<Namespace> = Api::all(c.client.clone());
    nss.create(&PostParams::default(), &common::ns(NS))
        .await
        .expect("namespace");
    let pp = PostParams::default();
    let quotas: Api<ResourceQuota> = Api::namespaced(c.client.clone(), NS);
    quotas
        .create(
            &pp,
            &object(json!({"metadata": {"name": "storage"}, "spec": {"hard": {
                "persistentvolumeclaims": "5", "requests.storage": "10Gi",
                "gold.storageclass.storage.k8s.io/requests.storage": "5Gi",
                "gold.storageclass.storage.k8s.io/persistentvolumeclaims": "2",
                "services": "3", "count/services": "3"}}})),
        )
        .await
        .expect("quota");
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(c.client.clone(), NS);
    claims
        .create(&pp, &claim("gold-1", Some("gold"), "1Gi"))
        .await
        .expect("claim");
    claims
        .create(&pp, &claim("plain", None, "500Mi"))
        .await
        .expect("claim");
    let services: Api<Service> = Api::namespaced(c.client.clone(), NS);
    services
        .create(
            &pp,
            &object(json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}})),
        )
        .await
        .expect("service");
    used_becomes(
        &quotas,
        "storage",
        &[
            ("count/services", "1"),
            (
                "gold.storageclass.storage.k8s.io/persistentvolumeclaims",
                "1",
            ),
            ("gold.storageclass.storage.k8s.io/requests.storage", "1Gi"),
            ("persistentvolumeclaims", "2"),
            ("requests.storage", "1524Mi"),
            ("services", "1"),
        ],
        "usage of two claims and a service",
    )
    .await;

    // From here: a change that moves no usage (a label) must not change the
    // status; the next claim must, once, with no flapping after.
    let rv = quotas
        .get("storage")
        .await
        .expect("quota")
        .metadata
        .resource_version
        .unwrap_or_default();
    let watch = quotas
        .watch(
            &WatchParams::default()
                .fields("metadata.name=storage")
                .disable_bookmarks(),
            &rv,
        )
        .await
        .expect("watch quota");
    let mut watch = std::pin::pin!(watch);
    claims
        .patch(
            "plain",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await
        .expect("label claim");
    claims
        .create(&pp, &claim("gold-2", Some("gold"), "1Gi"))
        .await
        .expect("claim");
    let target = want(&[
        ("count/services", "1"),
        (
            "gold.storageclass.storage.k8s.io/persistentvolumeclaims",
            "2",
        ),
        ("gold.storageclass.storage.k8s.io/requests.storage", "2Gi"),
        ("persistentvolumeclaims", "3"),
        ("requests.storage", "2548Mi"),
        ("services", "1"),
    ]);
    let mut changes = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let event = tokio::time::timeout_at(deadline, watch.next())
            .await
            .expect("timed out waiting for the new usage")
            .expect("watch ended")
            .expect("watch event");
        if let WatchEvent::Modified(q) = event {
            changes += 1;
            if text(q.status.as_ref().and_then(|s| s.used.as_ref())) == target {
                break;
            }
        }
    }
    // A flapping status would change again right behind; give it a moment.
    let extra = tokio::time::timeout(Duration::from_secs(1), watch.next()).await;
    assert!(extra.is_err(), "an extra quota change: {extra:?}");
    assert_eq!(changes, 1, "one status change for one usage change");
}

/// A scheduled pod deleted with a grace period stays in storage (no kubelet
/// here confirms it), charged until `deletionTimestamp + grace` has passed:
/// the controller requeues the quota for that moment, no event needed.
#[tokio::test]
async fn a_terminating_pod_stops_counting_once_its_grace_has_passed() {
    const NS: &str = "grace";
    let c = common::start(&["resourcequota"], |_, _| {}).await;
    let nss: Api<Namespace> = Api::all(c.client.clone());
    nss.create(&PostParams::default(), &common::ns(NS))
        .await
        .expect("namespace");
    let pp = PostParams::default();
    let quotas: Api<ResourceQuota> = Api::namespaced(c.client.clone(), NS);
    quotas
        .create(
            &pp,
            &object(json!({"metadata": {"name": "q"},
                "spec": {"hard": {"pods": "5", "count/pods": "5"}}})),
        )
        .await
        .expect("quota");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), NS);
    pods.create(
        &pp,
        &object(
            json!({"metadata": {"name": "p"}, "spec": {"nodeName": "node-1",
            "containers": [{"name": "c", "image": "busybox"}]}}),
        ),
    )
    .await
    .expect("pod");
    used_becomes(
        &quotas,
        "q",
        &[("count/pods", "1"), ("pods", "1")],
        "the running pod charged",
    )
    .await;
    let grace = DeleteParams {
        grace_period_seconds: Some(1),
        ..Default::default()
    };
    pods.delete("p", &grace).await.expect("delete pod");
    let p = pods
        .get("p")
        .await
        .expect("the pod stays while terminating");
    assert!(p.metadata.deletion_timestamp.is_some());
    // Still in storage, so count/pods keeps it; `pods` lets it go.
    used_becomes(
        &quotas,
        "q",
        &[("count/pods", "1"), ("pods", "0")],
        "the terminating pod no longer charged",
    )
    .await;
}
