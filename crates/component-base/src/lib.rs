//! What every component shares (upstream's `k8s.io/component-base`): the
//! logging set-up with klog's `-v` levels and a Prometheus registry.
//!
//! Invariant: only this crate installs the `tracing` subscriber.

pub mod logs;
pub mod metrics;
