//! One sync of a CronJob (upstream's `syncCronJob`, `cleanupFinishedJobs`,
//! `mostRecentScheduleTime`, `nextScheduleTime`, `getJobFromTemplate2`).
//! The decisions are pure functions of the CronJob, its Jobs and "now",
//! tested below; [`sync`] performs them.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::{Ctx, Schedule, SCHEDULED_TIMESTAMP};
use crate::{is_already_exists, is_not_found, Error};

/// Upstream's `nextScheduleDelta`: requeue a little after the activation.
const NEXT_DELTA: Duration = Duration::from_millis(100);
/// More missed start times than this is reported (upstream's 100).
const TOO_MANY_MISSED: i64 = 100;

/// Upstream's `getJobName`: `<cronjob>-<scheduled time in minutes since the epoch>`.
pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

/// The scheduled time as Go's RFC 3339 in the CronJob's zone (`Z` for UTC).
pub fn scheduled_annotation(scheduled: Timestamp, tz: &TimeZone) -> String {
    let z = scheduled.to_zoned(tz.clone());
    if z.offset().seconds() == 0 {
        z.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

/// What `mostRecentScheduleTime` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missed {
    /// The latest activation not after now, if any since the earliest time.
    pub most_recent: Option<Timestamp>,
    /// Upstream's estimate of how many activations were missed.
    pub count: i64,
}

/// Upstream's `mostRecentScheduleTime`: activations after `earliest`
/// (lastScheduleTime or creation, moved up to now − startingDeadlineSeconds
/// when given) up to `now`.
pub fn most_recent(sched: &Schedule, tz: &TimeZone, earliest: Timestamp, now: Timestamp) -> Missed {
    let none = Missed {
        most_recent: None,
        count: 0,
    };
    let Some(t1) = sched.next(earliest, tz) else {
        return none;
    };
    if now < t1 {
        return none;
    }
    let Some(t2) = sched.next(t1, tz).filter(|t2| *t2 <= now) else {
        return Missed {
            most_recent: Some(t1),
            count: 1,
        };
    };
    let interval = t2.duration_since(t1).as_secs().max(1);
    let elapsed = now.duration_since(t1).as_secs();
    let count = elapsed / interval + 1;
    // Jump close to now for long gaps (as upstream) instead of stepping
    // through every activation; short gaps are walked exactly.
    let mut t = if count > 1000 {
        t1.checked_add(SignedDuration::from_secs((count - 2) * interval))
            .unwrap_or(t1)
    } else {
        t1
    };
    let mut latest = t1;
    if t <= now {
        latest = t.max(latest);
    }
    while let Some(n) = sched.next(t, tz).filter(|n| *n <= now) {
        latest = n;
        t = n;
    }
    Missed {
        most_recent: Some(latest),
        count,
    }
}

/// What to do at this sync, once the schedule is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing is due.
    Wait,
    /// The most recent activation is past `startingDeadlineSeconds`.
    TooLate(Timestamp),
    /// The Job for this activation exists or was recorded already.
    AlreadyScheduled(Timestamp),
    /// `Forbid` and a Job is still active.
    Forbidden(Timestamp),
    /// Start the Job for this time (after deleting the active ones, for `Replace`).
    Run { scheduled: Timestamp, replace: bool },
}

/// Upstream's `syncCronJob` decision once status.active is current.
pub fn decide(cj: &CronJob, sched: &Schedule, tz: &TimeZone, now: Timestamp) -> (Decision, i64) {
    let spec = cj.spec.as_ref();
    let deadline = spec.and_then(|s| s.starting_deadline_seconds);
    let status = cj.status.as_ref();
    let last = status
        .and_then(|s| s.last_schedule_time.as_ref())
        .map(|t| t.0);
    let mut earliest = last
        .or_else(|| cj.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .unwrap_or(now);
    if let Some(d) = deadline {
        if let Ok(sd) = now.checked_sub(SignedDuration::from_secs(d)) {
            earliest = earliest.max(sd);
        }
    }
    let missed = most_recent(sched, tz, earliest, now);
    let Some(scheduled) = missed.most_recent else {
        return (Decision::Wait, 0);
    };
    if let Some(d) = deadline {
        if scheduled
            .checked_add(SignedDuration::from_secs(d))
            .is_ok_and(|t| t < now)
        {
            return (Decision::TooLate(scheduled), missed.count);
        }
    }
    let name = job_name(&cj.name_any(), scheduled);
    let active: &[ObjectReference] = status.and_then(|s| s.active.as_deref()).unwrap_or(&[]);
    if active
        .iter()
        .any(|a| a.name.as_deref() == Some(name.as_str()))
        || last == Some(scheduled)
    {
        return (Decision::AlreadyScheduled(scheduled), missed.count);
    }
    let policy = spec.and_then(|s| s.concurrency_policy.as_deref());
    if policy == Some("Forbid") && !active.is_empty() {
        return (Decision::Forbidden(scheduled), missed.count);
    }
    (
        Decision::Run {
            scheduled,
            replace: policy == Some("Replace"),
        },
        missed.count,
    )
}

/// Upstream's `IsJobFinished`: the condition type, if Complete or Failed.
pub fn finished(job: &Job) -> Option<&str> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .map(|c| c.type_.as_str())
}

