//! What the kubelet's integration tests share: waiting with a deadline and
//! building a kubelet against a test API server.

#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Polls `f` every 100 ms until it returns `Some`, or panics naming `what`
/// after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A busybox pod bound to `node` whose shell exits at once on SIGTERM.
pub fn sleeper(name: &str, node: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: Some(node.into()),
            termination_grace_period_seconds: Some(10),
            containers: vec![Container {
                name: "main".into(),
                image: Some("busybox:1.35".into()),
                command: Some(vec![
                    "sh".into(),
                    "-c".into(),
                    "trap 'echo bye; exit 0' TERM; echo hello $(POD_NAME); sleep 3600 & wait"
                        .into(),
                ]),
                env: Some(vec![k8s_openapi::api::core::v1::EnvVar {
                    name: "POD_NAME".into(),
                    value: None,
                    value_from: Some(k8s_openapi::api::core::v1::EnvVarSource {
                        field_ref: Some(k8s_openapi::api::core::v1::ObjectFieldSelector {
                            field_path: "metadata.name".into(),
                            api_version: None,
                        }),
                        ..Default::default()
                    }),
                }]),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    }
}

pub fn phase(p: &Pod) -> Option<&str> {
    p.status.as_ref()?.phase.as_deref()
}

pub fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// No eviction thresholds, for tests about other things: they must not
/// depend on how full this machine's disk is (upstream's default
/// `nodefs.available<10%` refuses every pod on a fuller disk).
pub fn no_eviction() -> kubelet::eviction::EvictionConfig {
    kubelet::eviction::EvictionConfig {
        thresholds: vec![],
        ..Default::default()
    }
}

/// Starts `kubelet` and returns its server's state (every caller allowed).
pub fn run(kubelet: kubelet::Kubelet) -> kubelet::server::ServerState {
    let server = kubelet::server::ServerState {
        pods: kubelet.pods.clone(),
        manager: kubelet.manager.clone(),
        healthz: kubelet.health_checks(),
        stats: kubelet.stats_provider(),
        auth: std::sync::Arc::new(kubelet::auth::KubeletAuth::allow_all("test-node")),
    };
    tokio::spawn(kubelet.run());
    server
}
