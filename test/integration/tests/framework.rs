//! The framework itself: the server starts, the kubeconfig file works, and
//! a token issued for a ServiceAccount authenticates.

use integration::TestApiServer;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_with_bootstrap_namespaces_and_a_usable_kubeconfig() {
    let s = TestApiServer::start().await;
    let text = std::fs::read_to_string(&s.kubeconfig).unwrap();
    assert!(text.contains(&s.url), "{text}");
    let client = s.new_client().await.unwrap();
    let names: Vec<String> = Api::<Namespace>::all(client)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    for want in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
}