fn start_time(j: &Job) -> Option<Timestamp> {
    j.status.as_ref()?.start_time.as_ref().map(|t| t.0)
}

/// Upstream's `cleanupFinishedJobs`: the names of finished Jobs beyond the
/// history limits, oldest first (by start time, unstarted last, then name).
pub fn history_to_delete(
    jobs: &[&Job],
    successful_limit: Option<i32>,
    failed_limit: Option<i32>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (kind, limit) in [("Complete", successful_limit), ("Failed", failed_limit)] {
        let Some(limit) = limit else { continue };
        let mut done: Vec<&Job> = jobs
            .iter()
            .copied()
            .filter(|j| finished(j) == Some(kind))
            .collect();
        done.sort_by(|a, b| {
            let key = |j: &Job| (start_time(j).is_none(), start_time(j), j.name_any());
            key(a).cmp(&key(b))
        });
        let excess = done
            .len()
            .saturating_sub(usize::try_from(limit).unwrap_or(0));
        out.extend(done.iter().take(excess).map(|j| j.name_any()));
    }
    out
}

fn job_ref(j: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: j.metadata.name.clone(),
        namespace: j.metadata.namespace.clone(),
        uid: j.metadata.uid.clone(),
        resource_version: j.metadata.resource_version.clone(),
        field_path: None,
    }
}

