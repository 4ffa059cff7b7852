//! Sync decisions and the status they produce, against the in-memory fake
//! runtime (upstream's `kuberuntime_manager_test.go` and
//! `kubelet_pods_test.go` in spirit): start order, restarts with
//! CrashLoopBackOff, image pull failures, init containers, terminal phases.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;

use kubelet::cri::fake::FakeRuntime;
use kubelet::kuberuntime::container::{ContainerSettings, EnvSources};
use kubelet::kuberuntime::manager::{RuntimeManager, SyncResult};
use kubelet::kuberuntime::sandbox::SandboxSettings;
use kubelet::status::{generate_api_pod_status, StatusContext};

fn pod(policy: &str, init: &[&str], containers: &[&str]) -> Pod {
    let c = |n: &&str| Container {
        name: n.to_string(),
        image: Some("busybox:1.35".into()),
        command: Some(vec!["sleep".into(), "3600".into()]),
        ..Default::default()
    };
    Pod {
        metadata: ObjectMeta {
            name: Some("p".into()),
            namespace: Some("default".into()),
            uid: Some("uid-1".into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            restart_policy: Some(policy.into()),
            init_containers: (!init.is_empty()).then(|| init.iter().map(c).collect()),
            containers: containers.iter().map(c).collect(),
            node_name: Some("n1".into()),
            ..Default::default()
        }),
        status: None,
    }
}

struct Harness {
    fake: FakeRuntime,
    m: RuntimeManager,
    pod: Pod,
    now: SystemTime,
    _logs: tempfile::TempDir,
}

impl Harness {
    fn new(pod: Pod) -> Self {
        let fake = FakeRuntime::new();
        let logs = tempfile::tempdir().unwrap();
        let m = RuntimeManager::new(
            Arc::new(fake.clone()),
            Arc::new(fake.clone()),
            SandboxSettings {
                pod_logs_dir: logs.path().into(),
                cluster_domain: "cluster.local".into(),
                ..Default::default()
            },
            ContainerSettings {
                root_dir: logs.path().into(),
                ..Default::default()
            },
        );
        Self {
            fake,
            m,
            pod,
            now: SystemTime::now(),
            _logs: logs,
        }
    }

    /// One sync then the status, which becomes the pod's status.
    async fn sync(&mut self) -> (SyncResult, PodStatus) {
        let rs = self.m.pod_status("uid-1").await.unwrap();
        let r = self
            .m
            .sync_pod(
                &self.pod,
                &rs,
                &EnvSources::default(),
                &kubelet::volume::PodVolumes::default(),
                self.now,
            )
            .await;
        let rs = self.m.pod_status("uid-1").await.unwrap();
        let st = generate_api_pod_status(
            &self.pod,
            &rs,
            &r.waiting,
            &StatusContext {
                host_ips: &["192.168.1.5".to_string()],
                runtime_name: "fake",
                now: Timestamp::now(),
                terminal: false,
                probes: None,
            },
        );
        self.pod.status = Some(st.clone());
        (r, st)
    }
}

fn cs<'a>(st: &'a PodStatus, name: &str) -> &'a ContainerStatus {
    st.container_statuses
        .iter()
        .flatten()
        .chain(st.init_container_statuses.iter().flatten())
        .find(|c| c.name == name)
        .unwrap()
}

fn waiting_reason(c: &ContainerStatus) -> Option<&str> {
    c.state.as_ref()?.waiting.as_ref()?.reason.as_deref()
}

