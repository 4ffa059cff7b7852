//! The deployment controller (upstream's pkg/controller/deployment:
//! deployment_controller.go, sync.go, rolling.go, recreate.go,
//! progress.go): a Deployment owns ReplicaSets, one per pod template
//! (named by the template's hash); a rollout moves replicas from the old
//! ones to the new one within maxSurge/maxUnavailable (RollingUpdate) or
//! all at once (Recreate); revisions are annotations, so a rollback is a
//! template change back to an old one; status and the Progressing and
//! Available conditions are what `kubectl rollout status` reads.

mod rollout;
pub mod util;

use std::sync::Arc;

use apimachinery::labels::Selector;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::ResourceExt;

use crate::descriptors::ControllerFuture;
use crate::{ControllerContext, Error, StartError};

const NAME: &str = "deployment-controller";

pub(crate) struct Ctx {
    pub client: kube::Client,
    pub events: crate::events::EventRecorder,
    pub replica_sets: Store<ReplicaSet>,
    pub pods: Store<Pod>,
}

/// The controller (kind, name) of an object, if any.
fn controller_of(
    refs: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference],
    kind: &str,
) -> Option<String> {
    refs.iter()
        .find(|r| r.controller == Some(true) && r.kind == kind)
        .map(|r| r.name.clone())
}

/// Upstream's `startDeploymentController`.
pub fn start(ctx: &ControllerContext) -> Result<ControllerFuture, StartError> {
    let deployments = ctx.informers.informer::<Deployment>();
    let replica_sets = ctx.informers.informer::<ReplicaSet>();
    let pods = ctx.informers.informer::<Pod>();
    let dep_store = deployments.store();
    // Orphan ReplicaSets wake the Deployments whose selector matches them (adoption).
    let orphan_mapper = move |rs: Arc<ReplicaSet>| {
        if controller_of(rs.owner_references(), "Deployment").is_some()
            || rs
                .owner_references()
                .iter()
                .any(|r| r.controller == Some(true))
        {
            return Vec::new();
        }
        let labels = rs.metadata.labels.clone().unwrap_or_default();
        let ns = rs.namespace();
        dep_store
            .state()
            .iter()
            .filter(|d| d.namespace() == ns)
            .filter(|d| selector(d).is_some_and(|s| s.matches(&labels)))
            .map(|d| ObjectRef::from_obj(&**d))
            .collect::<Vec<_>>()
    };
    // Pods (for Recreate, which waits for old pods to go) map to their
    // ReplicaSet's Deployment.
    let rs_store = replica_sets.store();
    let pod_mapper = move |pod: Arc<Pod>| {
        let ns = pod.namespace().unwrap_or_default();
        controller_of(pod.owner_references(), "ReplicaSet")
            .and_then(|rs| rs_store.get(&ObjectRef::new(&rs).within(&ns)))
            .and_then(|rs| controller_of(rs.owner_references(), "Deployment"))
            .map(|d| ObjectRef::new(&d).within(&ns))
    };
    let controller = Controller::for_shared_stream(deployments.subscribe(), deployments.store())
        .owns_shared_stream(replica_sets.subscribe())
        .watches_shared_stream(replica_sets.subscribe(), orphan_mapper)
        .watches_shared_stream(pods.subscribe(), pod_mapper)
        .with_config(
            kube::runtime::controller::Config::default()
                .concurrency(ctx.config.concurrent_deployment_syncs),
        );
    let c = Arc::new(Ctx {
        client: ctx.client.clone(),
        events: crate::events::EventRecorder::new(ctx.client.clone(), "deployment-controller"),
        replica_sets: replica_sets.store(),
        pods: pods.store(),
    });
    Ok(Box::pin(crate::runner::drive(
        NAME,
        controller,
        ctx.metrics.clone(),
        c,
        reconcile,
    )))
}

pub(crate) fn selector(d: &Deployment) -> Option<Selector> {
    let v = serde_json::to_value(&d.spec.as_ref()?.selector).ok()?;
    Selector::from_label_selector(&v).ok()
}

async fn reconcile(d: Arc<Deployment>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if d.metadata.deletion_timestamp.is_some() || d.spec.is_none() {
        return Ok(Action::await_change());
    }
    let Some(sel) = selector(&d) else {
        tracing::warn!(deployment = %d.name_any(), "invalid selector; skipped");
        return Ok(Action::await_change());
    };
    if sel.is_empty() {
        // Upstream: an empty selector would select every pod; refuse it.
        tracing::warn!(deployment = %d.name_any(), "empty selector; skipped");
        return Ok(Action::await_change());
    }
    rollout::sync(&ctx, &d, &sel).await
}
