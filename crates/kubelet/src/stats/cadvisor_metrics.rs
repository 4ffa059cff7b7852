//! `GET /metrics/cadvisor`: the container metrics Prometheus scrapes from
//! every kubelet, with cAdvisor's names, help texts and the labels
//! upstream's kubelet gives them (`container`, `id` — the cgroup —,
//! `image`, `name` — the runtime's container ID —, `namespace`, `pod`),
//! for the running containers the runtime has and the node's root cgroup
//! (`id="/"`, the other labels empty), plus `machine_cpu_cores` and
//! `machine_memory_bytes`. Figures come from the cgroup v1 files cAdvisor
//! reads (cpuacct, cpu, memory); a container whose cgroup is not found
//! falls back to the runtime's CPU and working set. Not kept: cAdvisor's
//! disk I/O, network, filesystem, process, per-CPU and spec families, and
//! the pods' own cgroups (this kubelet puts none between containers and
//! the runtime's).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::resource_metrics::{exposition, labels, Family};
use super::summary::Time;
use crate::cri::api::{self, ContainerState};
use crate::cri::{ImageService, RuntimeService};
use crate::kuberuntime::labels::{CONTAINER_NAME, POD_NAME, POD_NAMESPACE};
use crate::nodestatus::MachineInfo;

/// One cgroup's figures (cAdvisor's `ContainerStats` for cgroup v1).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CgroupStats {
    pub cpu_usage_ns: Option<u64>,
    /// `cpuacct.stat` user and system, in seconds.
    pub cpu_user_s: Option<f64>,
    pub cpu_system_s: Option<f64>,
    /// `cpu.stat` when a CFS quota is set: periods, throttled periods and
    /// throttled time in ns.
    pub cfs: Option<(u64, u64, u64)>,
    pub memory_usage: Option<u64>,
    pub memory_max_usage: Option<u64>,
    pub memory_failcnt: Option<u64>,
    /// `memory.stat` entries.
    pub memory_stat: HashMap<String, u64>,
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn read_pairs(path: &Path) -> HashMap<String, u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

impl CgroupStats {
    /// Reads the cgroup `rel` (`k8s.io/<id>`, or `` for the root) below
    /// the v1 hierarchies at `root`.
    pub fn read(root: &Path, rel: &Path) -> Self {
        let cpuacct = root.join("cpuacct").join(rel);
        let cpu = root.join("cpu").join(rel);
        let memory = root.join("memory").join(rel);
        let acct = read_pairs(&cpuacct.join("cpuacct.stat"));
        // cpuacct.stat counts USER_HZ (100) ticks.
        let ticks = |k: &str| acct.get(k).map(|t| *t as f64 / 100.0);
        let quota: Option<i64> = std::fs::read_to_string(cpu.join("cpu.cfs_quota_us"))
            .ok()
            .and_then(|v| v.trim().parse().ok());
        let cfs = quota.filter(|q| *q > 0).map(|_| {
            let s = read_pairs(&cpu.join("cpu.stat"));
            let g = |k: &str| s.get(k).copied().unwrap_or(0);
            (g("nr_periods"), g("nr_throttled"), g("throttled_time"))
        });
        CgroupStats {
            cpu_usage_ns: read_u64(&cpuacct.join("cpuacct.usage")),
            cpu_user_s: ticks("user"),
            cpu_system_s: ticks("system"),
            cfs,
            memory_usage: read_u64(&memory.join("memory.usage_in_bytes")),
            memory_max_usage: read_u64(&memory.join("memory.max_usage_in_bytes")),
            memory_failcnt: read_u64(&memory.join("memory.failcnt")),
            memory_stat: read_pairs(&memory.join("memory.stat")),
        }
    }

    /// cAdvisor's working set: usage less inactive file pages.
    fn working_set(&self) -> Option<u64> {
        let usage = self.memory_usage?;
        let inactive = self
            .memory_stat
            .get("total_inactive_file")
            .copied()
            .unwrap_or(0);
        Some(usage.saturating_sub(inactive))
    }
}

/// The cgroups (relative to the v1 `cpuacct` hierarchy) named like one of
/// `ids`, found up to four levels down (containerd puts them at
/// `k8s.io/<id>` without a cgroup parent).
pub fn find_cgroups(root: &Path, ids: &[&str]) -> HashMap<String, PathBuf> {
    let mut out = HashMap::new();
    let base = root.join("cpuacct");
    let mut stack = vec![(PathBuf::new(), 0)];
    while let Some((rel, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(base.join(&rel)) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            let child = rel.join(&name);
            if ids.contains(&name.as_str()) {
                out.insert(name, child);
            } else if depth < 3 {
                stack.push((child, depth + 1));
            }
        }
    }
    out
}

