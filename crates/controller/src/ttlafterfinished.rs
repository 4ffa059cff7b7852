//! The TTL-after-finished controller (upstream's
//! pkg/controller/ttlafterfinished/ttlafterfinished_controller.go): a
//! finished Job (`Complete` or `Failed` True) with
//! `spec.ttlSecondsAfterFinished` is deleted, in the background, that many
//! seconds after it finished. The decision is re-checked on a live GET and
//! the delete is guarded by the Job's uid and resourceVersion, as upstream
//! does, so a Job changed meanwhile (TTL raised) is not deleted early.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Preconditions};
use kube::runtime::controller::{Action, Controller};
use kube::ResourceExt;

use crate::descriptors::ControllerFuture;
use crate::{is_conflict, is_not_found, ControllerContext, Error, StartError};

pub const NAME: &str = "ttl-after-finished-controller";

struct Ctx {
    client: kube::Client,
}

/// Upstream's `startTTLAfterFinishedController`.
pub fn start_ttl_after_finished(ctx: &ControllerContext) -> Result<ControllerFuture, StartError> {
    let jobs = ctx.informers.informer::<Job>();
    let controller = Controller::for_shared_stream(jobs.subscribe(), jobs.store())
        .with_config(kube::runtime::controller::Config::default().concurrency(5));
    let c = Arc::new(Ctx {
        client: ctx.client.clone(),
    });
    Ok(Box::pin(crate::runner::drive(
        NAME,
        controller,
        ctx.metrics.clone(),
        c,
        reconcile,
    )))
}

/// When the Job finished (upstream's `jobFinishTime`: the transition time
/// of its `Complete` or `Failed` condition), if it did.
pub fn finish_time(job: &Job) -> Option<Timestamp> {
    job.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .map(|c| {
            c.last_transition_time
                .as_ref()
                .map(|t| t.0)
                .or_else(|| job.status.as_ref()?.completion_time.as_ref().map(|t| t.0))
                .unwrap_or_else(Timestamp::now)
        })
}

/// How long until `job` expires at `now`: `None` if it never does (no TTL,
/// not finished, being deleted), zero if it has.
pub fn time_left(job: &Job, now: Timestamp) -> Option<Duration> {
    if job.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    let finished = finish_time(job)?;
    let expire = finished.as_second().saturating_add(i64::from(ttl));
    Some(Duration::from_secs(
        u64::try_from(expire - now.as_second()).unwrap_or(0),
    ))
}

async fn reconcile(job: Arc<Job>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let Some(left) = time_left(&job, Timestamp::now()) else {
        return Ok(Action::await_change());
    };
    if !left.is_zero() {
        return Ok(Action::requeue(left));
    }
    let ns = job.namespace().unwrap_or_default();
    let name = job.name_any();
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    // The cache may be stale: decide on the live object.
    let live = match api.get_opt(&name).await {
        Ok(Some(j)) => j,
        Ok(None) => return Ok(Action::await_change()),
        Err(e) => return Err(Error::api("get", format!("job {ns}/{name}"))(e)),
    };
    match time_left(&live, Timestamp::now()) {
        None => return Ok(Action::await_change()),
        Some(l) if !l.is_zero() => return Ok(Action::requeue(l)),
        Some(_) => {}
    }
    let mut dp = DeleteParams::background();
    dp.preconditions = Some(Preconditions {
        uid: live.metadata.uid.clone(),
        resource_version: live.metadata.resource_version.clone(),
    });
    tracing::info!(job = %format!("{ns}/{name}"), "cleaning up a finished job past its TTL");
    match api.delete(&name, &dp).await {
        Ok(_) => Ok(Action::await_change()),
        Err(e) if is_not_found(&e) => Ok(Action::await_change()),
        Err(e) if is_conflict(&e) => {
            Err(Error::Pending(format!("job {ns}/{name} changed; recheck")))
        }
        Err(e) => Err(Error::api("delete", format!("job {ns}/{name}"))(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(ttl: Option<i32>, cond: Option<(&str, &str)>) -> Job {
        let conds: Vec<_> = cond
            .map(|(t, s)| json!({"type": t, "status": s, "lastTransitionTime": "2026-01-01T00:00:00Z"}))
            .into_iter()
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": "j", "namespace": "n"},
            "spec": {"ttlSecondsAfterFinished": ttl, "template": {}},
            "status": {"conditions": conds},
        }))
        .unwrap_or_default()
    }

    #[test]
    fn only_finished_jobs_with_a_ttl_expire() {
        let t0: Timestamp = "2026-01-01T00:00:00Z"
            .parse()
            .unwrap_or_else(|_| Timestamp::now());
        let at = |s: i64| {
            t0.checked_add(k8s_openapi::jiff::SignedDuration::from_secs(s))
                .unwrap_or(t0)
        };
        assert_eq!(
            time_left(&job(None, Some(("Complete", "True"))), at(100)),
            None
        );
        assert_eq!(time_left(&job(Some(10), None), at(100)), None);
        assert_eq!(
            time_left(&job(Some(10), Some(("Complete", "False"))), at(100)),
            None
        );
        assert_eq!(
            time_left(&job(Some(10), Some(("Complete", "True"))), at(4)),
            Some(Duration::from_secs(6))
        );
        assert_eq!(
            time_left(&job(Some(10), Some(("Failed", "True"))), at(11)),
            Some(Duration::ZERO)
        );
        assert_eq!(
            time_left(&job(Some(0), Some(("Complete", "True"))), at(0)),
            Some(Duration::ZERO)
        );
    }
}
