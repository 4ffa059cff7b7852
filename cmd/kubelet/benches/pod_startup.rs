//! Pod startup on this node (issue figures, never asserted): the kubelet
//! binary against real containerd and an in-process kube-apiserver on
//! etcd. BENCH_PODS pods (20) are created at once with their image present;
//! a watch notes when each is first seen Running. Prints the latency from
//! each pod's create call to that moment (p50, p90, max), when the last one
//! ran, and the kubelet's resident memory and CPU when idle, with the pods
//! running, and while they start.
//!
//! Run by `hack/bench-kubelet.sh`, which brings up the containerd it needs
//! (`KUBELET_TEST_CRI_ENDPOINT`).

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::watcher;
use kube::Api;

#[path = "../tests/common/mod.rs"]
mod common;

use common::{free_port, Kill};

/// Resident memory in KiB (0 when unknown).
fn rss_kib(pid: u32) -> u64 {
    common::rss_kib(pid).unwrap_or(0)
}

/// User plus system CPU time in clock ticks (100 per second on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of stat, 12 and 13 here.
    n(11) + n(12)
}

/// CPU ticks per command name of every live process, children that ended
/// included (`cutime`/`cstime`: runc's go to its shim, the CNI plugins' to
/// containerd).
fn cpu_by_command() -> HashMap<u32, (String, u64)> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.filter_map(Result::ok) {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = stat[open + 1..close].to_string();
        let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        out.insert(pid, (comm, n(11) + n(12) + n(13) + n(14)));
    }
    out
}

/// Where the CPU went between two [`cpu_by_command`] snapshots, by command,
/// biggest first.
fn cpu_breakdown(
    before: &HashMap<u32, (String, u64)>,
    after: &HashMap<u32, (String, u64)>,
) -> Vec<(String, f64)> {
    let mut by: HashMap<String, u64> = HashMap::new();
    for (pid, (comm, v)) in after {
        let d = v.saturating_sub(before.get(pid).map_or(0, |b| b.1));
        // Kernel workers rename themselves with their work item.
        let name = comm.split('-').next().unwrap_or(comm).to_string();
        *by.entry(if comm.starts_with("kworker") {
            name
        } else {
            comm.clone()
        })
        .or_default() += d;
    }
    let mut v: Vec<(String, f64)> = by
        .into_iter()
        .filter(|(_, t)| *t > 0)
        .map(|(c, t)| (c, t as f64 / 100.0))
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v
}

/// Busy CPU time of the whole machine in clock ticks (`/proc/stat`: all
/// but idle and iowait).
fn machine_busy_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu = stat.lines().next().unwrap_or("");
    let f: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = f.iter().take(8).sum();
    total - f.get(3).copied().unwrap_or(0) - f.get(4).copied().unwrap_or(0)
}

/// CPU use of `pid` over `d`, in percent of one core.
async fn cpu_percent(pid: u32, d: Duration) -> f64 {
    let (t0, c0) = (Instant::now(), cpu_ticks(pid));
    tokio::time::sleep(d).await;
    let ticks = cpu_ticks(pid) - c0;
    ticks as f64 / 100.0 / t0.elapsed().as_secs_f64() * 100.0
}

async fn wait_for<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn pod(name: &str, node: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"bench": "startup"}},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 2,
            "containers": [{"name": "main", "image": "busybox:1.35", "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]}]
        }
    }))
    .unwrap()
}