/// Upstream's `getJobFromTemplate2`.
pub fn job_from_template(cj: &CronJob, scheduled: Timestamp, tz: &TimeZone) -> Option<Job> {
    let spec = cj.spec.as_ref()?;
    let tm = spec.job_template.metadata.clone().unwrap_or_default();
    let mut annotations: BTreeMap<String, String> = tm.annotations.unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP.into(),
        scheduled_annotation(scheduled, tz),
    );
    let name = cj.metadata.name.clone()?;
    Some(Job {
        metadata: ObjectMeta {
            name: Some(job_name(&name, scheduled)),
            namespace: cj.metadata.namespace.clone(),
            labels: tm.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![OwnerReference {
                api_version: "batch/v1".into(),
                kind: "CronJob".into(),
                name,
                uid: cj.metadata.uid.clone()?,
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        spec: spec.job_template.spec.clone(),
        status: None,
    })
}

fn is_controlled_by(j: &Job, uid: &str) -> bool {
    j.owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && o.uid == uid)
}

/// Requeue for the first activation after now.
fn requeue_next(sched: &Schedule, tz: &TimeZone, now: Timestamp) -> Action {
    match sched.next(now, tz) {
        Some(t) => {
            let wait = t.duration_since(now).unsigned_abs();
            Action::requeue(wait + NEXT_DELTA)
        }
        None => Action::await_change(),
    }
}

fn status_json(s: &CronJobStatus) -> serde_json::Value {
    json!({
        "active": s.active.as_ref().filter(|a| !a.is_empty()),
        "lastScheduleTime": s.last_schedule_time,
        "lastSuccessfulTime": s.last_successful_time,
    })
}

pub(super) async fn sync(ctx: &Ctx, cj: &CronJob) -> Result<Action, Error> {
    let ns = cj.namespace().unwrap_or_default();
    let name = cj.name_any();
    let uid = cj.metadata.uid.clone().unwrap_or_default();
    let reference = cj.object_ref(&());
    let before = cj.status.clone().unwrap_or_default();
    let mut cj = cj.clone();
    let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let all = ctx.jobs.state();
    let jobs: Vec<&Job> = all
        .iter()
        .map(|j| &**j)
        .filter(|j| {
            j.metadata.namespace.as_deref() == Some(ns.as_str()) && is_controlled_by(j, &uid)
        })
        .collect();
    let now = ctx.clock.now();

    // status.active and lastSuccessfulTime from the Jobs.
    let status = cj.status.get_or_insert_with(Default::default);
    let mut active = status.active.take().unwrap_or_default();
    for j in &jobs {
        let juid = j.metadata.uid.as_deref();
        let found = active.iter().any(|a| a.uid.as_deref() == juid);
        let done = finished(j);
        if !found && done.is_none() {
            ctx.recorder.warning(
                &reference,
                "UnexpectedJob",
                format!(
                    "Saw a job that the controller did not create or forgot: {}",
                    j.name_any()
                ),
            );
        } else if found && done.is_some() {
            active.retain(|a| a.uid.as_deref() != juid);
            ctx.recorder.normal(
                &reference,
                "SawCompletedJob",
                format!(
                    "Saw completed job: {}, condition: {}",
                    j.name_any(),
                    done.unwrap_or_default()
                ),
            );
        }
        if done == Some("Complete") {
            let completed = j.status.as_ref().and_then(|s| s.completion_time.clone());
            if let Some(c) = completed {
                if status
                    .last_successful_time
                    .as_ref()
                    .is_none_or(|l| l.0 < c.0)
                {
                    status.last_successful_time = Some(c);
                }
            }
        }
    }
    // Active Jobs missing from the cache: a live GET decides.
    let mut kept = Vec::new();
    for a in active {
        if jobs.iter().any(|j| j.metadata.uid == a.uid) {
            kept.push(a);
            continue;
        }
        let jname = a.name.clone().unwrap_or_default();
        match jobs_api.get_opt(&jname).await {
            Ok(Some(j)) if j.metadata.uid == a.uid => kept.push(a),
            Ok(_) => ctx.recorder.normal(
                &reference,
                "MissingJob",
                format!("Active job went missing: {jname}"),
            ),
            Err(e) => {
                return Err(Error::api("get", format!("job {ns}/{jname}"))(e));
            }
        }
    }
    status.active = Some(kept);

    let action = schedule(ctx, &mut cj, &jobs_api, now).await;
    let deleted = cleanup(ctx, &mut cj, &jobs_api, &jobs).await;
    let after = cj.status.clone().unwrap_or_default();
    if status_json(&after) != status_json(&before) {
        let api: Api<CronJob> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = json!({ "status": status_json(&after) });
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => return Ok(Action::await_change()),
            Err(e) => {
                return Err(Error::api(
                    "update status of",
                    format!("cronjob {ns}/{name}"),
                )(e))
            }
        }
    }
    deleted?;
    action
}