/// Who a series is about, in label order.
struct Who {
    container: String,
    id: String,
    image: String,
    name: String,
    namespace: String,
    pod: String,
}

impl Who {
    fn labels(&self, extra: &[(&str, &str)]) -> String {
        let mut pairs: Vec<(&str, &str)> = vec![
            ("container", &self.container),
            ("id", &self.id),
            ("image", &self.image),
            ("name", &self.name),
            ("namespace", &self.namespace),
            ("pod", &self.pod),
        ];
        pairs.extend_from_slice(extra);
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        labels(&pairs)
    }
}

struct Families {
    cpu_usage: Family,
    cpu_user: Family,
    cpu_system: Family,
    cfs_periods: Family,
    cfs_throttled_periods: Family,
    cfs_throttled_seconds: Family,
    mem_cache: Family,
    mem_rss: Family,
    mem_mapped: Family,
    mem_failcnt: Family,
    mem_usage: Family,
    mem_max_usage: Family,
    mem_working_set: Family,
    mem_failures: Family,
    last_seen: Family,
    start_time: Family,
}

impl Families {
    fn new() -> Self {
        let f = Family::new;
        Families {
            cpu_usage: f("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", "counter"),
            cpu_user: f("container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", "counter"),
            cpu_system: f("container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", "counter"),
            cfs_periods: f("container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", "counter"),
            cfs_throttled_periods: f("container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", "counter"),
            cfs_throttled_seconds: f("container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.", "counter"),
            mem_cache: f("container_memory_cache", "Number of bytes of page cache memory.", "gauge"),
            mem_rss: f("container_memory_rss", "Size of RSS in bytes.", "gauge"),
            mem_mapped: f("container_memory_mapped_file", "Size of memory mapped files in bytes.", "gauge"),
            mem_failcnt: f("container_memory_failcnt", "Number of memory usage hits limits", "counter"),
            mem_usage: f("container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed", "gauge"),
            mem_max_usage: f("container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes", "gauge"),
            mem_working_set: f("container_memory_working_set_bytes", "Current working set in bytes.", "gauge"),
            mem_failures: f("container_memory_failures_total", "Cumulative count of memory allocation failures.", "counter"),
            last_seen: f("container_last_seen", "Last time a container was seen by the exporter", "gauge"),
            start_time: f("container_start_time_seconds", "Start time of the container since unix epoch in seconds.", "gauge"),
        }
    }

    /// The series of one cgroup; `runtime` fills CPU and working set when
    /// the cgroup had none.
    fn add(
        &mut self,
        who: &Who,
        st: &CgroupStats,
        runtime: Option<&api::ContainerStats>,
        started_s: Option<f64>,
        now: Time,
    ) {
        let l = who.labels(&[]);
        let cpu = st.cpu_usage_ns.or_else(|| {
            runtime?
                .cpu
                .as_ref()?
                .usage_core_nano_seconds
                .as_ref()
                .map(|v| v.value)
        });
        if let Some(ns) = cpu {
            self.cpu_usage
                .push(who.labels(&[("cpu", "total")]), ns as f64 / 1e9, now);
        }
        if let Some(v) = st.cpu_user_s {
            self.cpu_user.push(l.clone(), v, now);
        }
        if let Some(v) = st.cpu_system_s {
            self.cpu_system.push(l.clone(), v, now);
        }
        if let Some((periods, throttled, throttled_ns)) = st.cfs {
            self.cfs_periods.push(l.clone(), periods as f64, now);
            self.cfs_throttled_periods
                .push(l.clone(), throttled as f64, now);
            self.cfs_throttled_seconds
                .push(l.clone(), throttled_ns as f64 / 1e9, now);
        }
        let stat = |k: &str| st.memory_stat.get(k).map(|v| *v as f64);
        for (family, key) in [
            (&mut self.mem_cache, "total_cache"),
            (&mut self.mem_rss, "total_rss"),
            (&mut self.mem_mapped, "total_mapped_file"),
        ] {
            if let Some(v) = stat(key) {
                family.push(l.clone(), v, now);
            }
        }
        for (family, v) in [
            (&mut self.mem_failcnt, st.memory_failcnt),
            (&mut self.mem_usage, st.memory_usage),
            (&mut self.mem_max_usage, st.memory_max_usage),
        ] {
            if let Some(v) = v {
                family.push(l.clone(), v as f64, now);
            }
        }
        let ws = st.working_set().or_else(|| {
            runtime?
                .memory
                .as_ref()?
                .working_set_bytes
                .as_ref()
                .map(|v| v.value)
        });
        if let Some(v) = ws {
            self.mem_working_set.push(l.clone(), v as f64, now);
        }
        for (kind, scope, key) in [
            ("pgfault", "container", "pgfault"),
            ("pgmajfault", "container", "pgmajfault"),
            ("pgfault", "hierarchy", "total_pgfault"),
            ("pgmajfault", "hierarchy", "total_pgmajfault"),
        ] {
            if let Some(v) = stat(key) {
                self.mem_failures.push(
                    who.labels(&[("failure_type", kind), ("scope", scope)]),
                    v,
                    now,
                );
            }
        }
        self.last_seen
            .push(l.clone(), now.0.timestamp() as f64, now);
        if let Some(s) = started_s {
            // A spec figure: no sample timestamp, as cAdvisor's.
            self.start_time.samples.push((l, s, 0));
        }
    }

