//! One sync of a Job (upstream's job_controller.go `syncJob`, `manageJob`,
//! `trackJobStatusAndRemoveFinalizers`, `pastBackoffLimitOnFailure`,
//! `pastActiveDeadline`, and indexed_job_utils.go for completed indexes).
//!
//! Finished pods are counted in two steps, as upstream: first their uids
//! go to `status.uncountedTerminatedPods` (written), then their tracking
//! finalizer is removed, then they move into `succeeded`/`failed`. So a
//! pod is counted exactly once whatever fails in between. Terminal
//! conditions come in upstream's 1.33 order: `SuccessCriteriaMet` /
//! `FailureTarget` when decided, `Complete` / `Failed` once no pod is
//! left running or uncounted.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::podfailurepolicy::{evaluate, Verdict};
use super::{controller_uid, has_tracking_finalizer, lock, remove_finalizer, BackoffRecord, Ctx};
use crate::replicaset::expectations::Seen;
use crate::replicaset::ranking::{is_active, is_ready};
use crate::{is_conflict, is_not_found, Error};

/// Upstream's `batch.kubernetes.io/job-completion-index`.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// Upstream's `DefaultJobPodFailureBackOff` and `MaxJobPodFailureBackOff`.
const BACKOFF_BASE: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(360);
/// Upstream's `MaxPodCreateDeletePerSync`.
const MAX_PER_SYNC: usize = 500;

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Upstream's `isPodFailed` (podReplacementPolicy TerminatingOrFailed):
/// failed, or deleted before it succeeded while still tracked.
fn is_failed(p: &Pod) -> bool {
    phase(p) == "Failed"
        || (has_tracking_finalizer(p)
            && p.metadata.deletion_timestamp.is_some()
            && phase(p) != "Succeeded")
}

fn index_of(p: &Pod) -> Option<i32> {
    p.metadata
        .annotations
        .as_ref()?
        .get(COMPLETION_INDEX)?
        .parse()
        .ok()
}

/// Parses `status.completedIndexes` ("0-2,4"); malformed parts are skipped.
pub fn parse_indexes(s: &str, completions: i32) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.trim().parse::<i32>(), b.trim().parse::<i32>()) {
            out.extend((a.max(0)..=b.min(completions - 1)).filter(|i| *i >= 0));
        }
    }
    out
}

