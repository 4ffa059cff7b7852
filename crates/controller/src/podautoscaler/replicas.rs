//! How many replicas a metric asks for (upstream's
//! `pkg/controller/podautoscaler/replica_calculator.go`). Pure: the pods,
//! their metrics and "now" come in.
//!
//! Pods are grouped first: deleted and failed pods are ignored, pending
//! ones (and, for CPU, pods not ready or measured too soon after becoming
//! ready, within `--horizontal-pod-autoscaler-cpu-initialization-period`)
//! are unready, pods without a metric are missing. The usage ratio is
//! taken over the measured ready pods; within the tolerance nothing
//! changes. When pods are missing or unready and the ratio asks to grow,
//! missing pods count as using nothing (and as using their whole request
//! when it asks to shrink), unready pods as using nothing; if that flips
//! the direction or lands within the tolerance, the count stays.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

/// One pod's figure (upstream's `PodMetric`): milli-units of the resource
/// summed over the pod's containers (or one container's), measured at
/// `timestamp` over `window`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PodMetric {
    pub timestamp: Timestamp,
    pub window: Duration,
    pub value: i64,
}

/// Metrics by pod name.
pub type PodMetrics = HashMap<String, PodMetric>;

/// The calculator's knobs (upstream's flags' defaults in [`Default`]).
#[derive(Debug, Clone, Copy)]
pub struct Calculator {
    /// `--horizontal-pod-autoscaler-tolerance`.
    pub tolerance: f64,
    /// `--horizontal-pod-autoscaler-cpu-initialization-period`.
    pub cpu_initialization_period: Duration,
    /// `--horizontal-pod-autoscaler-initial-readiness-delay`.
    pub initial_readiness_delay: Duration,
}

impl Default for Calculator {
    fn default() -> Self {
        Self {
            tolerance: 0.1,
            cpu_initialization_period: Duration::from_secs(5 * 60),
            initial_readiness_delay: Duration::from_secs(30),
        }
    }
}

/// What [`Calculator::resource_replicas`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utilization {
    pub replicas: i32,
    /// Percent of the requests.
    pub utilization: i32,
    /// Average milli-units per measured pod.
    pub raw: i64,
}

struct Groups {
    ready: usize,
    unready: HashSet<String>,
    missing: HashSet<String>,
    ignored: HashSet<String>,
}

fn plus(t: Option<Timestamp>, d: Duration) -> Option<Timestamp> {
    let d = jiff::SignedDuration::try_from(d).ok()?;
    t?.checked_add(d).ok()
}

fn ready_condition(pod: &Pod) -> Option<(bool, Option<Timestamp>)> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| {
            (
                c.status == "True",
                c.last_transition_time.as_ref().map(|t| t.0),
            )
        })
}

/// Upstream's `groupPods`.
fn group_pods(
    pods: &[&Pod],
    metrics: &PodMetrics,
    cpu: bool,
    calc: &Calculator,
    now: Timestamp,
) -> Groups {
    let mut g = Groups {
        ready: 0,
        unready: HashSet::new(),
        missing: HashSet::new(),
        ignored: HashSet::new(),
    };
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("");
        if pod.metadata.deletion_timestamp.is_some() || phase == "Failed" {
            g.ignored.insert(name);
            continue;
        }
        if phase == "Pending" {
            g.unready.insert(name);
            continue;
        }
        let Some(metric) = metrics.get(&name) else {
            g.missing.insert(name);
            continue;
        };
        if cpu {
            let start = pod
                .status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0);
            let unready = match (ready_condition(pod), start) {
                (Some((ready, transition)), Some(start)) => {
                    if plus(Some(start), calc.cpu_initialization_period).is_some_and(|t| t > now) {
                        // Still initialising: unready, or measured before one
                        // window passed since it became ready.
                        !ready
                            || plus(transition, metric.window).is_some_and(|t| metric.timestamp < t)
                    } else {
                        // Unready and never ready since it started.
                        !ready
                            && plus(Some(start), calc.initial_readiness_delay)
                                .zip(transition)
                                .is_some_and(|(limit, t)| limit > t)
                    }
                }
                _ => true,
            };
            if unready {
                g.unready.insert(name);
                continue;
            }
        }
        g.ready += 1;
    }
    g
}

