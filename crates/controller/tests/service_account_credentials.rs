//! `--use-service-account-credentials` against a real API server with RBAC:
//! every controller this project runs has a ServiceAccount name whose
//! `system:controller:*` role the default policy defines and binds, and a
//! controller's client acts as that ServiceAccount (created on demand), so
//! RBAC allows it its role and nothing more.

use client::service_account_credentials::ServiceAccountClients;
use integration::{request, TestApiServer};
use serde_json::{json, Value};

const JSON: &str = "application/json";

async fn start() -> TestApiServer {
    TestApiServer::start_with(|c| c.authorization_modes = vec![apiserver::authz::Mode::Rbac]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_controller_has_its_bootstrap_role() {
    let s = start().await;
    for d in controller::descriptors::controller_descriptors() {
        let Some(sa) = controller::descriptors::service_account(d.name) else {
            assert!(
                d.start.is_none() || d.name == "serviceaccount-token-controller",
                "{} has no service account",
                d.name
            );
            continue;
        };
        if d.start.is_none() {
            continue;
        }
        let role = format!("system:controller:{sa}");
        let r = s
            .raw(
                "GET",
                &format!("/apis/rbac.authorization.k8s.io/v1/clusterroles/{role}"),
                JSON,
                &Value::Null,
            )
            .await;
        assert_eq!(r.code, 200, "{}: no ClusterRole {role}", d.name);
        let r = s
            .raw(
                "GET",
                &format!("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{role}"),
                JSON,
                &Value::Null,
            )
            .await;
        assert_eq!(r.code, 200, "{}: no ClusterRoleBinding {role}", d.name);
        assert_eq!(
            r.body["subjects"][0],
            json!({"kind": "ServiceAccount", "name": sa, "namespace": "kube-system"}),
            "{}",
            d.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_acts_as_its_service_account() {
    let s = start().await;
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&s.kubeconfig).expect("admin kubeconfig"),
        &Default::default(),
    )
    .await
    .expect("kube config");
    let clients = ServiceAccountClients::new(s.client.clone(), config, -1.0, 0);
    let deployments = clients
        .client("deployment-controller")
        .await
        .expect("client");
    let r = s
        .raw(
            "GET",
            "/api/v1/namespaces/kube-system/serviceaccounts/deployment-controller",
            JSON,
            &Value::Null,
        )
        .await;
    assert_eq!(r.code, 200, "the ServiceAccount is created: {}", r.body);

    let whoami = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
    let r = request(
        &deployments,
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        JSON,
        &whoami,
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.body);
    assert_eq!(
        r.body["status"]["userInfo"]["username"],
        "system:serviceaccount:kube-system:deployment-controller"
    );

    let can = |verb: &str, group: &str, resource: &str| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": verb, "group": group, "resource": resource, "namespace": "default"}}})
    };
    let path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    let r = request(
        &deployments,
        "POST",
        path,
        JSON,
        &can("create", "apps", "replicasets"),
    )
    .await;
    assert_eq!(r.body["status"]["allowed"], true, "{}", r.body);
    let r = request(&deployments, "POST", path, JSON, &can("get", "", "secrets")).await;
    assert_eq!(r.body["status"]["allowed"], false, "{}", r.body);
    let r = request(
        &deployments,
        "GET",
        "/api/v1/namespaces/default/secrets",
        JSON,
        &Value::Null,
    )
    .await;
    assert_eq!(r.code, 403, "{}", r.body);

    // A second client for the same account reuses it.
    let again = clients
        .client("deployment-controller")
        .await
        .expect("client");
    let r = request(
        &again,
        "GET",
        "/apis/apps/v1/namespaces/default/replicasets",
        JSON,
        &Value::Null,
    )
    .await;
    assert_eq!(r.code, 200, "{}", r.body);
}
