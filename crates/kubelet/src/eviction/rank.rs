//! Which pod goes first and what its status says (upstream's
//! `rankMemoryPressure`, `rankDiskPressureFunc`, `rankPIDPressure` and
//! `evictionMessage` in `eviction/helpers.go`). One filesystem is assumed
//! for images, containers, logs and volumes (upstream's ranking without a
//! dedicated image filesystem), so disk use is the containers' writable
//! layers and logs plus the pod's local volumes.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Container, Pod};

use super::signals::Observations;
use super::{format_bytes, format_quantity, Signal, Threshold};
use crate::kuberuntime::quantity::parse;
use crate::stats::summary::{FsStats, PodStats};

/// Pod stats by UID.
pub type PodStatsByUid<'a> = HashMap<&'a str, &'a PodStats>;

fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or("")
}

fn request(c: &Container, resource: &str) -> f64 {
    c.resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get(resource))
        .and_then(parse)
        .unwrap_or(0.0)
}

/// The pod's effective request (upstream's `GetResourceRequestQuantity`:
/// the larger of the app containers' sum and any init container, plus
/// overhead).
pub fn pod_request(pod: &Pod, resource: &str) -> f64 {
    let Some(spec) = pod.spec.as_ref() else {
        return 0.0;
    };
    let sum: f64 = spec.containers.iter().map(|c| request(c, resource)).sum();
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| request(c, resource))
        .fold(0.0, f64::max);
    let overhead = spec
        .overhead
        .as_ref()
        .and_then(|o| o.get(resource))
        .and_then(parse)
        .unwrap_or(0.0);
    sum.max(init) + overhead
}

pub fn priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

fn used(fs: &Option<FsStats>, inodes: bool) -> f64 {
    fs.as_ref()
        .and_then(|f| if inodes { f.inodes_used } else { f.used_bytes })
        .unwrap_or(0) as f64
}

/// The names of the pod's volumes on local disk (upstream's
/// `localVolumeNames`: hostPath and the local ephemeral kinds).
fn local_volume_names(pod: &Pod) -> Vec<&str> {
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter(|v| {
            v.host_path.is_some()
                || v.config_map.is_some()
                || v.downward_api.is_some()
                || v.empty_dir
                    .as_ref()
                    .is_some_and(|e| e.medium.as_deref() != Some("Memory"))
        })
        .map(|v| v.name.as_str())
        .collect()
}

/// Disk bytes (or inodes) the pod uses: writable layers, logs and local volumes.
pub fn disk_usage(pod: &Pod, stats: &PodStats, inodes: bool) -> f64 {
    let containers: f64 = stats
        .containers
        .iter()
        .map(|c| used(&c.rootfs, inodes) + used(&c.logs, inodes))
        .sum();
    let names = local_volume_names(pod);
    let volumes: f64 = stats
        .volume
        .iter()
        .filter(|v| names.contains(&v.name.as_str()))
        .map(|v| {
            if inodes {
                v.fs.inodes_used
            } else {
                v.fs.used_bytes
            }
            .unwrap_or(0) as f64
        })
        .sum();
    containers + volumes
}

fn processes(stats: &PodStats) -> u64 {
    stats
        .process_stats
        .as_ref()
        .and_then(|p| p.process_count)
        .unwrap_or(0)
}

fn memory_usage(stats: &PodStats) -> f64 {
    stats
        .memory
        .as_ref()
        .and_then(|m| m.working_set_bytes)
        .unwrap_or(0) as f64
}

/// Pods without stats first (upstream: evict what cannot be measured).
fn by_found(a: Option<&&PodStats>, b: Option<&&PodStats>) -> Option<Ordering> {
    match (a.is_some(), b.is_some()) {
        (true, true) => None,
        (found_a, found_b) => Some(found_a.cmp(&found_b)),
    }
}

/// True before false.
fn true_first(a: bool, b: bool) -> Ordering {
    b.cmp(&a)
}

