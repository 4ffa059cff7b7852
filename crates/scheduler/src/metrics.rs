//! The scheduler's Prometheus metrics under upstream's names
//! (`pkg/scheduler/metrics/metrics.go`): `scheduler_schedule_attempts_total`,
//! `scheduler_scheduling_attempt_duration_seconds`,
//! `scheduler_pending_pods{queue}`.

use std::sync::Arc;

use component_base::metrics::{Counter, Family, Histogram, Metrics};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::exponential_buckets;

use crate::queue::Pending;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    /// `scheduled`, `unschedulable` or `error`.
    pub result: String,
    pub profile: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// `active`, `backoff`, `unschedulable` or `gated`.
    pub queue: String,
}

/// The result label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    Scheduled,
    Unschedulable,
    Error,
}

impl AttemptResult {
    fn as_str(self) -> &'static str {
        match self {
            AttemptResult::Scheduled => "scheduled",
            AttemptResult::Unschedulable => "unschedulable",
            AttemptResult::Error => "error",
        }
    }
}

type HistogramFamily = Family<AttemptLabels, Histogram, fn() -> Histogram>;

#[derive(Clone)]
pub struct SchedulerMetrics {
    attempts: Family<AttemptLabels, Counter>,
    attempt_duration: HistogramFamily,
    pending: Family<QueueLabels, Gauge>,
}

fn latency_histogram() -> Histogram {
    // Upstream: ExponentialBuckets(0.001, 2, 15).
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Default for SchedulerMetrics {
    fn default() -> Self {
        SchedulerMetrics {
            attempts: Family::default(),
            attempt_duration: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            pending: Family::default(),
        }
    }
}

impl SchedulerMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Metrics) -> Arc<Self> {
        let m = SchedulerMetrics::default();
        registry.register(
            "scheduler_schedule_attempts",
            "Number of attempts to schedule pods, by the result. 'unschedulable' means a pod could not be scheduled, while 'error' means an internal scheduler problem.",
            m.attempts.clone(),
        );
        registry.register(
            "scheduler_scheduling_attempt_duration_seconds",
            "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
            m.attempt_duration.clone(),
        );
        registry.register(
            "scheduler_pending_pods",
            "Number of pending pods, by the queue type. 'active' means number of pods in activeQ; 'backoff' means number of pods in backoffQ; 'unschedulable' means number of pods in unschedulablePods that the scheduler attempted to schedule and failed; 'gated' is the number of unschedulable pods that the scheduler never attempted to schedule because they are gated.",
            m.pending.clone(),
        );
        Arc::new(m)
    }

    pub fn observe_attempt(&self, result: AttemptResult, profile: &str, seconds: f64) {
        let labels = AttemptLabels {
            result: result.as_str().into(),
            profile: profile.into(),
        };
        self.attempts.get_or_create(&labels).inc();
        self.attempt_duration
            .get_or_create(&labels)
            .observe(seconds);
    }

    pub fn set_pending(&self, p: Pending) {
        for (q, n) in [
            ("active", p.active),
            ("backoff", p.backoff),
            ("unschedulable", p.unschedulable),
            ("gated", p.gated),
        ] {
            self.pending
                .get_or_create(&QueueLabels { queue: q.into() })
                .set(n as i64);
        }
    }

    /// Attempts counted so far with this result (tests, benchmarks).
    pub fn attempts(&self, result: AttemptResult, profile: &str) -> u64 {
        self.attempts
            .get_or_create(&AttemptLabels {
                result: result.as_str().into(),
                profile: profile.into(),
            })
            .get()
    }
}
