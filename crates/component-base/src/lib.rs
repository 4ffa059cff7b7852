//! What every component shares (upstream's `k8s.io/component-base` and the
//! bits of `k8s.io/apiserver` each daemon uses): the logging set-up with
//! klog's `-v` levels, a Prometheus registry, named health checks, the
//! secure port serving them, the x509 and front-proxy request
//! authenticators servers share, and the service-account key files the API
//! server and the token controller read.
//!
//! Invariant: only this crate installs the `tracing` subscriber.

pub mod authn;
pub mod cli;
pub mod healthz;
pub mod logs;
pub mod metrics;
pub mod proxy;
pub mod serviceaccount_keys;
pub mod serving;