/// Milli-units of a quantity, rounded up (upstream's `MilliValue`).
pub fn milli(q: &str) -> Option<i64> {
    let n = apimachinery::quantity::Quantity::parse(q)?.nanos();
    let m = n.div_euclid(1_000_000) + i128::from(n.rem_euclid(1_000_000) != 0);
    i64::try_from(m).ok()
}

/// Each pod's request of `resource` in milli-units, over its containers or
/// only `container` (upstream's `calculateRequests`).
fn requests(
    pods: &[&Pod],
    resource: &str,
    container: Option<&str>,
) -> Result<HashMap<String, i64>, String> {
    let mut out = HashMap::with_capacity(pods.len());
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let mut sum = 0i64;
        for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
            if container.is_some_and(|want| want != c.name) {
                continue;
            }
            let request = c
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get(resource))
                .and_then(|q| milli(&q.0));
            match request {
                Some(r) => sum += r,
                None => {
                    return Err(format!(
                        "missing request for {resource} in container {} of Pod {name}",
                        c.name
                    ))
                }
            }
        }
        out.insert(name, sum);
    }
    Ok(out)
}

/// Upstream's `GetResourceUtilizationRatio`.
fn utilization_ratio(
    metrics: &PodMetrics,
    requests: &HashMap<String, i64>,
    target: i32,
) -> Result<(f64, i32, i64), String> {
    let (mut used, mut requested, mut n) = (0i64, 0i64, 0i64);
    for (pod, m) in metrics {
        // A metric without a request belongs to a pod not selected any more.
        let Some(r) = requests.get(pod) else { continue };
        used += m.value;
        requested += r;
        n += 1;
    }
    if requested == 0 {
        return Err("no metrics returned matched known pods".into());
    }
    let utilization = i32::try_from(used * 100 / requested).unwrap_or(i32::MAX);
    Ok((
        f64::from(utilization) / f64::from(target),
        utilization,
        used / n,
    ))
}

/// Upstream's `GetMetricUsageRatio`.
fn usage_ratio(metrics: &PodMetrics, target: i64) -> (f64, i64) {
    let total: i64 = metrics.values().map(|m| m.value).sum();
    let n = i64::try_from(metrics.len()).unwrap_or(1).max(1);
    let current = total / n;
    (current as f64 / target as f64, current)
}

fn ceil(x: f64) -> i32 {
    let c = x.ceil();
    if c >= f64::from(i32::MAX) {
        i32::MAX
    } else {
        c as i32
    }
}

/// How one kind of metric turns usage into a ratio and treats missing pods.
struct Rules<'a, T> {
    /// The usage ratio against the target, and the figure to report.
    ratio: &'a dyn Fn(&PodMetrics) -> Result<(f64, T), String>,
    /// What a pod without a metric counts as, given the first ratio
    /// (`None`: it is left out).
    missing: &'a dyn Fn(&str, f64) -> Option<i64>,
    /// Whether a count whose direction disagrees with the new ratio keeps
    /// the current one (upstream checks this for utilization only).
    direction_guard: bool,
}

impl Calculator {
    /// The shared body of upstream's `GetResourceReplicas` and
    /// `calcPlainMetricReplicas`: the count and the reported figure.
    fn replicas<T: Copy>(
        &self,
        current: i32,
        cpu: bool,
        mut metrics: PodMetrics,
        pods: &[&Pod],
        now: Timestamp,
        rules: &Rules<'_, T>,
    ) -> Result<(i32, T), String> {
        let g = group_pods(pods, &metrics, cpu, self, now);
        for p in g.ignored.iter().chain(g.unready.iter()) {
            metrics.remove(p);
        }
        if metrics.is_empty() {
            return Err("did not receive metrics for targeted pods (pods might be unready)".into());
        }
        let (ratio, figure) = (rules.ratio)(&metrics)?;
        let rebalance_unready = !g.unready.is_empty() && ratio > 1.0;
        if !rebalance_unready && g.missing.is_empty() {
            if (1.0 - ratio).abs() <= self.tolerance {
                return Ok((current, figure));
            }
            return Ok((ceil(ratio * g.ready as f64), figure));
        }
        let filler = |value| PodMetric {
            timestamp: now,
            window: Duration::ZERO,
            value,
        };
        for p in &g.missing {
            if let Some(v) = (rules.missing)(p, ratio) {
                metrics.insert(p.clone(), filler(v));
            }
        }
        if rebalance_unready {
            for p in &g.unready {
                metrics.insert(p.clone(), filler(0));
            }
        }
        let (new_ratio, _) = (rules.ratio)(&metrics)?;
        if (1.0 - new_ratio).abs() <= self.tolerance
            || (ratio < 1.0 && new_ratio > 1.0)
            || (ratio > 1.0 && new_ratio < 1.0)
        {
            return Ok((current, figure));
        }
        let replicas = ceil(new_ratio * metrics.len() as f64);
        if rules.direction_guard
            && ((new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current))
        {
            return Ok((current, figure));
        }
        Ok((replicas, figure))
    }

