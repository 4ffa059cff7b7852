//! The ServiceAccount controller and the root-CA publisher against a real
//! API server.

mod common;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};

#[tokio::test]
async fn default_service_account_is_created_and_recreated() {
    let c = common::start(&["serviceaccount"], |_, _| {}).await;
    let nss: Api<Namespace> = Api::all(c.client.clone());
    nss.create(&PostParams::default(), &common::ns("sa-test"))
        .await
        .expect("create namespace");
    let sas: Api<ServiceAccount> = Api::namespaced(c.client.clone(), "sa-test");
    let first = common::eventually("default service account", || async {
        sas.get_opt("default").await.ok().flatten()
    })
    .await;
    // Namespaces that existed before the controller started get one too.
    let kube_system: Api<ServiceAccount> = Api::namespaced(c.client.clone(), "kube-system");
    common::eventually("kube-system/default", || async {
        kube_system.get_opt("default").await.ok().flatten()
    })
    .await;
    sas.delete("default", &DeleteParams::default())
        .await
        .expect("delete");
    let first_uid = first.metadata.uid.clone();
    common::eventually("a recreated default service account", || async {
        sas.get_opt("default")
            .await
            .ok()
            .flatten()
            .filter(|sa| sa.metadata.uid != first_uid)
    })
    .await;
}

#[tokio::test]
async fn root_ca_is_published_and_restored() {
    let c = common::start(&["root-ca-cert-publisher"], |server, config| {
        config.root_ca = Some(std::fs::read(&server.ca_file).expect("read ca"));
    })
    .await;
    let ca = std::fs::read_to_string(&c.server.ca_file).expect("read ca");
    let nss: Api<Namespace> = Api::all(c.client.clone());
    nss.create(&PostParams::default(), &common::ns("ca-test"))
        .await
        .expect("create namespace");
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "ca-test");
    let has_ca = |cm: &ConfigMap| {
        cm.data.as_ref().and_then(|d| d.get("ca.crt")) == Some(&ca)
            && cm.data.as_ref().map(|d| d.len()) == Some(1)
    };
    let cm = common::eventually("kube-root-ca.crt", || async {
        cms.get_opt("kube-root-ca.crt")
            .await
            .ok()
            .flatten()
            .filter(|cm| has_ca(cm))
    })
    .await;
    assert!(cm
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("kubernetes.io/description")));

    // An edit is put back.
    let edit = serde_json::json!({"data": {"ca.crt": "tampered", "extra": "x"}});
    cms.patch(
        "kube-root-ca.crt",
        &PatchParams::default(),
        &Patch::Merge(&edit),
    )
    .await
    .expect("edit");
    let edited_rv = cms
        .get("kube-root-ca.crt")
        .await
        .expect("get")
        .metadata
        .resource_version;
    common::eventually("the restored ca.crt", || async {
        cms.get_opt("kube-root-ca.crt")
            .await
            .ok()
            .flatten()
            .filter(|cm| cm.metadata.resource_version != edited_rv && has_ca(cm))
    })
    .await;

    // A deletion is undone.
    let uid = cms.get("kube-root-ca.crt").await.expect("get").metadata.uid;
    cms.delete("kube-root-ca.crt", &DeleteParams::default())
        .await
        .expect("delete");
    common::eventually("a recreated kube-root-ca.crt", || async {
        cms.get_opt("kube-root-ca.crt")
            .await
            .ok()
            .flatten()
            .filter(|cm| cm.metadata.uid != uid && has_ca(cm))
    })
    .await;
}

#[tokio::test]
async fn root_ca_publisher_without_a_ca_fails_to_start() {
    let server = integration::TestApiServer::start().await;
    let ctx = controller::ControllerContext::new(
        server.client.clone(),
        controller::ControllerConfig::default(),
        std::sync::Arc::new(controller::ControllerMetrics::default()),
    );
    let selected =
        controller::descriptors::enabled(&["root-ca-cert-publisher".to_string()]).expect("select");
    let err = controller::run(ctx, selected)
        .await
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("controller root-ca-certificate-publisher-controller: no --root-ca-file given")
    );
}
