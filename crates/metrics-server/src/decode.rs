//! Reading a kubelet's `GET /metrics/resource` answer (upstream
//! metrics-server's `scraper/client/resource/decode.go`): the node's and
//! every container's cumulative CPU time and working set, with the times
//! the kubelet measured them (sample timestamps in ms; a sample without one
//! takes the scrape's time), and each container's start time.
//!
//! Points that miss a figure are dropped the way upstream drops them: the
//! node's when its time, CPU or memory is zero; a whole pod's when one of
//! its containers has a zero CPU or memory figure.

use std::collections::HashMap;

/// A namespace and a pod name.
pub type PodRef = (String, String);

/// One measurement of a node or a container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Point {
    /// When the node or container started, Unix nanoseconds (0: unknown).
    pub start_ns: i64,
    /// When the figures were measured, Unix nanoseconds.
    pub timestamp_ns: i64,
    /// Cumulative CPU time since start, in core-nanoseconds.
    pub cpu_ns: u64,
    /// Working set in bytes.
    pub memory: u64,
}

/// Everything one scrape (or a whole round of them) measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub nodes: HashMap<String, Point>,
    /// Per pod, per container name.
    pub pods: HashMap<PodRef, HashMap<String, Point>>,
}

impl Batch {
    /// Adds another node's batch to this one.
    pub fn merge(&mut self, other: Batch) {
        self.nodes.extend(other.nodes);
        self.pods.extend(other.pods);
    }
}

/// Why an answer could not be read (a malformed line, as upstream's
/// Prometheus parser refuses the whole text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed parsing metrics: line {line}: {reason}")]
pub struct DecodeError {
    pub line: usize,
    pub reason: String,
}

/// One sample line: name, labels, value, timestamp in ms.
struct Sample<'a> {
    name: &'a str,
    labels: Vec<(&'a str, String)>,
    value: f64,
    timestamp_ms: Option<i64>,
}

impl Sample<'_> {
    fn label(&self, key: &str) -> &str {
        self.labels
            .iter()
            .find(|(k, _)| *k == key)
            .map_or("", |(_, v)| v.as_str())
    }
}

fn parse_labels(text: &str) -> Result<(Vec<(&str, String)>, &str), String> {
    let mut labels = vec![];
    let mut rest = text.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = rest.find('=').ok_or("label without '='")?;
        let key = rest[..eq].trim();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("invalid label name {key:?}"));
        }
        rest = rest[eq + 1..]
            .trim_start()
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    _ => return Err("invalid escape in label value".into()),
                },
                Some((_, c)) => value.push(c),
            }
        };
        labels.push((key, value));
        rest = rest[end + 1..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
}

fn parse_line(line: &str) -> Result<Sample<'_>, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("sample without a value")?;
    let name = &line[..name_end];
    if name.is_empty() {
        return Err("sample without a name".into());
    }
    let (labels, rest) = match line[name_end..].strip_prefix('{') {
        Some(after) => parse_labels(after)?,
        None => (vec![], &line[name_end..]),
    };
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or("sample without a value")?;
    let value: f64 = value
        .parse()
        .map_err(|_| format!("invalid value {value:?}"))?;
    let timestamp_ms = match fields.next() {
        None => None,
        Some(t) => Some(t.parse().map_err(|_| format!("invalid timestamp {t:?}"))?),
    };
    if fields.next().is_some() {
        return Err("trailing text after the timestamp".into());
    }
    Ok(Sample {
        name,
        labels,
        value,
        timestamp_ms,
    })
}

/// CPU seconds as core-nanoseconds, bytes as a whole number; negative or
/// non-finite figures count as zero (and so are dropped).
fn as_u64(v: f64, scale: f64) -> u64 {
    let v = v * scale;
    if v.is_finite() && v > 0.0 {
        v as u64
    } else {
        0
    }
}

fn container_point<'a>(
    pods: &'a mut HashMap<PodRef, HashMap<String, Point>>,
    s: &Sample<'_>,
) -> &'a mut Point {
    let pod = (s.label("namespace").to_string(), s.label("pod").to_string());
    pods.entry(pod)
        .or_default()
        .entry(s.label("container").to_string())
        .or_default()
}

