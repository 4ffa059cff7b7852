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
use http_body_util::BodyExt;
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
        eviction: common::no_eviction(),
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
    let server = common::run(kubelet);

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
    // Service links: the kubernetes Service tells in-cluster clients where
    // the API server is.
    let kubernetes: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(api.client.clone(), "default");
    let ip = kubernetes
        .get("kubernetes")
        .await
        .unwrap()
        .spec
        .unwrap()
        .cluster_ip;
    let env = |k: &str| {
        cfg.envs
            .iter()
            .find(|e| e.key == k)
            .map(|e| e.value.clone())
    };
    assert_eq!(env("KUBERNETES_SERVICE_HOST"), ip);
    assert_eq!(env("KUBERNETES_SERVICE_PORT").as_deref(), Some("443"));
    assert_eq!(env("KUBERNETES_SERVICE_PORT_HTTPS").as_deref(), Some("443"));

    // The server's stats endpoints see the pod through ListContainerStats.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    fake.set_container_stats(&id, now, 2_000_000_000, 1000);
    let get = |path: &'static str, query: &'static str| {
        let server = server.clone();
        async move {
            let resp = server.handle(path, query).await;
            let status = resp.status();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    let (status, body) = get("/stats/summary", "only_cpu_and_memory=true").await;
    assert_eq!(status, 200, "{body}");
    let summary: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(summary["node"]["nodeName"], "fake-node");
    assert_eq!(summary["pods"][0]["podRef"]["name"], "web");
    assert_eq!(
        summary["pods"][0]["containers"][0]["cpu"]["usageCoreNanoSeconds"],
        2_000_000_000u64
    );
    let (status, text) = get("/metrics/resource", "").await;
    assert_eq!(status, 200);
    assert!(
        text.contains("pod_memory_working_set_bytes{namespace=\"default\",pod=\"web\"} 1000 "),
        "{text}"
    );
    let (_, own) = get("/metrics", "").await;
    assert!(own.contains("kubelet_running_pods 1\n"), "{own}");

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
    // And the node's: its conditions as they were first reported (what
    // `kubectl describe node` lists: kind Node, the name as UID).
    let node_events = eventually("the node's condition events", T, || async {
        let list = events.list(&Default::default()).await.ok()?;
        let found: Vec<(String, String)> = list
            .items
            .iter()
            .filter(|e| {
                e.involved_object.kind.as_deref() == Some("Node")
                    && e.involved_object.uid.as_deref() == Some("fake-node")
            })
            .filter_map(|e| Some((e.reason.clone()?, e.message.clone()?)))
            .collect();
        (found.len() >= 4).then_some(found)
    })
    .await;
    assert!(
        node_events.contains(&(
            "NodeReady".into(),
            "Node fake-node status is now: NodeReady".into()
        )),
        "{node_events:?}"
    );
    assert!(node_events
        .iter()
        .any(|(r, _)| r == "NodeHasSufficientMemory"));
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
        eviction: common::no_eviction(),
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

/// The service-account volume the API server's admission adds, and
/// configMap, secret, downwardAPI, memory emptyDir and hostPath volumes with
/// subPathExpr: the mounts handed to CreateContainer, the files on disk, a
/// ConfigMap update reaching the running pod, a missing ConfigMap holding a
/// container in `CreateContainerConfigError`, and the pod's directory gone
/// after delete.
#[tokio::test]
async fn volumes_are_projected_updated_and_torn_down() {
    use base64::Engine;
    use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
    use serde_json::json;

    let api = integration::TestApiServer::start_with(|c| {
        c.admission.disable.retain(|p| p != "ServiceAccount");
    })
    .await;
    let ns = "default";
    let pp = PostParams::default();
    // What the controller manager would create.
    let sas: Api<ServiceAccount> = Api::namespaced(api.client.clone(), ns);
    sas.create(
        &pp,
        &serde_json::from_value(json!({"metadata": {"name": "default"}})).unwrap(),
    )
    .await
    .unwrap();
    let ca = std::fs::read_to_string(&api.ca_file).unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(api.client.clone(), ns);
    cms.create(
        &pp,
        &serde_json::from_value(
            json!({"metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": ca}}),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    cms.create(
        &pp,
        &serde_json::from_value(json!({"metadata": {"name": "cfg"}, "data": {"a": "1", "b": "x"}}))
            .unwrap(),
    )
    .await
    .unwrap();
    let secrets: Api<Secret> = Api::namespaced(api.client.clone(), ns);
    secrets
        .create(
            &pp,
            &serde_json::from_value(
                json!({"metadata": {"name": "sec"}, "stringData": {"k": "s3cret"}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();

    let fake = FakeRuntime::new();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let host_dir = dir.path().join("host");
    let _kubelet = start(
        &api,
        &fake,
        KubeletConfig {
            node_name: "fake-node".into(),
            hostname: "fake-node".into(),
            node_ips: vec!["127.0.0.1".into()],
            root_dir: root.clone(),
            pod_logs_dir: dir.path().join("logs"),
            sync_frequency: Duration::from_secs(1),
            eviction: common::no_eviction(),
            ..Default::default()
        },
    )
    .await;

    let pods: Api<Pod> = Api::namespaced(api.client.clone(), ns);
    let pod = json!({
        "metadata": {"name": "vols", "labels": {"app": "v"}},
        "spec": {
            "nodeName": "fake-node",
            "terminationGracePeriodSeconds": 1,
            "securityContext": {"fsGroup": 2345},
            "volumes": [
                {"name": "cm", "configMap": {"name": "cfg", "items": [{"key": "a", "path": "files/a", "mode": 0o600}]}},
                {"name": "sec", "secret": {"secretName": "sec"}},
                {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
                {"name": "host", "hostPath": {"path": host_dir.to_str().unwrap(), "type": "DirectoryOrCreate"}}
            ],
            "containers": [{
                "name": "main", "image": "busybox:1.35",
                "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "volumeMounts": [
                    {"name": "cm", "mountPath": "/etc/cfg", "readOnly": true},
                    {"name": "sec", "mountPath": "/etc/sec"},
                    {"name": "info", "mountPath": "/etc/info"},
                    {"name": "mem", "mountPath": "/cache"},
                    {"name": "host", "mountPath": "/host", "subPathExpr": "$(POD_NAME)"}
                ]
            }]
        }
    });
    let created = pods
        .create(&pp, &serde_json::from_value(pod).unwrap())
        .await
        .unwrap();
    let uid = created.metadata.uid.clone().unwrap();
    eventually("the pod to be Running", T, || async {
        let p = pods.get("vols").await.ok()?;
        (phase(&p) == Some("Running")).then_some(())
    })
    .await;
    let id = fake.containers_named("main")[0].clone();
    let cfg = fake.container_config(&id).unwrap();
    let mount = |path: &str| {
        cfg.mounts
            .iter()
            .find(|m| m.container_path == path)
            .unwrap_or_else(|| panic!("no mount at {path}: {:?}", cfg.mounts))
            .clone()
    };
    let volumes = root.join("pods").join(&uid).join("volumes");

    // The service-account volume: a JWT from the API server bound to the pod.
    let sa = mount("/var/run/secrets/kubernetes.io/serviceaccount");
    assert!(sa.readonly);
    let sa_dir = std::path::PathBuf::from(&sa.host_path);
    assert!(
        sa_dir.starts_with(volumes.join("kubernetes.io~projected")),
        "{sa_dir:?}"
    );
    let token = std::fs::read_to_string(sa_dir.join("token")).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], "system:serviceaccount:default:default");
    assert_eq!(claims["kubernetes.io"]["pod"]["name"], "vols");
    assert_eq!(claims["kubernetes.io"]["pod"]["uid"], uid.as_str());
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 3607);
    assert_eq!(std::fs::read_to_string(sa_dir.join("ca.crt")).unwrap(), ca);
    assert_eq!(
        std::fs::read_to_string(sa_dir.join("namespace")).unwrap(),
        "default"
    );
    assert_eq!(
        std::fs::read_link(sa_dir.join("token")).unwrap(),
        std::path::Path::new("..data/token")
    );

    // configMap items with their mode, read-only.
    let cm = mount("/etc/cfg");
    assert!(cm.readonly);
    let cm_dir = std::path::PathBuf::from(&cm.host_path);
    assert_eq!(cm_dir, volumes.join("kubernetes.io~configmap/cm"));
    assert_eq!(
        std::fs::read_to_string(cm_dir.join("files/a")).unwrap(),
        "1"
    );
    assert!(!cm_dir.join("b").exists(), "only the listed items");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(cm_dir.join("files/a"))
        .unwrap()
        .permissions()
        .mode();
    // The item's 0600 plus group read for the fsGroup, as upstream.
    assert_eq!(mode & 0o777, 0o640);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(cm_dir.join("files/a")).unwrap().gid(),
        2345
    );
    let sec = std::path::PathBuf::from(mount("/etc/sec").host_path);
    assert_eq!(std::fs::metadata(sec.join("k")).unwrap().gid(), 2345);
    assert_eq!(std::fs::read_to_string(sec.join("k")).unwrap(), "s3cret");
    let info = std::path::PathBuf::from(mount("/etc/info").host_path);
    assert_eq!(
        std::fs::read_to_string(info.join("labels")).unwrap(),
        "app=\"v\""
    );
    let mem = std::path::PathBuf::from(mount("/cache").host_path);
    assert!(
        kubelet::volume::mount::is_mount_point(&mem),
        "a memory emptyDir is a tmpfs (this test runs as root)"
    );
    // fsGroup: the emptyDir's group, with setgid so new files inherit it.
    let md = std::fs::metadata(&mem).unwrap();
    assert_eq!((md.gid(), md.permissions().mode() & 0o7777), (2345, 0o2777));
    // The subPath is bind-mounted where upstream puts it (root may mount).
    let host = std::path::PathBuf::from(mount("/host").host_path);
    assert_eq!(
        host,
        root.join("pods")
            .join(&uid)
            .join("volume-subpaths/host/main/4")
    );
    assert!(host_dir.join("vols").is_dir());
    std::fs::write(host.join("through"), "x").unwrap();
    assert!(host_dir.join("vols/through").is_file());

    // An update of the ConfigMap reaches the running pod.
    cms.patch(
        "cfg",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"data": {"a": "2"}})),
    )
    .await
    .unwrap();
    eventually("the configMap update on disk", T, || async {
        (std::fs::read_to_string(cm_dir.join("files/a")).ok()? == "2").then_some(())
    })
    .await;

    // A missing ConfigMap holds the container until it exists.
    let broken = json!({
        "metadata": {"name": "broken"},
        "spec": {
            "nodeName": "fake-node",
            "volumes": [{"name": "cm", "configMap": {"name": "later"}}],
            "containers": [{"name": "c", "image": "busybox:1.35",
                "volumeMounts": [{"name": "cm", "mountPath": "/etc/later"}]}]
        }
    });
    pods.create(&pp, &serde_json::from_value(broken).unwrap())
        .await
        .unwrap();
    eventually("CreateContainerConfigError", T, || async {
        let p = pods.get("broken").await.ok()?;
        let w = p.status?.container_statuses?[0].state.clone()?.waiting?;
        (w.reason.as_deref() == Some("CreateContainerConfigError")
            && w.message.as_deref() == Some("configmap \"later\" not found"))
        .then_some(())
    })
    .await;
    cms.create(
        &pp,
        &serde_json::from_value(json!({"metadata": {"name": "later"}, "data": {"x": "y"}}))
            .unwrap(),
    )
    .await
    .unwrap();
    eventually("the held pod to run", T, || async {
        let p = pods.get("broken").await.ok()?;
        (phase(&p) == Some("Running")).then_some(())
    })
    .await;

    // Delete: the pod's directory is unmounted and removed.
    pods.delete("vols", &DeleteParams::default()).await.unwrap();
    eventually("the pod object to be gone", T, || async {
        pods.get_opt("vols").await.ok()?.is_none().then_some(())
    })
    .await;
    eventually("the pod directory to be removed", T, || async {
        (!root.join("pods").join(&uid).exists()).then_some(())
    })
    .await;
    assert!(
        host_dir.join("vols/through").is_file(),
        "the hostPath's files survive the teardown"
    );
    assert!(!kubelet::volume::mount::is_mount_point(&mem));
    pods.delete("broken", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the held pod to be gone", T, || async {
        pods.get_opt("broken").await.ok()?.is_none().then_some(())
    })
    .await;
    let left: Vec<_> = kubelet::volume::mount::mount_points()
        .into_iter()
        .filter(|m| m.starts_with(dir.path().canonicalize().unwrap()))
        .collect();
    assert!(left.is_empty(), "mounts left behind: {left:?}");
}