/// Orders `pods` for eviction under pressure on `signal`, first to go first.
pub fn rank(signal: Signal, pods: &mut [Arc<Pod>], stats: &PodStatsByUid<'_>) {
    pods.sort_by(|p1, p2| {
        let (s1, s2) = (stats.get(uid(p1)), stats.get(uid(p2)));
        if let Some(o) = by_found(s1, s2) {
            return o;
        }
        let (Some(s1), Some(s2)) = (s1, s2) else {
            return Ordering::Equal;
        };
        match signal {
            Signal::MemoryAvailable => {
                let (u1, u2) = (memory_usage(s1), memory_usage(s2));
                let (r1, r2) = (pod_request(p1, "memory"), pod_request(p2, "memory"));
                true_first(u1 > r1, u2 > r2)
                    .then(priority(p1).cmp(&priority(p2)))
                    .then((u2 - r2).total_cmp(&(u1 - r1)))
            }
            // Upstream's rankPIDPressure: priority, then more processes first.
            Signal::PidAvailable => priority(p1)
                .cmp(&priority(p2))
                .then(processes(s2).cmp(&processes(s1))),
            _ => {
                let inodes = matches!(signal, Signal::NodeFsInodesFree | Signal::ImageFsInodesFree);
                let (u1, u2) = (disk_usage(p1, s1, inodes), disk_usage(p2, s2, inodes));
                let (r1, r2) = if inodes {
                    (0.0, 0.0)
                } else {
                    (
                        pod_request(p1, "ephemeral-storage"),
                        pod_request(p2, "ephemeral-storage"),
                    )
                };
                true_first(u1 > r1, u2 > r2)
                    .then(priority(p1).cmp(&priority(p2)))
                    .then((u2 - r2).total_cmp(&(u1 - r1)))
            }
        }
    });
}

