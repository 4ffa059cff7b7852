//! `GET /metrics/resource`: the node's, pods' and containers' CPU and
//! memory in the Prometheus text format (upstream's
//! `pkg/kubelet/metrics/collectors/resource_metrics.go`). Same metric
//! names, help texts, labels and explicit sample timestamps in
//! milliseconds (the time the figure was measured; none on
//! `container_start_time_seconds` and `resource_scrape_error`); the
//! deprecated `scrape_error` twin, hidden since 1.30, is left out; families sorted by
//! name and samples by labels, and numbers printed like Go's
//! `strconv.FormatFloat(v, 'g', -1, 64)`, as client_golang does.

use std::fmt::Write;

use super::summary::{Summary, Time};
use super::StatsError;

pub(super) struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    /// Labels, value and the sample's timestamp in ms (0: none written).
    pub(super) samples: Vec<(String, f64, i64)>,
}

impl Family {
    pub(super) fn new(name: &'static str, help: &'static str, kind: &'static str) -> Self {
        Family {
            name,
            help,
            kind,
            samples: vec![],
        }
    }
    pub(super) fn push(&mut self, labels: String, value: f64, at: Time) {
        self.samples.push((labels, value, at.millis()));
    }
}

/// Go's shortest `%g`: the exponent form when the decimal exponent is below
/// -4 or at least 6 (Go decides with precision 6 for the shortest form),
/// with at least two exponent digits.
pub fn go_float(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    format!("{v}")
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub(super) fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// The exposition text for a gathered summary, or only
/// `resource_scrape_error 1` when gathering failed (as upstream's collector).
pub fn render(summary: &Result<Summary, StatsError>) -> String {
    let mut scrape_error = Family::new(
        "resource_scrape_error",
        "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise",
        "gauge",
    );
    let mut families = vec![];
    match summary {
        Err(_) => scrape_error.samples.push((String::new(), 1.0, 0)),
        Ok(s) => {
            scrape_error.samples.push((String::new(), 0.0, 0));
            let mut node_cpu = Family::new(
                "node_cpu_usage_seconds_total",
                "[STABLE] Cumulative cpu time consumed by the node in core-seconds",
                "counter",
            );
            let mut node_mem = Family::new(
                "node_memory_working_set_bytes",
                "[STABLE] Current working set of the node in bytes",
                "gauge",
            );
            let mut c_cpu = Family::new(
                "container_cpu_usage_seconds_total",
                "[STABLE] Cumulative cpu time consumed by the container in core-seconds",
                "counter",
            );
            let mut c_mem = Family::new(
                "container_memory_working_set_bytes",
                "[STABLE] Current working set of the container in bytes",
                "gauge",
            );
            let mut c_start = Family::new(
                "container_start_time_seconds",
                "[STABLE] Start time of the container since unix epoch in seconds",
                "gauge",
            );
            let mut p_cpu = Family::new(
                "pod_cpu_usage_seconds_total",
                "[STABLE] Cumulative cpu time consumed by the pod in core-seconds",
                "counter",
            );
            let mut p_mem = Family::new(
                "pod_memory_working_set_bytes",
                "[STABLE] Current working set of the pod in bytes",
                "gauge",
            );
            if let Some(cpu) = &s.node.cpu {
                if let Some(u) = cpu.usage_core_nano_seconds {
                    node_cpu.push(String::new(), u as f64 / 1e9, cpu.time);
                }
            }
            if let Some(m) = &s.node.memory {
                if let Some(ws) = m.working_set_bytes {
                    node_mem.push(String::new(), ws as f64, m.time);
                }
            }
            for p in &s.pods {
                let (pod, ns) = (p.pod_ref.name.as_str(), p.pod_ref.namespace.as_str());
                for c in &p.containers {
                    let l = labels(&[("container", &c.name), ("namespace", ns), ("pod", pod)]);
                    // Upstream gives the start time no sample timestamp.
                    if c.start_time.0.timestamp() > 0 {
                        c_start
                            .samples
                            .push((l.clone(), c.start_time.seconds_f64(), 0));
                    }
                    if let Some(cpu) = &c.cpu {
                        if let Some(u) = cpu.usage_core_nano_seconds {
                            c_cpu.push(l.clone(), u as f64 / 1e9, cpu.time);
                        }
                    }
                    if let Some(m) = &c.memory {
                        if let Some(ws) = m.working_set_bytes {
                            c_mem.push(l.clone(), ws as f64, m.time);
                        }
                    }
                }
                let l = labels(&[("namespace", ns), ("pod", pod)]);
                if let Some(cpu) = &p.cpu {
                    if let Some(u) = cpu.usage_core_nano_seconds {
                        p_cpu.push(l.clone(), u as f64 / 1e9, cpu.time);
                    }
                }
                if let Some(m) = &p.memory {
                    if let Some(ws) = m.working_set_bytes {
                        p_mem.push(l, ws as f64, m.time);
                    }
                }
            }
            families.extend([node_cpu, node_mem, c_cpu, c_mem, c_start, p_cpu, p_mem]);
        }
    }
    families.push(scrape_error);
    exposition(families)
}

/// The text of `families`: sorted by name, samples by labels, empty
/// families left out.
pub(super) fn exposition(mut families: Vec<Family>) -> String {
    families.sort_by_key(|f| f.name);
    let mut out = String::new();
    for mut f in families {
        if f.samples.is_empty() {
            continue;
        }
        f.samples.sort_by(|a, b| a.0.cmp(&b.0));
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
        for (l, v, at) in &f.samples {
            if *at == 0 {
                let _ = writeln!(out, "{}{l} {}", f.name, go_float(*v));
            } else {
                let _ = writeln!(out, "{}{l} {} {at}", f.name, go_float(*v));
            }
        }
    }
    out
}