    fn into_vec(self) -> Vec<Family> {
        vec![
            self.cpu_usage,
            self.cpu_user,
            self.cpu_system,
            self.cfs_periods,
            self.cfs_throttled_periods,
            self.cfs_throttled_seconds,
            self.mem_cache,
            self.mem_rss,
            self.mem_mapped,
            self.mem_failcnt,
            self.mem_usage,
            self.mem_max_usage,
            self.mem_working_set,
            self.mem_failures,
            self.last_seen,
            self.start_time,
        ]
    }
}

fn machine_families(machine: &MachineInfo, now: Time) -> Vec<Family> {
    let l = labels(&[
        ("boot_id", &machine.boot_id),
        ("machine_id", &machine.machine_id),
        ("system_uuid", &machine.system_uuid),
    ]);
    let mut cores = Family::new("machine_cpu_cores", "Number of logical CPU cores.", "gauge");
    cores.push(l.clone(), machine.num_cores as f64, now);
    let mut memory = Family::new(
        "machine_memory_bytes",
        "Amount of memory installed on the machine.",
        "gauge",
    );
    memory.push(l, machine.memory_bytes as f64, now);
    let mut err = Family::new(
        "machine_scrape_error",
        "1 if there was an error while getting machine metrics, 0 otherwise.",
        "gauge",
    );
    err.samples.push((String::new(), 0.0, 0));
    vec![cores, memory, err]
}

/// The exposition text as of now.
pub async fn render(
    runtime: &dyn RuntimeService,
    images: &dyn ImageService,
    cgroup_root: &Path,
    machine: &MachineInfo,
) -> String {
    let now = Time::from_unix_nanos(chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0));
    let mut families = Families::new();
    let mut scrape_error = Family::new(
        "container_scrape_error",
        "1 if there was an error while getting container metrics, 0 otherwise",
        "gauge",
    );
    let root = Who {
        container: String::new(),
        id: "/".into(),
        image: String::new(),
        name: String::new(),
        namespace: String::new(),
        pod: String::new(),
    };
    families.add(
        &root,
        &CgroupStats::read(cgroup_root, Path::new("")),
        None,
        None,
        now,
    );
    let listed = runtime.list_containers(None).await;
    let stats = runtime.list_container_stats(None).await;
    let failed = listed.is_err() || stats.is_err();
    let containers: Vec<api::Container> = listed
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.state == ContainerState::ContainerRunning as i32)
        .collect();
    let stats: HashMap<String, api::ContainerStats> = stats
        .unwrap_or_default()
        .into_iter()
        .filter_map(|s| Some((s.attributes.as_ref()?.id.clone(), s)))
        .collect();
    // The runtime lists a container's image by ID; cAdvisor shows its name.
    let image_names: HashMap<String, String> = images
        .list_images()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| Some((i.id.clone(), i.repo_tags.into_iter().next()?)))
        .collect();
    let ids: Vec<&str> = containers.iter().map(|c| c.id.as_str()).collect();
    let cgroups = find_cgroups(cgroup_root, &ids);
    for c in &containers {
        let label = |k: &str| c.labels.get(k).cloned().unwrap_or_default();
        let rel = cgroups.get(&c.id);
        let who = Who {
            container: label(CONTAINER_NAME),
            id: rel.map_or_else(String::new, |r| format!("/{}", r.display())),
            image: c
                .image
                .as_ref()
                .map(|i| image_names.get(&i.image).unwrap_or(&i.image).clone())
                .unwrap_or_default(),
            name: c.id.clone(),
            namespace: label(POD_NAMESPACE),
            pod: label(POD_NAME),
        };
        let st = rel
            .map(|r| CgroupStats::read(cgroup_root, r))
            .unwrap_or_default();
        let started = (c.created_at > 0).then(|| c.created_at as f64 / 1e9);
        families.add(&who, &st, stats.get(&c.id), started, now);
    }
    scrape_error
        .samples
        .push((String::new(), if failed { 1.0 } else { 0.0 }, 0));
    let mut all = families.into_vec();
    all.push(scrape_error);
    all.extend(machine_families(machine, now));
    exposition(all)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
