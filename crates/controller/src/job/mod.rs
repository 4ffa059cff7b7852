//! The Job controller (upstream's pkg/controller/job/job_controller.go and
//! tracking_utils.go): runs a Job's pods to `completions` successes with at
//! most `parallelism` at once, tracks finished pods with the
//! `batch.kubernetes.io/job-tracking` finalizer (counted through
//! `status.uncountedTerminatedPods`, then released), fails the Job past
//! `backoffLimit` or `activeDeadlineSeconds` or by its `podFailurePolicy`,
//! and honours `suspend`.
//!
//! Pods are the Job's by controllerRef (the Job's uid); the API server here
//! does not generate `spec.selector`, so there is no adoption by selector.

pub mod podfailurepolicy;
mod sync;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::Store;
use kube::ResourceExt;
use serde_json::json;

use crate::descriptors::ControllerFuture;
use crate::replicaset::expectations::Expectations;
use crate::{is_not_found, ControllerContext, Error, StartError};

pub const NAME: &str = "job-controller";
/// Upstream's `batch.kubernetes.io/job-tracking`.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
pub const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
pub const JOB_NAME: &str = "batch.kubernetes.io/job-name";
const LEGACY_CONTROLLER_UID: &str = "controller-uid";
const LEGACY_JOB_NAME: &str = "job-name";

/// Upstream's `backoffRecord`: failures since the last success and when
/// the last one was counted (in memory, as upstream's `backoffRecordStore`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BackoffRecord {
    pub failures: u32,
    pub last_failure: Instant,
}

pub(crate) struct Ctx {
    pub client: kube::Client,
    pub events: crate::events::EventRecorder,
    pub pods: Store<Pod>,
    pub expectations: Expectations,
    /// Pod uids whose finalizer this controller removed (and counted),
    /// until the cache shows them without it: a stale cache must not count
    /// a pod twice (upstream's `finalizerExpectations`).
    pub released: Mutex<HashMap<String, HashSet<String>>>,
    pub backoff: Mutex<HashMap<String, BackoffRecord>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Upstream's `startJobController`.
pub fn start_job(ctx: &ControllerContext) -> Result<ControllerFuture, StartError> {
    let jobs = ctx.informers.informer::<Job>();
    let pods = ctx.informers.informer::<Pod>();
    let controller = Controller::for_shared_stream(jobs.subscribe(), jobs.store())
        .owns_shared_stream(pods.subscribe())
        .with_config(kube::runtime::controller::Config::default().concurrency(5));
    let c = Arc::new(Ctx {
        client: ctx.client.clone(),
        events: crate::events::EventRecorder::new(ctx.client.clone(), NAME),
        pods: pods.store(),
        expectations: Expectations::default(),
        released: Mutex::new(HashMap::new()),
        backoff: Mutex::new(HashMap::new()),
    });
    let orphans = release_orphans(ctx.client.clone(), jobs.store(), pods.subscribe());
    let main = crate::runner::drive(NAME, controller, ctx.metrics.clone(), c, reconcile);
    Ok(Box::pin(async move {
        futures::future::join(main, orphans).await;
    }))
}

async fn reconcile(job: Arc<Job>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if job.metadata.namespace.is_none() || job.metadata.uid.is_none() || job.spec.is_none() {
        tracing::warn!(name = %job.name_any(), "job without namespace, uid or spec; skipped");
        return Ok(Action::await_change());
    }
    sync::sync(&ctx, &job).await
}

/// The uid of the Job controlling `pod`, if any.
pub(crate) fn controller_uid(pod: &Pod) -> Option<&str> {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true) && o.kind == "Job" && o.api_version == "batch/v1")
        .map(|o| o.uid.as_str())
}

pub(crate) fn has_tracking_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == TRACKING_FINALIZER)
}

