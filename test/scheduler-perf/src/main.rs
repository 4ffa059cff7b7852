//! End-to-end scheduling throughput (upstream's
//! `test/integration/scheduler_perf` "SchedulingBasic" in small): a real
//! API server on a real etcd, NODES nodes and PODS pods created through
//! the API, the scheduler started in-process with a client limited to
//! `--qps`/`--burst` like the daemon's, and the time until every pod is
//! bound, seen through a watch. Prints pods/s; asserts nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use integration::TestApiServer;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 500)]
    nodes: usize,
    #[arg(long, default_value_t = 2000)]
    pods: usize,
    /// The scheduler's client QPS (the daemon's default is 50).
    #[arg(long, default_value_t = 5000.0)]
    qps: f32,
    #[arg(long, default_value_t = 10000)]
    burst: u32,
    /// Objects created concurrently while setting up.
    #[arg(long, default_value_t = 32)]
    parallel: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let s = TestApiServer::try_start()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let c = s.client.clone();
    let nodes: Api<Node> = Api::all(c.clone());
    futures::stream::iter(0..args.nodes)
        .map(|i| {
            let nodes = nodes.clone();
            async move {
                let name = format!("node-{i}");
                let n: Node = serde_json::from_value(json!({"metadata": {"name": name,
                    "labels": {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": format!("zone-{}", i % 3)}}}))?;
                nodes.create(&PostParams::default(), &n).await?;
                let st = json!({"status": {"allocatable": {"cpu": "32", "memory": "64Gi", "pods": "110"}}});
                nodes.patch_status(&name, &PatchParams::default(), &Patch::Merge(&st)).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(args.parallel)
        .try_collect::<Vec<_>>()
        .await
        .context("creating nodes")?;

    let opts = client::KubeOptions {
        kubeconfig: Some(s.kubeconfig.clone()),
        master: None,
        kube_api_qps: Some(args.qps),
        kube_api_burst: Some(args.burst),
    };
    let sched_client = opts.client().await?;
    let metrics = Arc::new(scheduler::metrics::SchedulerMetrics::default());
    let sched = scheduler::start(
        sched_client,
        &scheduler::KubeSchedulerConfiguration::defaulted(),
        metrics,
    )?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !sched.synced() {
        anyhow::ensure!(Instant::now() < deadline, "scheduler watchers did not sync");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let pods: Api<Pod> = Api::namespaced(c.clone(), "default");
    let watch = tokio::spawn({
        let pods = pods.clone();
        let want = args.pods;
        async move {
            let mut bound = std::collections::HashSet::new();
            let mut stream = watcher::watcher(pods, watcher::Config::default()).boxed();
            while let Some(Ok(ev)) = stream.next().await {
                if let watcher::Event::Apply(p) | watcher::Event::InitApply(p) = ev {
                    if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some() {
                        bound.insert(p.metadata.name.unwrap_or_default());
                        if bound.len() >= want {
                            return Instant::now();
                        }
                    }
                }
            }
            Instant::now()
        }
    });
    let start = Instant::now();
    futures::stream::iter(0..args.pods)
        .map(|i| {
            let pods = pods.clone();
            async move {
                let p: Pod =
                    serde_json::from_value(json!({"metadata": {"name": format!("pod-{i}")},
                    "spec": {"containers": [{"name": "c", "image": "busybox",
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}}))?;
                pods.create(&PostParams::default(), &p).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(args.parallel)
        .try_collect::<Vec<_>>()
        .await
        .context("creating pods")?;
    let created = start.elapsed();
    let done = watch.await?;
    let took = done.duration_since(start);
    println!(
        "scheduler-perf: {} nodes, {} pods created in {:.2}s and bound in {:.2}s: {:.0} pods/s (scheduler client qps {} burst {})",
        args.nodes,
        args.pods,
        created.as_secs_f64(),
        took.as_secs_f64(),
        args.pods as f64 / took.as_secs_f64(),
        args.qps,
        args.burst
    );
    Ok(())
}
