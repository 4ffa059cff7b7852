//! The kube-scheduler's library (upstream's `pkg/scheduler`): the
//! framework and its extension points ([`framework`]), the in-tree plugins
//! ([`plugins`], listed in [`plugins::in_tree_registry`]), the scheduling
//! queue ([`queue`]), the cache with assumed pods and the per-cycle
//! snapshot ([`cache`]), the cycle itself ([`schedule_one`],
//! [`scheduler`]), the watch handlers ([`eventhandlers`]), the
//! configuration file ([`config`]) and metrics ([`metrics`]).
//!
//! Invariants: the scheduler never writes pod specs (it binds through
//! `pods/binding` and patches status only); a plugin error or a bad object
//! never stops the loop; no lock is held across an `.await`.

pub mod cache;
pub mod config;
pub mod eventhandlers;
pub mod framework;
pub mod listers;
pub mod metrics;
pub mod plugins;
pub mod queue;
pub mod reporter;
pub mod schedule_one;
pub mod scheduler;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;

pub use config::{KubeSchedulerConfiguration, DEFAULT_SCHEDULER_NAME};
pub use scheduler::{Scheduler, SchedulerError};

/// How often unschedulable pods are checked for the 5-minute flush.
const FLUSH_PERIOD: Duration = Duration::from_secs(30);

/// Builds the scheduler with the in-tree plugins, binding and reporting
/// through `client`. Nothing runs yet (upstream builds the scheduler
/// before leader election, so a bad profile fails start-up at once).
pub fn build(
    client: kube::Client,
    config: &KubeSchedulerConfiguration,
    metrics: Arc<metrics::SchedulerMetrics>,
) -> Result<Arc<Scheduler>, SchedulerError> {
    let (listers, writers) = listers::Listers::new();
    let handle = framework::runtime::Handle {
        client: Some(client.clone()),
        listers: Some(listers),
    };
    let reporter = Arc::new(reporter::ApiReporter::new(
        client,
        DEFAULT_SCHEDULER_NAME,
        None,
    ));
    let sched = Scheduler::new(
        config,
        &plugins::in_tree_registry(),
        &handle,
        reporter,
        metrics,
    )?;
    sched.set_writers(writers);
    Ok(sched)
}

/// Starts the watchers, the queue flushes, the pending-pods gauge and the
/// scheduling loop on the current runtime.
pub fn spawn(sched: &Arc<Scheduler>, client: kube::Client) {
    if let Some(w) = sched.take_writers() {
        w.spawn(client.clone(), sched.queue.clone());
    }
    tokio::spawn(sched.clone().watch_nodes(Api::<Node>::all(client.clone())));
    tokio::spawn(sched.clone().watch_pods(Api::<Pod>::all(client)));
    let s = sched.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(FLUSH_PERIOD);
        loop {
            tick.tick().await;
            s.queue.flush_unschedulable_leftover();
        }
    });
    let s = sched.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            s.metrics.set_pending(s.queue.pending());
        }
    });
    tokio::spawn(sched.clone().run());
}

/// [`build`] and [`spawn`].
pub fn start(
    client: kube::Client,
    config: &KubeSchedulerConfiguration,
    metrics: Arc<metrics::SchedulerMetrics>,
) -> Result<Arc<Scheduler>, SchedulerError> {
    let sched = build(client.clone(), config, metrics)?;
    spawn(&sched, client);
    Ok(sched)
}
