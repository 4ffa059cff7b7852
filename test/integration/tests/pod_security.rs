//! PodSecurity admission against a real API server: a namespace's
//! `pod-security.kubernetes.io/*` labels refuse pods that violate the
//! enforce level with upstream's message, warn about pods and workload
//! templates that violate the warn level, and are themselves validated.

use integration::TestApiServer;
use serde_json::{json, Value};

/// POST/PATCH `body` to `path`: status, Warning headers, body.
async fn send(
    s: &TestApiServer,
    method: &str,
    path: &str,
    ct: &str,
    body: Value,
) -> (u16, Vec<String>, Value) {
    let r = s.raw(method, path, ct, &body).await;
    (r.code, r.warnings, r.body)
}

async fn namespace(s: &TestApiServer, name: &str, labels: Value) {
    let (code, _, body) = send(s, "POST", "/api/v1/namespaces", "application/json",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})).await;
    assert_eq!(code, 201, "{body}");
}

fn pod(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_labels_enforce_and_warn() {
    let s = TestApiServer::start().await;
    namespace(
        &s,
        "locked",
        json!({"pod-security.kubernetes.io/enforce": "restricted"}),
    )
    .await;
    namespace(
        &s,
        "warned",
        json!({"pod-security.kubernetes.io/warn": "baseline"}),
    )
    .await;
    let plain = json!({"containers": [{"name": "nginx", "image": "nginx"}]});
    // The plugin reads namespaces from the watch cache: wait until it has them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while send(
        &s,
        "POST",
        "/api/v1/namespaces/locked/pods?dryRun=All",
        "application/json",
        pod("p", plain.clone()),
    )
    .await
    .0 != 403
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the namespace's labels never applied"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    while send(
        &s,
        "POST",
        "/api/v1/namespaces/warned/pods?dryRun=All",
        "application/json",
        pod(
            "w",
            json!({"hostNetwork": true, "containers": [{"name": "c", "image": "b"}]}),
        ),
    )
    .await
    .1
    .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the warned namespace's labels never applied"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let (code, _, body) = send(
        &s,
        "POST",
        "/api/v1/namespaces/locked/pods",
        "application/json",
        pod("p", plain.clone()),
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(body["reason"], "Forbidden");
    assert_eq!(
        body["message"],
        "pods \"p\" is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false \
         (container \"nginx\" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities \
         (container \"nginx\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or \
         container \"nginx\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container \"nginx\" \
         must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
    );
    let restricted = json!({
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{"name": "nginx", "image": "nginx",
            "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}],
    });
    let (code, warnings, body) = send(
        &s,
        "POST",
        "/api/v1/namespaces/locked/pods",
        "application/json",
        pod("ok", restricted),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    assert!(warnings.is_empty(), "{warnings:?}");

    // Templates are never refused: the Deployment is created with a warning.
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": plain}}});
    let (code, warnings, body) = send(
        &s,
        "POST",
        "/apis/apps/v1/namespaces/locked/deployments",
        "application/json",
        deployment,
    )
    .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("299 - \"would violate PodSecurity \\\"restricted:latest\\\": allowPrivilegeEscalation != false"), "{warnings:?}");

    // warn=baseline: admitted with upstream's warning.
    let host = json!({"hostNetwork": true, "containers": [{"name": "c", "image": "busybox"}]});
    let (code, warnings, body) = send(
        &s,
        "POST",
        "/api/v1/namespaces/warned/pods",
        "application/json",
        pod("h", host),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(warnings, ["299 - \"would violate PodSecurity \\\"baseline:latest\\\": host namespaces (hostNetwork=true)\""]);

    // Labels are validated.
    let (code, _, body) = send(
        &s,
        "PATCH",
        "/api/v1/namespaces/warned",
        "application/merge-patch+json",
        json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "strict"}}}),
    )
    .await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        body["message"],
        "namespaces \"warned\" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: \"strict\": must be one of privileged, baseline, restricted"
    );
    // Enforcing baseline where a hostNetwork pod runs: allowed, with a warning naming it.
    let (code, warnings, body) = send(
        &s,
        "PATCH",
        "/api/v1/namespaces/warned",
        "application/merge-patch+json",
        json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "baseline"}}}),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        warnings,
        [
            "299 - \"existing pods in namespace \\\"warned\\\" violate the new PodSecurity enforce level \\\"baseline:latest\\\"\"",
            "299 - \"h: host namespaces\"",
        ]
    );
    // Metadata-only updates of a violating pod are still allowed.
    let (code, _, body) = send(
        &s,
        "PATCH",
        "/api/v1/namespaces/warned/pods/h",
        "application/merge-patch+json",
        json!({"metadata": {"labels": {"touched": "yes"}}}),
    )
    .await;
    assert_eq!(code, 200, "{body}");
}

/// `--admission-control-config-file`: PodSecurity's defaults apply to
/// namespaces without labels, a label still wins, and exempt namespaces
/// and users pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_file_defaults_and_exemptions() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("admission.yaml");
    std::fs::write(
        &file,
        "apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\nplugins:\n- name: PodSecurity\n  configuration:\n    apiVersion: pod-security.admission.config.k8s.io/v1\n    kind: PodSecurityConfiguration\n    defaults: {enforce: baseline}\n    exemptions: {namespaces: [exempt], usernames: [ci-bot]}\n",
    )
    .unwrap();
    let s = TestApiServer::start_with(|c| c.admission.load_config_file(&file).unwrap()).await;
    namespace(&s, "plain", json!({})).await;
    namespace(&s, "exempt", json!({})).await;
    namespace(
        &s,
        "open",
        json!({"pod-security.kubernetes.io/enforce": "privileged"}),
    )
    .await;
    let privileged = json!({"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": true}}]});
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    // The watch cache must know the namespaces' labels first.
    while send(
        &s,
        "POST",
        "/api/v1/namespaces/open/pods?dryRun=All",
        "application/json",
        pod("p", privileged.clone()),
    )
    .await
    .0 != 201
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the open namespace never applied"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (code, _, body) = send(
        &s,
        "POST",
        "/api/v1/namespaces/plain/pods",
        "application/json",
        pod("p", privileged.clone()),
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "pods \"p\" is forbidden: violates PodSecurity \"baseline:latest\": privileged (container \"c\" must not set securityContext.privileged=true)"
    );
    let (code, _, body) = send(
        &s,
        "POST",
        "/api/v1/namespaces/exempt/pods",
        "application/json",
        pod("p", privileged.clone()),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let bot = s.client_for("ci-bot", &["devs"]).await;
    let req = http::Request::post("/api/v1/namespaces/plain/pods")
        .header("Content-Type", "application/json")
        .body(pod("bot", privileged).to_string().into_bytes())
        .unwrap();
    let created: Value = bot.request(req).await.unwrap();
    assert_eq!(created["metadata"]["name"], "bot");
}