/// Upstream's eviction message: the starved resource, the threshold and
/// what was available, then each container using more than it requested.
pub fn eviction_message(
    signal: Signal,
    pod: &Pod,
    stats: Option<&PodStats>,
    thresholds: &[Threshold],
    observations: &Observations,
) -> String {
    let resource = signal.resource();
    let mut message = format!("The node was low on resource: {resource}. ");
    let met = thresholds.iter().find_map(|t| {
        if t.signal.resource() != resource {
            return None;
        }
        let o = observations.get(&t.signal)?;
        Some((t, o))
    });
    if let Some((t, o)) = met {
        let quantity = match t.value {
            super::ThresholdValue::Quantity(q) => format_quantity(t.signal, q),
            super::ThresholdValue::Percentage(_) => {
                // Upstream prints a share of capacity as binary SI, whatever the signal.
                format_bytes(t.value.quantity(o.capacity))
            }
        };
        message += &format!(
            "Threshold quantity: {quantity}, available: {}. ",
            format_quantity(t.signal, o.available)
        );
    }
    let (Some(stats), Some(spec)) = (stats, pod.spec.as_ref()) else {
        return message;
    };
    let containers: Vec<&Container> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .collect();
    for cs in &stats.containers {
        let Some(c) = containers.iter().find(|c| c.name == cs.name) else {
            continue;
        };
        let usage = match resource {
            "memory" => cs.memory.as_ref().and_then(|m| m.working_set_bytes),
            "ephemeral-storage" => {
                match (
                    cs.rootfs.as_ref().and_then(|f| f.used_bytes),
                    cs.logs.as_ref().and_then(|f| f.used_bytes),
                ) {
                    (Some(r), Some(l)) => Some(r + l),
                    _ => None,
                }
            }
            _ => None,
        };
        let Some(usage) = usage else { continue };
        let req = c
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get(resource));
        let req_value = req.and_then(parse).unwrap_or(0.0);
        if usage as f64 > req_value {
            message += &format!(
                "Container {} was using {}, request is {}, has larger consumption of {resource}. ",
                c.name,
                format_bytes(i64::try_from(usage).unwrap_or(i64::MAX)),
                req.map_or("0", |q| q.0.as_str()),
            );
        }
    }
    message
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::stats::summary::{ContainerStats, MemoryStats, PodReference, Time};
    use serde_json::json;

    fn pod(name: &str, priority: i32, memory_request: Option<&str>) -> Arc<Pod> {
        let mut resources = json!({});
        if let Some(r) = memory_request {
            resources = json!({"requests": {"memory": r}});
        }
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "uid": name},
                "spec": {"priority": priority, "containers": [{"name": "c", "resources": resources}]}
            }))
            .unwrap(),
        )
    }

    fn stats(name: &str, working_set: u64) -> PodStats {
        let memory = Some(MemoryStats {
            time: Time::from_unix_nanos(0),
            working_set_bytes: Some(working_set),
            available_bytes: None,
            usage_bytes: None,
            rss_bytes: None,
            page_faults: None,
            major_page_faults: None,
        });
        PodStats {
            pod_ref: PodReference {
                name: name.into(),
                namespace: "default".into(),
                uid: name.into(),
            },
            start_time: Time::from_unix_nanos(0),
            containers: vec![ContainerStats {
                name: "c".into(),
                start_time: Time::from_unix_nanos(0),
                memory: memory.clone(),
                ..Default::default()
            }],
            cpu: None,
            memory,
            volume: vec![],
            ephemeral_storage: None,
            process_stats: None,
        }
    }

    #[test]
    fn pid_ranking_is_priority_then_process_count() {
        let mut pods = vec![
            pod("few", 0, None),
            pod("many", 0, None),
            pod("important", 1000, None),
        ];
        let stats_of = |name: &str, n: u64| {
            let mut s = stats(name, 0);
            s.process_stats = Some(crate::stats::summary::ProcessStats {
                process_count: Some(n),
            });
            s
        };
        let all = [
            stats_of("few", 2),
            stats_of("many", 40),
            stats_of("important", 90),
        ];
        let by_uid: PodStatsByUid<'_> = all.iter().map(|s| (s.pod_ref.uid.as_str(), s)).collect();
        rank(Signal::PidAvailable, &mut pods, &by_uid);
        let order: Vec<&str> = pods
            .iter()
            .map(|p| p.metadata.name.as_deref().unwrap())
            .collect();
        assert_eq!(order, ["many", "few", "important"]);
    }

    #[test]
    fn memory_ranking_is_over_request_then_priority_then_excess() {
        let mi = 1 << 20;
        let mut pods = vec![
            pod("guaranteed-ish", 0, Some("100Mi")), // 50Mi of 100Mi: under request
            pod("high-priority", 1000, None),        // over (no request), priority 1000
            pod("small", 0, None),                   // over by 10Mi
            pod("big", 0, None),                     // over by 80Mi
            pod("unmeasured", 2000, None),           // no stats: first
        ];
        let all = [
            stats("guaranteed-ish", 50 * mi),
            stats("high-priority", 500 * mi),
            stats("small", 10 * mi),
            stats("big", 80 * mi),
        ];
        let by_uid: PodStatsByUid = all.iter().map(|s| (s.pod_ref.uid.as_str(), s)).collect();
        rank(Signal::MemoryAvailable, &mut pods, &by_uid);
        let order: Vec<&str> = pods
            .iter()
            .map(|p| p.metadata.name.as_deref().unwrap())
            .collect();
        assert_eq!(
            order,
            [
                "unmeasured",
                "big",
                "small",
                "high-priority",
                "guaranteed-ish"
            ]
        );
    }

    #[test]
    fn message_names_threshold_available_and_the_containers_over_request() {
        let t = Threshold {
            signal: Signal::MemoryAvailable,
            value: super::super::ThresholdValue::Quantity(100 << 20),
            grace_period: std::time::Duration::ZERO,
            min_reclaim: None,
        };
        let obs = Observations::from([(
            Signal::MemoryAvailable,
            super::super::signals::Observation {
                available: 50 << 20,
                capacity: 1 << 30,
            },
        )]);
        let p = pod("p", 0, Some("10Mi"));
        let s = stats("p", 20 << 20);
        assert_eq!(
            eviction_message(Signal::MemoryAvailable, &p, Some(&s), &[t], &obs),
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. \
             Container c was using 20Mi, request is 10Mi, has larger consumption of memory. "
        );
    }
}
