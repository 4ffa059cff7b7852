//! In-memory scheduling throughput (upstream's `test/integration/scheduler_perf`
//! "SchedulingBasic" in small): 5,000 nodes and 10,000 pods fed straight
//! into the scheduler's event handlers; an in-memory binder confirms each
//! binding the way the pod informer would. Prints pods/s; asserts nothing.
//!
//! `cargo bench -p scheduler --bench schedule_throughput [-- NODES PODS]`

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use k8s_openapi::api::core::v1::{Node, Pod};
use scheduler::config::KubeSchedulerConfiguration;
use scheduler::framework::runtime::{Handle, Registry};
use scheduler::framework::{BindPlugin, CycleState, Plugin, PodInfo, Status};
use scheduler::metrics::SchedulerMetrics;
use scheduler::scheduler::{NoopReporter, Scheduler};
use serde_json::json;
use tokio::sync::mpsc;

static BOUND: OnceLock<mpsc::UnboundedSender<(Arc<PodInfo>, String)>> = OnceLock::new();

struct MemoryBinder;

impl Plugin for MemoryBinder {
    fn name(&self) -> &'static str {
        "DefaultBinder"
    }
    fn as_bind(&self) -> Option<&dyn BindPlugin> {
        Some(self)
    }
}

#[async_trait::async_trait]
impl BindPlugin for MemoryBinder {
    async fn bind(&self, _: &CycleState, pod: &PodInfo, node: &str) -> Status {
        match BOUND.get() {
            Some(tx) if tx.send((Arc::new(pod.clone()), node.to_string())).is_ok() => {
                Status::success()
            }
            _ => Status::error("benchmark binder closed"),
        }
    }
}

fn memory_binder(_: Option<&serde_json::Value>, _: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(MemoryBinder))
}

fn node(i: usize) -> Node {
    serde_json::from_value(json!({"metadata": {"name": format!("node-{i}"),
        "labels": {"kubernetes.io/hostname": format!("node-{i}"), "topology.kubernetes.io/zone": format!("zone-{}", i % 10)}},
        "status": {"allocatable": {"cpu": "32", "memory": "64Gi", "pods": "110"},
            "images": [{"names": [format!("registry.local/app-{}:1", i % 7)], "sizeBytes": 200_000_000}]}}))
    .unwrap_or_default()
}

fn pod(i: usize) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": format!("pod-{i}"), "namespace": "bench", "uid": format!("uid-{i}")},
        "spec": {"containers": [{"name": "c", "image": format!("registry.local/app-{}:1", i % 7),
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}}}]}}))
    .unwrap_or_default()
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let nodes = args.first().copied().unwrap_or(5000);
    let pods = args.get(1).copied().unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(nodes, pods));
}

async fn run(nodes: usize, pods: usize) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _ = BOUND.set(tx);
    let mut registry: Registry = scheduler::plugins::in_tree_registry();
    registry.replace("DefaultBinder", memory_binder);
    let sched = Scheduler::new(
        &KubeSchedulerConfiguration::defaulted(),
        &registry,
        &Handle::default(),
        Arc::new(NoopReporter),
        Arc::new(SchedulerMetrics::default()),
    )
    .expect("scheduler");
    for i in 0..nodes {
        sched.on_node(node(i));
    }
    let objects: Vec<Pod> = (0..pods).map(pod).collect();
    let start = Instant::now();
    for p in objects {
        sched.on_pod(p);
    }
    let queued = start.elapsed();
    sched.assume_synced();
    tokio::spawn(sched.clone().run());
    let mut bound = 0;
    while bound < pods {
        let Some((pi, node)) = rx.recv().await else {
            break;
        };
        // What the pod informer would deliver after the binding.
        let mut p = (*pi.pod).clone();
        if let Some(spec) = p.spec.as_mut() {
            spec.node_name = Some(node);
        }
        sched.on_pod(p);
        bound += 1;
    }
    let took = start.elapsed();
    println!(
        "schedule_throughput: {nodes} nodes, {bound} pods bound in {:.3}s ({:.0} pods/s; enqueueing took {:.3}s)",
        took.as_secs_f64(),
        bound as f64 / took.as_secs_f64(),
        queued.as_secs_f64()
    );
}
