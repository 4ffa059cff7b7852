//! `GET /metrics/probes` (upstream's `pkg/kubelet/prober/prober_manager.go`
//! `ProberResults` and `ProberDuration`): every probe run counted by
//! result (`prober_probe_total`, `successful`/`failed`/`unknown`) and the
//! duration of the ones that answered (`prober_probe_duration_seconds`,
//! Prometheus's default buckets). A pod's series go with it, as upstream's
//! workers delete theirs when they stop.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use super::resource_metrics::go_float;

/// Prometheus's `DefBuckets`.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Whom a probe is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProbeLabels {
    pub probe_type: &'static str,
    pub container: String,
    pub pod: String,
    pub namespace: String,
    pub pod_uid: String,
}

/// How a probe ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Unknown,
}

#[derive(Debug, Default, Clone)]
struct Series {
    successful: u64,
    failed: u64,
    unknown: u64,
    /// Cumulative counts per bucket of [`BUCKETS`].
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// The probe series of the node.
#[derive(Debug, Default)]
pub struct ProbeMetrics {
    series: Mutex<BTreeMap<ProbeLabels, Series>>,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl ProbeMetrics {
    /// One probe run; the duration counts unless it failed (upstream
    /// observes successful and unknown ones).
    pub fn observe(&self, labels: &ProbeLabels, outcome: Outcome, took: Duration) {
        let Ok(mut m) = self.series.lock() else {
            return;
        };
        let s = m.entry(labels.clone()).or_default();
        match outcome {
            Outcome::Success => s.successful += 1,
            Outcome::Failure => s.failed += 1,
            Outcome::Unknown => s.unknown += 1,
        }
        if outcome != Outcome::Failure {
            let secs = took.as_secs_f64();
            for (i, le) in BUCKETS.iter().enumerate() {
                if secs <= *le {
                    s.buckets[i] += 1;
                }
            }
            s.sum += secs;
            s.count += 1;
        }
    }

    /// Drops the series of the pod `uid`.
    pub fn forget_pod(&self, uid: &str) {
        if let Ok(mut m) = self.series.lock() {
            m.retain(|l, _| l.pod_uid != uid);
        }
    }

    /// The exposition text, families sorted by name and labels by name as
    /// Go's client writes them.
    pub fn render(&self) -> String {
        let series = self.series.lock().map(|m| m.clone()).unwrap_or_default();
        let mut out = String::new();
        // The duration histogram has no pod_uid: pods of one name merge.
        let mut durations: BTreeMap<(&str, &str, &str, &str), Series> = BTreeMap::new();
        for (l, s) in &series {
            if s.count == 0 {
                continue;
            }
            let d = durations
                .entry((&l.container, &l.namespace, &l.pod, l.probe_type))
                .or_default();
            for (a, b) in d.buckets.iter_mut().zip(s.buckets) {
                *a += b;
            }
            d.sum += s.sum;
            d.count += s.count;
        }
        let _ = writeln!(
            out,
            "# HELP prober_probe_duration_seconds [ALPHA] Duration in seconds for a probe response."
        );
        let _ = writeln!(out, "# TYPE prober_probe_duration_seconds histogram");
        for ((container, namespace, pod, probe_type), s) in &durations {
            let labels = format!(
                "container=\"{}\",namespace=\"{}\",pod=\"{}\",probe_type=\"{probe_type}\"",
                escape(container),
                escape(namespace),
                escape(pod)
            );
            for (le, n) in BUCKETS.iter().zip(s.buckets) {
                let _ = writeln!(
                    out,
                    "prober_probe_duration_seconds_bucket{{{labels},le=\"{}\"}} {n}",
                    go_float(*le)
                );
            }
            let _ = writeln!(
                out,
                "prober_probe_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "prober_probe_duration_seconds_sum{{{labels}}} {}",
                go_float(s.sum)
            );
            let _ = writeln!(
                out,
                "prober_probe_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP prober_probe_total [BETA] Cumulative number of a liveness, readiness or startup probe for a container by result."
        );
        let _ = writeln!(out, "# TYPE prober_probe_total counter");
        let mut rows: Vec<(String, u64)> = Vec::new();
        for (l, s) in &series {
            for (result, n) in [
                ("failed", s.failed),
                ("successful", s.successful),
                ("unknown", s.unknown),
            ] {
                if n == 0 {
                    continue;
                }
                rows.push((
                    format!(
                        "container=\"{}\",namespace=\"{}\",pod=\"{}\",pod_uid=\"{}\",probe_type=\"{}\",result=\"{result}\"",
                        escape(&l.container),
                        escape(&l.namespace),
                        escape(&l.pod),
                        escape(&l.pod_uid),
                        l.probe_type
                    ),
                    n,
                ));
            }
        }
        rows.sort();
        for (labels, n) in rows {
            let _ = writeln!(out, "prober_probe_total{{{labels}}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP process_start_time_seconds [ALPHA] Start time of the process since unix epoch in seconds."
        );
        let _ = writeln!(out, "# TYPE process_start_time_seconds gauge");
        if let Some(t) = process_start_time() {
            let _ = writeln!(out, "process_start_time_seconds {}", go_float(t));
        }
        out
    }
}

/// When this process started, in seconds since the epoch (`/proc/self/stat`
/// start time after the boot time of `/proc/stat`).
fn process_start_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    // starttime is field 22 of stat, the 20th after the command name.
    let ticks: f64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let boot: f64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(boot + ticks / 100.0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn labels(kind: &'static str, uid: &str) -> ProbeLabels {
        ProbeLabels {
            probe_type: kind,
            container: "app".into(),
            pod: "web".into(),
            namespace: "default".into(),
            pod_uid: uid.into(),
        }
    }

    #[test]
    fn results_are_counted_and_answers_timed() {
        let m = ProbeMetrics::default();
        let r = labels("Readiness", "u1");
        // 1/128 s and 1/32 s: sums exact in binary.
        m.observe(&r, Outcome::Success, Duration::from_secs_f64(0.0078125));
        m.observe(&r, Outcome::Success, Duration::from_secs_f64(0.03125));
        m.observe(&r, Outcome::Failure, Duration::from_secs(1));
        m.observe(
            &labels("Liveness", "u1"),
            Outcome::Unknown,
            Duration::from_millis(7),
        );
        let text = m.render();
        let l = "container=\"app\",namespace=\"default\",pod=\"web\"";
        for line in [
            format!("prober_probe_total{{{l},pod_uid=\"u1\",probe_type=\"Readiness\",result=\"successful\"}} 2"),
            format!("prober_probe_total{{{l},pod_uid=\"u1\",probe_type=\"Readiness\",result=\"failed\"}} 1"),
            format!("prober_probe_total{{{l},pod_uid=\"u1\",probe_type=\"Liveness\",result=\"unknown\"}} 1"),
            format!("prober_probe_duration_seconds_bucket{{{l},probe_type=\"Readiness\",le=\"0.005\"}} 0"),
            format!("prober_probe_duration_seconds_bucket{{{l},probe_type=\"Readiness\",le=\"0.01\"}} 1"),
            format!("prober_probe_duration_seconds_bucket{{{l},probe_type=\"Readiness\",le=\"0.05\"}} 2"),
            format!("prober_probe_duration_seconds_bucket{{{l},probe_type=\"Readiness\",le=\"+Inf\"}} 2"),
            format!("prober_probe_duration_seconds_sum{{{l},probe_type=\"Readiness\"}} 0.0390625"),
            format!("prober_probe_duration_seconds_count{{{l},probe_type=\"Readiness\"}} 2"),
            format!("prober_probe_duration_seconds_count{{{l},probe_type=\"Liveness\"}} 1"),
        ] {
            assert!(text.contains(&format!("{line}\n")), "{line} in\n{text}");
        }
        assert!(text.contains("# TYPE prober_probe_total counter\n"));
        assert!(text.contains("process_start_time_seconds 1"), "{text}");
        m.forget_pod("u1");
        assert!(!m.render().contains("web"));
    }
}
