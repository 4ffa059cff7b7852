//! HorizontalPodAutoscalers in two versions over one stored object:
//! autoscaling/v1 reads, writes and patches go through the conversion to
//! the stored autoscaling/v2 form and lose nothing v2 holds.

use integration::TestApiServer;
use serde_json::{json, Value};

async fn send(s: &TestApiServer, method: &str, path: &str, ct: &str, body: Value) -> (u16, Value) {
    let r = s.raw(method, path, ct, &body).await;
    (r.code, r.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_reads_and_patches_keep_the_v2_form() {
    let s = TestApiServer::start().await;
    let v2 = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers";
    let v1 = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers";
    let (code, created) = send(&s, "POST", v2, "application/json", json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "maxReplicas": 4,
                 "metrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}}]}
    })).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["spec"]["minReplicas"], 1);

    let (code, got) = send(&s, "GET", &format!("{v1}/web"), "", Value::Null).await;
    assert_eq!(code, 200);
    assert_eq!(got["apiVersion"], "autoscaling/v1");
    assert_eq!(got["spec"]["targetCPUUtilizationPercentage"], 50);
    let (_, list) = send(&s, "GET", v1, "", Value::Null).await;
    assert_eq!(list["items"][0]["apiVersion"], "autoscaling/v1");

    let (code, patched) = send(
        &s,
        "PATCH",
        &format!("{v1}/web"),
        "application/merge-patch+json",
        json!({"metadata": {"labels": {"tier": "web"}}, "spec": {"maxReplicas": 6}}),
    )
    .await;
    assert_eq!(code, 200, "{patched}");
    assert_eq!(patched["apiVersion"], "autoscaling/v1");
    let (_, back) = send(&s, "GET", &format!("{v2}/web"), "", Value::Null).await;
    assert_eq!(back["metadata"]["labels"]["tier"], "web");
    assert_eq!(back["spec"]["maxReplicas"], 6);
    // Written through v1, the annotation's metrics come first (upstream's order).
    let names: Vec<&str> = back["spec"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["resource"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["memory", "cpu"], "{back}");
    assert!(back["metadata"].get("annotations").is_none(), "{back}");
}