/// Formats indexes as upstream's ranges ("0-2,4").
pub fn format_indexes(set: &BTreeSet<i32>) -> String {
    let mut parts = Vec::new();
    let mut it = set.iter().copied().peekable();
    while let Some(start) = it.next() {
        let mut end = start;
        while it.peek() == Some(&(end + 1)) {
            end += 1;
            it.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

fn condition_true(st: &JobStatus, ty: &str) -> Option<JobCondition> {
    st.conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == ty && c.status == "True")
        .cloned()
}

/// Sets a condition; the transition time changes only with the status.
fn set_condition(
    st: &mut JobStatus,
    ty: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) {
    let conds = st.conditions.get_or_insert_with(Vec::new);
    if let Some(c) = conds.iter_mut().find(|c| c.type_ == ty) {
        if c.status != status {
            c.last_transition_time = Some(Time(now));
        }
        c.status = status.into();
        c.reason = Some(reason.into());
        c.message = Some(message.into());
        c.last_probe_time = Some(Time(now));
        return;
    }
    conds.push(JobCondition {
        type_: ty.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    });
}

/// Upstream's `pastBackoffLimitOnFailure`: with `restartPolicy: OnFailure`
/// the kubelet restarts containers in place, so the restarts of running
/// and pending pods count (with the failures so far) against
/// `backoffLimit`.
fn past_backoff_limit_on_failure(job: &Job, pods: &[Arc<Pod>]) -> bool {
    let Some(spec) = job.spec.as_ref() else {
        return false;
    };
    let on_failure = spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        == Some("OnFailure");
    if !on_failure {
        return false;
    }
    let mut restarts: i64 = job
        .status
        .as_ref()
        .and_then(|s| s.failed)
        .map_or(0, i64::from);
    for p in pods
        .iter()
        .filter(|p| matches!(phase(p), "Running" | "Pending"))
    {
        let st = p.status.as_ref();
        restarts += st
            .and_then(|s| s.init_container_statuses.as_ref())
            .into_iter()
            .flatten()
            .chain(
                st.and_then(|s| s.container_statuses.as_ref())
                    .into_iter()
                    .flatten(),
            )
            .map(|c| i64::from(c.restart_count))
            .sum::<i64>();
    }
    let limit = i64::from(spec.backoff_limit.unwrap_or(6));
    if limit == 0 {
        restarts > 0
    } else {
        restarts >= limit
    }
}

/// Upstream's `getRemainingTime` of the backoff record.
fn backoff_remaining(rec: Option<BackoffRecord>) -> Option<Duration> {
    let rec = rec.filter(|r| r.failures > 0)?;
    let factor = 2u32.checked_pow(rec.failures - 1).unwrap_or(u32::MAX);
    let delay = BACKOFF_BASE
        .checked_mul(factor)
        .map_or(BACKOFF_MAX, |d| d.min(BACKOFF_MAX));
    delay
        .checked_sub(rec.last_failure.elapsed())
        .filter(|d| !d.is_zero())
}

async fn write_status(ctx: &Ctx, job: &Job, status: &JobStatus) -> Result<Option<Job>, Error> {
    let ns = job.namespace().unwrap_or_default();
    let name = job.name_any();
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    // The resourceVersion makes a stale cache fail with a conflict instead
    // of overwriting counts.
    let patch = json!({
        "metadata": {"resourceVersion": job.metadata.resource_version},
        "status": status,
    });
    match api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(j) => Ok(Some(j)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) if is_conflict(&e) => {
            Err(Error::Pending(format!("job {ns}/{name} changed; resync")))
        }
        Err(e) => Err(Error::api("update status of", format!("job {ns}/{name}"))(
            e,
        )),
    }
}

pub(super) async fn sync(ctx: &Ctx, job: &Job) -> Result<Action, Error> {
    let ns = job.namespace().unwrap_or_default();
    let name = job.name_any();
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let key = format!("{ns}/{name}");
    let Some(spec) = job.spec.as_ref() else {
        return Ok(Action::await_change());
    };
    let now = Timestamp::now();
    let pods: Vec<Arc<Pod>> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
        .filter(|p| controller_uid(p) == Some(uid.as_str()))
        .collect();
    let satisfied = ctx.expectations.satisfied(&key, |u| {
        match pods.iter().find(|p| p.metadata.uid.as_deref() == Some(u)) {
            None => Seen::Absent,
            Some(p) if p.metadata.deletion_timestamp.is_some() => Seen::Terminating,
            Some(_) => Seen::Present,
        }
    });
    // Released pods the cache still shows with the finalizer are counted already.
    let released: HashSet<String> = {
        let mut all = lock(&ctx.released);
        let r = all.entry(key.clone()).or_default();
        r.retain(|u| {
            pods.iter()
                .any(|p| p.metadata.uid.as_deref() == Some(u.as_str()) && has_tracking_finalizer(p))
        });
        r.clone()
    };
    let old = job.status.clone().unwrap_or_default();
    let mut st = old.clone();
    let unc = st.uncounted_terminated_pods.clone().unwrap_or_default();
    let mut unc_succeeded: Vec<String> = unc.succeeded.unwrap_or_default();
    let mut unc_failed: Vec<String> = unc.failed.unwrap_or_default();
    let tracked = |p: &&Arc<Pod>| {
        let u = p.metadata.uid.as_deref().unwrap_or("");
        has_tracking_finalizer(p)
            && !released.contains(u)
            && !unc_succeeded.iter().any(|x| x == u)
            && !unc_failed.iter().any(|x| x == u)
    };
    let new_succeeded: Vec<String> = pods
        .iter()
        .filter(tracked)
        .filter(|p| phase(p) == "Succeeded")
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    // Failed pods go through the pod failure policy: Ignore'd ones are
    // released without being counted.
    let policy = spec
        .pod_failure_policy
        .as_ref()
        .and_then(|p| serde_json::to_value(p).ok());
    let mut new_failed: Vec<String> = Vec::new();
    let mut ignored: HashSet<String> = HashSet::new();
    let mut policy_failure: Option<String> = None;
    for p in pods
        .iter()
        .filter(tracked)
        .filter(|p| phase(p) != "Succeeded" && is_failed(p))
    {
        let Some(u) = p.metadata.uid.clone() else {
            continue;
        };
        let verdict = policy
            .as_ref()
            .filter(|_| phase(p) == "Failed")
            .and_then(|pol| evaluate(pol, p));
        match verdict {
            Some(Verdict::Ignore) => {
                ignored.insert(u);
            }
            Some(Verdict::FailJob(m)) => {
                policy_failure.get_or_insert(m);
                new_failed.push(u);
            }
            _ => new_failed.push(u),
        }
    }
    if !new_failed.is_empty() || !new_succeeded.is_empty() {
        let mut b = lock(&ctx.backoff);
        let rec = b.entry(key.clone()).or_insert(BackoffRecord {
            failures: 0,
            last_failure: Instant::now(),
        });
        if !new_succeeded.is_empty() {
            rec.failures = 0;
        }
        if !new_failed.is_empty() {
            rec.failures = rec.failures.saturating_add(new_failed.len() as u32);
            rec.last_failure = Instant::now();
        }
    }
    unc_succeeded.extend(new_succeeded);
    unc_failed.extend(new_failed);

    let active: Vec<Arc<Pod>> = pods.iter().filter(|p| is_active(p)).cloned().collect();
    let succeeded = old.succeeded.unwrap_or(0) + unc_succeeded.len() as i32;
    let failed = old.failed.unwrap_or(0) + unc_failed.len() as i32;
    let indexed = spec.completion_mode.as_deref() == Some("Indexed") && spec.completions.is_some();
    let completions = spec.completions;
    let mut completed_indexes = BTreeSet::new();
    if let (true, Some(c)) = (indexed, completions) {
        completed_indexes = parse_indexes(old.completed_indexes.as_deref().unwrap_or(""), c);
        completed_indexes.extend(
            pods.iter()
                .filter(|p| phase(p) == "Succeeded")
                .filter_map(|p| index_of(p))
                .filter(|i| (0..c).contains(i)),
        );
    }
    let done = if indexed {
        completed_indexes.len() as i32
    } else {
        succeeded
    };
    let suspended = spec.suspend == Some(true);
    let parallelism = spec.parallelism.unwrap_or(1).max(0);

    // Suspension and start time.
    let was_suspended = condition_true(&old, "Suspended").is_some();
    if suspended
        && condition_true(&old, "Complete").is_none()
        && condition_true(&old, "Failed").is_none()
    {
        set_condition(
            &mut st,
            "Suspended",
            "True",
            "JobSuspended",
            "Job suspended",
            now,
        );
    } else if !suspended && was_suspended {
        set_condition(
            &mut st,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed",
            now,
        );
        st.start_time = Some(Time(now));
    }
    if !suspended && st.start_time.is_none() {
        st.start_time = Some(Time(now));
    }

    // The outcome.
    let mut requeue: Option<Duration> = None;
    let mut failure = condition_true(&old, "FailureTarget")
        .or_else(|| condition_true(&old, "Failed"))
        .map(|c| (c.reason.unwrap_or_default(), c.message.unwrap_or_default()));
    let finished =
        condition_true(&old, "Complete").is_some() || condition_true(&old, "Failed").is_some();
    let mut complete = condition_true(&old, "SuccessCriteriaMet").is_some()
        || condition_true(&old, "Complete").is_some();
    if failure.is_none() && !complete {
        if let Some(m) = policy_failure {
            failure = Some(("PodFailurePolicy".into(), m));
        } else if failed > spec.backoff_limit.unwrap_or(6)
            || past_backoff_limit_on_failure(job, &pods)
        {
            failure = Some((
                "BackoffLimitExceeded".into(),
                "Job has reached the specified backoff limit".into(),
            ));
        } else if let (Some(ads), Some(start), false) = (
            spec.active_deadline_seconds,
            st.start_time.as_ref(),
            suspended,
        ) {
            let end = start.0.as_second().saturating_add(ads);
            if now.as_second() >= end {
                failure = Some((
                    "DeadlineExceeded".into(),
                    "Job was active longer than specified deadline".into(),
                ));
            } else {
                requeue = Some(Duration::from_secs((end - now.as_second()).max(1) as u64));
            }
        }
    }
    if failure.is_none() && !complete {
        complete = match completions {
            Some(c) => done >= c,
            None => succeeded > 0 && active.is_empty(),
        };
    }
    if let Some((reason, message)) = &failure {
        set_condition(&mut st, "FailureTarget", "True", reason, message, now);
    } else if complete {
        set_condition(
            &mut st,
            "SuccessCriteriaMet",
            "True",
            "CompletionsReached",
            "Reached expected number of succeeded pods",
            now,
        );
    }

    // Pods wanted now.
    let want = if failure.is_some() || complete || suspended || finished {
        0
    } else {
        match completions {
            Some(c) => parallelism.min((c - done).max(0)) as usize,
            None if succeeded > 0 => active.len().min(parallelism as usize),
            None => parallelism as usize,
        }
    };
    let mut manage_err = None;
    if satisfied && !finished && job.metadata.deletion_timestamp.is_none() {
        if active.len() > want {
            let mut victims = active.clone();
            // Highest index, unready and newest first.
            victims.sort_by_key(|p| {
                (
                    std::cmp::Reverse(index_of(p).unwrap_or(-1)),
                    is_ready(p),
                    std::cmp::Reverse(p.metadata.creation_timestamp.clone().map(|t| t.0)),
                )
            });
            victims.truncate((active.len() - want).min(MAX_PER_SYNC));
            if let Err(e) = delete_pods(ctx, &key, &victims, failure.is_none() && !complete).await {
                manage_err = Some(e);
            }
        } else if active.len() < want {
            let rec = lock(&ctx.backoff).get(&key).copied();
            match backoff_remaining(rec) {
                Some(d) => requeue = Some(requeue.map_or(d, |r| r.min(d))),
                None => {
                    let n = (want - active.len()).min(MAX_PER_SYNC);
                    let indexes: Vec<Option<i32>> = match (indexed, completions) {
                        (true, Some(c)) => {
                            let busy: HashSet<i32> =
                                active.iter().filter_map(|p| index_of(p)).collect();
                            (0..c)
                                .filter(|i| !completed_indexes.contains(i) && !busy.contains(i))
                                .take(n)
                                .map(Some)
                                .collect()
                        }
                        _ => vec![None; n],
                    };
                    if let Err(e) = create_pods(ctx, job, &key, &indexes).await {
                        manage_err = Some(e);
                    }
                }
            }
        }
    }
    let terminating = pods
        .iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_some() && !matches!(phase(p), "Succeeded" | "Failed")
        })
        .count() as i32;
    st.active = Some(active.len() as i32);
    st.ready = Some(active.iter().filter(|p| is_ready(p)).count() as i32);
    st.terminating = Some(terminating);
    st.uncounted_terminated_pods = Some(UncountedTerminatedPods {
        succeeded: Some(unc_succeeded.clone()),
        failed: Some(unc_failed.clone()),
    });
    if indexed {
        st.completed_indexes = Some(format_indexes(&completed_indexes));
    }

    // Step 1: record the newly finished pods as uncounted.
    let mut current = job.clone();
    if serde_json::to_value(&st).ok() != serde_json::to_value(&old).ok() {
        match write_status(ctx, &current, &st).await? {
            Some(j) => current = j,
            None => return Ok(Action::await_change()),
        }
    }
    // Step 2: release them (and, once the Job has an outcome, every pod).
    let uncounted: HashSet<&str> = unc_succeeded
        .iter()
        .chain(&unc_failed)
        .map(String::as_str)
        .collect();
    let outcome =
        failure.is_some() || complete || finished || job.metadata.deletion_timestamp.is_some();
    let to_release: Vec<&Arc<Pod>> = pods
        .iter()
        .filter(|p| has_tracking_finalizer(p))
        .filter(|p| {
            let u = p.metadata.uid.as_deref().unwrap_or("");
            uncounted.contains(u)
                || ignored.contains(u)
                || (outcome && !is_active(p) && !released.contains(u))
        })
        .collect();
    let results = join_all(to_release.iter().map(|p| remove_finalizer(&ctx.client, p))).await;
    let mut release_err = None;
    let mut now_released: HashSet<String> = HashSet::new();
    for (p, r) in to_release.iter().zip(results) {
        match r {
            Ok(()) => {
                now_released.extend(p.metadata.uid.clone());
            }
            Err(e) => {
                release_err.get_or_insert(e);
            }
        }
    }
    lock(&ctx.released)
        .entry(key.clone())
        .or_default()
        .extend(now_released.iter().cloned());
    // Step 3: count what is released (or already gone from the cache).
    let gone = |u: &String| {
        now_released.contains(u)
            || !pods
                .iter()
                .any(|p| p.metadata.uid.as_deref() == Some(u.as_str()) && has_tracking_finalizer(p))
    };
    let (count_s, keep_s): (Vec<String>, Vec<String>) =
        unc_succeeded.into_iter().partition(|u| gone(u));
    let (count_f, keep_f): (Vec<String>, Vec<String>) =
        unc_failed.into_iter().partition(|u| gone(u));
    let mut st2 = current.status.clone().unwrap_or_default();
    st2.succeeded = Some(old.succeeded.unwrap_or(0) + count_s.len() as i32);
    st2.failed = Some(old.failed.unwrap_or(0) + count_f.len() as i32);
    let nothing_left = keep_s.is_empty() && keep_f.is_empty();
    st2.uncounted_terminated_pods = Some(UncountedTerminatedPods {
        succeeded: Some(keep_s),
        failed: Some(keep_f),
    });
    // Terminal conditions once nothing runs and everything is counted.
    let still_running = pods.iter().any(|p| {
        !matches!(phase(p), "Succeeded" | "Failed")
            && has_tracking_finalizer(p)
            && !now_released.contains(p.metadata.uid.as_deref().unwrap_or(""))
    });
    if finished && to_release.is_empty() && !pods.iter().any(|p| has_tracking_finalizer(p)) {
        // Nothing more to track: forget the in-memory records.
        lock(&ctx.backoff).remove(&key);
        lock(&ctx.released).remove(&key);
        ctx.expectations.delete(&key);
    }
    if nothing_left && !still_running && !finished {
        if let Some((reason, message)) = &failure {
            set_condition(&mut st2, "Failed", "True", reason, message, now);
            ctx.events
                .warning(&current.object_ref(&()), reason, message.to_string());
        } else if complete {
            ctx.events.normal(
                &current.object_ref(&()),
                "Completed",
                "Job completed".into(),
            );
            set_condition(
                &mut st2,
                "Complete",
                "True",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                now,
            );
            st2.completion_time = Some(Time(now));
        }
    }
    if serde_json::to_value(&st2).ok()
        != serde_json::to_value(current.status.clone().unwrap_or_default()).ok()
        && write_status(ctx, &current, &st2).await?.is_none()
    {
        return Ok(Action::await_change());
    }
    if let Some(e) = release_err.or(manage_err) {
        return Err(e);
    }
    if !satisfied {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

async fn create_pods(
    ctx: &Ctx,
    job: &Job,
    key: &str,
    indexes: &[Option<i32>],
) -> Result<(), Error> {
    let ns = job.namespace().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    // Slow start (upstream's `slowStartBatch`): 1, 2, 4 … creates at once,
    // stopping after a batch with an error.
    let mut created = Vec::new();
    let mut err = None;
    let mut batch = 1;
    let mut rest = indexes;
    while !rest.is_empty() && err.is_none() {
        let (now, later) = rest.split_at(batch.min(rest.len()));
        rest = later;
        batch *= 2;
        let results = join_all(
            now.iter()
                .filter_map(|ix| super::pod_from_template(job, *ix))
                .map(|pod| {
                    let api = api.clone();
                    async move { api.create(&PostParams::default(), &pod).await }
                }),
        )
        .await;
        for r in results {
            match r {
                Ok(p) => {
                    ctx.events.normal(
                        &job.object_ref(&()),
                        "SuccessfulCreate",
                        format!("Created pod: {}", p.name_any()),
                    );
                    created.push(p.metadata.uid)
                }
                Err(e) => {
                    ctx.events.warning(
                        &job.object_ref(&()),
                        "FailedCreate",
                        format!("Error creating: {e}"),
                    );
                    err.get_or_insert(e);
                }
            }
        }
    }
    ctx.expectations
        .expect_creations(key, created.into_iter().flatten());
    match err {
        Some(e) => Err(Error::api("create pod for", format!("job {key}"))(e)),
        None => Ok(()),
    }
}

/// Deletes pods. Pods removed by scaling down or suspending are released
/// first, so they are not counted as failed (upstream's `deleteJobPods`);
/// once the Job has an outcome they keep the finalizer and are counted
/// when they terminate (upstream's `deleteActivePods`).
async fn delete_pods(ctx: &Ctx, key: &str, pods: &[Arc<Pod>], release: bool) -> Result<(), Error> {
    let results = join_all(pods.iter().map(|p| async move {
        if release && has_tracking_finalizer(p) {
            remove_finalizer(&ctx.client, p).await?;
            lock(&ctx.released)
                .entry(key.to_string())
                .or_default()
                .extend(p.metadata.uid.clone());
        }
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
        match api.delete(&p.name_any(), &DeleteParams::background()).await {
            Ok(_) => Ok(p.metadata.uid.clone()),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(Error::api("delete pod of", format!("job {key}"))(e)),
        }
    }))
    .await;
    let mut first = None;
    let mut deleted = Vec::new();
    for r in results {
        match r {
            Ok(u) => deleted.extend(u),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    ctx.expectations.expect_deletions(key, deleted);
    first.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_indexes_round_trip() {
        let s: BTreeSet<i32> = [0, 1, 2, 4, 6, 7].into_iter().collect();
        assert_eq!(format_indexes(&s), "0-2,4,6-7");
        assert_eq!(parse_indexes("0-2,4,6-7", 10), s);
        assert_eq!(parse_indexes("0-20", 3), [0, 1, 2].into_iter().collect());
        assert!(format_indexes(&BTreeSet::new()).is_empty());
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let rec = |failures| {
            Some(BackoffRecord {
                failures,
                last_failure: Instant::now(),
            })
        };
        assert!(backoff_remaining(None).is_none());
        assert!(backoff_remaining(rec(0)).is_none());
        assert!(
            backoff_remaining(rec(1)).is_some_and(|d| d <= BACKOFF_BASE && d > BACKOFF_BASE / 2)
        );
        assert!(backoff_remaining(rec(2)).is_some_and(|d| d > BACKOFF_BASE));
        assert!(backoff_remaining(rec(30)).is_some_and(|d| d <= BACKOFF_MAX));
    }
}