/// The scheduling half of `syncCronJob`: may change status.active and
/// lastScheduleTime in `cj`.
async fn schedule(
    ctx: &Ctx,
    cj: &mut CronJob,
    jobs_api: &Api<Job>,
    now: Timestamp,
) -> Result<Action, Error> {
    let reference = cj.object_ref(&());
    let key = format!("{}/{}", cj.namespace().unwrap_or_default(), cj.name_any());
    if cj.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let Some(spec) = cj.spec.clone() else {
        return Ok(Action::await_change());
    };
    let tz = match spec.time_zone.as_deref() {
        None => TimeZone::UTC,
        Some(z) => match TimeZone::get(z) {
            Ok(tz) => tz,
            Err(e) => {
                tracing::warn!(cronjob = %key, time_zone = z, error = %e, "unknown time zone");
                ctx.recorder.warning(
                    &reference,
                    "UnknownTimeZone",
                    format!("invalid timeZone: {z:?}: {e}"),
                );
                return Ok(Action::await_change());
            }
        },
    };
    if spec.suspend == Some(true) {
        return Ok(Action::await_change());
    }
    let sched = match Schedule::parse(&spec.schedule) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(cronjob = %key, schedule = spec.schedule, error = %e, "unparseable schedule");
            ctx.recorder.warning(
                &reference,
                "UnparseableSchedule",
                format!("unparseable schedule: {:?} : {e}", spec.schedule),
            );
            return Ok(Action::await_change());
        }
    };
    let (decision, missed) = decide(cj, &sched, &tz, now);
    if missed > TOO_MANY_MISSED {
        tracing::info!(cronjob = %key, missed, "too many missed times");
        ctx.recorder.warning(
            &reference,
            "TooManyMissedTimes",
            "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew".into(),
        );
    }
    let scheduled = match decision {
        Decision::Wait | Decision::AlreadyScheduled(_) => {
            return Ok(requeue_next(&sched, &tz, now))
        }
        Decision::TooLate(t) => {
            ctx.recorder.normal(
                &reference,
                "MissSchedule",
                format!(
                    "Missed scheduled time to start a job: {}",
                    scheduled_annotation(t, &tz)
                ),
            );
            return Ok(requeue_next(&sched, &tz, now));
        }
        Decision::Forbidden(_) => {
            ctx.recorder.normal(
                &reference,
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid".into(),
            );
            return Ok(requeue_next(&sched, &tz, now));
        }
        Decision::Run { scheduled, replace } => {
            if replace {
                let active = cj
                    .status
                    .as_ref()
                    .and_then(|s| s.active.clone())
                    .unwrap_or_default();
                for a in active {
                    delete_job(ctx, cj, jobs_api, &a.name.clone().unwrap_or_default()).await?;
                }
            }
            scheduled
        }
    };
    let Some(job) = job_from_template(cj, scheduled, &tz) else {
        return Ok(Action::await_change());
    };
    let jname = job.name_any();
    let created = match jobs_api.create(&PostParams::default(), &job).await {
        Ok(j) => {
            ctx.recorder.normal(
                &reference,
                "SuccessfulCreate",
                format!("Created job {jname}"),
            );
            j
        }
        Err(e) if is_already_exists(&e) => {
            let existing = jobs_api
                .get(&jname)
                .await
                .map_err(Error::api("get", format!("job {jname}")))?;
            let uid = cj.metadata.uid.clone().unwrap_or_default();
            if !is_controlled_by(&existing, &uid) {
                return Ok(requeue_next(&sched, &tz, now));
            }
            existing
        }
        Err(e) => {
            ctx.recorder.warning(
                &reference,
                "FailedCreate",
                format!("Error creating job: {e}"),
            );
            return Err(Error::api(
                "create",
                format!("job {jname} for cronjob {key}"),
            )(e));
        }
    };
    let status = cj.status.get_or_insert_with(Default::default);
    let active = status.active.get_or_insert_with(Vec::new);
    if !active.iter().any(|a| a.uid == created.metadata.uid) && finished(&created).is_none() {
        active.push(job_ref(&created));
    }
    status.last_schedule_time = Some(Time(scheduled));
    Ok(requeue_next(&sched, &tz, now))
}

/// Upstream's `deleteJob`: background deletion, then out of status.active.
async fn delete_job(
    ctx: &Ctx,
    cj: &mut CronJob,
    jobs_api: &Api<Job>,
    name: &str,
) -> Result<(), Error> {
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    match jobs_api.delete(name, &dp).await {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => {}
        Err(e) => {
            ctx.recorder.warning(
                &cj.object_ref(&()),
                "FailedDelete",
                format!("Deleted job: {e}"),
            );
            return Err(Error::api("delete", format!("job {name}"))(e));
        }
    }
    ctx.recorder.normal(
        &cj.object_ref(&()),
        "SuccessfulDelete",
        format!("Deleted job {name}"),
    );
    if let Some(a) = cj.status.as_mut().and_then(|s| s.active.as_mut()) {
        a.retain(|r| r.name.as_deref() != Some(name));
    }
    Ok(())
}

