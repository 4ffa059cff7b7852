//! The ResourceQuota controller against a real API server: `status.hard`
//! mirrors `spec.hard` in canonical form, `status.used` follows pods,
//! configmaps and deployments as they are created, finish and go away, and
//! a BestEffort-scoped quota counts only best-effort pods.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, ResourceQuota};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
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