    /// Replicas for a utilization target (percent of the pods' requests)
    /// of `resource` (upstream's `GetResourceReplicas`).
    pub fn resource_replicas(
        &self,
        current: i32,
        target: i32,
        resource: &str,
        container: Option<&str>,
        metrics: PodMetrics,
        pods: &[&Pod],
        now: Timestamp,
    ) -> Result<Utilization, String> {
        if pods.is_empty() {
            return Err("no pods returned by selector while calculating replica count".into());
        }
        let requests = requests(pods, resource, container)?;
        let ratio = |m: &PodMetrics| {
            utilization_ratio(m, &requests, target)
                .map(|(r, utilization, raw)| (r, (utilization, raw)))
        };
        // On a scale-down a missing pod uses its whole request, on a
        // scale-up nothing.
        let missing = |p: &str, ratio: f64| {
            if ratio < 1.0 {
                Some(requests.get(p).copied().unwrap_or(0))
            } else if ratio > 1.0 {
                Some(0)
            } else {
                None
            }
        };
        let rules = Rules {
            ratio: &ratio,
            missing: &missing,
            direction_guard: true,
        };
        let (replicas, (utilization, raw)) =
            self.replicas(current, resource == "cpu", metrics, pods, now, &rules)?;
        Ok(Utilization {
            replicas,
            utilization,
            raw,
        })
    }