fn running(p: &Pod) -> bool {
    p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Ok(endpoint) = std::env::var("KUBELET_TEST_CRI_ENDPOINT") else {
        eprintln!("skipping: KUBELET_TEST_CRI_ENDPOINT is not set (run hack/bench-kubelet.sh)");
        return;
    };
    let n: usize = std::env::var("BENCH_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let idle_secs: u64 = std::env::var("BENCH_IDLE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let api = integration::TestApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    // Absolute disk thresholds: the benchmark must not depend on how full
    // this machine's disk is.
    std::fs::write(
        &config,
        format!(
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\npodLogsDir: {}\nevictionHard: {{memory.available: 100Mi, nodefs.available: 1Gi, imagefs.available: 1Gi}}\n",
            dir.path().join("logs").display()
        ),
    )
    .unwrap();
    let node = format!("bench-node-{}", std::process::id());
    let child = Command::new(env!("CARGO_BIN_EXE_kubelet"))
        .args(["--kubeconfig", api.kubeconfig.to_str().unwrap()])
        .args(["--config", config.to_str().unwrap()])
        .args(["--container-runtime-endpoint", &endpoint])
        .args(["--hostname-override", &node])
        .args(["--node-ip", "127.0.0.1"])
        .args(["--root-dir", dir.path().join("root").to_str().unwrap()])
        .args(["--address", "127.0.0.1"])
        .args(["--port", &free_port().to_string()])
        .args(["--healthz-port", &free_port().to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let _guard = Kill(child);

    let nodes: Api<Node> = Api::all(api.client.clone());
    wait_for("the node to be Ready", 60, || async {
        let n = nodes.get_opt(&node).await.ok()??;
        let ready = n
            .status?
            .conditions?
            .into_iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        ready.then_some(())
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(api.client.clone(), "default");
    // Warm-up: the images (busybox and pause) present, as the issue asks.
    pods.create(&PostParams::default(), &pod("warm-up", &node))
        .await
        .unwrap();
    wait_for("the warm-up pod to run", 120, || async {
        running(&pods.get("warm-up").await.ok()?).then_some(())
    })
    .await;
    pods.delete("warm-up", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("the warm-up pod to go", 60, || async {
        pods.get_opt("warm-up").await.ok()?.is_none().then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_idle = rss_kib(pid);
    let cpu_idle = cpu_percent(pid, Duration::from_secs(idle_secs)).await;

    // Each pod's first Running seen by a watch, against its create call.
    let seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let watch = {
        let seen = seen.clone();
        let wc = watcher::Config::default().labels("bench=startup");
        let mut stream = watcher::watcher(pods.clone(), wc).boxed();
        tokio::spawn(async move {
            while let Some(ev) = stream.next().await {
                if let Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) = ev {
                    if running(&p) {
                        let name = p.metadata.name.clone().unwrap_or_default();
                        seen.lock()
                            .unwrap()
                            .entry(name)
                            .or_insert_with(Instant::now);
                    }
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu_before = cpu_ticks(pid);
    let machine_before = machine_busy_ticks();
    let procs_before = cpu_by_command();
    let start = Instant::now();
    let creates = (0..n).map(|i| {
        let pods = pods.clone();
        let node = node.clone();
        async move {
            let name = format!("startup-{i}");
            let sent = Instant::now();
            pods.create(&PostParams::default(), &pod(&name, &node))
                .await
                .unwrap();
            (name, sent)
        }
    });
    let sent: HashMap<String, Instant> = futures::future::join_all(creates)
        .await
        .into_iter()
        .collect();
    let created = start.elapsed();
    wait_for("every pod to be seen Running", 120, || async {
        (seen.lock().unwrap().len() >= n).then_some(())
    })
    .await;
    let all_running = start.elapsed();
    let startup_cpu = (cpu_ticks(pid) - cpu_before) as f64 / 100.0;
    let machine_cpu = (machine_busy_ticks() - machine_before) as f64 / 100.0;
    let breakdown = cpu_breakdown(&procs_before, &cpu_by_command());
    watch.abort();
    let mut lat: Vec<Duration> = {
        let seen = seen.lock().unwrap();
        sent.iter()
            .map(|(name, t)| seen[name].duration_since(*t))
            .collect()
    };
    lat.sort();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_busy = rss_kib(pid);
    let cpu_busy = cpu_percent(pid, Duration::from_secs(idle_secs)).await;

    let gone = Instant::now();
    pods.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("bench=startup"),
    )
    .await
    .unwrap();
    wait_for("every pod to be gone", 120, || async {
        let l = pods
            .list(&ListParams::default().labels("bench=startup"))
            .await
            .ok()?;
        l.items.is_empty().then_some(())
    })
    .await;
    let deleted = gone.elapsed();

    println!("kubelet pod startup, {n} pods created at once (image present):");
    println!("  create calls done        {}", ms(created));
    println!(
        "  create → Running (watch) p50 {}  p90 {}  max {}",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.9)),
        ms(lat[lat.len() - 1])
    );
    println!("  all {n} Running after     {}", ms(all_running));
    println!(
        "  CPU while starting them: kubelet {startup_cpu:.2} s, whole machine {machine_cpu:.2} s of {:.2} s × {} cores",
        all_running.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let top: Vec<String> = breakdown
        .iter()
        .take(6)
        .map(|(c, t)| format!("{c} {t:.2} s"))
        .collect();
    println!("  by process (children included): {}", top.join(", "));
    println!("  all {n} deleted (graceful) after {}", ms(deleted));
    println!(
        "kubelet RSS idle {} KiB, with {n} pods {} KiB",
        rss_idle, rss_busy
    );
    println!(
        "kubelet CPU idle {cpu_idle:.2} % of a core, with {n} pods {cpu_busy:.2} % (over {idle_secs} s each)"
    );
}
