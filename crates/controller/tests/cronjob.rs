//! The CronJob controller against a real API server, with a fake clock
//! (upstream's test/integration/cronjob drives real time; a fake clock
//! makes each activation a step the test takes). No Job controller runs:
//! the test finishes Jobs by writing their status, as the Job controller
//! would.

mod common;

use std::sync::Arc;

use controller::clock::FakeClock;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

const SCHEDULED: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

fn from<T: serde::de::DeserializeOwned>(v: Value) -> T {
    match serde_json::from_value(v) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

fn cronjob(name: &str, spec: Value) -> CronJob {
    let mut s = json!({
        "schedule": "* * * * *",
        "jobTemplate": {"metadata": {"labels": {"cron": name}},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox"}]}}}}
    });
    if let (Some(s), Some(extra)) = (s.as_object_mut(), spec.as_object()) {
        s.extend(extra.clone());
    }
    from(json!({"metadata": {"name": name}, "spec": s}))
}

struct Env {
    _cluster: common::Cluster,
    clock: Arc<FakeClock>,
    cjs: Api<CronJob>,
    jobs: Api<Job>,
}

async fn setup(ns: &str) -> Env {
    let clock = FakeClock::new(Timestamp::now());
    let c2 = clock.clone();
    let c = common::start(&["cronjob"], move |_, cfg| cfg.clock = c2).await;
    let nss: Api<Namespace> = Api::all(c.client.clone());
    nss.create(&PostParams::default(), &common::ns(ns))
        .await
        .expect("namespace");
    Env {
        cjs: Api::namespaced(c.client.clone(), ns),
        jobs: Api::namespaced(c.client.clone(), ns),
        _cluster: c,
        clock,
    }
}

/// The first whole minute after `t`.
fn next_minute(t: Timestamp) -> Timestamp {
    let s = t.as_second().div_euclid(60).saturating_add(1) * 60;
    Timestamp::from_second(s).expect("timestamp")
}

fn plus(t: Timestamp, secs: i64) -> Timestamp {
    t.checked_add(SignedDuration::from_secs(secs))
        .expect("timestamp")
}

async fn create(env: &Env, cj: &CronJob) -> CronJob {
    env.cjs
        .create(&PostParams::default(), cj)
        .await
        .expect("create cronjob")
}

fn created_at(cj: &CronJob) -> Timestamp {
    cj.metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0)
        .expect("creationTimestamp")
}

async fn jobs_of(env: &Env, name: &str) -> Vec<Job> {
    let lp = ListParams::default().labels(&format!("cron={name}"));
    let mut j: Vec<Job> = env
        .jobs
        .list(&lp)
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|j| j.metadata.deletion_timestamp.is_none())
        .collect();
    j.sort_by_key(|j| j.metadata.name.clone());
    j
}

fn names(jobs: &[Job]) -> Vec<String> {
    jobs.iter()
        .map(|j| j.metadata.name.clone().unwrap_or_default())
        .collect()
}

fn job_name(cj: &str, t: Timestamp) -> String {
    format!("{cj}-{}", t.as_second() / 60)
}

/// Waits until the CronJob's Jobs are exactly `want` (by name).
async fn wait_jobs(env: &Env, cj: &str, want: &[String]) {
    common::eventually(&format!("jobs of {cj} to be {want:?}"), || async {
        (names(&jobs_of(env, cj).await).as_slice() == want).then_some(())
    })
    .await;
}

async fn active_names(env: &Env, cj: &str) -> Vec<String> {
    let c = env.cjs.get(cj).await.expect("get cronjob");
    let mut a: Vec<String> = c
        .status
        .and_then(|s| s.active)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| r.name)
        .collect();
    a.sort();
    a
}

async fn wait_active(env: &Env, cj: &str, want: &[String]) {
    common::eventually(&format!("status.active of {cj} to be {want:?}"), || async {
        (active_names(env, cj).await.as_slice() == want).then_some(())
    })
    .await;
}

/// Finishes a Job the way the Job controller reports it.
async fn finish(env: &Env, name: &str, succeeded: bool, at: Timestamp) {
    let t = at.to_string();
    let status = if succeeded {
        json!({"status": {"startTime": t, "completionTime": t, "succeeded": 1, "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": t},
            {"type": "Complete", "status": "True", "lastTransitionTime": t}]}})
    } else {
        json!({"status": {"startTime": t, "failed": 1, "conditions": [
            {"type": "FailureTarget", "status": "True", "lastTransitionTime": t},
            {"type": "Failed", "status": "True", "lastTransitionTime": t}]}})
    };
    env.jobs
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("job status");
}