/// Removes the tracking finalizer (guarded by the pod's resourceVersion).
/// A pod already gone counts as done.
pub(crate) async fn remove_finalizer(client: &kube::Client, pod: &Pod) -> Result<(), Error> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.name_any();
    let rest: Vec<&String> = pod
        .metadata
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != TRACKING_FINALIZER)
        .collect();
    let patch = json!({"metadata": {
        "finalizers": rest,
        "resourceVersion": pod.metadata.resource_version,
    }});
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(Error::api(
            "remove the job-tracking finalizer of",
            format!("pod {ns}/{name}"),
        )(e)),
    }
}

/// Pods keeping the tracking finalizer after their Job is gone (deleted in
/// the background, the GC then deleting its pods) are released, as
/// upstream's pod handlers do for orphans. Each candidate is checked with a
/// live GET of its Job first.
async fn release_orphans(
    client: kube::Client,
    jobs: Store<Job>,
    pods: futures::channel::mpsc::UnboundedReceiver<Arc<Pod>>,
) {
    pods.for_each_concurrent(4, |pod| {
        let client = client.clone();
        let jobs = jobs.clone();
        async move {
            if !has_tracking_finalizer(&pod) {
                return;
            }
            let Some(uid) = controller_uid(&pod) else {
                return;
            };
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            let in_cache = jobs
                .state()
                .iter()
                .any(|j| j.metadata.uid.as_deref() == Some(uid));
            if in_cache {
                return;
            }
            let Some(owner) = pod
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.uid == uid)
            else {
                return;
            };
            let api: Api<Job> = Api::namespaced(client.clone(), &ns);
            let gone = match api.get_opt(&owner.name).await {
                Ok(None) => true,
                Ok(Some(j)) => j.metadata.uid.as_deref() != Some(uid),
                Err(_) => false,
            };
            if gone {
                if let Err(e) = remove_finalizer(&client, &pod).await {
                    tracing::warn!(error = %e, "releasing an orphaned job pod");
                }
            }
        }
    })
    .await;
}

/// Upstream's `GetPodFromTemplate` plus the Job's labels, finalizer and,
/// for Indexed Jobs, the completion index.
pub(crate) fn pod_from_template(job: &Job, index: Option<i32>) -> Option<Pod> {
    let name = job.metadata.name.clone()?;
    let uid = job.metadata.uid.clone()?;
    let t: &PodTemplateSpec = &job.spec.as_ref()?.template;
    let tm = t.metadata.clone().unwrap_or_default();
    let mut labels = tm.labels.unwrap_or_default();
    labels.insert(CONTROLLER_UID.into(), uid.clone());
    labels.insert(LEGACY_CONTROLLER_UID.into(), uid.clone());
    labels.insert(JOB_NAME.into(), name.clone());
    labels.insert(LEGACY_JOB_NAME.into(), name.clone());
    let mut finalizers = tm.finalizers.unwrap_or_default();
    finalizers.push(TRACKING_FINALIZER.into());
    let mut annotations = tm.annotations.unwrap_or_default();
    let mut spec = t.spec.clone()?;
    if let Some(i) = index {
        annotations.insert(sync::COMPLETION_INDEX.into(), i.to_string());
        labels.insert(sync::COMPLETION_INDEX.into(), i.to_string());
        if spec.hostname.is_none() {
            spec.hostname = Some(format!("{name}-{i}"));
        }
        for c in spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten())
        {
            let env = c.env.get_or_insert_with(Vec::new);
            if !env.iter().any(|e| e.name == "JOB_COMPLETION_INDEX") {
                env.push(k8s_openapi::api::core::v1::EnvVar {
                    name: "JOB_COMPLETION_INDEX".into(),
                    value: Some(i.to_string()),
                    ..Default::default()
                });
            }
        }
    }
    let generate_name = match index {
        Some(i) => format!("{name}-{i}-"),
        None => format!("{name}-"),
    };
    Some(Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name),
            namespace: job.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: Some(annotations).filter(|a| !a.is_empty()),
            finalizers: Some(finalizers),
            owner_references: Some(vec![OwnerReference {
                api_version: "batch/v1".into(),
                kind: "Job".into(),
                name,
                uid,
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    })
}
