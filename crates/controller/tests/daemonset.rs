//! The DaemonSet controller against a real API server (upstream's
//! test/integration/daemonset). No scheduler or kubelet runs: pods stay
//! unbound with their `metadata.name` node affinity, and the test plays the
//! kubelet by marking them Running and Ready through pods/status.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

fn from<T: serde::de::DeserializeOwned>(v: Value) -> T {
    match serde_json::from_value(v) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

fn daemonset(name: &str, pod_spec: Value, strategy: Value) -> DaemonSet {
    let mut spec = json!({"containers": [{"name": "c", "image": "busybox:1"}]});
    if let (Some(s), Some(extra)) = (spec.as_object_mut(), pod_spec.as_object()) {
        s.extend(extra.clone());
    }
    from(json!({"metadata": {"name": name}, "spec": {
        "selector": {"matchLabels": {"app": name}}, "updateStrategy": strategy,
        "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}))
}

struct Env {
    _cluster: common::Cluster,
    sets: Api<DaemonSet>,
    pods: Api<Pod>,
    nodes: Api<Node>,
    revisions: Api<ControllerRevision>,
}

async fn setup(ns: &str, nodes: &[(&str, Value, Value)]) -> Env {
    let c = common::start(&["daemonset"], |_, _| {}).await;
    let nss: Api<Namespace> = Api::all(c.client.clone());
    nss.create(&PostParams::default(), &common::ns(ns))
        .await
        .expect("namespace");
    let node_api: Api<Node> = Api::all(c.client.clone());
    for (name, labels, taints) in nodes {
        let n: Node =
            from(json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}}));
        node_api
            .create(&PostParams::default(), &n)
            .await
            .expect("node");
    }
    Env {
        sets: Api::namespaced(c.client.clone(), ns),
        pods: Api::namespaced(c.client.clone(), ns),
        revisions: Api::namespaced(c.client.clone(), ns),
        nodes: node_api,
        _cluster: c,
    }
}

fn target(p: &Pod) -> String {
    p.spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .and_then(|r| r.node_selector_terms.first())
        .and_then(|t| t.match_fields.as_ref())
        .and_then(|f| f.first())
        .and_then(|f| f.values.as_ref())
        .and_then(|v| v.first())
        .cloned()
        .unwrap_or_default()
}

fn image(p: &Pod) -> String {
    p.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn live_pods(env: &Env, app: &str) -> Vec<Pod> {
    env.pods
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

/// Node → images of the live pods there.
async fn placement(env: &Env, app: &str) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in live_pods(env, app).await {
        m.entry(target(&p)).or_default().push(image(&p));
    }
    m
}

async fn mark_ready(env: &Env, p: &Pod) {
    let now = jiff::Timestamp::now().to_string();
    let status = json!({"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": now}]}});
    let name = p.metadata.name.clone().unwrap_or_default();
    // A pod deleted meanwhile is fine.
    let _ = env
        .pods
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await;
}

fn expect_placement(want: &[(&str, &str)]) -> BTreeMap<String, Vec<String>> {
    want.iter()
        .map(|(n, i)| (n.to_string(), vec![i.to_string()]))
        .collect()
}

async fn wait_placement(env: &Env, app: &str, want: &[(&str, &str)]) {
    let want = expect_placement(want);
    common::eventually(&format!("pods of {app} on {want:?}"), || async {
        (placement(env, app).await == want).then_some(())
    })
    .await;
}

/// Plays the kubelet until the DaemonSet is rolled out (what `kubectl
/// rollout status ds` waits for), calling `check` on the live pods first.
async fn drive(env: &Env, name: &str, mut check: impl FnMut(&[Pod])) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for the rollout of {name}"
        );
        let live = live_pods(env, name).await;
        check(&live);
        if let Some(p) = live.iter().find(|p| !is_ready(p)) {
            mark_ready(env, p).await;
            continue;
        }
        let done = env.sets.get(name).await.ok().is_some_and(|ds| {
            ds.status.as_ref().is_some_and(|s| {
                s.observed_generation >= ds.metadata.generation
                    && s.updated_number_scheduled.unwrap_or(0) >= s.desired_number_scheduled
                    && s.number_available.unwrap_or(0) >= s.desired_number_scheduled
            })
        });
        if done {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn set_image(env: &Env, name: &str, image: &str) {
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}});
    env.sets
        .patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("set image");
}

