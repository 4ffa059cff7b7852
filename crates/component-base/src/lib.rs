//! What every component shares (upstream's `k8s.io/component-base` and the
//! bits of `k8s.io/apiserver` each daemon uses): the logging set-up with
//! klog's `-v` levels, a Prometheus registry, named health checks and the
//! secure port serving them.
//!
//! Invariant: only this crate installs the `tracing` subscriber.

pub mod cli;
pub mod healthz;
pub mod logs;
pub mod metrics;
pub mod proxy;
pub mod serving;
