//! The Job controller against a real API server (upstream's
//! test/integration/job): completions and parallelism with finalizer
//! tracking, backoffLimit, Indexed completion, activeDeadlineSeconds,
//! suspend/resume, and a deleted Job's pods released. Pods finish the way a
//! kubelet reports them: `pods/status` with the phase and a terminated
//! container's exit code.

mod common;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

const FINALIZER: &str = "batch.kubernetes.io/job-tracking";

fn from<T: serde::de::DeserializeOwned>(v: Value) -> T {
    match serde_json::from_value(v) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

fn job(name: &str, spec: Value) -> Job {
    let mut s = json!({
        "template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox"}]}}
    });
    if let (Some(s), Some(extra)) = (s.as_object_mut(), spec.as_object()) {
        s.extend(extra.clone());
    }
    from(json!({"metadata": {"name": name}, "spec": s}))
}

async fn setup(ns: &str, controllers: &[&str]) -> (common::Cluster, Api<Job>, Api<Pod>) {
    let c = common::start(controllers, |_, _| {}).await;
    let nss: Api<Namespace> = Api::all(c.client.clone());
    nss.create(&PostParams::default(), &common::ns(ns))
        .await
        .expect("namespace");
    let jobs = Api::namespaced(c.client.clone(), ns);
    let pods = Api::namespaced(c.client.clone(), ns);
    (c, jobs, pods)
}

async fn create(jobs: &Api<Job>, j: &Job) -> String {
    let j = jobs
        .create(&PostParams::default(), j)
        .await
        .expect("create job");
    j.metadata.uid.expect("uid")
}

/// Every pod controlled by `uid`, terminating ones too.
async fn all_pods(pods: &Api<Pod>, uid: &str) -> Vec<Pod> {
    pods.list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| {
            p.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == uid && o.controller == Some(true))
        })
        .collect()
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn running(ps: &[Pod]) -> Vec<Pod> {
    ps.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| !matches!(phase(p), "Succeeded" | "Failed"))
        .cloned()
        .collect()
}

fn tracked(p: &Pod) -> bool {
    p.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == FINALIZER)
}

async fn wait_running(pods: &Api<Pod>, uid: &str, n: usize) -> Vec<Pod> {
    common::eventually(&format!("{n} running pods"), || async {
        let p = running(&all_pods(pods, uid).await);
        (p.len() == n).then_some(p)
    })
    .await
}

