//! The horizontal pod autoscaler against a real API server: a Deployment
//! (run by the deployment and ReplicaSet controllers) is scaled through its
//! `scale` subresource from the CPU figures of a metrics API (a fake
//! metrics server in this test behind an APIService, answering every pod's
//! usage from a knob the test turns). Pods are marked Running and Ready by
//! the test, as a kubelet would.

mod common;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Endpoints, Event, Pod, Service};
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

const NS: &str = "default";

fn from<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

/// A metrics.k8s.io server reporting `usage` millicores for every pod the
/// API server lists for the query's selector.
async fn fake_metrics(client: kube::Client, usage: Arc<AtomicI64>) -> u16 {
    let (port, _) = integration::https::serve(move |r: integration::https::Request| {
        let (client, usage) = (client.clone(), usage.clone());
        async move {
            if r.path == "/apis/metrics.k8s.io/v1beta1" {
                return (200, json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "metrics.k8s.io/v1beta1",
                    "resources": [{"name": "pods", "singularName": "", "namespaced": true, "kind": "PodMetrics", "verbs": ["get", "list"]}]}).to_string());
            }
            let Some(ns) = r.path.strip_prefix("/apis/metrics.k8s.io/v1beta1/namespaces/").and_then(|p| p.strip_suffix("/pods")) else {
                return (404, json!({"kind": "Status", "code": 404}).to_string());
            };
            let selector = r.query.split('&').find_map(|kv| kv.strip_prefix("labelSelector=")).unwrap_or("");
            let selector = percent_encoding::percent_decode_str(selector).decode_utf8_lossy().to_string();
            let pods: Api<Pod> = Api::namespaced(client, ns);
            let list = pods.list(&ListParams::default().labels(&selector)).await.map(|l| l.items).unwrap_or_default();
            let now = jiff::Timestamp::now().to_string();
            let items: Vec<Value> = list.iter().map(|p| json!({
                "metadata": {"name": p.metadata.name, "namespace": ns},
                "timestamp": now, "window": "15s",
                "containers": [{"name": "app", "usage": {"cpu": format!("{}m", usage.load(Ordering::Relaxed)), "memory": "10Mi"}}],
            })).collect();
            (200, json!({"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {}, "items": items}).to_string())
        }
    })
    .await;
    port
}

/// Marks every pod of the Deployment Running and Ready (since long ago).
async fn kubelet_loop(client: kube::Client) {
    let pods: Api<Pod> = Api::namespaced(client, NS);
    let long_ago = "2020-01-01T00:00:00Z";
    loop {
        for p in pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .map(|l| l.items)
            .unwrap_or_default()
        {
            if p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") {
                continue;
            }
            let name = p.metadata.name.clone().unwrap_or_default();
            let status = json!({"status": {"phase": "Running", "startTime": long_ago,
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": long_ago}]}});
            let _ = pods
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                .await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_for<T>(what: &str, secs: u64, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn condition(hpa: &HorizontalPodAutoscaler, type_: &str) -> Option<(String, String)> {
    hpa.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone().unwrap_or_default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_utilization_scales_a_deployment_up_and_down() {
    let cluster = common::start(
        &["horizontalpodautoscaling", "deployment", "replicaset"],
        |_, c| {
            c.hpa.sync_period = Duration::from_millis(500);
            c.hpa.downscale_stabilization = Duration::from_secs(3);
        },
    )
    .await;
    let client = cluster.client.clone();
    let usage = Arc::new(AtomicI64::new(100));
    let port = fake_metrics(client.clone(), usage.clone()).await;
    let svcs: Api<Service> = Api::namespaced(client.clone(), "kube-system");
    svcs.create(
        &PostParams::default(),
        &from(json!({"metadata": {"name": "metrics-server"},
        "spec": {"ports": [{"name": "https", "port": 443}]}})),
    )
    .await
    .unwrap();
    let eps: Api<Endpoints> = Api::namespaced(client.clone(), "kube-system");
    eps.create(&PostParams::default(), &from(json!({"metadata": {"name": "metrics-server"},
        "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": port}]}]}))).await.unwrap();
    let apis: Api<APIService> = Api::all(client.clone());
    apis.create(&PostParams::default(), &from(json!({"metadata": {"name": "v1beta1.metrics.k8s.io"},
        "spec": {"group": "metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100, "versionPriority": 100,
                 "insecureSkipTLSVerify": true, "service": {"namespace": "kube-system", "name": "metrics-server", "port": 443}}}))).await.unwrap();
    tokio::spawn(kubelet_loop(client.clone()));

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    deployments
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "app", "image": "busybox",
                                       "resources": {"requests": {"cpu": "100m"}}}]}}}})),
        )
        .await
        .unwrap();
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), NS);
    hpas.create(&PostParams::default(), &from(json!({"metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 1, "maxReplicas": 4,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]}}))).await.unwrap();

    // 100 % of the request against 50 %: doubling until maxReplicas.
    wait_for("the scale-up to 4", 60, async || {
        let d = deployments.get("web").await.ok()?;
        (d.spec?.replicas == Some(4)).then_some(())
    })
    .await;
    let hpa = wait_for("the HPA at its maximum", 30, async || {
        let h = hpas.get("web").await.ok()?;
        (condition(&h, "ScalingLimited").map(|c| c.1).as_deref() == Some("TooManyReplicas"))
            .then_some(h)
    })
    .await;
    let status = hpa.status.clone().unwrap();
    assert_eq!(status.current_replicas, Some(4));
    assert!(status.last_scale_time.is_some());
    let m = &status.current_metrics.unwrap()[0];
    let cur = &m.resource.as_ref().unwrap().current;
    assert_eq!(cur.average_utilization, Some(100));
    assert_eq!(cur.average_value.as_ref().unwrap().0, "100m");
    assert_eq!(
        condition(&hpa, "ScalingActive"),
        Some(("True".into(), "ValidMetricFound".into()))
    );
    assert_eq!(condition(&hpa, "ScalingLimited").unwrap().0, "True");
    let events: Api<Event> = Api::namespaced(client.clone(), NS);
    let rescaled = wait_for("a SuccessfulRescale event", 20, async || {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("SuccessfulRescale"))
    })
    .await;
    assert_eq!(
        rescaled.message.as_deref(),
        Some("New size: 2; reason: cpu resource utilization (percentage of request) above target")
    );

    // 10 %: down to the minimum once the 3 s stabilization window passed.
    usage.store(10, Ordering::Relaxed);
    wait_for("the scale-down to 1", 60, async || {
        let d = deployments.get("web").await.ok()?;
        (d.spec?.replicas == Some(1)).then_some(())
    })
    .await;
    let hpa = wait_for("the HPA's status at 1", 30, async || {
        let h = hpas.get("web").await.ok()?;
        (h.status.as_ref()?.desired_replicas == 1).then_some(h)
    })
    .await;
    assert_eq!(condition(&hpa, "AbleToScale").unwrap().0, "True");

    // A target that does not exist: AbleToScale False with upstream's reason.
    hpas.create(&PostParams::default(), &from(json!({"metadata": {"name": "ghost"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "ghost"}, "maxReplicas": 3}}))).await.unwrap();
    let ghost = wait_for("FailedGetScale", 30, async || {
        let h = hpas.get("ghost").await.ok()?;
        condition(&h, "AbleToScale")
            .filter(|c| c.1 == "FailedGetScale")
            .map(|_| h)
    })
    .await;
    assert_eq!(condition(&ghost, "AbleToScale").unwrap().0, "False");
    // And the working one is untouched by it.
    assert_eq!(
        deployments.get("web").await.unwrap().spec.unwrap().replicas,
        Some(1)
    );
}
