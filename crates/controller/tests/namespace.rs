//! The namespace controller against a real API server: deleting a namespace
//! removes all its content, custom resources included, reports upstream's
//! conditions while content with finalizers remains, then finalizes.

mod common;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;

fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    match serde_json::from_value(v) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

async fn widgets(client: &kube::Client) -> ApiResource {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = from(json!({
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    }));
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("create crd");
    common::eventually("the CRD to be established", || async {
        let c = crds.get("widgets.example.com").await.ok()?;
        c.status?
            .conditions?
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
            .then_some(())
    })
    .await;
    // Discovery serves the new kind shortly after Established; the
    // namespace controller can only delete what discovery lists.
    common::eventually("widgets in discovery", || async {
        let groups = client.list_api_groups().await.ok()?;
        let listed = groups.groups.iter().any(|g| g.name == "example.com");
        let res = client
            .list_api_group_resources("example.com/v1")
            .await
            .ok()?;
        (listed && res.resources.iter().any(|r| r.name == "widgets")).then_some(())
    })
    .await;
    ApiResource {
        group: "example.com".into(),
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
    }
}

fn condition(ns: &Namespace, t: &str) -> Option<(String, String, String)> {
    ns.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == t)
        .map(|c| {
            (
                c.status.clone(),
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

#[tokio::test]
async fn deleting_a_namespace_removes_its_content_including_custom_resources() {
    // One API server for both cases (cheaper on a two-core machine).
    let c = common::start(&["namespace"], |_, _| {}).await;
    let client = c.client.clone();
    let nss: Api<Namespace> = Api::all(client.clone());

    // An empty namespace is finalized at once.
    nss.create(&PostParams::default(), &common::ns("empty"))
        .await
        .expect("create");
    nss.delete("empty", &DeleteParams::default())
        .await
        .expect("delete");
    common::eventually("the empty namespace to be gone", || async {
        nss.get_opt("empty").await.ok()?.is_none().then_some(())
    })
    .await;

    let ar = widgets(&client).await;
    nss.create(&PostParams::default(), &common::ns("doomed"))
        .await
        .expect("create namespace");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    cms.create(
        &PostParams::default(),
        &from(json!({"metadata": {"name": "c"}, "data": {"k": "v"}})),
    )
    .await
    .expect("create configmap");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "doomed");
    pods.create(
        &PostParams::default(),
        &from(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})),
    )
    .await
    .expect("create pod");
    let ws: Api<DynamicObject> = Api::namespaced_with(client.clone(), "doomed", &ar);
    let held: DynamicObject = from(json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "held", "finalizers": ["example.com/hold"]}}));
    ws.create(&PostParams::default(), &held)
        .await
        .expect("create held widget");
    let free: DynamicObject = from(
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "free"}}),
    );
    ws.create(&PostParams::default(), &free)
        .await
        .expect("create widget");
    // Another namespace's content is untouched.
    nss.create(&PostParams::default(), &common::ns("bystander"))
        .await
        .expect("create namespace");
    let other: Api<ConfigMap> = Api::namespaced(client.clone(), "bystander");
    other
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "keep"}})),
        )
        .await
        .expect("create configmap");

    nss.delete("doomed", &DeleteParams::default())
        .await
        .expect("delete namespace");
    let ns = match nss.get("doomed").await {
        Ok(ns) => ns,
        Err(e) => panic!("a namespace with content stays while it is emptied: {e:?}"),
    };
    assert_eq!(
        ns.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Terminating")
    );

    // The held widget keeps the namespace: upstream's conditions say why.
    let ns = common::eventually("conditions naming the remaining finalizer", || async {
        let ns = nss.get("doomed").await.ok()?;
        let (status, reason, _) = condition(&ns, "NamespaceFinalizersRemaining")?;
        (status == "True" && reason == "SomeFinalizersRemain").then_some(ns)
    })
    .await;
    assert_eq!(
        condition(&ns, "NamespaceFinalizersRemaining").map(|c| c.2),
        Some("Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances".into())
    );
    assert_eq!(
        condition(&ns, "NamespaceContentRemaining").map(|c| (c.0, c.1, c.2)),
        Some((
            "True".into(),
            "SomeResourcesRemain".into(),
            "Some resources are remaining: widgets.example.com has 1 resource instances".into()
        ))
    );
    assert_eq!(
        condition(&ns, "NamespaceDeletionDiscoveryFailure").map(|c| (c.0, c.1)),
        Some(("False".into(), "ResourcesDiscovered".into()))
    );
    assert_eq!(
        condition(&ns, "NamespaceDeletionContentFailure").map(|c| (c.0, c.1)),
        Some(("False".into(), "ContentDeleted".into()))
    );
    assert!(
        cms.get_opt("c").await.expect("get").is_none(),
        "configmap removed"
    );
    assert!(
        pods.get_opt("p").await.expect("get").is_none(),
        "pod removed"
    );
    assert!(
        ws.get_opt("free").await.expect("get").is_none(),
        "widget removed"
    );

    // Once the finalizer goes, the namespace is finalized and removed.
    ws.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("release widget");
    common::eventually("the namespace to be gone", || async {
        nss.get_opt("doomed").await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(other.get_opt("keep").await.expect("get").is_some());
    assert!(nss.get_opt("bystander").await.expect("get").is_some());
}
