//! The kubelet against real containerd over CRI and a real API server: a
//! busybox pod reaches Running with a pod IP from the CNI bridge, its log
//! is served by the kubelet's `/containerLogs`, and a delete stops it
//! gracefully, removes the sandbox and the pod object.
//!
//! Needs a running containerd with the test images: run
//! `hack/lib/containerd.sh`'s `kube::containerd::start` after
//! `kube::images::ensure` and `kube::cni::write_config` (see the README),
//! then set `KUBELET_TEST_CRI_ENDPOINT=unix:///var/lib/kube-containerd/containerd.sock`.
//! Without that variable the test says so and passes without running.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{eventually, phase, ready, sleeper};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, PostParams};
use kube::Api;

use kubelet::cri::api::PodSandboxFilter;
use kubelet::cri::remote::RemoteRuntime;
use kubelet::cri::RuntimeService;
use kubelet::kuberuntime::labels;
use kubelet::server::ServerState;
use kubelet::{Kubelet, KubeletConfig};

/// One kubelet on the shared test containerd at a time: a kubelet owns its
/// runtime (as upstream's) and stops sandboxes it does not know, so two
/// tests' kubelets side by side would stop each other's pods.
static ONE_KUBELET: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const T: Duration = Duration::from_secs(60);

/// A kubelet for `node` on the test containerd, its files under `dir`,
/// `adjust`ed, started; its server's state.
async fn start_kubelet(
    api: &integration::TestApiServer,
    remote: &Arc<RemoteRuntime>,
    node: &str,
    dir: &std::path::Path,
    adjust: impl FnOnce(&mut KubeletConfig),
) -> ServerState {
    let mut config = KubeletConfig {
        node_name: node.into(),
        hostname: node.into(),
        node_ips: vec!["127.0.0.1".into()],
        root_dir: dir.join("root"),
        pod_logs_dir: dir.join("logs"),
        eviction: common::no_eviction(),
        ..Default::default()
    };
    adjust(&mut config);
    let kubelet = Kubelet::new(api.client.clone(), remote.clone(), remote.clone(), config)
        .await
        .unwrap();
    common::run(kubelet)
}