/// What a kubelet reports when the container exits with `code`.
async fn finish(pods: &Api<Pod>, name: &str, code: i32) {
    let phase = if code == 0 { "Succeeded" } else { "Failed" };
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let status = json!({"status": {"phase": phase, "containerStatuses": [{
        "name": "c", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": code, "startedAt": now, "finishedAt": now,
            "reason": if code == 0 { "Completed" } else { "Error" }}}}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("finish pod");
}

fn condition(j: &Job, ty: &str) -> Option<(String, String)> {
    j.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == ty)
        .map(|c| (c.status.clone(), c.reason.clone().unwrap_or_default()))
}

async fn wait_job(jobs: &Api<Job>, name: &str, what: &str, ok: impl Fn(&Job) -> bool) -> Job {
    common::eventually(what, || async {
        jobs.get(name).await.ok().filter(|j| ok(j))
    })
    .await
}

fn counts(j: &Job) -> (i32, i32, i32) {
    let s = j.status.clone().unwrap_or_default();
    (
        s.active.unwrap_or(0),
        s.succeeded.unwrap_or(0),
        s.failed.unwrap_or(0),
    )
}

#[tokio::test]
async fn completions_and_parallelism_with_finalizer_tracking_complete_the_job() {
    let (_c, jobs, pods) = setup("job-nonindexed", &["job"]).await;
    let uid = create(
        &jobs,
        &job("work", json!({"completions": 3, "parallelism": 2})),
    )
    .await;
    let first = wait_running(&pods, &uid, 2).await;
    for p in &first {
        let l = p.metadata.labels.clone().unwrap_or_default();
        assert_eq!(l.get("batch.kubernetes.io/controller-uid"), Some(&uid));
        assert_eq!(l.get("controller-uid"), Some(&uid));
        assert_eq!(
            l.get("batch.kubernetes.io/job-name").map(String::as_str),
            Some("work")
        );
        assert_eq!(l.get("job-name").map(String::as_str), Some("work"));
        assert_eq!(p.metadata.generate_name.as_deref(), Some("work-"));
        assert!(tracked(p), "new pods carry the tracking finalizer");
        let o = &p.metadata.owner_references.clone().unwrap_or_default()[0];
        assert_eq!(
            (o.kind.as_str(), o.controller, o.block_owner_deletion),
            ("Job", Some(true), Some(true))
        );
    }
    wait_job(&jobs, "work", "active 2 and a start time", |j| {
        counts(j).0 == 2 && j.status.as_ref().is_some_and(|s| s.start_time.is_some())
    })
    .await;

    // One succeeds: counted, released, replaced (still at most 2 running).
    finish(
        &pods,
        &first[0].metadata.name.clone().unwrap_or_default(),
        0,
    )
    .await;
    wait_job(&jobs, "work", "succeeded 1", |j| counts(j).1 == 1).await;
    common::eventually("the succeeded pod released", || async {
        let p = pods
            .get(first[0].metadata.name.as_deref().unwrap_or(""))
            .await
            .ok()?;
        (!tracked(&p)).then_some(())
    })
    .await;
    let second = wait_running(&pods, &uid, 2).await;
    assert!(running(&all_pods(&pods, &uid).await).len() <= 2);

    // Two more succeed: 3 completions, one pod needed after the second.
    for p in &second {
        finish(&pods, p.metadata.name.as_deref().unwrap_or(""), 0).await;
    }
    let done = wait_job(&jobs, "work", "Complete", |j| {
        condition(j, "Complete").is_some_and(|c| c.0 == "True")
    })
    .await;
    assert_eq!(counts(&done), (0, 3, 0));
    assert_eq!(
        condition(&done, "SuccessCriteriaMet"),
        Some(("True".into(), "CompletionsReached".into()))
    );
    let st = done.status.clone().unwrap_or_default();
    assert!(st.completion_time.is_some());
    let unc = st.uncounted_terminated_pods.unwrap_or_default();
    assert!(
        unc.succeeded.unwrap_or_default().is_empty() && unc.failed.unwrap_or_default().is_empty()
    );
    common::eventually("every pod released", || async {
        let ps = all_pods(&pods, &uid).await;
        (ps.len() == 3 && ps.iter().all(|p| !tracked(p))).then_some(())
    })
    .await;
}

#[tokio::test]
async fn work_queue_job_completes_when_one_succeeds_and_none_run() {
    let (_c, jobs, pods) = setup("job-queue", &["job"]).await;
    let uid = create(&jobs, &job("queue", json!({"parallelism": 2}))).await;
    let ps = wait_running(&pods, &uid, 2).await;
    finish(&pods, ps[0].metadata.name.as_deref().unwrap_or(""), 0).await;
    wait_job(&jobs, "queue", "succeeded 1", |j| counts(j).1 == 1).await;
    // No replacement once one succeeded; the other finishes the Job.
    assert_eq!(running(&all_pods(&pods, &uid).await).len(), 1);
    finish(&pods, ps[1].metadata.name.as_deref().unwrap_or(""), 0).await;
    let j = wait_job(&jobs, "queue", "Complete", |j| {
        condition(j, "Complete").is_some()
    })
    .await;
    assert_eq!(counts(&j), (0, 2, 0));
}

#[tokio::test]
async fn past_backoff_limit_the_job_fails_and_its_pods_go() {
    let (_c, jobs, pods) = setup("job-backoff", &["job"]).await;
    let uid = create(
        &jobs,
        &job(
            "flaky",
            json!({"completions": 2, "parallelism": 2, "backoffLimit": 0}),
        ),
    )
    .await;
    let ps = wait_running(&pods, &uid, 2).await;
    finish(&pods, ps[0].metadata.name.as_deref().unwrap_or(""), 1).await;
    let j = wait_job(&jobs, "flaky", "Failed", |j| {
        condition(j, "Failed").is_some()
    })
    .await;
    assert_eq!(
        condition(&j, "Failed"),
        Some(("True".into(), "BackoffLimitExceeded".into()))
    );
    assert_eq!(
        condition(&j, "FailureTarget"),
        Some(("True".into(), "BackoffLimitExceeded".into()))
    );
    assert!(condition(&j, "Complete").is_none());
    let (active, succeeded, failed) = counts(&j);
    assert_eq!((active, succeeded), (0, 0));
    // The failed pod, and the running one deleted before it could finish.
    assert_eq!(failed, 2);
    common::eventually("no running or tracked pod left", || async {
        let ps = all_pods(&pods, &uid).await;
        (running(&ps).is_empty() && ps.iter().all(|p| !tracked(p))).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_failed_pod_is_replaced_after_the_backoff_delay_then_the_limit_fails_the_job() {
    let (_c, jobs, pods) = setup("job-retry", &["job"]).await;
    let uid = create(&jobs, &job("retry", json!({"backoffLimit": 1}))).await;
    let first = wait_running(&pods, &uid, 1).await;
    finish(&pods, first[0].metadata.name.as_deref().unwrap_or(""), 2).await;
    wait_job(&jobs, "retry", "failed 1", |j| counts(j).2 == 1).await;
    // A replacement comes after upstream's 10 s initial backoff.
    let second = wait_running(&pods, &uid, 1).await;
    assert_ne!(second[0].metadata.uid, first[0].metadata.uid);
    assert!(condition(&jobs.get("retry").await.expect("job"), "Failed").is_none());
    finish(&pods, second[0].metadata.name.as_deref().unwrap_or(""), 2).await;
    let j = wait_job(&jobs, "retry", "Failed", |j| {
        condition(j, "Failed").is_some()
    })
    .await;
    assert_eq!(
        condition(&j, "Failed").map(|c| c.1).as_deref(),
        Some("BackoffLimitExceeded")
    );
    assert_eq!(counts(&j), (0, 0, 2));
}

#[tokio::test]
async fn indexed_job_runs_each_index_and_reports_completed_indexes() {
    let (_c, jobs, pods) = setup("job-indexed", &["job"]).await;
    let uid = create(
        &jobs,
        &job(
            "idx",
            json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed"}),
        ),
    )
    .await;
    let ps = wait_running(&pods, &uid, 3).await;
    let mut seen = Vec::new();
    for p in &ps {
        let ann = p.metadata.annotations.clone().unwrap_or_default();
        let i = ann
            .get("batch.kubernetes.io/job-completion-index")
            .cloned()
            .expect("completion index annotation");
        let spec = p.spec.clone().unwrap_or_default();
        assert_eq!(spec.hostname, Some(format!("idx-{i}")));
        let env = spec.containers[0].env.clone().unwrap_or_default();
        assert!(env
            .iter()
            .any(|e| e.name == "JOB_COMPLETION_INDEX" && e.value.as_deref() == Some(i.as_str())));
        seen.push((i, p.metadata.name.clone().unwrap_or_default()));
    }
    seen.sort();
    assert_eq!(
        seen.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(),
        ["0", "1", "2"]
    );
    finish(&pods, &seen[1].1, 0).await;
    wait_job(&jobs, "idx", "completedIndexes 1", |j| {
        j.status
            .as_ref()
            .and_then(|s| s.completed_indexes.as_deref())
            == Some("1")
    })
    .await;
    // A failed index is retried (backoff 10 s) with the same index.
    finish(&pods, &seen[0].1, 1).await;
    finish(&pods, &seen[2].1, 0).await;
    wait_job(&jobs, "idx", "completedIndexes 1-2", |j| {
        j.status
            .as_ref()
            .and_then(|s| s.completed_indexes.as_deref())
            == Some("1-2")
    })
    .await;
    let retry = wait_running(&pods, &uid, 1).await;
    let ann = retry[0].metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        ann.get("batch.kubernetes.io/job-completion-index")
            .map(String::as_str),
        Some("0")
    );
    finish(&pods, retry[0].metadata.name.as_deref().unwrap_or(""), 0).await;
    let j = wait_job(&jobs, "idx", "Complete", |j| {
        condition(j, "Complete").is_some()
    })
    .await;
    let st = j.status.clone().unwrap_or_default();
    assert_eq!(st.completed_indexes.as_deref(), Some("0-2"));
    assert_eq!(counts(&j), (0, 3, 1));
}

#[tokio::test]
async fn active_deadline_fails_the_job_and_deletes_its_pods() {
    let (_c, jobs, pods) = setup("job-deadline", &["job"]).await;
    let uid = create(
        &jobs,
        &job(
            "slow",
            json!({"parallelism": 2, "completions": 4, "activeDeadlineSeconds": 2}),
        ),
    )
    .await;
    wait_running(&pods, &uid, 2).await;
    let j = wait_job(&jobs, "slow", "Failed", |j| {
        condition(j, "Failed").is_some()
    })
    .await;
    assert_eq!(
        condition(&j, "Failed"),
        Some(("True".into(), "DeadlineExceeded".into()))
    );
    common::eventually("no running or tracked pod left", || async {
        let ps = all_pods(&pods, &uid).await;
        (running(&ps).is_empty() && ps.iter().all(|p| !tracked(p))).then_some(())
    })
    .await;
}

#[tokio::test]
async fn suspend_deletes_active_pods_and_resume_recreates_them() {
    let (_c, jobs, pods) = setup("job-suspend", &["job"]).await;
    let uid = create(
        &jobs,
        &job(
            "paused",
            json!({"parallelism": 2, "completions": 2, "suspend": true}),
        ),
    )
    .await;
    let j = wait_job(&jobs, "paused", "Suspended", |j| {
        condition(j, "Suspended").is_some()
    })
    .await;
    assert_eq!(
        condition(&j, "Suspended"),
        Some(("True".into(), "JobSuspended".into()))
    );
    assert!(all_pods(&pods, &uid).await.is_empty());
    assert!(j.status.and_then(|s| s.start_time).is_none());

    let resume = json!({"spec": {"suspend": false}});
    jobs.patch("paused", &PatchParams::default(), &Patch::Merge(&resume))
        .await
        .expect("resume");
    wait_running(&pods, &uid, 2).await;
    let j = wait_job(&jobs, "paused", "resumed", |j| {
        condition(j, "Suspended").is_some_and(|c| c.0 == "False")
    })
    .await;
    assert_eq!(
        condition(&j, "Suspended").map(|c| c.1).as_deref(),
        Some("JobResumed")
    );
    assert!(j.status.and_then(|s| s.start_time).is_some());

    let suspend = json!({"spec": {"suspend": true}});
    jobs.patch("paused", &PatchParams::default(), &Patch::Merge(&suspend))
        .await
        .expect("suspend");
    wait_running(&pods, &uid, 0).await;
    let j = wait_job(&jobs, "paused", "suspended again", |j| {
        condition(j, "Suspended").is_some_and(|c| c.0 == "True") && counts(j).0 == 0
    })
    .await;
    // Pods deleted for suspension are not failures.
    assert_eq!(counts(&j).2, 0);
    assert!(condition(&j, "Failed").is_none());
}

#[tokio::test]
async fn a_deleted_job_releases_its_pods_so_the_gc_can_remove_them() {
    let (_c, jobs, pods) = setup("job-delete", &["job", "garbagecollector"]).await;
    let uid = create(
        &jobs,
        &job("gone", json!({"parallelism": 2, "completions": 2})),
    )
    .await;
    wait_running(&pods, &uid, 2).await;
    jobs.delete("gone", &DeleteParams::background())
        .await
        .expect("delete job");
    common::eventually("the job's pods gone", || async {
        all_pods(&pods, &uid).await.is_empty().then_some(())
    })
    .await;
}

#[tokio::test]
async fn ttl_after_finished_deletes_a_finished_job_and_the_gc_its_pods() {
    let (_c, jobs, pods) = setup(
        "job-ttl",
        &["job", "ttl-after-finished", "garbagecollector"],
    )
    .await;
    let keep = create(&jobs, &job("keep", json!({}))).await;
    let uid = create(&jobs, &job("short", json!({"ttlSecondsAfterFinished": 1}))).await;
    let ps = wait_running(&pods, &uid, 1).await;
    finish(&pods, ps[0].metadata.name.as_deref().unwrap_or(""), 0).await;
    // Finish times have one-second resolution, so the Job may be gone
    // moments after it completes: wait for either.
    common::eventually("the job Complete (or already cleaned up)", || async {
        match jobs.get_opt("short").await {
            Ok(None) => Some(()),
            Ok(Some(j)) => condition(&j, "Complete").map(|_| ()),
            Err(_) => None,
        }
    })
    .await;
    common::eventually("the finished job deleted", || async {
        matches!(jobs.get_opt("short").await, Ok(None)).then_some(())
    })
    .await;
    common::eventually("its pod deleted", || async {
        all_pods(&pods, &uid).await.is_empty().then_some(())
    })
    .await;
    // A Job without a TTL (and unfinished) stays.
    let kept = jobs.get("keep").await.expect("unfinished job kept");
    assert_eq!(kept.metadata.uid.as_deref(), Some(keep.as_str()));
}

#[tokio::test]
async fn pod_failure_policy_ignores_or_fails_the_job_by_exit_code() {
    let (_c, jobs, pods) = setup("job-pfp", &["job"]).await;
    let policy = json!({"rules": [
        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}},
        {"action": "FailJob", "onExitCodes": {"containerName": "c", "operator": "In", "values": [42]}},
    ]});
    let uid = create(&jobs, &job("pfp", json!({"podFailurePolicy": policy}))).await;
    let first = wait_running(&pods, &uid, 1).await;
    finish(&pods, first[0].metadata.name.as_deref().unwrap_or(""), 3).await;
    // Ignored: released, not counted, replaced at once.
    common::eventually("the ignored pod released", || async {
        let p = pods
            .get(first[0].metadata.name.as_deref().unwrap_or(""))
            .await
            .ok()?;
        (!tracked(&p)).then_some(())
    })
    .await;
    let second = wait_running(&pods, &uid, 1).await;
    assert_ne!(second[0].metadata.uid, first[0].metadata.uid);
    assert_eq!(counts(&jobs.get("pfp").await.expect("job")).2, 0);

    finish(&pods, second[0].metadata.name.as_deref().unwrap_or(""), 42).await;
    let j = wait_job(&jobs, "pfp", "Failed", |j| condition(j, "Failed").is_some()).await;
    assert_eq!(
        condition(&j, "Failed"),
        Some(("True".into(), "PodFailurePolicy".into()))
    );
    let msg = j
        .status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .find(|c| c.type_ == "Failed")
        .and_then(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        msg.contains("failed with exit code 42 matching FailJob rule at index 1"),
        "{msg}"
    );
    assert_eq!(counts(&j), (0, 0, 1));
}

#[tokio::test]
async fn lowering_parallelism_removes_pods_without_counting_them_failed() {
    let (_c, jobs, pods) = setup("job-scale", &["job"]).await;
    let uid = create(
        &jobs,
        &job("wide", json!({"parallelism": 3, "completions": 6})),
    )
    .await;
    wait_running(&pods, &uid, 3).await;
    let narrow = json!({"spec": {"parallelism": 1}});
    jobs.patch("wide", &PatchParams::default(), &Patch::Merge(&narrow))
        .await
        .expect("lower parallelism");
    wait_running(&pods, &uid, 1).await;
    let j = wait_job(&jobs, "wide", "active 1", |j| counts(j).0 == 1).await;
    assert_eq!(counts(&j).2, 0);
    assert!(condition(&j, "Failed").is_none() && condition(&j, "FailureTarget").is_none());
}

#[tokio::test]
async fn a_restarted_controller_counts_nothing_twice_and_creates_nothing_extra() {
    let (mut c, jobs, pods) = setup("job-restart", &["job"]).await;
    let uid = create(
        &jobs,
        &job("steady", json!({"parallelism": 2, "completions": 3})),
    )
    .await;
    let ps = wait_running(&pods, &uid, 2).await;
    finish(&pods, ps[0].metadata.name.as_deref().unwrap_or(""), 0).await;
    wait_job(&jobs, "steady", "succeeded 1, active 2", |j| {
        let (a, s, _) = counts(j);
        s == 1 && a == 2
    })
    .await;
    let before: Vec<Pod> = all_pods(&pods, &uid).await;
    c.restart_controllers(&["job"]).await;
    // The new controller syncs (a status write proves it ran) ...
    let one_more = running(&before)[0]
        .metadata
        .name
        .clone()
        .unwrap_or_default();
    finish(&pods, &one_more, 0).await;
    wait_job(&jobs, "steady", "succeeded 2", |j| counts(j).1 == 2).await;
    // ... without counting the first pod again or creating beyond parallelism.
    let j = wait_job(&jobs, "steady", "active 1 (one completion left)", |j| {
        counts(j).0 == 1
    })
    .await;
    assert_eq!(counts(&j), (1, 2, 0));
    assert_eq!(all_pods(&pods, &uid).await.len(), before.len());
}

#[tokio::test]
async fn with_restart_policy_on_failure_container_restarts_count_against_the_backoff_limit() {
    let (_c, jobs, pods) = setup("job-onfailure", &["job"]).await;
    let mut j = job("restarts", json!({"backoffLimit": 2}));
    if let Some(ps) = j.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
        ps.restart_policy = Some("OnFailure".into());
    }
    let uid = create(&jobs, &j).await;
    let ps = wait_running(&pods, &uid, 1).await;
    let name = ps[0].metadata.name.clone().unwrap_or_default();
    let restarted = |n: i32| {
        json!({"status": {"phase": "Running", "containerStatuses": [{
            "name": "c", "image": "busybox", "imageID": "", "ready": false, "restartCount": n,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}})
    };
    pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&restarted(1)))
        .await
        .expect("one restart");
    wait_job(&jobs, "restarts", "the restart seen (still running)", |j| {
        counts(j).0 == 1
    })
    .await;
    assert!(condition(&jobs.get("restarts").await.expect("job"), "FailureTarget").is_none());
    pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&restarted(2)))
        .await
        .expect("two restarts");
    let j = wait_job(&jobs, "restarts", "Failed", |j| {
        condition(j, "Failed").is_some()
    })
    .await;
    assert_eq!(
        condition(&j, "Failed").map(|c| c.1).as_deref(),
        Some("BackoffLimitExceeded")
    );
    common::eventually("the pod deleted and released", || async {
        let ps = all_pods(&pods, &uid).await;
        (running(&ps).is_empty() && ps.iter().all(|p| !tracked(p))).then_some(())
    })
    .await;
}