fn cond(st: &PodStatus, ty: &str) -> String {
    st.conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == ty)
        .map(|c| c.status.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn new_pod_runs_sandbox_then_pull_create_start_and_is_ready() {
    let mut h = Harness::new(pod("Always", &[], &["a", "b"]));
    let (r, st) = h.sync().await;
    assert!(r.error.is_none() && r.waiting.is_empty(), "{r:?}");
    let reasons: Vec<&str> = r.events.iter().map(|e| e.reason).collect();
    assert_eq!(
        reasons,
        ["Pulling", "Pulled", "Created", "Started", "Pulled", "Created", "Started"]
    );
    assert_eq!(r.events[3].message, "Started container a");
    assert_eq!(
        r.events[4].message,
        "Container image \"busybox:1.35\" already present on machine"
    );
    assert_eq!(
        h.fake.calls(),
        [
            "RunPodSandbox",
            "PullImage busybox:1.35",
            "CreateContainer a",
            "StartContainer a",
            "CreateContainer b",
            "StartContainer b",
        ]
    );
    assert_eq!(st.phase.as_deref(), Some("Running"));
    assert_eq!(st.pod_ip.as_deref(), Some("10.88.0.3"));
    assert_eq!(st.host_ip.as_deref(), Some("192.168.1.5"));
    assert_eq!(st.qos_class.as_deref(), Some("BestEffort"));
    for ty in [
        "PodScheduled",
        "PodReadyToStartContainers",
        "Initialized",
        "ContainersReady",
        "Ready",
    ] {
        assert_eq!(cond(&st, ty), "True", "{ty}");
    }
    let a = cs(&st, "a");
    assert!(a.ready && a.started == Some(true));
    assert!(a.container_id.as_deref().unwrap().starts_with("fake://"));
    assert_eq!(a.image_id, "sha256:busybox:1.35");
    // A second sync changes nothing: IfNotPresent finds the image.
    let before = h.fake.calls().len();
    h.sync().await;
    assert_eq!(h.fake.calls().len(), before);
}

#[tokio::test]
async fn crashing_container_restarts_then_backs_off() {
    let mut h = Harness::new(pod("Always", &[], &["a"]));
    h.sync().await;
    let first = h.fake.containers_named("a")[0].clone();
    h.fake.exit(&first, 1);
    // First crash: restarted at once (the back-off starts now).
    let (r, st) = h.sync().await;
    assert!(r.waiting.is_empty(), "{r:?}");
    let a = cs(&st, "a");
    assert_eq!(a.restart_count, 1);
    let last = a.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!((last.exit_code, last.reason.as_deref()), (1, Some("Error")));
    assert!(a.state.as_ref().unwrap().running.is_some());
    // Second crash right after: CrashLoopBackOff for 10 s.
    let second = h.fake.containers_named("a")[1].clone();
    h.fake.exit(&second, 2);
    let (r, st) = h.sync().await;
    let a = cs(&st, "a");
    assert_eq!(waiting_reason(a), Some("CrashLoopBackOff"));
    assert!(
        r.events.iter().any(|e| e.warning && e.reason == "BackOff"),
        "{r:?}"
    );
    let msg = a
        .state
        .as_ref()
        .unwrap()
        .waiting
        .as_ref()
        .unwrap()
        .message
        .clone()
        .unwrap();
    assert!(
        msg.starts_with("back-off 10s restarting failed container=a pod=p_default(uid-1)"),
        "{msg}"
    );
    assert_eq!(
        a.last_state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap()
            .exit_code,
        2
    );
    assert!(r.requeue_after.unwrap() <= Duration::from_secs(10));
    assert_eq!(st.phase.as_deref(), Some("Running"));
    assert_eq!(cond(&st, "Ready"), "False");
    // Past the back-off it starts again, and the next back-off doubles.
    h.now += Duration::from_secs(11);
    let (r, st) = h.sync().await;
    assert!(r.waiting.is_empty(), "{r:?}");
    assert_eq!(cs(&st, "a").restart_count, 2);
    // Only the newest dead instance is kept (for lastState).
    assert_eq!(h.fake.containers_named("a").len(), 2);
    let third = h.fake.containers_named("a")[1].clone();
    h.fake.exit(&third, 1);
    let (r, _) = h.sync().await;
    assert!(r.waiting["a"].message.starts_with("back-off 20s"), "{r:?}");
}

#[tokio::test]
async fn failed_pull_is_err_image_pull_then_image_pull_backoff() {
    let mut h = Harness::new(pod("Always", &[], &["a"]));
    h.fake.set_pull_error("busybox:1.35", Some("not found"));
    let (r, st) = h.sync().await;
    assert_eq!(waiting_reason(cs(&st, "a")), Some("ErrImagePull"));
    assert_eq!(r.requeue_after, Some(Duration::from_secs(10)));
    assert_eq!(st.phase.as_deref(), Some("Pending"));
    let (_, st) = h.sync().await;
    assert_eq!(waiting_reason(cs(&st, "a")), Some("ImagePullBackOff"));
    h.fake.set_pull_error("busybox:1.35", None);
    h.now += Duration::from_secs(11);
    let (_, st) = h.sync().await;
    assert!(cs(&st, "a").state.as_ref().unwrap().running.is_some());
}

#[tokio::test]
async fn init_containers_run_in_order_before_the_app() {
    let mut h = Harness::new(pod("Always", &["i1", "i2"], &["a"]));
    let (_, st) = h.sync().await;
    assert_eq!(st.phase.as_deref(), Some("Pending"));
    assert_eq!(cond(&st, "Initialized"), "False");
    assert_eq!(waiting_reason(cs(&st, "a")), Some("PodInitializing"));
    assert_eq!(waiting_reason(cs(&st, "i2")), Some("PodInitializing"));
    let i1 = h.fake.containers_named("i1")[0].clone();
    h.fake.exit(&i1, 0);
    h.sync().await;
    let i2 = h.fake.containers_named("i2")[0].clone();
    h.fake.exit(&i2, 0);
    let (_, st) = h.sync().await;
    assert_eq!(cond(&st, "Initialized"), "True");
    assert_eq!(st.phase.as_deref(), Some("Running"));
    let i1s = cs(&st, "i1")
        .state
        .as_ref()
        .unwrap()
        .terminated
        .as_ref()
        .unwrap();
    assert_eq!(i1s.reason.as_deref(), Some("Completed"));
    let starts: Vec<String> = h
        .fake
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("StartContainer"))
        .collect();
    assert_eq!(
        starts,
        ["StartContainer i1", "StartContainer i2", "StartContainer a"]
    );
}

