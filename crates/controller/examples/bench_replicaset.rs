//! Measures how long the ReplicaSet controller takes to create the pods of
//! a 1,000-replica ReplicaSet and a 1,000-replica Deployment (no kubelet,
//! like KWOK), against the in-process API server on a real etcd, with an
//! unlimited client (state `--kube-api-qps` when comparing: upstream's
//! 20/30 default would cap 1,000 creates at about 50 s). Prints figures;
//! asserts nothing.
//!
//! `cargo run -p controller --example bench_replicaset [replicas]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use controller::{ControllerConfig, ControllerContext, ControllerMetrics};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

async fn wait_pods(pods: &Api<Pod>, label: &str, n: usize) -> Duration {
    let start = Instant::now();
    loop {
        let have = pods
            .list(&ListParams::default().labels(label))
            .await
            .map(|l| l.items.len())
            .unwrap_or(0);
        if have >= n {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let server = integration::TestApiServer::start().await;
    let client = server.client.clone();
    let selected = controller::descriptors::enabled(&["replicaset".into(), "deployment".into()])?;
    let ctx = ControllerContext::new(
        server.new_client().await?,
        ControllerConfig::default(),
        Arc::new(ControllerMetrics::default()),
    );
    tokio::spawn(async move {
        let _ = controller::run(ctx, selected).await;
    });
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "bench"}}))?,
    )
    .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "bench");
    let template = json!({"metadata": {"labels": {"app": "rs"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    let rs: ReplicaSet = serde_json::from_value(json!({"metadata": {"name": "rs"},
        "spec": {"replicas": n, "selector": {"matchLabels": {"app": "rs"}}, "template": template}}))?;
    Api::<ReplicaSet>::namespaced(client.clone(), "bench")
        .create(&PostParams::default(), &rs)
        .await?;
    let t = wait_pods(&pods, "app=rs", n).await;
    println!(
        "replicaset: {n} pods created in {:.2} s ({:.0} pods/s)",
        t.as_secs_f64(),
        n as f64 / t.as_secs_f64()
    );
    let template = json!({"metadata": {"labels": {"app": "dep"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    let d: Deployment = serde_json::from_value(json!({"metadata": {"name": "dep"},
        "spec": {"replicas": n, "selector": {"matchLabels": {"app": "dep"}}, "template": template}}))?;
    Api::<Deployment>::namespaced(client.clone(), "bench")
        .create(&PostParams::default(), &d)
        .await?;
    let t = wait_pods(&pods, "app=dep", n).await;
    println!(
        "deployment: {n} pods created in {:.2} s ({:.0} pods/s)",
        t.as_secs_f64(),
        n as f64 / t.as_secs_f64()
    );
    Ok(())
}
