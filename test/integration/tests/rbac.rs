//! Authorization against a real API server with `--authorization-mode=
//! Node,RBAC`: the bootstrap policy, RBAC decisions and upstream's 403
//! messages, access reviews, escalation prevention, impersonation and the
//! Node authorizer's pod-based relationships.

use std::time::{Duration, Instant};

use integration::{request, request_with, TestApiServer};
use serde_json::{json, Value};

const JSON: &str = "application/json";

async fn start() -> TestApiServer {
    TestApiServer::start_with(|c| {
        c.authorization_modes = vec![apiserver::authz::Mode::Node, apiserver::authz::Mode::Rbac]
    })
    .await
}

/// Repeats the request until it answers `code` (policy reaches the
/// authorizer through the watch cache); the last answer.
async fn until(
    client: &kube::Client,
    method: &str,
    path: &str,
    body: &Value,
    code: u16,
) -> (u16, Value) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = request(client, method, path, JSON, body).await;
        if r.code == code || Instant::now() > deadline {
            return (r.code, r.body);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn message(b: &Value) -> String {
    b["message"].as_str().unwrap_or("").to_string()
}

fn role(name: &str, rules: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name}, "rules": rules})
}

fn binding(name: &str, kind: &str, role: &str, subjects: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role}, "subjects": subjects})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_decides_and_explains() {
    let s = start().await;
    let bob = s.client_for("bob", &[]).await;

    // The bootstrap policy is in place.
    let r = s
        .raw(
            "GET",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/cluster-admin",
            JSON,
            &Value::Null,
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.body);
    assert_eq!(
        r.body["metadata"]["labels"]["kubernetes.io/bootstrapping"],
        "rbac-defaults"
    );
    let r = s
        .raw(
            "GET",
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/system:basic-user",
            JSON,
            &Value::Null,
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.body);

    // Authenticated users may discover and review themselves, nothing more.
    let (code, body) = until(
        &bob,
        "GET",
        "/api/v1/namespaces/default/pods",
        &Value::Null,
        403,
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        message(&body),
        r#"pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the namespace "default""#
    );
    assert_eq!(body["reason"], "Forbidden");
    assert_eq!(body["details"]["kind"], "pods");
    let r = request(
        &bob,
        "GET",
        "/apis/apps/v1/namespaces/default/deployments/web",
        JSON,
        &Value::Null,
    )
    .await;
    assert_eq!(
        message(&r.body),
        r#"deployments.apps "web" is forbidden: User "bob" cannot get resource "deployments" in API group "apps" in the namespace "default""#
    );
    let r = request(&bob, "GET", "/api/v1/nodes", JSON, &Value::Null).await;
    assert_eq!(
        message(&r.body),
        r#"nodes is forbidden: User "bob" cannot list resource "nodes" in API group "" at the cluster scope"#
    );
    let r = request(&bob, "GET", "/metrics", JSON, &Value::Null).await;
    assert_eq!(r.code, 403);
    let r = request(&bob, "GET", "/apis", JSON, &Value::Null).await;
    assert_eq!(r.code, 200, "discovery is for every authenticated user");
    let r = request(&bob, "GET", "/version", JSON, &Value::Null).await;
    assert_eq!(r.code, 200);

    // A Role and a RoleBinding grant bob reading pods in default only.
    let r = s.raw("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles", JSON,
        &role("pod-reader", json!([{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]}]))).await;
    assert_eq!(r.code, 201, "{}", r.body);
    let r = s
        .raw(
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
            JSON,
            &binding(
                "bob-reads",
                "Role",
                "pod-reader",
                json!([{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "bob"}]),
            ),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.body);
    let (code, body) = until(
        &bob,
        "GET",
        "/api/v1/namespaces/default/pods",
        &Value::Null,
        200,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let r = request(
        &bob,
        "GET",
        "/api/v1/namespaces/kube-system/pods",
        JSON,
        &Value::Null,
    )
    .await;
    assert_eq!(r.code, 403);
    let r = request(
        &bob,
        "DELETE",
        "/api/v1/namespaces/default/pods/x",
        JSON,
        &Value::Null,
    )
    .await;
    assert_eq!(
        message(&r.body),
        r#"pods "x" is forbidden: User "bob" cannot delete resource "pods" in API group "" in the namespace "default""#
    );

    // Access reviews answer with the same decisions and name the binding.
    let ssar = |verb: &str, ns: &str| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": verb, "resource": "pods", "namespace": ns}}})
    };
    let r = request(
        &bob,
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        JSON,
        &ssar("list", "default"),
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.body);
    assert_eq!(r.body["status"]["allowed"], true);
    assert_eq!(
        r.body["status"]["reason"],
        r#"RBAC: allowed by RoleBinding "bob-reads/default" of Role "pod-reader" to User "bob""#
    );
    let r = request(
        &bob,
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        JSON,
        &ssar("delete", "default"),
    )
    .await;
    assert_eq!(r.body["status"]["allowed"], false);
    let sar = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": "bob", "resourceAttributes": {"verb": "get", "resource": "pods", "subresource": "log", "namespace": "default"}}});
    let r = s
        .raw(
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            JSON,
            &sar,
        )
        .await;
    assert_eq!(r.body["status"]["allowed"], true, "{}", r.body);
    let r = request(
        &bob,
        "POST",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        JSON,
        &sar,
    )
    .await;
    assert_eq!(r.code, 403, "bob may not review others");
    let bad = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {"user": "bob"}});
    let r = s
        .raw(
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            JSON,
            &bad,
        )
        .await;
    assert_eq!(r.code, 422, "{}", r.body);
    let rules = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": "default"}});
    let r = request(
        &bob,
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        JSON,
        &rules,
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.body);
    let resource_rules = r.body["status"]["resourceRules"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        resource_rules
            .iter()
            .any(|r| r["resources"] == json!(["pods", "pods/log"])),
        "{resource_rules:?}"
    );
    assert!(
        resource_rules
            .iter()
            .any(|r| r["resources"]
                == json!(["selfsubjectaccessreviews", "selfsubjectrulesreviews"])),
        "{resource_rules:?}"
    );

    // Decisions are counted per authorizer.
    let metrics = s
        .client
        .request_text(
            http::Request::get("/metrics")
                .body(Vec::new())
                .expect("request"),
        )
        .await
        .expect("metrics");
    let decisions: Vec<&str> = metrics
        .lines()
        .filter(|l| l.contains("authorization_decisions"))
        .collect();
    assert!(
        decisions.iter().any(|l| l.starts_with(
            r#"apiserver_authorization_decisions_total{type="RBAC",name="rbac",decision="allowed"}"#
        )),
        "{decisions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalation_and_impersonation_are_checked() {
    let s = start().await;
    let carol = s.client_for("carol", &["devs"]).await;
    // carol may manage roles and bindings in default and read pods there.
    let r = s.raw("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles", JSON,
        &role("rbac-manager", json!([
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["create", "get"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]))).await;
    assert_eq!(r.code, 201, "{}", r.body);
    let r = s
        .raw(
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
            JSON,
            &binding(
                "devs-manage",
                "Role",
                "rbac-manager",
                json!([{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "devs"}]),
            ),
        )
        .await;
    assert_eq!(r.code, 201, "{}", r.body);
    let roles = "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles";
    let held = role(
        "held",
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]),
    );
    let (code, body) = until(&carol, "POST", roles, &held, 201).await;
    assert_eq!(code, 201, "a role within what carol holds: {body}");
    let more = role(
        "more",
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "delete", "watch"]}, {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}]),
    );
    let r = request(&carol, "POST", roles, JSON, &more).await;
    assert_eq!(r.code, 403, "{}", r.body);
    assert_eq!(
        message(&r.body),
        "roles.rbac.authorization.k8s.io \"more\" is forbidden: user \"carol\" (groups=[\"devs\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\" \"watch\"]}\n{APIGroups:[\"apps\"], Resources:[\"deployments\"], Verbs:[\"get\"]}"
    );
    let bindings = "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings";
    let r = request(
        &carol,
        "POST",
        bindings,
        JSON,
        &binding(
            "carol-admin",
            "ClusterRole",
            "cluster-admin",
            json!([{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "carol"}]),
        ),
    )
    .await;
    assert_eq!(r.code, 403, "{}", r.body);
    assert!(
        message(&r.body).starts_with(
            "rolebindings.rbac.authorization.k8s.io \"carol-admin\" is forbidden: user \"carol\""
        ),
        "{}",
        r.body
    );
    let r = request(
        &carol,
        "POST",
        bindings,
        JSON,
        &binding(
            "dave-held",
            "Role",
            "held",
            json!([{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "dave"}]),
        ),
    )
    .await;
    assert_eq!(r.code, 201, "binding a role carol holds: {}", r.body);
    // A Role and its binding sent back to back (kubectl apply -f of both):
    // the binding finds the Role in storage.
    for i in 0..5 {
        let name = format!("fresh-{i}");
        let r = request(
            &carol,
            "POST",
            roles,
            JSON,
            &role(
                &name,
                json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]),
            ),
        )
        .await;
        assert_eq!(r.code, 201, "{}", r.body);
        let r = request(
            &carol,
            "POST",
            bindings,
            JSON,
            &binding(
                &name,
                "Role",
                &name,
                json!([{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "dave"}]),
            ),
        )
        .await;
        assert_eq!(r.code, 201, "a binding right after its Role: {}", r.body);
    }

    // Impersonation: the admin acts as carol; carol may not act as others.
    let admin = s.client.clone();
    let r = request_with(
        &admin,
        "GET",
        "/api/v1/namespaces/kube-system/pods",
        JSON,
        &Value::Null,
        &[("Impersonate-User", "carol"), ("Impersonate-Group", "devs")],
    )
    .await;
    assert_eq!(
        message(&r.body),
        r#"pods is forbidden: User "carol" cannot list resource "pods" in API group "" in the namespace "kube-system""#
    );
    let r = request_with(
        &admin,
        "GET",
        "/api/v1/namespaces/default/pods",
        JSON,
        &Value::Null,
        &[("Impersonate-User", "carol"), ("Impersonate-Group", "devs")],
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.body);
    let whoami = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
    let r = request_with(
        &admin,
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        JSON,
        &whoami,
        &[("Impersonate-User", "system:serviceaccount:default:app")],
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.body);
    assert_eq!(
        r.body["status"]["userInfo"]["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated"
        ])
    );
    let r = request_with(
        &carol,
        "GET",
        "/api/v1/namespaces/default/pods",
        JSON,
        &Value::Null,
        &[("Impersonate-User", "alice")],
    )
    .await;
    assert_eq!(r.code, 403);
    assert_eq!(
        message(&r.body),
        r#"users "alice" is forbidden: User "carol" cannot impersonate resource "users" in API group "" at the cluster scope"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_read_only_what_their_pods_use() {
    let s = start().await;
    let kubelet = s.client_for("system:node:n1", &["system:nodes"]).await;
    for name in ["used", "unused"] {
        let r = s
            .raw(
                "POST",
                "/api/v1/namespaces/default/secrets",
                JSON,
                &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}}),
            )
            .await;
        assert_eq!(r.code, 201, "{}", r.body);
    }
    let r = request(
        &kubelet,
        "GET",
        "/api/v1/namespaces/default/secrets/used",
        JSON,
        &Value::Null,
    )
    .await;
    assert_eq!(r.code, 403);
    assert_eq!(
        message(&r.body),
        r#"secrets "used" is forbidden: User "system:node:n1" cannot get resource "secrets" in API group "" in the namespace "default": no relationship found between node 'n1' and this object"#
    );
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}, "spec": {"nodeName": "n1",
        "volumes": [{"name": "s", "secret": {"secretName": "used"}}],
        "containers": [{"name": "c", "image": "busybox"}]}});
    let r = s
        .raw("POST", "/api/v1/namespaces/default/pods", JSON, &pod)
        .await;
    assert_eq!(r.code, 201, "{}", r.body);
    let (code, body) = until(
        &kubelet,
        "GET",
        "/api/v1/namespaces/default/secrets/used",
        &Value::Null,
        200,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let (code, _) = until(
        &kubelet,
        "GET",
        "/api/v1/namespaces/default/secrets?fieldSelector=metadata.name%3Dused",
        &Value::Null,
        200,
    )
    .await;
    assert_eq!(code, 200, "a list of the one secret by name");
    let r = request(
        &kubelet,
        "GET",
        "/api/v1/namespaces/default/secrets/unused",
        JSON,
        &Value::Null,
    )
    .await;
    assert_eq!(r.code, 403);
    let r = request(
        &kubelet,
        "GET",
        "/api/v1/namespaces/default/secrets",
        JSON,
        &Value::Null,
    )
    .await;
    assert_eq!(r.code, 403, "no list of every secret");
    let other = s.client_for("system:node:n2", &["system:nodes"]).await;
    let r = request(
        &other,
        "GET",
        "/api/v1/namespaces/default/secrets/used",
        JSON,
        &Value::Null,
    )
    .await;
    assert_eq!(r.code, 403, "another node's pod");
    // Fixed node rules, and leases by name.
    let r = request(&kubelet, "GET", "/api/v1/pods", JSON, &Value::Null).await;
    assert_eq!(r.code, 200, "{}", r.body);
    let r = request(
        &kubelet,
        "GET",
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n2",
        JSON,
        &Value::Null,
    )
    .await;
    assert_eq!(r.code, 403);
    assert!(
        message(&r.body)
            .ends_with("can only access node lease with the same name as the requesting node"),
        "{}",
        r.body
    );
    let r = request(
        &kubelet,
        "GET",
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1",
        JSON,
        &Value::Null,
    )
    .await;
    assert_eq!(r.code, 404, "its own lease is allowed (and missing)");
    let r = request(
        &kubelet,
        "DELETE",
        "/api/v1/namespaces/default/services/kubernetes",
        JSON,
        &Value::Null,
    )
    .await;
    assert_eq!(r.code, 403);
}
