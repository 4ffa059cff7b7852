//! The webhooks' metrics with upstream's names
//! (`apiserver/pkg/admission/metrics`): the duration of every call and its
//! count by answer, per webhook, operation and type (`admit` for mutating,
//! `validating`).

use std::time::Duration;

use component_base::metrics::{Counter, Family, Histogram};

use super::hook::operation_name;
use super::source::Kind;
use crate::admission::Operation;

type Labels = Vec<(&'static str, String)>;

/// Upstream's buckets for webhook admission latency.
const BUCKETS: [f64; 8] = [0.005, 0.025, 0.1, 0.5, 1.0, 2.5, 10.0, 25.0];

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// Registered once with the API server's `/metrics`.
#[derive(Clone)]
pub struct WebhookMetrics {
    pub duration: Family<Labels, Histogram, fn() -> Histogram>,
    pub requests: Family<Labels, Counter>,
    pub fail_open: Family<Labels, Counter>,
}

impl Default for WebhookMetrics {
    fn default() -> Self {
        Self {
            duration: Family::new_with_constructor(histogram),
            requests: Family::default(),
            fail_open: Family::default(),
        }
    }
}

fn kind_label(kind: Kind) -> String {
    match kind {
        Kind::Mutating => "admit".into(),
        Kind::Validating => "validating".into(),
    }
}

impl WebhookMetrics {
    /// Adds the families to `registry`.
    pub fn register(&self, registry: &component_base::metrics::Metrics) {
        registry.register(
            "apiserver_admission_webhook_admission_duration_seconds",
            "Admission webhook latency histogram in seconds, identified by name and broken out for each operation and API resource and type (validate or admit).",
            self.duration.clone(),
        );
        registry.register(
            "apiserver_admission_webhook_request",
            "Admission webhook request total, identified by name and broken out for each admission type (validating or mutating) and operation. Additional labels specify whether the request was rejected or not and an HTTP status code.",
            self.requests.clone(),
        );
        registry.register(
            "apiserver_admission_webhook_fail_open",
            "Admission webhook fail open count, identified by name and broken out for each admission type (validating or admit).",
            self.fail_open.clone(),
        );
    }

    /// One call of webhook `name`: how long, whether the write was refused
    /// because of it, and the HTTP code (0 when none came back).
    pub fn observe(
        &self,
        name: &str,
        kind: Kind,
        op: Operation,
        took: Duration,
        rejected: bool,
        code: u16,
    ) {
        let base = |extra: Vec<(&'static str, String)>| {
            let mut l = vec![
                ("name", name.to_string()),
                ("operation", operation_name(op).to_string()),
                ("type", kind_label(kind)),
            ];
            l.extend(extra);
            l
        };
        self.duration
            .get_or_create(&base(vec![("rejected", rejected.to_string())]))
            .observe(took.as_secs_f64());
        self.requests
            .get_or_create(&base(vec![
                ("code", code.to_string()),
                ("rejected", rejected.to_string()),
            ]))
            .inc();
    }

    /// A failed call passed over (`failurePolicy: Ignore`).
    pub fn failed_open(&self, name: &str, kind: Kind) {
        self.fail_open
            .get_or_create(&vec![
                ("name", name.to_string()),
                ("type", kind_label(kind)),
            ])
            .inc();
    }
}