/// Reads `text` scraped from `node` at `scraped_ns` (Unix nanoseconds).
pub fn decode(text: &str, scraped_ns: i64, node: &str) -> Result<Batch, DecodeError> {
    let mut node_point = Point::default();
    let mut pods: HashMap<PodRef, HashMap<String, Point>> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let s = parse_line(line).map_err(|reason| DecodeError {
            line: i + 1,
            reason,
        })?;
        let at = s
            .timestamp_ms
            .map_or(scraped_ns, |ms| ms.saturating_mul(1_000_000));
        match s.name {
            "node_cpu_usage_seconds_total" => {
                node_point.cpu_ns = as_u64(s.value, 1e9);
                node_point.timestamp_ns = at;
            }
            "node_memory_working_set_bytes" => {
                node_point.memory = as_u64(s.value, 1.0);
                node_point.timestamp_ns = at;
            }
            "container_cpu_usage_seconds_total" => {
                let p = container_point(&mut pods, &s);
                p.cpu_ns = as_u64(s.value, 1e9);
                p.timestamp_ns = at;
            }
            "container_memory_working_set_bytes" => {
                let p = container_point(&mut pods, &s);
                p.memory = as_u64(s.value, 1.0);
                p.timestamp_ns = at;
            }
            "container_start_time_seconds" => {
                let p = container_point(&mut pods, &s);
                p.start_ns = (s.value * 1e9) as i64;
            }
            _ => {}
        }
    }
    let mut batch = Batch::default();
    if node_point.timestamp_ns == 0 || node_point.cpu_ns == 0 || node_point.memory == 0 {
        tracing::debug!(node, "incomplete node metrics");
    } else {
        batch.nodes.insert(node.to_string(), node_point);
    }
    for (pod, containers) in pods {
        // A container seen only through its start time has no figures and
        // is left out; one with a zero figure drops its whole pod.
        let measured: HashMap<String, Point> = containers
            .into_iter()
            .filter(|(_, p)| p.cpu_ns != 0 || p.memory != 0 || p.timestamp_ns != 0)
            .collect();
        if measured.values().any(|p| p.cpu_ns == 0 || p.memory == 0) {
            tracing::debug!(namespace = %pod.0, pod = %pod.1, "incomplete pod metrics");
            continue;
        }
        if !measured.is_empty() {
            batch.pods.insert(pod, measured);
        }
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBELET: &str = r#"# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="app",namespace="default",pod="web-1"} 1.5 1700000000123
container_cpu_usage_seconds_total{container="side",namespace="default",pod="web-1"} 0.25 1700000000123
container_cpu_usage_seconds_total{container="c",namespace="kube-system",pod="dns"} 3 1700000000100
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="app",namespace="default",pod="web-1"} 1.2288e+07 1700000000123
container_memory_working_set_bytes{container="side",namespace="default",pod="web-1"} 4096 1700000000123
container_memory_working_set_bytes{container="c",namespace="kube-system",pod="dns"} 0 1700000000100
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container="app",namespace="default",pod="web-1"} 1.6999999e+09
container_start_time_seconds{container="gone",namespace="default",pod="web-1"} 1.6999999e+09
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 120.5 1700000000050
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes 2.147483648e+09 1700000000050
# TYPE pod_cpu_usage_seconds_total counter
pod_cpu_usage_seconds_total{namespace="default",pod="web-1"} 1.75 1700000000123
resource_scrape_error 0
"#;

    #[test]
    fn reads_node_and_container_points_like_upstream() {
        let b = decode(KUBELET, 5, "n1").unwrap();
        assert_eq!(
            b.nodes["n1"],
            Point {
                start_ns: 0,
                timestamp_ns: 1_700_000_000_050_000_000,
                cpu_ns: 120_500_000_000,
                memory: 2_147_483_648,
            }
        );
        let web = &b.pods[&("default".to_string(), "web-1".to_string())];
        assert_eq!(web.len(), 2, "the start-time-only container is left out");
        assert_eq!(web["app"].cpu_ns, 1_500_000_000);
        assert_eq!(web["app"].memory, 12_288_000);
        assert_eq!(web["app"].start_ns, 1_699_999_900_000_000_000);
        assert_eq!(web["app"].timestamp_ns, 1_700_000_000_123_000_000);
        assert_eq!(web["side"].cpu_ns, 250_000_000);
        assert!(
            !b.pods
                .contains_key(&("kube-system".to_string(), "dns".to_string())),
            "a container with zero memory drops its pod"
        );
    }

    #[test]
    fn samples_without_timestamps_take_the_scrape_time_and_escapes_are_read() {
        let text = "node_cpu_usage_seconds_total 2\nnode_memory_working_set_bytes 10\n\
container_cpu_usage_seconds_total{container=\"a\\\"b\",namespace=\"n\",pod=\"p\"} 1\n\
container_memory_working_set_bytes{namespace=\"n\", pod=\"p\",container=\"a\\\"b\",} 7\n";
        let b = decode(text, 42, "n1").unwrap();
        assert_eq!(b.nodes["n1"].timestamp_ns, 42);
        let p = &b.pods[&("n".to_string(), "p".to_string())];
        assert_eq!(p["a\"b"].memory, 7);
        assert_eq!(p["a\"b"].timestamp_ns, 42);
    }

    #[test]
    fn an_incomplete_node_is_dropped_and_malformed_text_refused() {
        let b = decode("node_cpu_usage_seconds_total 2 1000\n", 1, "n1").unwrap();
        assert!(b.nodes.is_empty());
        for bad in [
            "node_cpu_usage_seconds_total\n",
            "node_cpu_usage_seconds_total two\n",
            "x{a=\"1\" 3\n",
            "x{a=1} 3\n",
            "x 1 2 3\n",
        ] {
            let e = decode(bad, 1, "n1").unwrap_err();
            assert_eq!(e.line, 1, "{bad}");
        }
    }
}