    /// Replicas for an average value target in milli-units per pod
    /// (upstream's `GetRawResourceReplicas` and `calcPlainMetricReplicas`);
    /// the second figure is the current average.
    pub fn raw_replicas(
        &self,
        current: i32,
        target: i64,
        resource: &str,
        metrics: PodMetrics,
        pods: &[&Pod],
        now: Timestamp,
    ) -> Result<(i32, i64), String> {
        if pods.is_empty() {
            return Err("no pods returned by selector while calculating replica count".into());
        }
        if target <= 0 {
            return Err(format!("invalid target value {target} for {resource}"));
        }
        let ratio = |m: &PodMetrics| Ok(usage_ratio(m, target));
        let missing = |_: &str, ratio: f64| Some(if ratio < 1.0 { target } else { 0 });
        let rules = Rules {
            ratio: &ratio,
            missing: &missing,
            direction_guard: false,
        };
        self.replicas(current, resource == "cpu", metrics, pods, now, &rules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    fn rfc(secs: i64) -> String {
        at(secs).to_string()
    }

    /// A running pod requesting `cpu_m` millicores, started long ago and
    /// ready since `ready_since` (or unready).
    fn pod(name: &str, cpu_m: i64, ready: bool, started: i64) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": format!("{cpu_m}m")}}}]},
            "status": {"phase": "Running", "startTime": rfc(started),
                       "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"},
                                       "lastTransitionTime": rfc(started + 5)}]},
        }))
        .unwrap()
    }

    fn metrics(values: &[(&str, i64)]) -> PodMetrics {
        values
            .iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    PodMetric {
                        timestamp: at(NOW - 10),
                        window: Duration::from_secs(15),
                        value: *v,
                    },
                )
            })
            .collect()
    }

    fn calc() -> Calculator {
        Calculator::default()
    }

    #[test]
    fn utilization_over_target_scales_by_the_ratio() {
        let old = NOW - 3600;
        let pods = [
            pod("a", 100, true, old),
            pod("b", 100, true, old),
            pod("c", 100, true, old),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        // 90 % of the requests against a 50 % target: ceil(1.8 × 3) = 6.
        let r = calc()
            .resource_replicas(
                3,
                50,
                "cpu",
                None,
                metrics(&[("a", 90), ("b", 90), ("c", 90)]),
                &refs,
                at(NOW),
            )
            .unwrap();
        assert_eq!(
            r,
            Utilization {
                replicas: 6,
                utilization: 90,
                raw: 90
            }
        );
        // 52 % is within the 10 % tolerance of 50 %.
        let r = calc()
            .resource_replicas(
                3,
                50,
                "cpu",
                None,
                metrics(&[("a", 52), ("b", 52), ("c", 52)]),
                &refs,
                at(NOW),
            )
            .unwrap();
        assert_eq!(r.replicas, 3);
        // 10 % asks for one pod.
        let r = calc()
            .resource_replicas(
                3,
                50,
                "cpu",
                None,
                metrics(&[("a", 10), ("b", 10), ("c", 10)]),
                &refs,
                at(NOW),
            )
            .unwrap();
        assert_eq!(r.replicas, 1);
    }

    #[test]
    fn missing_and_unready_pods_dampen_the_change() {
        let old = NOW - 3600;
        // c has no metric: on a scale-up it counts as 0 %.
        let pods = [
            pod("a", 100, true, old),
            pod("b", 100, true, old),
            pod("c", 100, true, old),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        let r = calc()
            .resource_replicas(
                3,
                50,
                "cpu",
                None,
                metrics(&[("a", 100), ("b", 100)]),
                &refs,
                at(NOW),
            )
            .unwrap();
        // (100+100+0)/300 = 66 % → ratio 1.33 → ceil(1.33×3) = 4.
        assert_eq!(r.replicas, 4);
        assert_eq!(
            r.utilization, 100,
            "the reported figure is the measured pods'"
        );
        // On a scale-down it counts as using its whole request.
        let r = calc()
            .resource_replicas(
                3,
                50,
                "cpu",
                None,
                metrics(&[("a", 10), ("b", 10)]),
                &refs,
                at(NOW),
            )
            .unwrap();
        // (10+10+100)/300 = 40 % → 0.8 → ceil(0.8×3) = 3: unchanged.
        assert_eq!(r.replicas, 3);
        // An unready pod within the initialisation period is ignored on a
        // scale-down and counts as 0 % on a scale-up.
        let young = NOW - 60;
        let pods = [pod("a", 100, true, old), pod("b", 100, false, young)];
        let refs: Vec<&Pod> = pods.iter().collect();
        let r = calc()
            .resource_replicas(
                2,
                50,
                "cpu",
                None,
                metrics(&[("a", 200), ("b", 200)]),
                &refs,
                at(NOW),
            )
            .unwrap();
        // a alone: 200 % → 4; with b at 0: 100 % → ratio 2 → ceil(2×2) = 4.
        assert_eq!(r.replicas, 4);
    }

    #[test]
    fn errors_are_upstreams() {
        let old = NOW - 3600;
        let mut no_request = pod("a", 100, true, old);
        if let Some(s) = no_request.spec.as_mut() {
            s.containers[0].resources = None;
        }
        let e = calc()
            .resource_replicas(
                1,
                50,
                "cpu",
                None,
                metrics(&[("a", 10)]),
                &[&no_request],
                at(NOW),
            )
            .unwrap_err();
        assert_eq!(e, "missing request for cpu in container c of Pod a");
        let e = calc()
            .resource_replicas(
                1,
                50,
                "cpu",
                None,
                metrics(&[]),
                &[&pod("a", 100, true, old)],
                at(NOW),
            )
            .unwrap_err();
        assert_eq!(
            e,
            "did not receive metrics for targeted pods (pods might be unready)"
        );
        let e = calc()
            .resource_replicas(1, 50, "cpu", None, metrics(&[]), &[], at(NOW))
            .unwrap_err();
        assert_eq!(
            e,
            "no pods returned by selector while calculating replica count"
        );
    }

    #[test]
    fn average_value_targets() {
        let old = NOW - 3600;
        let pods = [pod("a", 100, true, old), pod("b", 100, true, old)];
        let refs: Vec<&Pod> = pods.iter().collect();
        // 300m average against 100m per pod: 3 × 2 = 6.
        let (n, avg) = calc()
            .raw_replicas(
                2,
                100,
                "cpu",
                metrics(&[("a", 300), ("b", 300)]),
                &refs,
                at(NOW),
            )
            .unwrap();
        assert_eq!((n, avg), (6, 300));
        assert_eq!(milli("1.5"), Some(1500));
        assert_eq!(milli("1n"), Some(1));
        assert_eq!(milli("64Mi"), Some(67_108_864_000));
    }
}
