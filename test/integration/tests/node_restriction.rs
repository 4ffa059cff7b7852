//! NodeRestriction against a real API server: a kubelet's identity
//! (`system:node:n1` in `system:nodes`, by client certificate) may write its
//! own Node, Lease and pods' status, but not another node's, not its taints
//! or restricted labels, not ordinary pods, not pods bound elsewhere, and
//! not tokens for them; upstream's messages. Other users are untouched.

use integration::TestApiServer;
use serde_json::{json, Value};

const JSON: &str = "application/json";

async fn send(
    client: &kube::Client,
    method: &str,
    path: &str,
    ct: &str,
    body: &Value,
) -> (u16, Value) {
    let r = integration::request(client, method, path, ct, body).await;
    (r.code, r.body)
}

fn node(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}})
}

fn pod(name: &str, node: &str, extra_meta: Value) -> Value {
    let mut p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}});
    for (k, v) in extra_meta.as_object().unwrap() {
        p["metadata"][k] = v.clone();
    }
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelets_write_only_what_is_theirs() {
    let s =
        TestApiServer::start_with(|c| c.admission.enable = vec!["NodeRestriction".into()]).await;
    let admin = s.client.clone();
    let kubelet = s.client_for("system:node:n1", &["system:nodes"]).await;
    let message = |b: &Value| b["message"].as_str().unwrap_or("").to_string();

    // Nodes: its own, with the kubelet's labels.
    let (code, body) = send(
        &kubelet,
        "POST",
        "/api/v1/nodes",
        JSON,
        &node(
            "n1",
            json!({"kubernetes.io/hostname": "n1", "kubernetes.io/os": "linux"}),
        ),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = send(
        &kubelet,
        "POST",
        "/api/v1/nodes",
        JSON,
        &node("n2", json!({})),
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        message(&body),
        "nodes \"n2\" is forbidden: node \"n1\" is not allowed to modify node \"n2\""
    );
    let (code, body) = send(&kubelet, "PATCH", "/api/v1/nodes/n1", "application/merge-patch+json",
        &json!({"metadata": {"labels": {"node-role.kubernetes.io/control-plane": "", "example.com/team": "a"}}})).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(message(&body), "nodes \"n1\" is forbidden: is not allowed to modify labels: node-role.kubernetes.io/control-plane");
    let (code, body) = send(
        &kubelet,
        "PATCH",
        "/api/v1/nodes/n1",
        "application/merge-patch+json",
        &json!({"spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}}),
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        message(&body),
        "nodes \"n1\" is forbidden: node \"n1\" is not allowed to modify taints"
    );
    let (code, body) = send(
        &kubelet,
        "PATCH",
        "/api/v1/nodes/n1/status",
        "application/merge-patch+json",
        &json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    // The admin is not restricted.
    let (code, body) = send(
        &admin,
        "POST",
        "/api/v1/nodes",
        JSON,
        &node("n2", json!({"node-role.kubernetes.io/control-plane": ""})),
    )
    .await;
    assert_eq!(code, 201, "{body}");

    // Pods: only mirror pods bound to itself; status and deletion of its own.
    let (code, body) = send(
        &kubelet,
        "POST",
        "/api/v1/namespaces/default/pods",
        JSON,
        &pod("plain", "n1", json!({})),
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        message(&body),
        "pods \"plain\" is forbidden: pod does not have \"kubernetes.io/config.mirror\" annotation, node \"n1\" can only create mirror pods"
    );
    let mirror = json!({"annotations": {"kubernetes.io/config.mirror": "hash"}});
    let (code, body) = send(
        &kubelet,
        "POST",
        "/api/v1/namespaces/default/pods",
        JSON,
        &pod("static-n1", "n1", mirror.clone()),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = send(
        &kubelet,
        "POST",
        "/api/v1/namespaces/default/pods",
        JSON,
        &pod("static-n2", "n2", mirror),
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert!(
        message(&body)
            .ends_with("node \"n1\" can only create pods with spec.nodeName set to itself"),
        "{body}"
    );
    for (name, on) in [("mine", "n1"), ("theirs", "n2")] {
        let (code, body) = send(
            &admin,
            "POST",
            "/api/v1/namespaces/default/pods",
            JSON,
            &pod(name, on, json!({})),
        )
        .await;
        assert_eq!(code, 201, "{body}");
    }
    let status = json!({"status": {"phase": "Running"}});
    // The plugin reads pods from the watch cache: wait until it has them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (code, body) = send(
            &kubelet,
            "PATCH",
            "/api/v1/namespaces/default/pods/mine/status",
            "application/merge-patch+json",
            &status,
        )
        .await;
        if code == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{code} {body}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (code, body) = send(
        &kubelet,
        "PATCH",
        "/api/v1/namespaces/default/pods/theirs/status",
        "application/merge-patch+json",
        &status,
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert!(
        message(&body).ends_with(
            "node \"n1\" can only update pod status for pods with spec.nodeName set to itself"
        ),
        "{body}"
    );
    let (code, body) = send(
        &kubelet,
        "PATCH",
        "/api/v1/namespaces/default/pods/mine",
        "application/merge-patch+json",
        &json!({"metadata": {"labels": {"a": "b"}}}),
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert!(
        message(&body).ends_with(
            "unexpected operation \"UPDATE\", node \"n1\" can only create and delete mirror pods"
        ),
        "{body}"
    );
    let (code, body) = send(
        &kubelet,
        "DELETE",
        "/api/v1/namespaces/default/pods/theirs",
        JSON,
        &Value::Null,
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert!(
        message(&body)
            .ends_with("node \"n1\" can only delete pods with spec.nodeName set to itself"),
        "{body}"
    );
    let (code, body) = send(
        &kubelet,
        "DELETE",
        "/api/v1/namespaces/default/pods/mine",
        JSON,
        &Value::Null,
    )
    .await;
    assert!(code == 200 || code == 202, "{code} {body}");

    // Evictions and tokens only for pods bound to it.
    let (code, body) = send(
        &kubelet,
        "POST",
        "/api/v1/namespaces/default/pods/theirs/eviction",
        JSON,
        &json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "theirs"}}),
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert!(
        message(&body).ends_with("node n1 can only evict pods with spec.nodeName set to itself"),
        "{body}"
    );
    let (code, body) = send(
        &admin,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts",
        JSON,
        &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "app"}}),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let (_, theirs) = send(
        &admin,
        "GET",
        "/api/v1/namespaces/default/pods/theirs",
        JSON,
        &Value::Null,
    )
    .await;
    let token = |bound: Value| json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"boundObjectRef": bound}});
    let (code, body) = send(
        &kubelet,
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/app/token",
        JSON,
        &token(Value::Null),
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert!(
        message(&body).ends_with("node requested token not bound to a pod"),
        "{body}"
    );
    let (code, body) = send(&kubelet, "POST", "/api/v1/namespaces/default/serviceaccounts/app/token", JSON,
        &token(json!({"apiVersion": "v1", "kind": "Pod", "name": "theirs", "uid": theirs["metadata"]["uid"]}))).await;
    assert_eq!(code, 403, "{body}");
    assert!(
        message(&body)
            .ends_with("node requested token bound to a pod scheduled on a different node"),
        "{body}"
    );

    // Leases: its own, in kube-node-lease.
    let lease = |name: &str| json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name}, "spec": {"holderIdentity": name}});
    let (code, body) = send(
        &kubelet,
        "POST",
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
        JSON,
        &lease("n1"),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = send(
        &kubelet,
        "POST",
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
        JSON,
        &lease("n2"),
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert!(
        message(&body)
            .ends_with("can only access node lease with the same name as the requesting node"),
        "{body}"
    );
    let (code, body) = send(
        &kubelet,
        "POST",
        "/apis/coordination.k8s.io/v1/namespaces/default/leases",
        JSON,
        &lease("n1"),
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert!(
        message(&body)
            .ends_with("can only access leases in the \"kube-node-lease\" system namespace"),
        "{body}"
    );
}
