//! The last two points of every node and container and the usage between
//! them (upstream metrics-server's `pkg/storage`): CPU is the rate of the
//! cumulative counter over the window between the two measurements, memory
//! the latest working set. A point replaces the stored one only when it is
//! newer; a container that restarted (a start time after the stored
//! point) starts over. A container younger than one resolution but at
//! least 10 s old is measured from its start, so a new pod shows figures
//! after the first scrape.

use std::collections::HashMap;
use std::time::Duration;

use crate::decode::{Batch, PodRef, Point};

/// A container started less than this long ago gives inaccurate figures.
const FRESH_CONTAINER_MIN_RESOLUTION: Duration = Duration::from_secs(10);

/// Usage over one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// CPU rate in nanocores.
    pub cpu_nanocores: u64,
    /// Working set in bytes.
    pub memory: u64,
    /// The later measurement's time, Unix nanoseconds.
    pub timestamp_ns: i64,
    /// Time between the two measurements, nanoseconds.
    pub window_ns: i64,
}

/// What [`usage`] refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    #[error("unexpected decrease in startTime of node/container")]
    StartTimeDecreased,
    #[error("unexpected decrease in cumulative CPU usage value")]
    CpuDecreased,
    #[error("no time passed between the two points")]
    EmptyWindow,
}

/// The usage between `prev` and `last`.
pub fn usage(last: &Point, prev: &Point) -> Result<Usage, UsageError> {
    if last.start_ns < prev.start_ns {
        return Err(UsageError::StartTimeDecreased);
    }
    if last.cpu_ns < prev.cpu_ns {
        return Err(UsageError::CpuDecreased);
    }
    let window_ns = last.timestamp_ns - prev.timestamp_ns;
    if window_ns <= 0 {
        return Err(UsageError::EmptyWindow);
    }
    let rate = (last.cpu_ns - prev.cpu_ns) as f64 / (window_ns as f64 / 1e9);
    Ok(Usage {
        cpu_nanocores: rate as u64,
        memory: last.memory,
        timestamp_ns: last.timestamp_ns,
        window_ns,
    })
}

/// Every node's and pod's last two points.
#[derive(Debug, Default)]
pub struct Storage {
    resolution: Duration,
    nodes_last: HashMap<String, Point>,
    nodes_prev: HashMap<String, Point>,
    pods_last: HashMap<PodRef, HashMap<String, Point>>,
    pods_prev: HashMap<PodRef, HashMap<String, Point>>,
}

impl Storage {
    /// A storage for scrapes every `resolution`.
    pub fn new(resolution: Duration) -> Self {
        Self {
            resolution,
            ..Default::default()
        }
    }

    /// Whether node figures can be served (upstream's `NodeReady`).
    pub fn node_ready(&self) -> bool {
        !self.nodes_prev.is_empty()
    }

    /// Whether pod figures can be served (upstream's `PodReady`).
    pub fn pod_ready(&self) -> bool {
        !self.pods_prev.is_empty()
    }

    /// Both, what `/readyz`'s `metric-storage-ready` asks.
    pub fn ready(&self) -> bool {
        self.node_ready() && self.pod_ready()
    }

    /// How many container points can be served (for `/metrics`).
    pub fn container_points(&self) -> usize {
        self.pods_prev.values().map(HashMap::len).sum()
    }

    /// How many node points can be served.
    pub fn node_points(&self) -> usize {
        self.nodes_prev.len()
    }

    /// Takes a whole scrape round: nodes and pods not in it are forgotten.
    pub fn store(&mut self, batch: Batch) {
        self.store_nodes(batch.nodes);
        self.store_pods(batch.pods);
    }

    fn store_nodes(&mut self, nodes: HashMap<String, Point>) {
        let mut prev = HashMap::with_capacity(nodes.len());
        for (name, new) in &nodes {
            let Some(last) = self.nodes_last.get(name) else {
                continue;
            };
            if new.timestamp_ns > last.timestamp_ns {
                prev.insert(name.clone(), *last);
            } else if let Some(p) = self.nodes_prev.get(name) {
                if p.timestamp_ns < new.timestamp_ns {
                    prev.insert(name.clone(), *p);
                }
            }
        }
        self.nodes_last = nodes;
        self.nodes_prev = prev;
    }

    fn store_pods(&mut self, pods: HashMap<PodRef, HashMap<String, Point>>) {
        let mut prev_pods = HashMap::with_capacity(pods.len());
        for (pod, containers) in &pods {
            let mut prev = HashMap::with_capacity(containers.len());
            for (name, new) in containers {
                let age = new.timestamp_ns - new.start_ns;
                let fresh = new.start_ns < new.timestamp_ns
                    && age < self.resolution.as_nanos() as i64
                    && age >= FRESH_CONTAINER_MIN_RESOLUTION.as_nanos() as i64;
                if fresh {
                    prev.insert(
                        name.clone(),
                        Point {
                            timestamp_ns: new.start_ns,
                            cpu_ns: 0,
                            ..*new
                        },
                    );
                    continue;
                }
                let Some(last) = self.pods_last.get(pod).and_then(|c| c.get(name)) else {
                    continue;
                };
                // A restart since the stored point starts over.
                if new.start_ns >= last.timestamp_ns {
                    continue;
                }
                if new.timestamp_ns > last.timestamp_ns {
                    prev.insert(name.clone(), *last);
                } else if let Some(p) = self.pods_prev.get(pod).and_then(|c| c.get(name)) {
                    if p.timestamp_ns < new.timestamp_ns {
                        prev.insert(name.clone(), *p);
                    }
                }
            }
            if !prev.is_empty() {
                prev_pods.insert(pod.clone(), prev);
            }
        }
        self.pods_last = pods;
        self.pods_prev = prev_pods;
    }

