//! Node IPAM against a real API server: each Node gets its own block of
//! the cluster CIDR.

mod common;

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, PostParams};

#[tokio::test]
async fn nodes_get_distinct_pod_cidrs() {
    let c = common::start(&["nodeipam"], |_, config| {
        config.node_ipam =
            Some(controller::nodeipam::CidrSet::new("10.64.0.0/16", 24).expect("cidr"));
    })
    .await;
    let nodes: Api<Node> = Api::all(c.client.clone());
    // One already has a block: it is kept and not handed out again.
    let taken: Node = serde_json::from_value(serde_json::json!({"metadata": {"name": "n0"},
        "spec": {"podCIDR": "10.64.0.0/24", "podCIDRs": ["10.64.0.0/24"]}}))
    .expect("node");
    nodes
        .create(&PostParams::default(), &taken)
        .await
        .expect("create");
    for n in ["n1", "n2", "n3"] {
        let node: Node =
            serde_json::from_value(serde_json::json!({"metadata": {"name": n}})).expect("node");
        nodes
            .create(&PostParams::default(), &node)
            .await
            .expect("create");
    }
    let cidrs = common::eventually("every node with a pod CIDR", || async {
        let list = nodes.list(&Default::default()).await.ok()?;
        let cidrs: Vec<String> = list
            .items
            .iter()
            .filter_map(|n| n.spec.as_ref()?.pod_cidr.clone())
            .collect();
        (cidrs.len() == 4).then_some(cidrs)
    })
    .await;
    let distinct: BTreeSet<&String> = cidrs.iter().collect();
    assert_eq!(distinct.len(), 4, "{cidrs:?}");
    assert!(
        cidrs
            .iter()
            .all(|c| c.starts_with("10.64.") && c.ends_with("/24")),
        "{cidrs:?}"
    );
    let n1 = nodes.get("n1").await.expect("get");
    assert_eq!(
        n1.spec
            .as_ref()
            .and_then(|s| s.pod_cidrs.clone())
            .map(|v| v.len()),
        Some(1)
    );
}
