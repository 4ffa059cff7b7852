//! The whole kubelet against a real API server (`integration::TestApiServer`)
//! and the in-memory fake runtime: node registration and Lease, a pod to
//! Running and Ready, a crash seen through the PLEG and restarted, and a
//! graceful delete that ends with the pod object gone and nothing left in
//! the runtime.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{eventually, phase, ready, sleeper};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, PostParams};
use kube::Api;

use kubelet::cri::fake::FakeRuntime;
use kubelet::{Kubelet, KubeletConfig};

const T: Duration = Duration::from_secs(30);

#[tokio::test]
async fn fake_node_registers_runs_restarts_and_deletes_a_pod() {
    component_base::logs::init(0);
    let api = integration::TestApiServer::start().await;
    let fake = FakeRuntime::new();
    let dir = tempfile::tempdir().unwrap();
    let config = KubeletConfig {
        node_name: "fake-node".into(),
        hostname: "fake-node".into(),
        node_ips: vec!["127.0.0.1".into()],
        root_dir: dir.path().join("root"),
        pod_logs_dir: dir.path().join("logs"),
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

    let nodes: Api<Node> = Api::all(api.client.clone());
    let node = eventually("the node to be Ready", T, || async {
        let n = nodes.get_opt("fake-node").await.ok()??;
        let ready = n
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        ready.then_some(n)
    })
    .await;
    let info = node.status.as_ref().unwrap().node_info.as_ref().unwrap();
    assert_eq!(info.container_runtime_version, "fake://0.1.0");
    assert_eq!(
        node.status.as_ref().unwrap().capacity.as_ref().unwrap()["pods"].0,
        "110"
    );
    let leases: Api<Lease> = Api::namespaced(api.client.clone(), "kube-node-lease");
    let lease = eventually("the node lease", T, || async {
        leases.get_opt("fake-node").await.ok()?
    })
    .await;
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("fake-node")
    );

    let pods: Api<Pod> = Api::namespaced(api.client.clone(), "default");
    pods.create(&PostParams::default(), &sleeper("web", "fake-node"))
        .await
        .unwrap();
    let p = eventually("the pod to be Running and Ready", T, || async {
        let p = pods.get("web").await.ok()?;
        (phase(&p) == Some("Running") && ready(&p)).then_some(p)
    })
    .await;
    let st = p.status.unwrap();
    assert!(st.pod_ip.as_deref().unwrap().starts_with("10.88."));
    assert_eq!(st.host_ip.as_deref(), Some("127.0.0.1"));
    let id = fake.containers_named("main")[0].clone();
    let cfg = fake.container_config(&id).unwrap();
    assert!(cfg
        .envs
        .iter()
        .any(|e| e.key == "POD_NAME" && e.value == "web"));

    // The container dies: the PLEG notices, the worker restarts it.
    fake.exit(&id, 1);
    eventually("restartCount 1", T, || async {
        let p = pods.get("web").await.ok()?;
        let cs = p.status?.container_statuses?;
        (cs[0].restart_count == 1 && cs[0].state.as_ref()?.running.is_some()).then_some(())
    })
    .await;

    pods.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("the pod object to be gone", T, || async {
        pods.get_opt("web").await.ok()?.is_none().then_some(())
    })
    .await;
    eventually("the runtime to be empty", T, || async {
        (fake.counts() == (0, 0)).then_some(())
    })
    .await;
    let calls = fake.calls();
    assert!(
        calls.contains(&"StopContainer main 10".to_string()),
        "{calls:?}"
    );

    // What `kubectl describe pod` lists, reported by this kubelet.
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(api.client.clone(), "default");
    eventually("the pod's events", T, || async {
        let list = events.list(&Default::default()).await.ok()?;
        let reasons: Vec<String> = list
            .items
            .iter()
            .filter(|e| e.involved_object.name.as_deref() == Some("web"))
            .filter_map(|e| e.reason.clone())
            .collect();
        let want = ["Pulling", "Pulled", "Created", "Started", "Killing"];
        want.iter()
            .all(|r| reasons.iter().any(|x| x == r))
            .then_some(())
    })
    .await;
}

/// A restarted kubelet finds its sandbox and container by their labels and
/// leaves them running (upstream's re-adoption after a kubelet restart).
#[tokio::test]
async fn restarted_kubelet_adopts_running_pods() {
    let api = integration::TestApiServer::start().await;
    let fake = FakeRuntime::new();
    let dir = tempfile::tempdir().unwrap();
    let config = KubeletConfig {
        node_name: "fake-node".into(),
        hostname: "fake-node".into(),
        node_ips: vec!["127.0.0.1".into()],
        root_dir: dir.path().join("root"),
        pod_logs_dir: dir.path().join("logs"),
        ..Default::default()
    };
    let first = start(&api, &fake, config.clone()).await;
    let pods: Api<Pod> = Api::namespaced(api.client.clone(), "default");
    pods.create(&PostParams::default(), &sleeper("web", "fake-node"))
        .await
        .unwrap();
    eventually("the pod to be Running", T, || async {
        let p = pods.get("web").await.ok()?;
        (phase(&p) == Some("Running") && ready(&p)).then_some(())
    })
    .await;
    first.abort();
    let _ = first.await;
    let before = fake.calls();

    // The new kubelet reports another host IP, so its first status write
    // shows that it synced the pod; with everything in place it changes
    // nothing in the runtime.
    let _second = start(
        &api,
        &fake,
        KubeletConfig {
            node_ips: vec!["127.0.0.2".into()],
            ..config
        },
    )
    .await;
    eventually("a status written by the new kubelet", T, || async {
        let st = pods.get("web").await.ok()?.status?;
        let ready = st.container_statuses?[0].ready;
        (ready && st.host_ip.as_deref() == Some("127.0.0.2")).then_some(())
    })
    .await;
    let after = fake.calls();
    assert_eq!(after, before, "no sandbox or container is created again");
    assert_eq!(fake.counts(), (1, 1));
}

async fn start(
    api: &integration::TestApiServer,
    fake: &FakeRuntime,
    config: KubeletConfig,
) -> tokio::task::JoinHandle<()> {
    let k = Kubelet::new(
        api.client.clone(),
        Arc::new(fake.clone()),
        Arc::new(fake.clone()),
        config,
    )
    .await
    .unwrap();
    tokio::spawn(k.run())
}
