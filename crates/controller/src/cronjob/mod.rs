//! The CronJob controller (upstream's pkg/controller/cronjob:
//! cronjob_controllerv2.go, utils.go): at each time a CronJob's schedule
//! names (in its `timeZone`), create a Job `<cronjob>-<minutes since the
//! epoch>` from its `jobTemplate`, honouring `concurrencyPolicy`,
//! `startingDeadlineSeconds` and `suspend`; keep `status.active`,
//! `lastScheduleTime` and `lastSuccessfulTime`; delete finished Jobs beyond
//! the history limits.
//!
//! Time comes from the [`Clock`](crate::clock::Clock) in the controller
//! configuration, so tests use a fake one; each CronJob is requeued for
//! its next activation (and every CronJob when a fake clock is moved).

mod schedule;
mod sync;

use std::sync::Arc;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::Store;
use kube::ResourceExt;

pub use schedule::{ParseError, Schedule};

use crate::clock::Clock;
use crate::descriptors::ControllerFuture;
use crate::events::EventRecorder;
use crate::{ControllerContext, Error, StartError};

pub const NAME: &str = "cronjob-controller";
/// Upstream's `batch.kubernetes.io/cronjob-scheduled-timestamp`.
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

pub(crate) struct Ctx {
    pub client: kube::Client,
    pub jobs: Store<Job>,
    pub clock: Arc<dyn Clock>,
    pub recorder: EventRecorder,
}

/// Upstream's `startCronJobController`.
pub fn start(ctx: &ControllerContext) -> Result<ControllerFuture, StartError> {
    let cronjobs = ctx.informers.informer::<CronJob>();
    let jobs = ctx.informers.informer::<Job>();
    let clock = ctx.config.clock.clone();
    let mut controller = Controller::for_shared_stream(cronjobs.subscribe(), cronjobs.store())
        .owns_shared_stream(jobs.subscribe())
        .with_config(kube::runtime::controller::Config::default().concurrency(5));
    if let Some(steps) = clock.steps() {
        controller = controller.reconcile_all_on(steps);
    }
    let c = Arc::new(Ctx {
        client: ctx.client.clone(),
        jobs: jobs.store(),
        clock,
        recorder: EventRecorder::new(ctx.client.clone(), NAME),
    });
    Ok(Box::pin(crate::runner::drive(
        NAME,
        controller,
        ctx.metrics.clone(),
        c,
        reconcile,
    )))
}

async fn reconcile(cj: Arc<CronJob>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if cj.metadata.namespace.is_none() || cj.metadata.uid.is_none() || cj.spec.is_none() {
        tracing::warn!(name = %cj.name_any(), "cronjob without namespace, uid or spec; skipped");
        return Ok(Action::await_change());
    }
    sync::sync(&ctx, &cj).await
}