#[tokio::test]
async fn one_pod_per_eligible_node_then_a_rolling_update_within_max_unavailable() {
    let env = setup(
        "ds-rolling",
        &[
            ("n1", json!({}), json!([])),
            ("n2", json!({}), json!([])),
            ("n3", json!({}), json!([])),
            (
                "tainted",
                json!({}),
                json!([{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]),
            ),
        ],
    )
    .await;
    let strategy = json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}});
    env.sets
        .create(
            &PostParams::default(),
            &daemonset("agent", json!({}), strategy),
        )
        .await
        .expect("create");
    let v1 = [
        ("n1", "busybox:1"),
        ("n2", "busybox:1"),
        ("n3", "busybox:1"),
    ];
    wait_placement(&env, "agent", &v1).await;
    drive(&env, "agent", |_| {}).await;
    let ds = env.sets.get("agent").await.expect("get");
    let s = ds.status.clone().unwrap_or_default();
    assert_eq!(
        (
            s.desired_number_scheduled,
            s.current_number_scheduled,
            s.number_ready,
            s.number_misscheduled
        ),
        (3, 3, 3, 0)
    );
    assert_eq!(
        (s.number_available, s.updated_number_scheduled),
        (Some(3), Some(3))
    );

    // Pods carry the daemon tolerations and the revision's hash.
    let pods = live_pods(&env, "agent").await;
    let p = pods.first().expect("a pod");
    let tolerations: BTreeSet<String> = p
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|t| {
            format!(
                "{}:{}",
                t.key.unwrap_or_default(),
                t.effect.unwrap_or_default()
            )
        })
        .collect();
    for want in [
        "node.kubernetes.io/not-ready:NoExecute",
        "node.kubernetes.io/unreachable:NoExecute",
        "node.kubernetes.io/disk-pressure:NoSchedule",
        "node.kubernetes.io/memory-pressure:NoSchedule",
        "node.kubernetes.io/pid-pressure:NoSchedule",
        "node.kubernetes.io/unschedulable:NoSchedule",
    ] {
        assert!(
            tolerations.contains(want),
            "missing {want} in {tolerations:?}"
        );
    }
    let revs = env
        .revisions
        .list(&ListParams::default())
        .await
        .expect("revisions")
        .items;
    assert_eq!(revs.len(), 1);
    let hash = revs[0]
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("controller-revision-hash"))
        .cloned()
        .expect("hash label");
    assert!(pods.iter().all(|p| p
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("controller-revision-hash"))
        == Some(&hash)));

    // A rolling update never leaves more than one node without a ready pod.
    set_image(&env, "agent", "busybox:2").await;
    drive(&env, "agent", |live| {
        let ready_nodes: BTreeSet<String> =
            live.iter().filter(|p| is_ready(p)).map(target).collect();
        assert!(
            ready_nodes.len() >= 2,
            "maxUnavailable exceeded: ready on {ready_nodes:?}"
        );
        let mut per_node = BTreeMap::new();
        for p in live {
            *per_node.entry(target(p)).or_insert(0) += 1;
        }
        assert!(
            per_node.values().all(|n| *n <= 1),
            "two pods on a node: {per_node:?}"
        );
    })
    .await;
    wait_placement(
        &env,
        "agent",
        &[
            ("n1", "busybox:2"),
            ("n2", "busybox:2"),
            ("n3", "busybox:2"),
        ],
    )
    .await;
    let revs = env
        .revisions
        .list(&ListParams::default())
        .await
        .expect("revisions")
        .items;
    assert_eq!(revs.len(), 2);

    // The taint goes: the node gets its pod. A node is deleted: its pod is no longer counted.
    env.nodes
        .patch(
            "tainted",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"taints": null}})),
        )
        .await
        .expect("untaint");
    wait_placement(
        &env,
        "agent",
        &[
            ("n1", "busybox:2"),
            ("n2", "busybox:2"),
            ("n3", "busybox:2"),
            ("tainted", "busybox:2"),
        ],
    )
    .await;
    env.nodes
        .delete("n3", &DeleteParams::default())
        .await
        .expect("delete node");
    common::eventually("desired 3 after a node went", || async {
        let s = env.sets.get("agent").await.ok()?.status?;
        (s.desired_number_scheduled == 3).then_some(())
    })
    .await;
}

