//! Resource usage of the node, its pods and their containers, gathered on
//! request for `GET /stats/summary` and `GET /metrics/resource` (upstream's
//! `pkg/kubelet/server/stats/summary.go` with the cadvisor-less
//! `pkg/kubelet/stats/cri_stats_provider.go`): containers through CRI
//! `ListContainerStats` (and `ImageFsInfo` for the image filesystem), the
//! node from `/proc` and the root cgroup.
//!
//! CRI gives cumulative CPU time; a rate (`usageNanoCores`) needs two
//! samples. Like upstream's CRI provider, the previous sample of each
//! container (and of the node) is kept and the rate is computed against it
//! when the next request comes; there is no polling loop, so the first
//! request after start (or for a new container) has no rate. Samples of
//! containers that are gone are dropped on every request.

pub mod cadvisor_metrics;
pub mod kubelet_metrics;
pub mod node;
pub mod probe_metrics;
pub mod resource_metrics;
pub mod summary;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::cri::api::{self, ContainerState, PodSandboxState};
use crate::cri::{CriError, ImageService, RuntimeService};
use crate::kuberuntime::sandbox::pod_logs_directory;
use summary::{
    ContainerStats, CpuStats, FsStats, MemoryStats, NodeStats, PodReference, PodStats, RlimitStats,
    Summary, Time, VolumeStats,
};

/// Why the stats could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// The runtime did not list its sandboxes, containers or their stats.
    #[error("reading pod stats from the container runtime: {0}")]
    Cri(#[source] CriError),
}

/// How much to gather (upstream's `only_cpu_and_memory` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    Full,
    CpuAndMemory,
}

#[derive(Debug, Clone, Copy)]
struct CpuSample {
    timestamp_ns: i64,
    usage_ns: u64,
    rate: Option<u64>,
}

/// The key of the node's own CPU sample (no container id looks like it).
const NODE_KEY: &str = "/";

/// Gathers [`Summary`]s; shared by the server's handlers.
pub struct StatsProvider {
    node_name: String,
    root_dir: PathBuf,
    pod_logs_dir: PathBuf,
    cgroup_root: PathBuf,
    proc_root: PathBuf,
    runtime: Arc<dyn RuntimeService>,
    images: Arc<dyn ImageService>,
    samples: Mutex<HashMap<String, CpuSample>>,
    probes: Arc<probe_metrics::ProbeMetrics>,
}

fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

fn value(v: &Option<api::UInt64Value>) -> Option<u64> {
    v.as_ref().map(|v| v.value)
}

/// Bytes used by the files under `dir` (a container's log directory).
fn dir_usage(dir: &Path) -> Option<(u64, u64)> {
    let mut bytes = 0u64;
    let mut inodes = 1u64;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let Ok(md) = e.metadata() else { continue };
        inodes += 1;
        if md.is_dir() {
            if let Some((b, i)) = dir_usage(&e.path()) {
                bytes += b;
                inodes += i - 1;
            }
        } else {
            bytes += md.len();
        }
    }
    Some((bytes, inodes))
}

/// Whether `dir` is on a tmpfs (a memory-backed emptyDir): its bytes are
/// memory, not disk.
fn on_tmpfs(dir: &Path) -> bool {
    // TMPFS_MAGIC, in whatever integer type the platform's f_type is.
    rustix::fs::statfs(dir).is_ok_and(|s| s.f_type == 0x0102_1994)
}

/// Usage of each volume under `<root>/pods/<uid>/volumes/<plugin>/<name>`
/// (upstream's volume stats, measured by walking like its `du` metrics),
/// with whether it counts as the pod's ephemeral storage (on disk).
fn pod_volume_stats(
    pod_dir: &Path,
    now: Time,
    node_fs: Option<&node::FsUsage>,
) -> Vec<(VolumeStats, bool)> {
    let mut out = Vec::new();
    let Ok(plugins) = std::fs::read_dir(pod_dir.join("volumes")) else {
        return out;
    };
    for plugin in plugins.flatten() {
        let Ok(volumes) = std::fs::read_dir(plugin.path()) else {
            continue;
        };
        for v in volumes.flatten() {
            let path = v.path();
            let Some((bytes, inodes)) = dir_usage(&path) else {
                continue;
            };
            let mut fs = node_fs.map(|n| fs_stats(now, n)).unwrap_or(FsStats {
                time: now,
                ..Default::default()
            });
            fs.used_bytes = Some(bytes);
            fs.inodes_used = Some(inodes);
            let on_disk = !on_tmpfs(&path);
            out.push((
                VolumeStats {
                    fs,
                    name: v.file_name().to_string_lossy().into_owned(),
                },
                on_disk,
            ));
        }
    }
    out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    out
}

