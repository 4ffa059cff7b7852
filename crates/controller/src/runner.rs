//! Starting and driving the controllers (upstream's `StartControllers` in
//! cmd/kube-controller-manager/app/controllermanager.go, and the work
//! queue's rate limiter from client-go's util/workqueue).
//!
//! Each reconcile runs in a span naming the controller and the object; an
//! error requeues the object after 5 ms · 2^failures, capped at 1000 s
//! (upstream's `DefaultControllerRateLimiter` per-item backoff), and a
//! success forgets its failures. No error ends a loop.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use tracing::Instrument;

use crate::descriptors::ControllerDescriptor;
use crate::informers::Watched;
use crate::{ControllerContext, Error, StartError};

type Labels = Vec<(String, String)>;

/// The controllers' metrics, registered in the component's registry.
pub struct ControllerMetrics {
    reconciles: Family<Labels, Counter>,
    durations: Family<Labels, Histogram>,
}

impl ControllerMetrics {
    pub fn new(registry: &component_base::metrics::Metrics) -> Self {
        let m = Self::default();
        registry.register(
            "controller_reconcile",
            "Reconciliations per controller and result (success, error)",
            m.reconciles.clone(),
        );
        registry.register(
            "controller_reconcile_duration_seconds",
            "How long a reconciliation takes, per controller",
            m.durations.clone(),
        );
        m
    }

    fn observe(&self, controller: &str, ok: bool, took: Duration) {
        let result = if ok { "success" } else { "error" };
        self.reconciles
            .get_or_create(&vec![
                ("controller".into(), controller.into()),
                ("result".into(), result.into()),
            ])
            .inc();
        self.durations
            .get_or_create(&vec![("controller".into(), controller.into())])
            .observe(took.as_secs_f64());
    }
}

impl Default for ControllerMetrics {
    fn default() -> Self {
        Self {
            reconciles: Family::default(),
            durations: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 15))
            }),
        }
    }
}

/// Per-object failure counts: upstream's ItemExponentialFailureRateLimiter.
#[derive(Default)]
pub struct ErrorBackoff {
    failures: Mutex<HashMap<String, u32>>,
}

const BASE: Duration = Duration::from_millis(5);
const MAX: Duration = Duration::from_secs(1000);

impl ErrorBackoff {
    /// The delay before retrying `key` after one more failure.
    pub fn failed(&self, key: &str) -> Duration {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = f.entry(key.to_string()).or_insert(0);
        let delay = delay_for(*n);
        *n = n.saturating_add(1);
        delay
    }

    /// `key` succeeded: its next failure starts from the base delay again.
    pub fn forget(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

fn delay_for(failures: u32) -> Duration {
    let factor = 2u64.checked_pow(failures).unwrap_or(u64::MAX);
    BASE.checked_mul(u32::try_from(factor).unwrap_or(u32::MAX))
        .map_or(MAX, |d| d.min(MAX))
}

/// Drives one kube-rs [`Controller`] until it ends: every reconcile in a
/// span, with metrics, and errors requeued with per-object backoff.
pub(crate) async fn drive<K, C, F, Fut>(
    name: &'static str,
    controller: Controller<K>,
    metrics: Arc<ControllerMetrics>,
    ctx: Arc<C>,
    reconcile: F,
) where
    K: Watched,
    C: Send + Sync + 'static,
    F: Fn(Arc<K>, Arc<C>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    let backoff = Arc::new(ErrorBackoff::default());
    let reconcile = Arc::new(reconcile);
    let b = backoff.clone();
    let recon = move |obj: Arc<K>, ctx: Arc<C>| {
        let reconcile = reconcile.clone();
        let backoff = b.clone();
        let metrics = metrics.clone();
        let key = ObjectRef::from_obj(&*obj).to_string();
        let span = tracing::debug_span!("reconcile", controller = name, object = %key);
        async move {
            let start = Instant::now();
            let result = reconcile(obj, ctx).await;
            metrics.observe(name, result.is_ok(), start.elapsed());
            if result.is_ok() {
                backoff.forget(&key);
            }
            result
        }
        .instrument(span)
    };
    let policy = move |obj: Arc<K>, err: &Error, _: Arc<C>| {
        let key = ObjectRef::from_obj(&*obj).to_string();
        let delay = backoff.failed(&key);
        match err {
            Error::Pending(_) => {
                tracing::debug!(controller = name, object = %key, reason = %err, ?delay, "requeued")
            }
            _ => {
                tracing::warn!(controller = name, object = %key, error = %err, ?delay, "reconcile failed; retrying")
            }
        }
        Action::requeue(delay)
    };
    controller
        .run(recon, policy, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(controller = name, error = %e, "controller event");
            }
        })
        .await;
}

/// Builds every selected controller, starts the shared watches, waits for
/// their caches, then runs all controllers until they end (which they do
/// only when the process stops).
pub async fn run(
    ctx: ControllerContext,
    selected: Vec<ControllerDescriptor>,
) -> Result<(), StartError> {
    let mut loops = Vec::new();
    for c in &selected {
        match c.start {
            Some(start) => {
                let own = match (
                    &ctx.credentials,
                    crate::descriptors::service_account(c.name),
                ) {
                    (Some(creds), Some(sa)) => ControllerContext {
                        client: creds.client(sa).await.map_err(|e| StartError::Config {
                            controller: c.name,
                            message: e.to_string(),
                        })?,
                        ..ctx.clone()
                    },
                    _ => ctx.clone(),
                };
                loops.push(start(&own)?);
                tracing::info!(controller = c.name, "starting controller");
            }
            None => tracing::info!(
                controller = c.name,
                "controller not implemented yet; skipping"
            ),
        }
    }
    ctx.informers.start();
    ctx.informers.wait_for_sync().await;
    tracing::info!(
        controllers = loops.len(),
        "caches synced; controllers running"
    );
    futures::future::join_all(loops).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_5ms_to_1000s_and_forgets() {
        let b = ErrorBackoff::default();
        assert_eq!(b.failed("a"), Duration::from_millis(5));
        assert_eq!(b.failed("a"), Duration::from_millis(10));
        assert_eq!(b.failed("a"), Duration::from_millis(20));
        assert_eq!(b.failed("b"), Duration::from_millis(5));
        b.forget("a");
        assert_eq!(b.failed("a"), Duration::from_millis(5));
        assert_eq!(delay_for(40), MAX);
        assert_eq!(delay_for(200), MAX);
    }
}
