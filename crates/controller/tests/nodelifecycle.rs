//! Node lifecycle against a real API server: a Node whose kubelet went
//! silent becomes Unknown and tainted unreachable, its pods that tolerate
//! that only briefly are evicted and tolerating ones stay; a Node with a fresh Lease stays
//! Ready and untainted; pressure conditions and cordons become NoSchedule taints.

mod common;

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, PostParams};
use serde_json::json;

fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    match serde_json::from_value(v) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

async fn ready_node(nodes: &Api<Node>, name: &str, heartbeat: &str) {
    let n: Node = from(json!({"metadata": {"name": name}}));
    nodes
        .create(&PostParams::default(), &n)
        .await
        .expect("create node");
    let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
        "lastHeartbeatTime": heartbeat, "lastTransitionTime": heartbeat}]}});
    nodes
        .patch_status(
            name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&status),
        )
        .await
        .expect("node status");
}

#[tokio::test]
async fn silent_nodes_become_unreachable_and_their_pods_are_evicted() {
    let c = common::start(
        &["nodelifecycle", "taint-eviction-controller"],
        |_, config| {
            config.node_lifecycle.monitor_period = Duration::from_millis(200);
        },
    )
    .await;
    let nodes: Api<Node> = Api::all(c.client.clone());
    let old = "2020-01-01T00:00:00Z";
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let leases: Api<Lease> = Api::namespaced(c.client.clone(), "kube-node-lease");
    let nss: Api<Namespace> = Api::all(c.client.clone());
    if nss.get_opt("kube-node-lease").await.expect("get").is_none() {
        nss.create(&PostParams::default(), &common::ns("kube-node-lease"))
            .await
            .expect("namespace");
    }
    let lease: Lease = from(
        json!({"metadata": {"name": "leased"}, "spec": {"holderIdentity": "leased", "renewTime": now}}),
    );
    leases
        .create(&PostParams::default(), &lease)
        .await
        .expect("lease");
    // Node changes are acted on at once, so the Lease comes first: a node
    // seen with an old heartbeat and no Lease is unreachable right away.
    ready_node(&nodes, "silent", old).await;
    ready_node(&nodes, "leased", old).await;

    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let pod = |name: &str, node: &str, tolerations: serde_json::Value| -> Pod {
        from(
            json!({"metadata": {"name": name}, "spec": {"nodeName": node, "tolerations": tolerations,
            "containers": [{"name": "c", "image": "busybox"}]}}),
        )
    };
    // Every pod tolerates unreachable for 300 s by default
    // (DefaultTolerationSeconds admission); this one for a second only.
    pods.create(
        &PostParams::default(),
        &pod("victim", "silent", json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}])),
    )
    .await
    .expect("pod");
    pods.create(
        &PostParams::default(),
        &pod("tolerant", "silent", json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}])),
    )
    .await
    .expect("pod");
    pods.create(&PostParams::default(), &pod("safe", "leased", json!([])))
        .await
        .expect("pod");

    // Both the Unknown condition and the taint, whichever write is seen
    // first: the controller may sweep between the node's create and its
    // first status write above, and then sweeps again.
    let n = common::eventually(
        "the silent node Unknown and tainted unreachable",
        || async {
            let n = nodes.get("silent").await.ok()?;
            let taints = n.spec.as_ref()?.taints.clone()?;
            let unknown = n
                .status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "Unknown");
            (unknown
                && taints
                    .iter()
                    .any(|t| t.key == "node.kubernetes.io/unreachable" && t.effect == "NoExecute"))
            .then_some(n)
        },
    )
    .await;
    let ready = n
        .status
        .and_then(|s| s.conditions)
        .and_then(|c| c.into_iter().find(|c| c.type_ == "Ready"))
        .expect("ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_deref()),
        ("Unknown", Some("NodeStatusUnknown"))
    );
    common::eventually("the briefly tolerating pod evicted", || async {
        pods.get_opt("victim")
            .await
            .ok()?
            .is_none_or(|p| p.metadata.deletion_timestamp.is_some())
            .then_some(())
    })
    .await;
    let tolerant = pods
        .get("tolerant")
        .await
        .expect("the tolerating pod stays");
    assert!(tolerant.metadata.deletion_timestamp.is_none());
    let leased = nodes.get("leased").await.expect("get");
    assert!(
        leased
            .spec
            .and_then(|s| s.taints)
            .unwrap_or_default()
            .is_empty(),
        "a renewed lease keeps the node healthy"
    );
    assert!(pods
        .get("safe")
        .await
        .expect("get")
        .metadata
        .deletion_timestamp
        .is_none());
}

fn taint_keys(n: &Node) -> Vec<String> {
    let mut keys: Vec<String> = n
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .map(|t| format!("{}:{}", t.key, t.effect))
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn pressure_conditions_and_cordons_taint_the_node_until_they_end() {
    let c = common::start(&["nodelifecycle"], |_, config| {
        config.node_lifecycle.monitor_period = Duration::from_millis(200);
    })
    .await;
    let nodes: Api<Node> = Api::all(c.client.clone());
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    ready_node(&nodes, "pressed", &now).await;
    let conditions = |disk: &str| {
        json!({"status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": now, "lastTransitionTime": now},
            {"type": "DiskPressure", "status": disk, "reason": "KubeletHasDiskPressure", "lastHeartbeatTime": now, "lastTransitionTime": now},
        ]}})
    };
    let pp = kube::api::PatchParams::default();
    nodes
        .patch_status(
            "pressed",
            &pp,
            &kube::api::Patch::Merge(&conditions("True")),
        )
        .await
        .expect("status");
    nodes
        .patch(
            "pressed",
            &pp,
            &kube::api::Patch::Merge(&json!({"spec": {"unschedulable": true}})),
        )
        .await
        .expect("cordon");
    common::eventually("the disk-pressure and unschedulable taints", || async {
        let n = nodes.get("pressed").await.ok()?;
        (taint_keys(&n)
            == [
                "node.kubernetes.io/disk-pressure:NoSchedule",
                "node.kubernetes.io/unschedulable:NoSchedule",
            ])
        .then_some(())
    })
    .await;
    nodes
        .patch_status(
            "pressed",
            &pp,
            &kube::api::Patch::Merge(&conditions("False")),
        )
        .await
        .expect("status");
    nodes
        .patch(
            "pressed",
            &pp,
            &kube::api::Patch::Merge(&json!({"spec": {"unschedulable": false}})),
        )
        .await
        .expect("uncordon");
    common::eventually("the taints removed", || async {
        let n = nodes.get("pressed").await.ok()?;
        taint_keys(&n).is_empty().then_some(())
    })
    .await;
}