impl StatsProvider {
    pub fn new(
        node_name: impl Into<String>,
        root_dir: impl Into<PathBuf>,
        pod_logs_dir: impl Into<PathBuf>,
        runtime: Arc<dyn RuntimeService>,
        images: Arc<dyn ImageService>,
    ) -> Self {
        StatsProvider {
            node_name: node_name.into(),
            root_dir: root_dir.into(),
            pod_logs_dir: pod_logs_dir.into(),
            cgroup_root: "/sys/fs/cgroup".into(),
            proc_root: "/proc".into(),
            runtime,
            images,
            samples: Mutex::new(HashMap::new()),
            probes: Arc::default(),
        }
    }

    /// Serves these probe series on `/metrics/probes`.
    pub fn with_probe_metrics(mut self, probes: Arc<probe_metrics::ProbeMetrics>) -> Self {
        self.probes = probes;
        self
    }

    /// `/metrics/cadvisor` as of now.
    pub async fn cadvisor_metrics(&self) -> String {
        let machine = crate::nodestatus::MachineInfo::read(&self.root_dir);
        cadvisor_metrics::render(
            self.runtime.as_ref(),
            self.images.as_ref(),
            &self.cgroup_root,
            &machine,
        )
        .await
    }

    /// The probe series (`/metrics/probes`).
    pub fn probe_metrics(&self) -> &probe_metrics::ProbeMetrics {
        &self.probes
    }

    /// Reads the node's figures below other roots (tests).
    pub fn with_roots(mut self, cgroup_root: PathBuf, proc_root: PathBuf) -> Self {
        self.cgroup_root = cgroup_root;
        self.proc_root = proc_root;
        self
    }

    /// Records a cumulative CPU sample and returns the rate in nanocores
    /// against the previous one. A sample with the previous timestamp
    /// returns the previous rate; a counter that went back starts over.
    fn rate(&self, key: &str, timestamp_ns: i64, usage_ns: u64) -> Option<u64> {
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let prev = samples.get(key).copied();
        let rate = match prev {
            Some(p) if p.timestamp_ns == timestamp_ns => return p.rate,
            Some(p) if timestamp_ns > p.timestamp_ns && usage_ns >= p.usage_ns => {
                let dt = (timestamp_ns - p.timestamp_ns) as u128;
                let du = u128::from(usage_ns - p.usage_ns);
                u64::try_from(du * 1_000_000_000 / dt).ok()
            }
            _ => None,
        };
        samples.insert(
            key.to_string(),
            CpuSample {
                timestamp_ns,
                usage_ns,
                rate,
            },
        );
        rate
    }

    /// Drops the samples of containers not in `live`.
    fn forget_except(&self, live: &HashSet<String>) {
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples.retain(|k, _| k == NODE_KEY || live.contains(k));
    }

    /// How many CPU samples are kept (tests).
    pub fn samples_kept(&self) -> usize {
        self.samples.lock().map(|s| s.len()).unwrap_or(0)
    }

