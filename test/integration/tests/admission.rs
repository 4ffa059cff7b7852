//! The default admission plugins, on as in a real cluster: ServiceAccount,
//! DefaultTolerationSeconds, TaintNodesByCondition and NamespaceLifecycle.

use integration::TestApiServer;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn api_error(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.message),
        other => panic!("expected a Status, got {other}"),
    }
}

fn pod(name: &str, extra: serde_json::Value) -> Pod {
    let mut spec = json!({"containers": [{"name": "app", "image": "busybox"}]});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_admission_plugins_shape_pods_and_nodes() {
    let s = TestApiServer::start_with(|c| c.admission = Default::default()).await;
    let namespaces: Api<Namespace> = Api::all(s.client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "adm"}})).unwrap(),
        )
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "adm");

    // No controller manager here: the `default` account is missing.
    let (code, message) = api_error(
        pods.create(&PostParams::default(), &pod("early", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 403);
    assert_eq!(
        message,
        "pods \"early\" is forbidden: error looking up service account adm/default: serviceaccount \"default\" not found"
    );

    let accounts: Api<ServiceAccount> = Api::namespaced(s.client.clone(), "adm");
    accounts
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "default"},
                "imagePullSecrets": [{"name": "regcred"}]}))
            .unwrap(),
        )
        .await
        .unwrap();
    accounts
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "quiet"}, "automountServiceAccountToken": false}),
            )
            .unwrap(),
        )
        .await
        .unwrap();

    let web = pods
        .create(&PostParams::default(), &pod("web", json!({})))
        .await
        .unwrap();
    let spec = web.spec.unwrap();
    assert_eq!(spec.service_account_name.as_deref(), Some("default"));
    assert_eq!(spec.service_account.as_deref(), Some("default"));
    assert_eq!(spec.image_pull_secrets.unwrap()[0].name.as_str(), "regcred");
    let volumes = spec.volumes.unwrap();
    assert_eq!(volumes.len(), 1);
    let volume = &volumes[0];
    assert!(
        volume.name.starts_with("kube-api-access-"),
        "{}",
        volume.name
    );
    assert_eq!(volume.name.len(), "kube-api-access-".len() + 5);
    let sources = volume.projected.as_ref().unwrap().sources.as_ref().unwrap();
    let token = sources[0].service_account_token.as_ref().unwrap();
    assert_eq!(
        (token.path.as_str(), token.expiration_seconds),
        ("token", Some(3607))
    );
    let mounts = spec.containers[0].volume_mounts.as_ref().unwrap();
    assert_eq!(
        (
            mounts[0].name.as_str(),
            mounts[0].mount_path.as_str(),
            mounts[0].read_only
        ),
        (
            volume.name.as_str(),
            "/var/run/secrets/kubernetes.io/serviceaccount",
            Some(true)
        )
    );
    let tolerations: Vec<_> = spec
        .tolerations
        .unwrap()
        .into_iter()
        .map(|t| {
            (
                t.key.unwrap_or_default(),
                t.operator.unwrap_or_default(),
                t.effect.unwrap_or_default(),
                t.toleration_seconds,
            )
        })
        .collect();
    assert_eq!(
        tolerations,
        [
            (
                "node.kubernetes.io/not-ready".to_string(),
                "Exists".to_string(),
                "NoExecute".to_string(),
                Some(300)
            ),
            (
                "node.kubernetes.io/unreachable".to_string(),
                "Exists".to_string(),
                "NoExecute".to_string(),
                Some(300)
            ),
        ]
    );

    // An account that opts out gets no token; a missing named one is refused at once.
    let quiet = pods
        .create(
            &PostParams::default(),
            &pod("quiet", json!({"serviceAccountName": "quiet"})),
        )
        .await
        .unwrap();
    assert!(quiet.spec.unwrap().volumes.unwrap_or_default().is_empty());
    let (code, message) = api_error(
        pods.create(
            &PostParams::default(),
            &pod("ghost", json!({"serviceAccountName": "ghost"})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        (code, message.as_str()),
        (
            403,
            "pods \"ghost\" is forbidden: error looking up service account adm/ghost: serviceaccount \"ghost\" not found"
        )
    );

    // Server-side apply that creates a pod goes through admission too, and
    // one naming a missing account is refused like a POST.
    let applied = pods
        .patch(
            "applied",
            &PatchParams::apply("test"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "applied"},
                "spec": {"containers": [{"name": "app", "image": "busybox"}]}})),
        )
        .await
        .unwrap();
    let spec = applied.spec.unwrap();
    assert_eq!(spec.service_account_name.as_deref(), Some("default"));
    assert!(spec.volumes.unwrap()[0]
        .name
        .starts_with("kube-api-access-"));
    assert_eq!(spec.tolerations.unwrap().len(), 2);
    let (code, message) = api_error(
        pods.patch(
            "ghost",
            &PatchParams::apply("test"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "ghost"},
                "spec": {"serviceAccountName": "ghost",
                    "containers": [{"name": "app", "image": "busybox"}]}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        (code, message.as_str()),
        (
            403,
            "pods \"ghost\" is forbidden: error looking up service account adm/ghost: serviceaccount \"ghost\" not found"
        )
    );

    // TaintNodesByCondition: a node is born not-ready for scheduling.
    let nodes: Api<Node> = Api::all(s.client.clone());
    let node = nodes
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "n1"}})).unwrap(),
        )
        .await
        .unwrap();
    let taints = node.spec.unwrap().taints.unwrap();
    assert_eq!(taints.len(), 1);
    assert_eq!(
        (taints[0].key.as_str(), taints[0].effect.as_str()),
        ("node.kubernetes.io/not-ready", "NoSchedule")
    );

    // NamespaceLifecycle: nothing new in a namespace that is not there, and
    // the system namespaces stay.
    let nowhere: Api<Pod> = Api::namespaced(s.client.clone(), "nowhere");
    let (code, message) = api_error(
        nowhere
            .create(&PostParams::default(), &pod("p", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (code, message.as_str()),
        (404, "namespaces \"nowhere\" not found")
    );
    let (code, message) = api_error(
        namespaces
            .delete("kube-system", &DeleteParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (code, message.as_str()),
        (
            403,
            "namespaces \"kube-system\" is forbidden: this namespace may not be deleted"
        )
    );
}