#[tokio::test]
async fn allow_creates_a_job_per_activation_and_tracks_status() {
    let env = setup("cron-allow").await;
    let cj = create(&env, &cronjob("tick", json!({}))).await;
    let t1 = next_minute(created_at(&cj));
    env.clock.set(plus(t1, 2));
    let j1 = job_name("tick", t1);
    wait_jobs(&env, "tick", std::slice::from_ref(&j1)).await;
    let job = env.jobs.get(&j1).await.expect("job");
    let ann = job.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        ann.get(SCHEDULED).cloned(),
        Some(t1.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
    );
    let owner = job.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(
        owner.first().map(|o| (o.kind.as_str(), o.controller)),
        Some(("CronJob", Some(true)))
    );
    wait_active(&env, "tick", std::slice::from_ref(&j1)).await;
    let c = env.cjs.get("tick").await.expect("get");
    assert_eq!(
        c.status.and_then(|s| s.last_schedule_time).map(|t| t.0),
        Some(t1)
    );

    // Allow: the next activation runs while the first is still active.
    let t2 = plus(t1, 60);
    env.clock.set(plus(t2, 1));
    let j2 = job_name("tick", t2);
    wait_jobs(&env, "tick", &[j1.clone(), j2.clone()]).await;
    wait_active(&env, "tick", &[j1.clone(), j2.clone()]).await;

    // A finished Job leaves status.active and sets lastSuccessfulTime.
    finish(&env, &j1, true, plus(t2, 5)).await;
    wait_active(&env, "tick", std::slice::from_ref(&j2)).await;
    common::eventually("lastSuccessfulTime", || async {
        let c = env.cjs.get("tick").await.ok()?;
        (c.status?.last_successful_time?.0 == plus(t2, 5)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn forbid_skips_while_active_and_replace_replaces() {
    let env = setup("cron-policy").await;
    let f = create(
        &env,
        &cronjob("forbid", json!({"concurrencyPolicy": "Forbid"})),
    )
    .await;
    create(
        &env,
        &cronjob("replace", json!({"concurrencyPolicy": "Replace"})),
    )
    .await;
    let t1 = next_minute(created_at(&f));
    env.clock.set(plus(t1, 1));
    let f1 = job_name("forbid", t1);
    let r1 = job_name("replace", t1);
    wait_jobs(&env, "forbid", std::slice::from_ref(&f1)).await;
    wait_jobs(&env, "replace", std::slice::from_ref(&r1)).await;
    wait_active(&env, "forbid", std::slice::from_ref(&f1)).await;
    wait_active(&env, "replace", std::slice::from_ref(&r1)).await;

    let t2 = plus(t1, 60);
    env.clock.set(plus(t2, 1));
    let r2 = job_name("replace", t2);
    // Replace: the active Job is deleted and the new one started.
    wait_jobs(&env, "replace", std::slice::from_ref(&r2)).await;
    wait_active(&env, "replace", std::slice::from_ref(&r2)).await;
    // Forbid: the second activation was skipped (its time is not recorded).
    let c = env.cjs.get("forbid").await.expect("get");
    assert_eq!(
        c.status.and_then(|s| s.last_schedule_time).map(|t| t.0),
        Some(t1)
    );
    assert_eq!(
        names(&jobs_of(&env, "forbid").await),
        std::slice::from_ref(&f1)
    );

    // Once the Job finishes, the skipped activation (still the most
    // recent, and no starting deadline) runs late, as upstream's does.
    finish(&env, &f1, true, plus(t2, 10)).await;
    let f2 = job_name("forbid", t2);
    wait_jobs(&env, "forbid", &[f1.clone(), f2.clone()]).await;
    wait_active(&env, "forbid", std::slice::from_ref(&f2)).await;
}

#[tokio::test]
async fn history_limits_suspend_and_starting_deadline() {
    let env = setup("cron-history").await;
    let cj = create(
        &env,
        &cronjob(
            "hist",
            json!({"successfulJobsHistoryLimit": 1, "failedJobsHistoryLimit": 0}),
        ),
    )
    .await;
    let t1 = next_minute(created_at(&cj));
    let j = |i: i64| job_name("hist", plus(t1, 60 * i));
    // A success is kept (limit 1), a failure is not (limit 0), a second
    // success replaces the first.
    let steps = [(true, vec![j(0)]), (false, vec![j(0)]), (true, vec![j(2)])];
    for (i, (succeeds, after)) in (0i64..).zip(steps) {
        let t = plus(t1, 60 * i);
        env.clock.set(plus(t, 1));
        common::eventually(&format!("job {}", j(i)), || async {
            names(&jobs_of(&env, "hist").await)
                .contains(&j(i))
                .then_some(())
        })
        .await;
        finish(&env, &j(i), succeeds, plus(t, 2)).await;
        wait_jobs(&env, "hist", &after).await;
    }

    // Suspended: activations pass without Jobs.
    env.cjs
        .patch(
            "hist",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"suspend": true}})),
        )
        .await
        .expect("suspend");
    common::eventually("suspend seen", || async {
        let c = env.cjs.get("hist").await.ok()?;
        (c.spec?.suspend == Some(true)).then_some(())
    })
    .await;
    // Suspended: activations pass without Jobs, ten minutes of them.
    env.clock.set(plus(t1, 181));
    let t14 = plus(t1, 60 * 13);
    env.clock.set(plus(t14, 45));
    // Resumed with a 30 s starting deadline, 45 s past an activation:
    // neither it nor the missed ones run.
    env.cjs
        .patch(
            "hist",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"suspend": false, "startingDeadlineSeconds": 30}})),
        )
        .await
        .expect("resume");
    common::eventually("resume seen", || async {
        let c = env.cjs.get("hist").await.ok()?;
        (c.spec?.suspend == Some(false)).then_some(())
    })
    .await;
    let t15 = plus(t14, 60);
    env.clock.set(plus(t15, 5));
    // The next one, 5 s late, does; the skipped ones never appear.
    wait_jobs(&env, "hist", &[j(2), job_name("hist", t15)]).await;
}