#[tokio::test]
async fn busybox_pod_runs_serves_logs_and_is_deleted_cleanly() {
    let _one = ONE_KUBELET.lock().await;
    let Ok(endpoint) = std::env::var("KUBELET_TEST_CRI_ENDPOINT") else {
        eprintln!("skipping: KUBELET_TEST_CRI_ENDPOINT is not set (see crates/kubelet/README.md)");
        return;
    };
    component_base::logs::init(0);
    let api = integration::TestApiServer::start().await;
    let remote = Arc::new(RemoteRuntime::new(&endpoint).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let node = format!("cri-node-{}", std::process::id());
    let server = start_kubelet(&api, &remote, &node, dir.path(), |_| {}).await;

    let pods: Api<Pod> = Api::namespaced(api.client.clone(), "default");
    let started = Instant::now();
    pods.create(&PostParams::default(), &sleeper("web", &node))
        .await
        .unwrap();
    let p = eventually("the pod to be Running and Ready", T, || async {
        let p = pods.get("web").await.ok()?;
        (phase(&p) == Some("Running") && ready(&p)).then_some(p)
    })
    .await;
    eprintln!(
        "pod startup (create to Ready in the API): {:?}",
        started.elapsed()
    );
    let uid = p.metadata.uid.clone().unwrap();
    let st = p.status.unwrap();
    let ip = st.pod_ip.unwrap();
    // From the CNI bridge's range, which lies inside the guarded 10.0.0.0/9.
    let octets = ip.parse::<std::net::Ipv4Addr>().unwrap().octets();
    assert!(octets[0] == 10 && octets[1] < 128, "pod IP {ip}");
    let cs = &st.container_statuses.unwrap()[0];
    assert!(cs
        .container_id
        .as_deref()
        .unwrap()
        .starts_with("containerd://"));
    assert!(
        cs.image_id.starts_with("sha256:") || cs.image_id.contains("@sha256:"),
        "{}",
        cs.image_id
    );

    let logs = eventually("the container's log", T, || {
        let server = server.clone();
        async move {
            let resp = server.handle("/containerLogs/default/web/main", "").await;
            let body = resp.into_body().collect().await.ok()?.to_bytes();
            let text = String::from_utf8_lossy(&body).into_owned();
            text.contains("hello web").then_some(text)
        }
    })
    .await;
    assert_eq!(logs, "hello web\n");
    assert_eq!(server.handle("/healthz", "").await.status(), 200);

    // Usage through CRI ListContainerStats, as metrics-server reads it.
    // containerd measures its snapshots in the background (every 10 s by
    // default): a containerd started just now may still report an image
    // filesystem of 0 bytes, so wait for its first measurement.
    let summary = eventually("the image filesystem and the container measured", T, || {
        let server = server.clone();
        async move {
            let summary = server.handle("/stats/summary", "").await;
            assert_eq!(summary.status(), 200);
            let body = summary.into_body().collect().await.ok()?.to_bytes();
            let summary: serde_json::Value = serde_json::from_slice(&body).ok()?;
            // containerd also reports a just-started container's CPU only
            // after its first sample.
            let measured = summary["pods"].as_array().is_some_and(|pods| {
                pods.iter().any(|p| {
                    p["podRef"]["name"] == "web"
                        && p["containers"][0]["cpu"]["usageCoreNanoSeconds"].is_u64()
                })
            });
            (summary["node"]["runtime"]["imageFs"]["usedBytes"].as_u64() > Some(0) && measured)
                .then_some(summary)
        }
    })
    .await;
    assert_eq!(summary["node"]["nodeName"], node.as_str());
    assert!(
        summary["node"]["memory"]["workingSetBytes"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(
        summary["node"]["runtime"]["imageFs"]["usedBytes"]
            .as_u64()
            .unwrap()
            > 0,
        "{summary}"
    );
    let web = summary["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["podRef"]["name"] == "web")
        .unwrap();
    // The shell and its sleep, counted in the container's pids cgroup.
    assert!(
        web["process_stats"]["process_count"].as_u64() >= Some(1),
        "{web}"
    );
    let main = &web["containers"][0];
    assert_eq!(main["name"], "main");
    assert!(main["cpu"]["usageCoreNanoSeconds"].is_u64(), "{main}");
    assert!(
        main["memory"]["workingSetBytes"].as_u64().unwrap() > 0,
        "{main}"
    );
    // Each request reads the runtime's stats afresh; a sample may lack the
    // container's CPU for a moment, as the summary's first one may.
    let cpu_line =
        "container_cpu_usage_seconds_total{container=\"main\",namespace=\"default\",pod=\"web\"} ";
    let metrics = eventually("the container's CPU in /metrics/resource", T, || {
        let server = server.clone();
        async move {
            let metrics = server.handle("/metrics/resource", "").await;
            let body = metrics.into_body().collect().await.ok()?.to_bytes();
            let metrics = String::from_utf8_lossy(&body).into_owned();
            metrics.contains(cpu_line).then_some(metrics)
        }
    })
    .await;
    assert!(metrics.contains("resource_scrape_error 0\n"), "{metrics}");
    // cAdvisor's families from the container's real cgroup.
    let cid = cs
        .container_id
        .as_deref()
        .unwrap()
        .trim_start_matches("containerd://");
    let resp = server.handle("/metrics/cadvisor", "").await;
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let cadvisor = String::from_utf8_lossy(&body).into_owned();
    let series = format!(
        "container_memory_working_set_bytes{{container=\"main\",id=\"/k8s.io/{cid}\",image=\"docker.io/library/busybox:1.35\",name=\"{cid}\",namespace=\"default\",pod=\"web\"}} "
    );
    let line = cadvisor
        .lines()
        .find(|l| l.starts_with(&series))
        .unwrap_or_else(|| panic!("{series} in\n{cadvisor}"));
    let bytes: f64 = line[series.len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(bytes > 0.0, "{line}");
    assert!(
        cadvisor.contains("container_scrape_error 0\n"),
        "{cadvisor}"
    );
    assert!(
        cadvisor
            .contains("container_cpu_usage_seconds_total{container=\"\",cpu=\"total\",id=\"/\""),
        "{cadvisor}"
    );

    let deleted = Instant::now();
    pods.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("the pod object to be gone", T, || async {
        pods.get_opt("web").await.ok()?.is_none().then_some(())
    })
    .await;
    // The shell traps SIGTERM: far less than the 10 s grace period.
    eprintln!("graceful delete took {:?}", deleted.elapsed());
    // The sandbox is removed right after the object is deleted.
    let filter = PodSandboxFilter {
        label_selector: HashMap::from([(labels::POD_UID.to_string(), uid)]),
        ..Default::default()
    };
    eventually("the sandbox to be removed", T, || async {
        remote
            .list_pod_sandbox(Some(filter.clone()))
            .await
            .ok()?
            .is_empty()
            .then_some(())
    })
    .await;
}

/// A busybox container reads its configMap volume, its service-account
/// token and namespace from the `kube-api-access-*` volume the API server's
/// admission added, and finds the token mount read-only.
#[tokio::test]
async fn busybox_reads_config_map_and_service_account_token() {
    let _one = ONE_KUBELET.lock().await;
    use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
    use serde_json::json;

    let Ok(endpoint) = std::env::var("KUBELET_TEST_CRI_ENDPOINT") else {
        eprintln!("skipping: KUBELET_TEST_CRI_ENDPOINT is not set (see crates/kubelet/README.md)");
        return;
    };
    let api = integration::TestApiServer::start_with(|c| {
        c.admission.disable.retain(|p| p != "ServiceAccount");
    })
    .await;
    let pp = PostParams::default();
    let sas: Api<ServiceAccount> = Api::namespaced(api.client.clone(), "default");
    sas.create(
        &pp,
        &serde_json::from_value(json!({"metadata": {"name": "default"}})).unwrap(),
    )
    .await
    .unwrap();
    let ca = std::fs::read_to_string(&api.ca_file).unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(api.client.clone(), "default");
    for (name, data) in [
        ("kube-root-ca.crt", json!({"ca.crt": ca})),
        ("cfg", json!({"greeting": "hello from a configmap"})),
    ] {
        cms.create(
            &pp,
            &serde_json::from_value(json!({"metadata": {"name": name}, "data": data})).unwrap(),
        )
        .await
        .unwrap();
    }
    let remote = Arc::new(RemoteRuntime::new(&endpoint).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let node = format!("cri-vol-node-{}", std::process::id());
    let server = start_kubelet(&api, &remote, &node, dir.path(), |_| {}).await;

    let sa = "/var/run/secrets/kubernetes.io/serviceaccount";
    let script = format!(
        "cat /etc/cfg/greeting; echo; echo ns=$(cat {sa}/namespace); \
         echo token=$(cut -d. -f1 {sa}/token); grep -c 'BEGIN CERTIFICATE' {sa}/ca.crt; \
         touch {sa}/x 2>/dev/null || echo read-only; echo done; sleep 3600"
    );
    let pod = json!({
        "metadata": {"name": "reader"},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}],
            "containers": [{
                "name": "main", "image": "busybox:1.35",
                "command": ["sh", "-c", script],
                "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}]
            }]
        }
    });
    let pods: Api<Pod> = Api::namespaced(api.client.clone(), "default");
    pods.create(&pp, &serde_json::from_value(pod).unwrap())
        .await
        .unwrap();
    let logs = eventually("the reader's output", T, || {
        let server = server.clone();
        async move {
            let resp = server
                .handle("/containerLogs/default/reader/main", "")
                .await;
            let body = resp.into_body().collect().await.ok()?.to_bytes();
            let text = String::from_utf8_lossy(&body).into_owned();
            text.contains("done").then_some(text)
        }
    })
    .await;
    // A JWT's header is base64url of `{"alg":"RS256",...`, starting `eyJ`.
    assert!(logs.contains("hello from a configmap\n"), "{logs}");
    assert!(logs.contains("ns=default\n"), "{logs}");
    assert!(logs.contains("token=eyJ"), "{logs}");
    assert!(logs.contains("read-only\n"), "{logs}");
    pods.delete("reader", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the pod object to be gone", T, || async {
        pods.get_opt("reader").await.ok()?.is_none().then_some(())
    })
    .await;
}

/// A chatty container's log rotates by size through containerd's
/// ReopenContainerLog: rotated files are compressed and bounded, a
/// `follow` reader sees every line in order across the rotations, the
/// `containers` link points at the current file, and deleting the pod
/// removes its log directory and link.
#[tokio::test]
async fn chatty_logs_rotate_and_follow_keeps_up() {
    let _one = ONE_KUBELET.lock().await;
    use futures::StreamExt;
    use serde_json::json;

    let Ok(endpoint) = std::env::var("KUBELET_TEST_CRI_ENDPOINT") else {
        eprintln!("skipping: KUBELET_TEST_CRI_ENDPOINT is not set (see crates/kubelet/README.md)");
        return;
    };
    let api = integration::TestApiServer::start().await;
    let remote = Arc::new(RemoteRuntime::new(&endpoint).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let node = format!("cri-log-node-{}", std::process::id());
    let server = start_kubelet(&api, &remote, &node, dir.path(), |c| {
        c.container_log = kubelet::logs::rotate::LogRotatePolicy {
            max_size: 16 * 1024,
            max_files: 3,
            max_workers: 1,
            monitor_interval: Duration::from_secs(1),
        }
    })
    .await;

    // ~500 lines a second, ~20 KiB a second in the CRI format.
    let script = "i=0; while true; do i=$((i+1)); echo \"line $i\"; \
                  [ $((i % 50)) -eq 0 ] && sleep 0.1; done";
    let pod = json!({
        "metadata": {"name": "chatty"},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": "busybox:1.35", "command": ["sh", "-c", script]}]
        }
    });
    let pods: Api<Pod> = Api::namespaced(api.client.clone(), "default");
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(pod).unwrap(),
    )
    .await
    .unwrap();
    let p = eventually("the pod to be Running", T, || async {
        let p = pods.get("chatty").await.ok()?;
        (phase(&p) == Some("Running")).then_some(p)
    })
    .await;
    let uid = p.metadata.uid.clone().unwrap();
    let cid = p.status.unwrap().container_statuses.unwrap()[0]
        .container_id
        .clone()
        .unwrap();
    let cid = cid.trim_start_matches("containerd://").to_string();
    let pod_dir = dir
        .path()
        .join("logs")
        .join(format!("default_chatty_{uid}"));
    let cdir = pod_dir.join("main");

    let resp = server
        .handle("/containerLogs/default/chatty/main", "follow=true")
        .await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body().into_data_stream();
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), body.next()).await {
            Ok(Some(Ok(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("the follow stream stopped: {other:?}"),
        }
    }
    drop(body);
    let numbers: Vec<u64> = text
        .lines()
        .map(|l| l.strip_prefix("line ").unwrap().parse().unwrap())
        .collect();
    eprintln!(
        "followed {} lines ({}..={}) across rotations",
        numbers.len(),
        numbers.first().unwrap_or(&0),
        numbers.last().unwrap_or(&0)
    );
    assert!(numbers.len() > 1000, "{} lines followed", numbers.len());
    for w in numbers.windows(2) {
        assert_eq!(
            w[1],
            w[0] + 1,
            "lines followed in order, none lost or repeated"
        );
    }

    let files: Vec<String> = std::fs::read_dir(&cdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(files.len() <= 3, "{files:?}");
    assert!(files.iter().any(|f| f == "0.log"), "{files:?}");
    assert!(
        files
            .iter()
            .any(|f| f.starts_with("0.log.") && f.ends_with(".gz")),
        "{files:?}"
    );
    let current = std::fs::metadata(cdir.join("0.log")).unwrap().len();
    assert!(current < 64 * 1024, "current log {current} bytes");
    let link = kubelet::logs::files::legacy_symlink(
        &dir.path().join("containers"),
        "chatty",
        "default",
        "main",
        &cid,
    );
    assert_eq!(std::fs::read_link(&link).unwrap(), cdir.join("0.log"));

    pods.delete("chatty", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the pod object to be gone", T, || async {
        pods.get_opt("chatty").await.ok()?.is_none().then_some(())
    })
    .await;
    eventually(
        "the pod's log directory and link to be removed",
        T,
        || async { (!pod_dir.exists() && std::fs::symlink_metadata(&link).is_err()).then_some(()) },
    )
    .await;
}