    fn node_stats(&self, detail: Detail) -> NodeStats {
        let now_ns = now_ns();
        let now = Time::from_unix_nanos(now_ns);
        let stat = std::fs::read_to_string(self.proc_root.join("stat")).unwrap_or_default();
        let cpu = node::cpu_usage_ns(&self.cgroup_root, &self.proc_root).map(|usage| CpuStats {
            time: now,
            usage_nano_cores: self.rate(NODE_KEY, now_ns, usage),
            usage_core_nano_seconds: Some(usage),
        });
        let m = node::read_memory(&self.cgroup_root, &self.proc_root);
        let memory = (m.capacity > 0).then(|| MemoryStats {
            time: now,
            available_bytes: Some(m.capacity.saturating_sub(m.working_set)),
            usage_bytes: Some(m.usage),
            working_set_bytes: Some(m.working_set),
            rss_bytes: m.rss,
            page_faults: m.page_faults,
            major_page_faults: m.major_page_faults,
        });
        let full = detail == Detail::Full;
        let fs = full
            .then(|| node::fs_usage(&self.root_dir))
            .flatten()
            .map(|f| fs_stats(now, &f));
        let rlimit = full.then(|| {
            let (maxpid, curproc) = node::rlimit(&self.proc_root);
            RlimitStats {
                time: now,
                maxpid,
                curproc,
            }
        });
        NodeStats {
            node_name: self.node_name.clone(),
            system_containers: vec![],
            start_time: Time::from_unix_nanos(
                node::boot_time(&stat)
                    .unwrap_or(0)
                    .saturating_mul(1_000_000_000),
            ),
            cpu,
            memory,
            fs,
            runtime: None,
            rlimit,
        }
    }

