//! The ReplicaSet and ReplicationController controllers (upstream's
//! pkg/controller/replicaset/replica_set.go, replica_set_utils.go, and
//! pkg/controller/replication, which runs the same code on RCs): keep
//! `spec.replicas` active pods matching the selector, adopting orphans and
//! releasing pods that stopped matching (controllerRef), creating in
//! slow-start batches and deleting by upstream's ranking, guarded by
//! [`expectations`], and report status.

pub mod expectations;
pub mod ranking;
pub(crate) mod sync;

use std::sync::Arc;

use apimachinery::labels::Selector;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, ReplicationController};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use serde_json::Value;

use crate::descriptors::ControllerFuture;
use crate::informers::Watched;
use crate::{ControllerContext, Error, StartError};
use expectations::Expectations;

/// Upstream's `BurstReplicas`: at most this many creates or deletes per sync.
pub const BURST_REPLICAS: usize = 500;

/// What the shared code needs of a ReplicaSet or a ReplicationController.
#[derive(Debug, Clone)]
pub struct Owner {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub generation: Option<i64>,
    pub deleting: bool,
    pub replicas: i32,
    pub min_ready_seconds: i32,
    pub selector: Selector,
    pub template: Option<PodTemplateSpec>,
    /// The current status, as JSON (both kinds' statuses have one shape).
    pub status: Value,
}

impl Owner {
    /// The reference Events about this owner carry.
    pub fn reference(&self) -> k8s_openapi::api::core::v1::ObjectReference {
        k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some(self.api_version.into()),
            kind: Some(self.kind.into()),
            namespace: Some(self.namespace.clone()),
            name: Some(self.name.clone()),
            uid: Some(self.uid.clone()),
            ..Default::default()
        }
    }
}

/// The two kinds this controller runs on.
pub trait ReplicaOwner:
    Watched + serde::Serialize + Resource<Scope = k8s_openapi::NamespaceResourceScope>
{
    const NAME: &'static str;
    fn owner(&self) -> Option<Owner>;
}

fn common(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    api_version: &'static str,
    kind: &'static str,
) -> Option<(String, String, String)> {
    Some((
        meta.namespace.clone()?,
        meta.name.clone()?,
        meta.uid.clone()?,
    ))
    .filter(|_| !api_version.is_empty() && !kind.is_empty())
}

impl ReplicaOwner for ReplicaSet {
    const NAME: &'static str = "replicaset-controller";
    fn owner(&self) -> Option<Owner> {
        let (namespace, name, uid) = common(&self.metadata, "apps/v1", "ReplicaSet")?;
        let spec = self.spec.as_ref()?;
        let selector = serde_json::to_value(&spec.selector).ok()?;
        Some(Owner {
            api_version: "apps/v1",
            kind: "ReplicaSet",
            namespace,
            name,
            uid,
            generation: self.metadata.generation,
            deleting: self.metadata.deletion_timestamp.is_some(),
            replicas: spec.replicas.unwrap_or(1),
            min_ready_seconds: spec.min_ready_seconds.unwrap_or(0),
            // An unparsable selector selects nothing (validation refuses it anyway).
            selector: Selector::from_label_selector(&selector)
                .unwrap_or_else(|_| Selector::nothing()),
            template: spec.template.clone(),
            status: serde_json::to_value(&self.status).unwrap_or(Value::Null),
        })
    }
}

impl ReplicaOwner for ReplicationController {
    const NAME: &'static str = "replicationcontroller-controller";
    fn owner(&self) -> Option<Owner> {
        let (namespace, name, uid) = common(&self.metadata, "v1", "ReplicationController")?;
        let spec = self.spec.as_ref()?;
        // An RC's selector is a label map; empty or missing means the template's labels.
        let labels = spec
            .selector
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| spec.template.as_ref()?.metadata.as_ref()?.labels.clone())
            .unwrap_or_default();
        let selector = if labels.is_empty() {
            Selector::nothing()
        } else {
            Selector::from_set(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        };
        Some(Owner {
            api_version: "v1",
            kind: "ReplicationController",
            namespace,
            name,
            uid,
            generation: self.metadata.generation,
            deleting: self.metadata.deletion_timestamp.is_some(),
            replicas: spec.replicas.unwrap_or(1),
            min_ready_seconds: spec.min_ready_seconds.unwrap_or(0),
            selector,
            template: spec.template.clone(),
            status: serde_json::to_value(&self.status).unwrap_or(Value::Null),
        })
    }
}

pub(crate) struct Ctx<K: ReplicaOwner> {
    pub client: kube::Client,
    pub events: crate::events::EventRecorder,
    pub pods: Store<Pod>,
    pub _kind: std::marker::PhantomData<K>,
    pub expectations: Expectations,
}

/// Upstream's `startReplicaSetController`.
pub fn start_replicaset(ctx: &ControllerContext) -> Result<ControllerFuture, StartError> {
    start::<ReplicaSet>(ctx, ctx.config.concurrent_replicaset_syncs)
}

/// Upstream's `startReplicationController`.
pub fn start_replicationcontroller(
    ctx: &ControllerContext,
) -> Result<ControllerFuture, StartError> {
    start::<ReplicationController>(ctx, ctx.config.concurrent_rc_syncs)
}

fn labels_of(p: &Pod) -> std::collections::BTreeMap<String, String> {
    p.metadata.labels.clone().unwrap_or_default()
}

fn start<K: ReplicaOwner>(
    ctx: &ControllerContext,
    workers: u16,
) -> Result<ControllerFuture, StartError> {
    let owners = ctx.informers.informer::<K>();
    let pods = ctx.informers.informer::<Pod>();
    let owner_store = owners.store();
    // Orphans wake every owner in their namespace whose selector matches (adoption).
    let orphan_mapper = move |pod: Arc<Pod>| {
        let has_controller = pod
            .owner_references()
            .iter()
            .any(|o| o.controller == Some(true));
        let ns = pod.namespace().unwrap_or_default();
        let labels = labels_of(&pod);
        if has_controller || pod.metadata.deletion_timestamp.is_some() {
            return Vec::new();
        }
        owner_store
            .state()
            .iter()
            .filter(|o| o.namespace().as_deref() == Some(ns.as_str()))
            .filter(|o| o.owner().is_some_and(|w| w.selector.matches(&labels)))
            .map(|o| ObjectRef::from_obj(&**o))
            .collect::<Vec<_>>()
    };
    let controller = Controller::for_shared_stream(owners.subscribe(), owners.store())
        .owns_shared_stream(pods.subscribe())
        .watches_shared_stream(pods.subscribe(), orphan_mapper)
        .with_config(kube::runtime::controller::Config::default().concurrency(workers));
    let c = Arc::new(Ctx {
        client: ctx.client.clone(),
        events: crate::events::EventRecorder::new(ctx.client.clone(), K::NAME),
        pods: pods.store(),
        _kind: std::marker::PhantomData,
        expectations: Expectations::default(),
    });
    Ok(Box::pin(crate::runner::drive(
        K::NAME,
        controller,
        ctx.metrics.clone(),
        c,
        reconcile::<K>,
    )))
}

async fn reconcile<K: ReplicaOwner>(obj: Arc<K>, ctx: Arc<Ctx<K>>) -> Result<Action, Error> {
    let Some(owner) = obj.owner() else {
        tracing::warn!(kind = K::kind(&()).as_ref(), name = %obj.name_any(), "object without namespace, uid or spec; skipped");
        return Ok(Action::await_change());
    };
    sync::sync(&ctx, &owner).await
}