#[tokio::test]
async fn surge_node_selector_and_on_delete() {
    let env = setup(
        "ds-surge",
        &[
            ("a", json!({"disk": "ssd"}), json!([])),
            ("b", json!({"disk": "ssd"}), json!([])),
            ("c", json!({"disk": "hdd"}), json!([])),
        ],
    )
    .await;
    let surge =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}});
    env.sets
        .create(
            &PostParams::default(),
            &daemonset("ssd", json!({"nodeSelector": {"disk": "ssd"}}), surge),
        )
        .await
        .expect("create");
    wait_placement(&env, "ssd", &[("a", "busybox:1"), ("b", "busybox:1")]).await;
    drive(&env, "ssd", |_| {}).await;
    // maxSurge 1, maxUnavailable 0: every node keeps a ready pod; at most
    // one node has two.
    set_image(&env, "ssd", "busybox:2").await;
    drive(&env, "ssd", |live| {
        let ready_nodes: BTreeSet<String> =
            live.iter().filter(|p| is_ready(p)).map(target).collect();
        assert_eq!(
            ready_nodes.len(),
            2,
            "a node without a ready pod: {ready_nodes:?}"
        );
        assert!(live.len() <= 3, "more than one surge pod: {}", live.len());
    })
    .await;
    wait_placement(&env, "ssd", &[("a", "busybox:2"), ("b", "busybox:2")]).await;
    // Relabelling a node moves the daemon: c gains a pod, b loses its own.
    env.nodes
        .patch(
            "c",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"disk": "ssd"}}})),
        )
        .await
        .expect("label c");
    env.nodes
        .patch(
            "b",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"disk": "hdd"}}})),
        )
        .await
        .expect("label b");
    wait_placement(&env, "ssd", &[("a", "busybox:2"), ("c", "busybox:2")]).await;

    // OnDelete: a new template replaces nothing until a pod is deleted.
    env.sets
        .patch(
            "ssd",
            &PatchParams::default(),
            &Patch::Merge(
                &json!({"spec": {"updateStrategy": {"type": "OnDelete", "rollingUpdate": null}}}),
            ),
        )
        .await
        .expect("OnDelete");
    set_image(&env, "ssd", "busybox:3").await;
    common::eventually("status of the new generation", || async {
        let ds = env.sets.get("ssd").await.ok()?;
        let s = ds.status?;
        (s.observed_generation >= ds.metadata.generation && s.updated_number_scheduled == Some(0))
            .then_some(())
    })
    .await;
    assert_eq!(
        placement(&env, "ssd").await,
        expect_placement(&[("a", "busybox:2"), ("c", "busybox:2")])
    );
    let on_a = live_pods(&env, "ssd")
        .await
        .into_iter()
        .find(|p| target(p) == "a")
        .and_then(|p| p.metadata.name)
        .expect("pod on a");
    env.pods
        .delete(&on_a, &DeleteParams::default())
        .await
        .expect("delete pod");
    wait_placement(&env, "ssd", &[("a", "busybox:3"), ("c", "busybox:2")]).await;
}

#[tokio::test]
async fn an_orphan_on_a_node_is_adopted_not_duplicated() {
    let env = setup("ds-adopt", &[("only", json!({}), json!([]))]).await;
    let orphan: Pod = from(
        json!({"metadata": {"name": "stray", "labels": {"app": "adopt"}},
        "spec": {"nodeName": "only", "containers": [{"name": "c", "image": "busybox:0"}]}}),
    );
    let orphan = env
        .pods
        .create(&PostParams::default(), &orphan)
        .await
        .expect("orphan");
    let ds = env
        .sets
        .create(
            &PostParams::default(),
            &daemonset("adopt", json!({}), json!({"type": "OnDelete"})),
        )
        .await
        .expect("create");
    let uid = ds.metadata.uid.clone().expect("uid");
    common::eventually("stray adopted", || async {
        let p = env.pods.get("stray").await.ok()?;
        let owner = p
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|r| r.controller == Some(true))
            .map(|r| r.uid.clone());
        (p.metadata.uid == orphan.metadata.uid && owner.as_ref() == Some(&uid)).then_some(())
    })
    .await;
    common::eventually("status counts the adopted pod", || async {
        let s = env.sets.get("adopt").await.ok()?.status?;
        (s.desired_number_scheduled == 1 && s.current_number_scheduled == 1).then_some(())
    })
    .await;
    assert_eq!(live_pods(&env, "adopt").await.len(), 1);
}
