//! The pod garbage collector against a real API server: pods bound to a
//! missing Node are removed, pods on a live Node stay, terminated pods
//! beyond the threshold go.

mod common;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn pod(name: &str, node: &str) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}}))
    .expect("pod")
}

#[tokio::test]
async fn orphaned_and_excess_terminated_pods_are_collected() {
    let c = common::start(&["podgc"], |_, config| {
        config.pod_gc = controller::podgc::PodGcConfig {
            terminated_pod_gc_threshold: 1,
            check_period: Duration::from_millis(200),
            quarantine: Duration::ZERO,
        };
    })
    .await;
    let nss: Api<Namespace> = Api::all(c.client.clone());
    nss.create(&PostParams::default(), &common::ns("gc"))
        .await
        .expect("namespace");
    let nodes: Api<Node> = Api::all(c.client.clone());
    let node: Node = serde_json::from_value(json!({"metadata": {"name": "alive"}})).expect("node");
    nodes
        .create(&PostParams::default(), &node)
        .await
        .expect("node");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "gc");
    pods.create(&PostParams::default(), &pod("kept", "alive"))
        .await
        .expect("create");
    pods.create(&PostParams::default(), &pod("orphan", "ghost"))
        .await
        .expect("create");
    for name in ["done-1", "done-2", "done-3"] {
        pods.create(&PostParams::default(), &pod(name, "alive"))
            .await
            .expect("create");
        pods.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": {"phase": "Succeeded"}})),
        )
        .await
        .expect("finish");
    }
    common::eventually("the orphan gone", || async {
        pods.get_opt("orphan").await.ok()?.is_none().then_some(())
    })
    .await;
    common::eventually("one terminated pod left", || async {
        let done = pods
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded"))
            .count();
        (done == 1).then_some(())
    })
    .await;
    assert!(pods.get_opt("kept").await.expect("get").is_some());
}
