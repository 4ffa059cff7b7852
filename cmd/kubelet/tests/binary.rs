//! The kubelet binary end to end: flags and `--config`, the API server from
//! `integration::TestApiServer` through `--kubeconfig`, containerd through
//! `--container-runtime-endpoint`, the healthz port and the HTTPS port's
//! `/pods` and `/containerLogs`. Prints the process's resident memory once
//! idle with one pod (a figure, not an assertion).
//!
//! Needs containerd like `crates/kubelet/tests/containerd.rs`: set
//! `KUBELET_TEST_CRI_ENDPOINT`; without it the test says so and passes
//! without running.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, PostParams};
use kube::Api;

mod common;

use common::{free_port, rss_kib, Kill};

async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn curl(args: &[&str]) -> Option<String> {
    let out = Command::new("curl")
        .args(["-fsS", "--max-time", "5"])
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

// Several threads: curl blocks one while the kubelet asks the API server
// in this process to review its token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_binary_runs_a_pod_and_serves_its_endpoints() {
    let Ok(endpoint) = std::env::var("KUBELET_TEST_CRI_ENDPOINT") else {
        eprintln!("skipping: KUBELET_TEST_CRI_ENDPOINT is not set (see crates/kubelet/README.md)");
        return;
    };
    let api = integration::TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nclusterDomain: cluster.local\nmaxPods: 42\npodLogsDir: {}\nevictionHard: {{memory.available: 100Mi, nodefs.available: 1Gi}}\n",
            dir.path().join("logs").display()
        ),
    )
    .unwrap();
    let (port, healthz) = (free_port(), free_port());
    let node = format!("bin-node-{}", std::process::id());
    // KUBELET_TEST_BINARY runs another build (say, the release one) instead.
    let binary = std::env::var("KUBELET_TEST_BINARY")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_kubelet").into());
    let child = Command::new(binary)
        .args(["--kubeconfig", api.kubeconfig.to_str().unwrap()])
        .args(["--config", config.to_str().unwrap()])
        .args(["--container-runtime-endpoint", &endpoint])
        .args(["--hostname-override", &node])
        .args(["--node-ip", "127.0.0.1"])
        .args(["--root-dir", dir.path().join("root").to_str().unwrap()])
        .args(["--address", "127.0.0.1"])
        .args(["--port", &port.to_string()])
        .args(["--healthz-port", &healthz.to_string()])
        .args(["--cluster-dns", "10.0.0.10"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let _guard = Kill(child);

    let nodes: Api<Node> = Api::all(api.client.clone());
    let capacity = eventually("the node's status", || async {
        nodes.get_opt(&node).await.ok()??.status?.capacity
    })
    .await;
    assert_eq!(capacity["pods"].0, "42");
    let hz = eventually("healthz", || async {
        curl(&[&format!("http://127.0.0.1:{healthz}/healthz")])
    })
    .await;
    assert_eq!(hz, "ok");

    let pods: Api<Pod> = Api::namespaced(api.client.clone(), "default");
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web"},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 5,
            "containers": [{"name": "main", "image": "busybox:1.35",
                "command": ["sh", "-c", "trap 'exit 0' TERM; cat /etc/resolv.conf; sleep 3600 & wait"]}]
        }
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    eventually("the pod to run", || async {
        let p = pods.get("web").await.ok()?;
        (p.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
    let base = format!("https://127.0.0.1:{port}");
    // A config file brings v1beta1's defaults: no anonymous callers; a
    // ServiceAccount token is checked with the API server (TokenReview).
    let status = Command::new("curl")
        .args([
            "-ksS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{base}/pods"),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&status.stdout), "401");
    let token = api.service_account_token("default", "scraper").await;
    let bearer = format!("Authorization: Bearer {token}");
    let list = curl(&["-k", "-H", &bearer, &format!("{base}/pods")]).unwrap();
    assert!(
        list.contains("\"kind\":\"PodList\"") && list.contains("\"web\""),
        "{list}"
    );
    let logs = eventually("the log", || async {
        curl(&[
            "-k",
            "-H",
            &bearer,
            &format!("{base}/containerLogs/default/web/main"),
        ])
        .filter(|l| l.contains("nameserver"))
    })
    .await;
    assert!(logs.contains("nameserver 10.0.0.10"), "{logs}");
    assert!(
        logs.contains("search default.svc.cluster.local svc.cluster.local cluster.local"),
        "{logs}"
    );
    assert!(logs.contains("options ndots:5"), "{logs}");
    // Let the status and lease loops settle, then read the memory.
    tokio::time::sleep(Duration::from_secs(3)).await;
    eprintln!(
        "kubelet RSS with one pod: {} KiB",
        rss_kib(pid).unwrap_or_default()
    );

    pods.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("the pod to be gone", || async {
        pods.get_opt("web").await.ok()?.is_none().then_some(())
    })
    .await;
}