async fn cleanup(
    ctx: &Ctx,
    cj: &mut CronJob,
    jobs_api: &Api<Job>,
    jobs: &[&Job],
) -> Result<(), Error> {
    let Some(spec) = cj.spec.as_ref() else {
        return Ok(());
    };
    let victims = history_to_delete(
        jobs,
        spec.successful_jobs_history_limit,
        spec.failed_jobs_history_limit,
    );
    for v in victims {
        delete_job(ctx, cj, jobs_api, &v).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        match s.parse() {
            Ok(t) => t,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    fn cronjob(spec: serde_json::Value, status: serde_json::Value) -> CronJob {
        let mut s = json!({"schedule": "0 * * * *", "concurrencyPolicy": "Allow",
            "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}});
        if let (Some(s), Some(extra)) = (s.as_object_mut(), spec.as_object()) {
            s.extend(extra.clone());
        }
        match serde_json::from_value(json!({
            "metadata": {"name": "cj", "namespace": "ns", "uid": "u1",
                "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": s, "status": status,
        })) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn decisions() {
        let hourly = "0 * * * *";
        let cases: Vec<(&str, serde_json::Value, serde_json::Value, &str, Decision)> = vec![
            (
                "before the first activation",
                json!({}),
                json!({}),
                "2024-01-01T00:59:00Z",
                Decision::Wait,
            ),
            (
                "first activation due",
                json!({}),
                json!({}),
                "2024-01-01T01:00:10Z",
                Decision::Run {
                    scheduled: ts("2024-01-01T01:00:00Z"),
                    replace: false,
                },
            ),
            (
                "several missed: the most recent runs",
                json!({}),
                json!({}),
                "2024-01-01T05:30:00Z",
                Decision::Run {
                    scheduled: ts("2024-01-01T05:00:00Z"),
                    replace: false,
                },
            ),
            (
                "already recorded",
                json!({}),
                json!({"lastScheduleTime": "2024-01-01T01:00:00Z"}),
                "2024-01-01T01:30:00Z",
                Decision::Wait,
            ),
            (
                "already active by name",
                json!({}),
                json!({"active": [{"name": "cj-28401180", "uid": "j"}], "lastScheduleTime": "2024-01-01T00:00:00Z"}),
                "2024-01-01T01:00:30Z",
                Decision::AlreadyScheduled(ts("2024-01-01T01:00:00Z")),
            ),
            (
                "forbid with an active job",
                json!({"concurrencyPolicy": "Forbid"}),
                json!({"active": [{"name": "cj-28401120", "uid": "j"}]}),
                "2024-01-01T01:00:30Z",
                Decision::Forbidden(ts("2024-01-01T01:00:00Z")),
            ),
            (
                "replace",
                json!({"concurrencyPolicy": "Replace"}),
                json!({"active": [{"name": "cj-28401120", "uid": "j"}]}),
                "2024-01-01T01:00:30Z",
                Decision::Run {
                    scheduled: ts("2024-01-01T01:00:00Z"),
                    replace: true,
                },
            ),
            (
                "past the starting deadline",
                json!({"startingDeadlineSeconds": 60}),
                json!({"lastScheduleTime": "2024-01-01T00:00:00Z"}),
                "2024-01-01T01:02:00Z",
                Decision::Wait,
            ),
            (
                "within the starting deadline",
                json!({"startingDeadlineSeconds": 200}),
                json!({}),
                "2024-01-01T01:02:00Z",
                Decision::Run {
                    scheduled: ts("2024-01-01T01:00:00Z"),
                    replace: false,
                },
            ),
        ];
        let sched = Schedule::parse(hourly).ok();
        for (what, spec, status, now, want) in cases {
            let cj = cronjob(spec, status);
            let got = sched
                .as_ref()
                .map(|s| decide(&cj, s, &TimeZone::UTC, ts(now)).0);
            assert_eq!(got, Some(want), "{what}");
        }
    }

    #[test]
    fn the_deadline_window_bounds_the_activations_considered() {
        // Every minute, 30 s deadline, now 45 s past an activation: the
        // window (now-30 s, now] has no activation at all, so Wait; with a
        // 50 s deadline the activation is in the window and not too late.
        let sched = Schedule::parse("* * * * *").ok();
        let late = cronjob(json!({"startingDeadlineSeconds": 30}), json!({}));
        let ok = cronjob(json!({"startingDeadlineSeconds": 50}), json!({}));
        let now = ts("2024-01-01T01:00:45Z");
        let d = |cj: &CronJob| sched.as_ref().map(|s| decide(cj, s, &TimeZone::UTC, now).0);
        assert_eq!(d(&late), Some(Decision::Wait));
        assert_eq!(
            d(&ok),
            Some(Decision::Run {
                scheduled: ts("2024-01-01T01:00:00Z"),
                replace: false
            })
        );
    }

    #[test]
    fn missed_counts() {
        let s = Schedule::parse("* * * * *").ok();
        let m = |earliest: &str, now: &str| {
            s.as_ref()
                .map(|s| most_recent(s, &TimeZone::UTC, ts(earliest), ts(now)))
        };
        assert_eq!(
            m("2024-01-01T00:00:00Z", "2024-01-01T00:00:30Z"),
            Some(Missed {
                most_recent: None,
                count: 0
            })
        );
        assert_eq!(
            m("2024-01-01T00:00:00Z", "2024-01-01T00:01:30Z"),
            Some(Missed {
                most_recent: Some(ts("2024-01-01T00:01:00Z")),
                count: 1
            })
        );
        // 101 missed: reported as too many, the most recent still found.
        assert_eq!(
            m("2024-01-01T00:00:00Z", "2024-01-01T01:41:00Z"),
            Some(Missed {
                most_recent: Some(ts("2024-01-01T01:41:00Z")),
                count: 101
            })
        );
        // A year of minutes: the jump lands on the right minute.
        assert_eq!(
            m("2023-01-01T00:00:00Z", "2024-01-01T00:00:30Z").and_then(|m| m.most_recent),
            Some(ts("2024-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn names_and_annotations() {
        let t = ts("2024-01-01T01:00:00Z");
        assert_eq!(job_name("cj", t), "cj-28401180");
        assert_eq!(
            scheduled_annotation(t, &TimeZone::UTC),
            "2024-01-01T01:00:00Z"
        );
        if let Ok(tz) = TimeZone::get("Europe/Berlin") {
            assert_eq!(scheduled_annotation(t, &tz), "2024-01-01T02:00:00+01:00");
        }
        let cj = cronjob(
            json!({"jobTemplate": {"metadata": {"labels": {"a": "b"}, "annotations": {"x": "y"}},
            "spec": {"template": {"spec": {"containers": []}}}}}),
            json!({}),
        );
        let j = job_from_template(&cj, t, &TimeZone::UTC);
        let meta = j.as_ref().map(|j| &j.metadata);
        assert_eq!(meta.and_then(|m| m.name.as_deref()), Some("cj-28401180"));
        assert_eq!(
            meta.and_then(|m| m.annotations.clone()),
            Some(BTreeMap::from([
                ("x".to_string(), "y".to_string()),
                (
                    SCHEDULED_TIMESTAMP.to_string(),
                    "2024-01-01T01:00:00Z".to_string()
                ),
            ]))
        );
        assert_eq!(
            meta.and_then(|m| m.labels.as_ref())
                .and_then(|l| l.get("a"))
                .map(String::as_str),
            Some("b")
        );
        let owner = meta
            .and_then(|m| m.owner_references.as_ref())
            .and_then(|o| o.first());
        assert_eq!(
            owner.map(|o| (o.kind.as_str(), o.uid.as_str(), o.controller)),
            Some(("CronJob", "u1", Some(true)))
        );
    }

    #[test]
    fn history_limits_delete_the_oldest_finished() {
        let job = |name: &str, cond: &str, start: Option<&str>| -> Job {
            match serde_json::from_value(json!({"metadata": {"name": name},
                "status": {"startTime": start, "conditions": [{"type": cond, "status": "True"}]}}))
            {
                Ok(j) => j,
                Err(e) => panic!("{e}"),
            }
        };
        let jobs = [
            job("s3", "Complete", Some("2024-01-01T03:00:00Z")),
            job("s1", "Complete", Some("2024-01-01T01:00:00Z")),
            job("s2", "Complete", Some("2024-01-01T02:00:00Z")),
            job("f1", "Failed", Some("2024-01-01T01:00:00Z")),
            job("f0", "Failed", None),
            job("running", "Suspended", Some("2024-01-01T00:00:00Z")),
        ];
        let refs: Vec<&Job> = jobs.iter().collect();
        assert_eq!(
            history_to_delete(&refs, Some(1), Some(1)),
            ["s1", "s2", "f1"]
        );
        assert_eq!(history_to_delete(&refs, Some(0), None), ["s1", "s2", "s3"]);
        assert!(history_to_delete(&refs, None, Some(5)).is_empty());
    }
}
