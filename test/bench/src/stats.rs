//! Latency summaries (nearest-rank percentiles) and the one-line JSON results
//! that hack/bench-apiserver.sh reads with jq.

use std::time::Duration;

use serde_json::{json, Map, Value};

/// Sorted samples of one measurement.
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Self(samples)
    }

    /// The nearest-rank percentile `p` (0..=100) in milliseconds; 0 when empty.
    pub fn pct_ms(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        let i = rank.clamp(1, self.0.len()) - 1;
        ms(self.0[i])
    }

    pub fn min_ms(&self) -> f64 {
        self.0.first().copied().map(ms).unwrap_or(0.0)
    }

    pub fn max_ms(&self) -> f64 {
        self.0.last().copied().map(ms).unwrap_or(0.0)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `{prefix}p50_ms`, `p99_ms`, `max_ms`, … added to `out`.
    pub fn add_to(&self, out: &mut Map<String, Value>) {
        out.insert("min_ms".into(), json!(round3(self.min_ms())));
        out.insert("p50_ms".into(), json!(round3(self.pct_ms(50.0))));
        out.insert("p90_ms".into(), json!(round3(self.pct_ms(90.0))));
        out.insert("p99_ms".into(), json!(round3(self.pct_ms(99.0))));
        out.insert("max_ms".into(), json!(round3(self.max_ms())));
        out.insert("samples".into(), json!(self.len()));
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Prints one result object as a single JSON line on stdout, with the CPU
/// time this process used (so that client overhead can be told apart).
pub fn emit(mut out: Map<String, Value>) {
    if let Some(secs) = self_cpu_secs() {
        out.insert("client_cpu_secs".into(), json!(round3(secs)));
    }
    println!("{}", Value::Object(out));
}

/// User + system CPU seconds of this process, from /proc/self/stat
/// (fields 14 and 15, in clock ticks of 1/100 s on Linux).
fn self_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command name, field 3 is index 0: utime is 14, stime 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
