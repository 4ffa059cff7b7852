//! Node-pressure eviction with the whole kubelet against a real API server
//! and the fake runtime, the node's own measurements (thresholds set so
//! that this machine is "under pressure": `memory.available<100%` holds
//! whenever anything uses memory): the pressure condition on the Node, a
//! best-effort pod refused at admission, a running pod evicted with
//! upstream's status; unused images removed under disk pressure before any
//! pod; an emptyDir over its sizeLimit evicted.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{eventually, phase, sleeper};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::PostParams;
use kube::Api;
use serde_json::json;

use kubelet::cri::fake::FakeRuntime;
use kubelet::eviction::{parse_thresholds, EvictionConfig};
use kubelet::{Kubelet, KubeletConfig};

const T: Duration = Duration::from_secs(40);

async fn start(
    api: &integration::TestApiServer,
    fake: &FakeRuntime,
    node: &str,
    hard: &[(&str, &str)],
    dir: &std::path::Path,
) {
    let hard: BTreeMap<String, String> = hard
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let e = BTreeMap::new();
    let config = KubeletConfig {
        node_name: node.into(),
        hostname: node.into(),
        node_ips: vec!["127.0.0.1".into()],
        root_dir: dir.join("root"),
        pod_logs_dir: dir.join("logs"),
        housekeeping_interval: Duration::from_millis(500),
        eviction: EvictionConfig {
            thresholds: parse_thresholds(&hard, &e, &e, &e).unwrap(),
            ..Default::default()
        },
        image_gc: kubelet::image_gc::ImageGcPolicy {
            min_age: Duration::ZERO,
            ..Default::default()
        },
        ..Default::default()
    };
    let kubelet = Kubelet::new(
        api.client.clone(),
        Arc::new(fake.clone()),
        Arc::new(fake.clone()),
        config,
    )
    .await
    .unwrap();
    tokio::spawn(kubelet.run());
}

fn condition(n: &Node, ty: &str) -> Option<String> {
    n.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == ty)
        .map(|c| c.status.clone())
}

fn burstable(name: &str, node: &str) -> Pod {
    let mut p = sleeper(name, node);
    p.spec.as_mut().unwrap().containers[0].resources =
        Some(serde_json::from_value(json!({"requests": {"memory": "1Mi"}})).unwrap());
    p
}

/// Creates `pod` and waits until it is Failed (`what` names the wait).
async fn create_until_failed(pods: &Api<Pod>, pod: &Pod, what: &str) -> Pod {
    pods.create(&PostParams::default(), pod).await.unwrap();
    let name = pod.metadata.name.clone().unwrap();
    eventually(what, T, || async {
        let p = pods.get(&name).await.ok()?;
        (phase(&p) == Some("Failed")).then_some(p)
    })
    .await
}

fn status_of(p: &Pod) -> (Option<&str>, Option<&str>, &str) {
    let s = p.status.as_ref().unwrap();
    (
        s.phase.as_deref(),
        s.reason.as_deref(),
        s.message.as_deref().unwrap_or(""),
    )
}

#[tokio::test]
async fn memory_pressure_refuses_best_effort_pods_and_evicts_a_running_one() {
    component_base::logs::init(0);
    let api = integration::TestApiServer::start().await;
    let fake = FakeRuntime::new();
    let dir = tempfile::tempdir().unwrap();
    start(
        &api,
        &fake,
        "mem-node",
        &[("memory.available", "100%")],
        dir.path(),
    )
    .await;

    let nodes: Api<Node> = Api::all(api.client.clone());
    eventually("MemoryPressure=True on the node", T, || async {
        let n = nodes.get_opt("mem-node").await.ok()??;
        (condition(&n, "MemoryPressure").as_deref() == Some("True")
            && condition(&n, "DiskPressure").as_deref() == Some("False"))
        .then_some(())
    })
    .await;

    let pods: Api<Pod> = Api::namespaced(api.client.clone(), "default");
    let p = create_until_failed(
        &pods,
        &sleeper("best-effort", "mem-node"),
        "the best-effort pod refused",
    )
    .await;
    assert_eq!(
        status_of(&p),
        (
            Some("Failed"),
            Some("Evicted"),
            "Pod was rejected: The node had condition: [MemoryPressure]. "
        )
    );
    assert!(
        fake.containers_named("main").is_empty(),
        "a refused pod never runs"
    );

    // A burstable pod is admitted, runs, and is then evicted (the node
    // stays under pressure), killed with upstream's status.
    let p = create_until_failed(
        &pods,
        &burstable("burstable", "mem-node"),
        "the burstable pod evicted",
    )
    .await;
    let (_, reason, message) = status_of(&p);
    assert_eq!(reason, Some("Evicted"));
    assert!(
        message.starts_with("The node was low on resource: memory. Threshold quantity: "),
        "{message}"
    );
    assert!(message.contains(", available: "), "{message}");
    let disruption = p
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "DisruptionTarget")
        .cloned()
        .unwrap();
    assert_eq!(disruption.status, "True");
    assert_eq!(disruption.reason.as_deref(), Some("TerminationByKubelet"));
    // The container ran and was stopped; it is not restarted.
    let ids = fake.containers_named("main");
    assert_eq!(ids.len(), 1, "started once, not restarted");
    assert!(fake.calls().iter().any(|c| c.starts_with("StopPodSandbox")));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let p = pods.get("burstable").await.unwrap();
    assert_eq!(status_of(&p).1, Some("Evicted"), "the eviction sticks");
    assert_eq!(fake.containers_named("main").len(), 1);
}