    /// A node's usage, when two points are stored.
    pub fn node(&self, name: &str) -> Option<Usage> {
        let last = self.nodes_last.get(name)?;
        let prev = self.nodes_prev.get(name)?;
        usage(last, prev)
            .map_err(|e| tracing::warn!(node = name, error = %e, "skipping node usage metric"))
            .ok()
    }

    /// A pod's containers' usage (sorted by container name) and the
    /// earliest of their windows; `None` unless every container has two
    /// points.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<(Vec<(String, Usage)>, Usage)> {
        let key = (namespace.to_string(), name.to_string());
        let last = self.pods_last.get(&key)?;
        let prev = self.pods_prev.get(&key)?;
        let mut containers = Vec::with_capacity(last.len());
        let mut earliest: Option<Usage> = None;
        for (c, l) in last {
            let p = prev.get(c)?;
            match usage(l, p) {
                Ok(u) => {
                    if earliest.is_none_or(|e| e.timestamp_ns > u.timestamp_ns) {
                        earliest = Some(u);
                    }
                    containers.push((c.clone(), u));
                }
                Err(e) => {
                    tracing::warn!(namespace, pod = name, container = %c, error = %e, "skipping container usage metric")
                }
            }
        }
        containers.sort_by(|a, b| a.0.cmp(&b.0));
        Some((containers, earliest?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn point(start: i64, at: i64, cpu_s: f64, memory: u64) -> Point {
        Point {
            start_ns: start * S,
            timestamp_ns: at * S,
            cpu_ns: (cpu_s * 1e9) as u64,
            memory,
        }
    }

    fn batch(node: Option<Point>, containers: &[(&str, Point)]) -> Batch {
        let mut b = Batch::default();
        if let Some(n) = node {
            b.nodes.insert("n1".into(), n);
        }
        let pod = b.pods.entry(("default".into(), "web".into())).or_default();
        for (c, p) in containers {
            pod.insert(c.to_string(), *p);
        }
        b
    }

    #[test]
    fn cpu_is_the_rate_between_the_last_two_points() {
        let mut s = Storage::new(Duration::from_secs(15));
        s.store(batch(
            Some(point(0, 1000, 100.0, 500)),
            &[("a", point(0, 1000, 10.0, 64))],
        ));
        assert!(!s.ready());
        assert_eq!(s.node("n1"), None);
        s.store(batch(
            Some(point(0, 1015, 107.5, 600)),
            &[("a", point(0, 1015, 10.3, 128))],
        ));
        assert!(s.ready());
        assert_eq!(
            s.node("n1"),
            Some(Usage {
                cpu_nanocores: 500_000_000,
                memory: 600,
                timestamp_ns: 1015 * S,
                window_ns: 15 * S,
            })
        );
        let (cs, ti) = s.pod("default", "web").unwrap();
        assert_eq!(cs[0].0, "a");
        assert_eq!(cs[0].1.cpu_nanocores, 20_000_000);
        assert_eq!(cs[0].1.memory, 128);
        assert_eq!(ti.window_ns, 15 * S);
        // The same point again keeps the previous one.
        s.store(batch(
            Some(point(0, 1015, 107.5, 600)),
            &[("a", point(0, 1015, 10.3, 128))],
        ));
        assert_eq!(s.node("n1").unwrap().cpu_nanocores, 500_000_000);
        assert_eq!(s.pod("default", "web").unwrap().0.len(), 1);
    }

    #[test]
    fn a_restarted_container_starts_over_and_a_fresh_one_counts_from_its_start() {
        let mut s = Storage::new(Duration::from_secs(60));
        s.store(batch(None, &[("a", point(0, 1000, 10.0, 64))]));
        // Restarted at 1010: its counter began again.
        s.store(batch(None, &[("a", point(1010, 1100, 1.0, 64))]));
        assert_eq!(s.pod("default", "web"), None);
        // Started 30 s before its first measurement, within one resolution:
        // measured from its start.
        let mut s = Storage::new(Duration::from_secs(60));
        s.store(batch(None, &[("a", point(970, 1000, 3.0, 64))]));
        let (cs, ti) = s.pod("default", "web").unwrap();
        assert_eq!(cs[0].1.cpu_nanocores, 100_000_000);
        assert_eq!(ti.window_ns, 30 * S);
        // Younger than 10 s: not yet.
        let mut s = Storage::new(Duration::from_secs(60));
        s.store(batch(None, &[("a", point(995, 1000, 3.0, 64))]));
        assert_eq!(s.pod("default", "web"), None);
    }

    #[test]
    fn a_pod_needs_every_container_and_gone_objects_are_forgotten() {
        let mut s = Storage::new(Duration::from_secs(15));
        s.store(batch(None, &[("a", point(0, 1000, 1.0, 64))]));
        s.store(batch(
            None,
            &[
                ("a", point(0, 1015, 2.0, 64)),
                ("b", point(0, 1015, 2.0, 64)),
            ],
        ));
        assert_eq!(s.pod("default", "web"), None, "b has one point only");
        s.store(Batch::default());
        assert!(!s.ready());
        assert_eq!(s.container_points(), 0);
    }

    #[test]
    fn decreasing_counters_are_refused() {
        let a = point(0, 1000, 5.0, 1);
        assert_eq!(
            usage(&point(0, 1015, 4.0, 1), &a),
            Err(UsageError::CpuDecreased)
        );
        assert_eq!(usage(&a, &a), Err(UsageError::EmptyWindow));
        assert_eq!(
            usage(&a, &point(10, 900, 1.0, 1)),
            Err(UsageError::StartTimeDecreased)
        );
    }
}