    /// The runtime's first image filesystem: its usage from `ImageFsInfo`,
    /// capacity and free space from the filesystem at its mount point. A
    /// runtime that cannot tell leaves it out (logged).
    async fn image_fs(&self) -> Option<FsStats> {
        let fss = match self.images.image_fs_info().await {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(error = %e, "image filesystem stats");
                return None;
            }
        };
        let f = fss.into_iter().next()?;
        let time = Time::from_unix_nanos(f.timestamp);
        let mountpoint = f.fs_id.map(|i| i.mountpoint).unwrap_or_default();
        let mut out = node::fs_usage(Path::new(&mountpoint))
            .map(|u| fs_stats(time, &u))
            .unwrap_or(FsStats {
                time,
                ..Default::default()
            });
        out.used_bytes = value(&f.used_bytes);
        out.inodes_used = value(&f.inodes_used);
        Some(out)
    }

    /// The summary as of now.
    pub async fn summary(&self, detail: Detail) -> Result<Summary, StatsError> {
        let mut node = self.node_stats(detail);
        if detail == Detail::Full {
            node.runtime = Some(summary::RuntimeStats {
                image_fs: self.image_fs().await,
            });
        }
        let sandboxes = self
            .runtime
            .list_pod_sandbox(None)
            .await
            .map_err(StatsError::Cri)?;
        let containers = self
            .runtime
            .list_containers(None)
            .await
            .map_err(StatsError::Cri)?;
        let stats: HashMap<String, api::ContainerStats> = self
            .runtime
            .list_container_stats(None)
            .await
            .map_err(StatsError::Cri)?
            .into_iter()
            .filter_map(|s| Some((s.attributes.as_ref()?.id.clone(), s)))
            .collect();
        let node_fs = (detail == Detail::Full)
            .then(|| node::fs_usage(&self.pod_logs_dir).or_else(|| node::fs_usage(&self.root_dir)))
            .flatten();
        // Process counts from the pids cgroups, for PID pressure ranking.
        let cgroups = if detail == Detail::Full {
            let ids: Vec<&str> = containers
                .iter()
                .filter(|c| c.state == ContainerState::ContainerRunning as i32)
                .map(|c| c.id.as_str())
                .collect();
            cadvisor_metrics::find_cgroups(&self.cgroup_root, &ids)
        } else {
            HashMap::new()
        };
        let mut live = HashSet::new();
        let mut pods = Vec::new();
        for sb in &sandboxes {
            if sb.state != PodSandboxState::SandboxReady as i32 {
                continue;
            }
            let meta = sb.metadata.clone().unwrap_or_default();
            let mut cs = Vec::new();
            let mut processes: Option<u64> = None;
            for c in containers.iter().filter(|c| {
                c.pod_sandbox_id == sb.id && c.state == ContainerState::ContainerRunning as i32
            }) {
                live.insert(c.id.clone());
                if let Some(rel) = cgroups.get(&c.id) {
                    let path = self.cgroup_root.join("pids").join(rel).join("pids.current");
                    if let Some(n) = std::fs::read_to_string(path)
                        .ok()
                        .and_then(|v| v.trim().parse::<u64>().ok())
                    {
                        *processes.get_or_insert(0) += n;
                    }
                }
                let name = c
                    .metadata
                    .as_ref()
                    .map(|m| m.name.clone())
                    .unwrap_or_default();
                let mut out = ContainerStats {
                    name: name.clone(),
                    start_time: Time::from_unix_nanos(c.created_at),
                    ..Default::default()
                };
                if let Some(s) = stats.get(&c.id) {
                    out.cpu = s.cpu.as_ref().map(|cpu| {
                        let usage = value(&cpu.usage_core_nano_seconds);
                        let rate = value(&cpu.usage_nano_cores)
                            .or_else(|| usage.and_then(|u| self.rate(&c.id, cpu.timestamp, u)));
                        CpuStats {
                            time: Time::from_unix_nanos(cpu.timestamp),
                            usage_nano_cores: rate,
                            usage_core_nano_seconds: usage,
                        }
                    });
                    out.memory = s.memory.as_ref().map(|m| MemoryStats {
                        time: Time::from_unix_nanos(m.timestamp),
                        available_bytes: value(&m.available_bytes),
                        usage_bytes: value(&m.usage_bytes),
                        working_set_bytes: value(&m.working_set_bytes),
                        rss_bytes: value(&m.rss_bytes),
                        page_faults: value(&m.page_faults),
                        major_page_faults: value(&m.major_page_faults),
                    });
                    if detail == Detail::Full {
                        out.rootfs = s.writable_layer.as_ref().map(|w| {
                            let mut f = node_fs
                                .as_ref()
                                .map(|n| fs_stats(Time::from_unix_nanos(w.timestamp), n))
                                .unwrap_or_default();
                            f.time = Time::from_unix_nanos(w.timestamp);
                            f.used_bytes = value(&w.used_bytes);
                            f.inodes_used = value(&w.inodes_used);
                            f
                        });
                    }
                }
                if detail == Detail::Full {
                    let dir = pod_logs_directory(
                        &self.pod_logs_dir,
                        &meta.namespace,
                        &meta.name,
                        &meta.uid,
                    )
                    .join(&name);
                    out.logs = dir_usage(&dir).map(|(bytes, inodes)| {
                        let now = Time::from_unix_nanos(now_ns());
                        let mut f = node_fs
                            .as_ref()
                            .map(|n| fs_stats(now, n))
                            .unwrap_or_default();
                        f.time = now;
                        f.used_bytes = Some(bytes);
                        f.inodes_used = Some(inodes);
                        f
                    });
                }
                cs.push(out);
            }
            cs.sort_by(|a, b| a.name.cmp(&b.name));
            let volumes = if detail == Detail::Full {
                pod_volume_stats(
                    &self.root_dir.join("pods").join(&meta.uid),
                    Time::from_unix_nanos(now_ns()),
                    node_fs.as_ref(),
                )
            } else {
                vec![]
            };
            let ephemeral_storage = (detail == Detail::Full)
                .then(|| {
                    let disk: Vec<&VolumeStats> = volumes
                        .iter()
                        .filter(|(_, on_disk)| *on_disk)
                        .map(|(v, _)| v)
                        .collect();
                    summary::pod_ephemeral_storage(&cs, &disk)
                })
                .flatten();
            pods.push(PodStats {
                pod_ref: PodReference {
                    name: meta.name,
                    namespace: meta.namespace,
                    uid: meta.uid,
                },
                start_time: Time::from_unix_nanos(sb.created_at),
                cpu: summary::pod_cpu(&cs),
                memory: summary::pod_memory(&cs),
                volume: volumes.into_iter().map(|(v, _)| v).collect(),
                ephemeral_storage,
                containers: cs,
                process_stats: processes.map(|n| summary::ProcessStats {
                    process_count: Some(n),
                }),
            });
        }
        self.forget_except(&live);
        Ok(Summary { node, pods })
    }
}

fn fs_stats(time: Time, f: &node::FsUsage) -> FsStats {
    FsStats {
        time,
        available_bytes: Some(f.available),
        capacity_bytes: Some(f.capacity),
        used_bytes: Some(f.used),
        inodes_free: Some(f.inodes_free),
        inodes: Some(f.inodes),
        inodes_used: Some(f.inodes.saturating_sub(f.inodes_free)),
    }
}

#[cfg(test)]
mod tests;