#[tokio::test]
async fn never_restarted_containers_end_the_pod() {
    for (exit, phase, reason) in [(0, "Succeeded", "Completed"), (3, "Failed", "Error")] {
        let mut h = Harness::new(pod("Never", &[], &["a"]));
        h.sync().await;
        let a = h.fake.containers_named("a")[0].clone();
        h.fake.exit(&a, exit);
        let (r, st) = h.sync().await;
        assert!(r.waiting.is_empty());
        assert_eq!(st.phase.as_deref(), Some(phase));
        let t = cs(&st, "a")
            .state
            .as_ref()
            .unwrap()
            .terminated
            .clone()
            .unwrap();
        assert_eq!((t.exit_code, t.reason.as_deref()), (exit, Some(reason)));
        let ready = st
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.reason.as_deref(), Some("PodCompleted"));
        // Nothing is started again.
        assert_eq!(h.fake.containers_named("a").len(), 1);
    }
}

#[tokio::test]
async fn kill_then_remove_leaves_nothing() {
    let mut h = Harness::new(pod("Always", &[], &["a"]));
    h.sync().await;
    let rs = h.m.pod_status("uid-1").await.unwrap();
    h.m.kill_pod(&rs, 5).await.unwrap();
    assert!(h.fake.calls().contains(&"StopContainer a 5".to_string()));
    let rs = h.m.pod_status("uid-1").await.unwrap();
    assert!(rs.ready_sandbox().is_none());
    // The final status of a killed pod: terminated, not waiting to restart.
    let st = generate_api_pod_status(
        &h.pod,
        &rs,
        &HashMap::new(),
        &StatusContext {
            host_ips: &[],
            runtime_name: "fake",
            now: Timestamp::now(),
            terminal: true,
            probes: None,
        },
    );
    assert_eq!(st.phase.as_deref(), Some("Failed"));
    let t = cs(&st, "a")
        .state
        .as_ref()
        .unwrap()
        .terminated
        .clone()
        .unwrap();
    assert_eq!(t.exit_code, 137);
    // The pod keeps the IP it had.
    assert_eq!(st.pod_ip.as_deref(), Some("10.88.0.3"));
    h.m.remove_pod("uid-1", &rs).await.unwrap();
    assert_eq!(h.fake.counts(), (0, 0));
}