#[tokio::test]
async fn disk_pressure_removes_unused_images_first_then_evicts() {
    component_base::logs::init(0);
    let api = integration::TestApiServer::start().await;
    let fake = FakeRuntime::new();
    fake.add_image("unused:1");
    let dir = tempfile::tempdir().unwrap();
    start(
        &api,
        &fake,
        "disk-node",
        &[("nodefs.available", "100%")],
        dir.path(),
    )
    .await;
    let nodes: Api<Node> = Api::all(api.client.clone());
    eventually("DiskPressure=True on the node", T, || async {
        let n = nodes.get_opt("disk-node").await.ok()??;
        (condition(&n, "DiskPressure").as_deref() == Some("True")).then_some(())
    })
    .await;
    eventually("the unused image removed", T, || async {
        fake.calls()
            .iter()
            .any(|c| c == "RemoveImage unused:1")
            .then_some(())
    })
    .await;
    // Under disk pressure every pod is refused, burstable or not.
    let pods: Api<Pod> = Api::namespaced(api.client.clone(), "default");
    let p = create_until_failed(&pods, &burstable("late", "disk-node"), "the pod refused").await;
    assert_eq!(
        status_of(&p).2,
        "Pod was rejected: The node had condition: [DiskPressure]. "
    );
}

#[tokio::test]
async fn an_empty_dir_over_its_size_limit_is_evicted() {
    component_base::logs::init(0);
    let api = integration::TestApiServer::start().await;
    let fake = FakeRuntime::new();
    let dir = tempfile::tempdir().unwrap();
    start(&api, &fake, "limit-node", &[], dir.path()).await;
    let pods: Api<Pod> = Api::namespaced(api.client.clone(), "default");
    let mut p = sleeper("scratchy", "limit-node");
    p.spec.as_mut().unwrap().volumes = Some(vec![serde_json::from_value(
        json!({"name": "scratch", "emptyDir": {"sizeLimit": "1Ki"}}),
    )
    .unwrap()]);
    pods.create(&PostParams::default(), &p).await.unwrap();
    let running = eventually("the pod running", T, || async {
        let p = pods.get("scratchy").await.ok()?;
        (phase(&p) == Some("Running")).then_some(p)
    })
    .await;
    // Under the limit: nothing happens.
    let uid = running.metadata.uid.unwrap();
    let volume = dir
        .path()
        .join("root/pods")
        .join(&uid)
        .join("volumes/kubernetes.io~empty-dir/scratch");
    std::fs::write(volume.join("small"), vec![0u8; 512]).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(phase(&pods.get("scratchy").await.unwrap()), Some("Running"));
    // Over it: evicted with upstream's message.
    std::fs::write(volume.join("big"), vec![0u8; 8192]).unwrap();
    let p = eventually("the pod evicted", T, || async {
        let p = pods.get("scratchy").await.ok()?;
        (phase(&p) == Some("Failed")).then_some(p)
    })
    .await;
    assert_eq!(
        status_of(&p),
        (
            Some("Failed"),
            Some("Evicted"),
            "Usage of EmptyDir volume \"scratch\" exceeds the limit \"1Ki\". "
        )
    );
}
