//! The node's own figures, read from `/proc` and the root cgroup the way
//! cadvisor reports them for the `/` container (upstream's
//! `pkg/kubelet/stats/provider.go` `GetCgroupStats("/")`,
//! `pkg/kubelet/stats/pidlimit/pidlimit_linux.go`): cgroup v1 first, with
//! `/proc` as the fallback on machines without the v1 controllers.

use std::path::Path;

/// Cumulative CPU time of the whole node in nanoseconds.
pub fn cpu_usage_ns(cgroup_root: &Path, proc_root: &Path) -> Option<u64> {
    if let Some(v) = read_u64(&cgroup_root.join("cpuacct/cpuacct.usage")) {
        return Some(v);
    }
    let stat = std::fs::read_to_string(proc_root.join("stat")).ok()?;
    proc_stat_cpu_ns(&stat)
}

/// The `cpu` line of `/proc/stat` (user, nice, system, irq, softirq and
/// steal; idle and iowait are not usage) in nanoseconds, at `USER_HZ` 100.
pub fn proc_stat_cpu_ns(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    let used: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|i| f.get(*i)).sum();
    Some(used.saturating_mul(10_000_000))
}

/// The boot time from `/proc/stat`'s `btime` line, in seconds since the epoch.
pub fn boot_time(stat: &str) -> Option<i64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Node memory as the summary API reports it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct NodeMemory {
    pub capacity: u64,
    pub usage: u64,
    pub working_set: u64,
    pub rss: Option<u64>,
    pub page_faults: Option<u64>,
    pub major_page_faults: Option<u64>,
}

/// A `key value` file (`memory.stat`) or `Key: value kB` (`/proc/meminfo`)
/// entry; `kB` values come back in bytes.
fn field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        let k = it.next()?.trim_end_matches(':');
        if k != key {
            return None;
        }
        let v: u64 = it.next()?.parse().ok()?;
        Some(if it.next() == Some("kB") { v * 1024 } else { v })
    })
}

/// Memory from the v1 root cgroup (working set = usage − inactive file,
/// cadvisor's definition) or, without it, from `/proc/meminfo`.
pub fn memory(meminfo: &str, cgroup_usage: Option<u64>, cgroup_stat: Option<&str>) -> NodeMemory {
    let capacity = field(meminfo, "MemTotal").unwrap_or(0);
    match (cgroup_usage, cgroup_stat) {
        (Some(usage), Some(stat)) => {
            let inactive = field(stat, "total_inactive_file").unwrap_or(0);
            NodeMemory {
                capacity,
                usage,
                working_set: usage.saturating_sub(inactive),
                rss: field(stat, "total_rss"),
                page_faults: field(stat, "total_pgfault"),
                major_page_faults: field(stat, "total_pgmajfault"),
            }
        }
        _ => {
            let free = field(meminfo, "MemFree").unwrap_or(0);
            let available = field(meminfo, "MemAvailable").unwrap_or(free);
            NodeMemory {
                capacity,
                usage: capacity.saturating_sub(free),
                working_set: capacity.saturating_sub(available),
                ..Default::default()
            }
        }
    }
}

/// [`memory`] read from the machine.
pub fn read_memory(cgroup_root: &Path, proc_root: &Path) -> NodeMemory {
    let meminfo = std::fs::read_to_string(proc_root.join("meminfo")).unwrap_or_default();
    let usage = read_u64(&cgroup_root.join("memory/memory.usage_in_bytes"));
    let stat = std::fs::read_to_string(cgroup_root.join("memory/memory.stat")).ok();
    memory(&meminfo, usage, stat.as_deref())
}

/// Capacity, availability and inodes of the filesystem holding `path`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FsUsage {
    pub capacity: u64,
    pub available: u64,
    pub used: u64,
    pub inodes: u64,
    pub inodes_free: u64,
}

pub fn fs_usage(path: &Path) -> Option<FsUsage> {
    let st = rustix::fs::statvfs(path).ok()?;
    let frsize = st.f_frsize;
    Some(FsUsage {
        capacity: st.f_blocks.saturating_mul(frsize),
        available: st.f_bavail.saturating_mul(frsize),
        used: st
            .f_blocks
            .saturating_sub(st.f_bfree)
            .saturating_mul(frsize),
        inodes: st.f_files,
        inodes_free: st.f_ffree,
    })
}

/// `(maxpid, curproc)`: the smaller of `pid_max` and `threads-max`, and the
/// number of processes from `/proc/loadavg`'s `running/total` field.
pub fn rlimit(proc_root: &Path) -> (Option<u64>, Option<u64>) {
    let pid_max = read_u64(&proc_root.join("sys/kernel/pid_max"));
    let threads = read_u64(&proc_root.join("sys/kernel/threads-max"));
    let max = match (pid_max, threads) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let cur = std::fs::read_to_string(proc_root.join("loadavg"))
        .ok()
        .and_then(|l| {
            l.split_whitespace()
                .nth(3)
                .and_then(|f| f.split_once('/'))
                .and_then(|(_, total)| total.parse().ok())
        });
    (max, cur)
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_and_meminfo_and_cgroup_memory() {
        let stat = "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 1 2 3 4\nbtime 1700000000\n";
        // user+nice+system+irq+softirq+steal = 161 ticks of 10 ms.
        assert_eq!(proc_stat_cpu_ns(stat), Some(1_610_000_000));
        assert_eq!(boot_time(stat), Some(1_700_000_000));

        let meminfo = "MemTotal:       4000 kB\nMemFree:        1000 kB\nMemAvailable:   3000 kB\n";
        let m = memory(meminfo, None, None);
        assert_eq!(m.capacity, 4000 * 1024);
        assert_eq!(m.usage, 3000 * 1024);
        assert_eq!(m.working_set, 1000 * 1024);

        let cg = "cache 1\ntotal_rss 700\ntotal_inactive_file 300\ntotal_pgfault 9\ntotal_pgmajfault 2\n";
        let m = memory(meminfo, Some(1000), Some(cg));
        assert_eq!((m.usage, m.working_set, m.rss), (1000, 700, Some(700)));
        assert_eq!((m.page_faults, m.major_page_faults), (Some(9), Some(2)));
        // More inactive file than usage cannot go below zero.
        assert_eq!(memory(meminfo, Some(10), Some(cg)).working_set, 0);
    }

    #[test]
    fn this_machine_has_figures() {
        let p = Path::new("/proc");
        assert!(cpu_usage_ns(Path::new("/sys/fs/cgroup"), p).unwrap() > 0);
        assert!(read_memory(Path::new("/sys/fs/cgroup"), p).capacity > 0);
        let fs = fs_usage(Path::new("/")).unwrap();
        assert!(fs.capacity >= fs.available && fs.capacity > 0);
        let (max, cur) = rlimit(p);
        assert!(max.unwrap() > 0 && cur.unwrap() > 0);
    }
}
