//! The ResourceQuota controller (upstream's
//! pkg/controller/resourcequota/resource_quota_controller.go with the
//! evaluators of pkg/quota/v1/evaluator/core and the generic object
//! counter): keeps every quota's `status.hard` equal to `spec.hard` and
//! `status.used` equal to what its namespace uses of each hard resource.
//!
//! - [`quantity`] (`apimachinery::quantity`): quantities, their arithmetic
//!   and canonical text.
//! - [`resources`], [`evaluator`] (the `quota` crate, shared with the API
//!   server's admission plugin): resource lists, and what pods, services,
//!   claims and counted kinds use.
//! - [`sync`]: the status a quota should have.
//!
//! What triggers a sync: a quota's own change, and any change (added,
//! updated, deleted) to an object of a measured kind, which re-syncs the
//! quotas of its namespace. Upstream reacts to deletions and to a few
//! updates only, because its admission plugin charges creations; the API
//! server's ResourceQuota plugin charges them here too, and the controller
//! still recounts on creation so that `used` is exact at once.
//! Besides, a quota is requeued when a terminating pod's grace runs out,
//! and all quotas are re-synced every `--resource-quota-sync-period`
//! (upstream's full resync, a safety net only). The status is written
//! through the `status` subresource only when it differs by value.
//!
//! Counted kinds: pods, services and claims by their evaluators; and
//! `count/<resource>.<group>` for the built-in kinds listed in [`start`]
//! (upstream discovers every listable resource instead; a `count/` name
//! of another kind gets no `used` entry here).

pub mod sync;

pub use apimachinery::quantity;
pub use quota::{evaluator, resources};

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, ReplicationController, ResourceQuota, Secret, Service,
    ServiceAccount,
};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::ResourceExt;

use self::evaluator::pods::PodEvaluator;
use self::evaluator::pvcs::PvcEvaluator;
use self::evaluator::services::ServiceEvaluator;
use self::evaluator::{Evaluator, ObjectCountEvaluator};
use crate::descriptors::ControllerFuture;
use crate::informers::{SharedInformers, Watched};
use crate::{is_conflict, is_not_found, ControllerContext, Error, StartError};

const NAME: &str = "resourcequota-controller";

/// The controller's knobs (upstream's defaults in [`Default`]).
#[derive(Debug, Clone, Copy)]
pub struct ResourceQuotaConfig {
    /// `--resource-quota-sync-period`: the full resync's period.
    pub sync_period: Duration,
    /// `--concurrent-resource-quota-syncs`.
    pub concurrent_syncs: u16,
}

impl Default for ResourceQuotaConfig {
    fn default() -> Self {
        Self {
            sync_period: Duration::from_secs(5 * 60),
            concurrent_syncs: 5,
        }
    }
}

struct Ctx {
    client: kube::Client,
    evaluators: Vec<Box<dyn Evaluator>>,
}

/// The quota controller being assembled: each measured kind's informer
/// both feeds an evaluator and triggers its namespace's quotas.
struct Wiring<'a> {
    informers: &'a SharedInformers,
    quotas: Store<ResourceQuota>,
    controller: Option<Controller<ResourceQuota>>,
    evaluators: Vec<Box<dyn Evaluator>>,
}

impl Wiring<'_> {
    /// `K`'s cache; any change to a `K` re-syncs the quotas of its namespace.
    fn watch<K: Watched>(&mut self) -> Store<K> {
        let informer = self.informers.informer::<K>();
        let quotas = self.quotas.clone();
        self.controller = self.controller.take().map(|c| {
            c.watches_shared_stream(informer.subscribe(), move |obj: Arc<K>| {
                quotas_in(&quotas, obj.namespace().as_deref())
            })
        });
        informer.store()
    }

    /// `count/<resource>.<group>` (and the legacy alias) for `K`.
    fn count<K: Watched>(&mut self, group: &str, resource: &str, alias: Option<&str>) {
        let store = self.watch::<K>();
        self.evaluators.push(Box::new(ObjectCountEvaluator::new(
            store, group, resource, alias,
        )));
    }
}

fn quotas_in(
    quotas: &Store<ResourceQuota>,
    namespace: Option<&str>,
) -> Vec<ObjectRef<ResourceQuota>> {
    let Some(namespace) = namespace else {
        return Vec::new();
    };
    quotas
        .state()
        .iter()
        .filter(|q| q.namespace().as_deref() == Some(namespace))
        .map(|q| ObjectRef::from_obj(&**q))
        .collect()
}

/// Ticks every `period`, the first after one period.
fn resync(period: Duration) -> impl Stream<Item = ()> + Send {
    let period = period.max(Duration::from_secs(1));
    let first = tokio::time::Instant::now() + period;
    tokio_stream::wrappers::IntervalStream::new(tokio::time::interval_at(first, period)).map(|_| ())
}

/// Upstream's `startResourceQuotaController`.
pub fn start(ctx: &ControllerContext) -> Result<ControllerFuture, StartError> {
    let cfg = ctx.config.resource_quota;
    let quotas = ctx.informers.informer::<ResourceQuota>();
    let mut w = Wiring {
        informers: &ctx.informers,
        quotas: quotas.store(),
        controller: Some(Controller::for_shared_stream(
            quotas.subscribe(),
            quotas.store(),
        )),
        evaluators: Vec::new(),
    };
    let pods = w.watch::<Pod>();
    w.evaluators.push(Box::new(PodEvaluator::new(pods, {
        let clock = ctx.config.clock.clone();
        Arc::new(move || clock.now())
    })));
    let services = w.watch::<Service>();
    w.evaluators.push(Box::new(ServiceEvaluator::new(services)));
    let claims = w.watch::<PersistentVolumeClaim>();
    w.evaluators.push(Box::new(PvcEvaluator::new(claims)));
    // Upstream's legacy object-count aliases.
    w.count::<ConfigMap>("", "configmaps", Some("configmaps"));
    w.count::<ResourceQuota>("", "resourcequotas", Some("resourcequotas"));
    w.count::<ReplicationController>("", "replicationcontrollers", Some("replicationcontrollers"));
    w.count::<Secret>("", "secrets", Some("secrets"));
    // Generic counts for the built-in kinds.
    w.count::<ServiceAccount>("", "serviceaccounts", None);
    w.count::<Deployment>("apps", "deployments", None);
    w.count::<ReplicaSet>("apps", "replicasets", None);
    w.count::<StatefulSet>("apps", "statefulsets", None);
    w.count::<DaemonSet>("apps", "daemonsets", None);
    w.count::<Job>("batch", "jobs", None);
    w.count::<CronJob>("batch", "cronjobs", None);
    w.count::<PodDisruptionBudget>("policy", "poddisruptionbudgets", None);
    w.count::<HorizontalPodAutoscaler>("autoscaling", "horizontalpodautoscalers", None);
    w.count::<Ingress>("networking.k8s.io", "ingresses", None);
    let Some(controller) = w.controller.take() else {
        return Err(StartError::Config {
            controller: NAME,
            message: "controller wiring lost".into(),
        });
    };
    let controller = controller
        .with_config(
            kube::runtime::controller::Config::default().concurrency(cfg.concurrent_syncs.max(1)),
        )
        .reconcile_all_on(resync(cfg.sync_period));
    let c = Arc::new(Ctx {
        client: ctx.client.clone(),
        evaluators: w.evaluators,
    });
    Ok(Box::pin(crate::runner::drive(
        NAME,
        controller,
        ctx.metrics.clone(),
        c,
        reconcile,
    )))
}

/// Upstream's `syncResourceQuota`: computes the status and writes it when
/// it changed.
async fn reconcile(quota: Arc<ResourceQuota>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let namespace = quota.namespace().unwrap_or_default();
    let name = quota.name_any();
    let next = ctx
        .evaluators
        .iter()
        .filter_map(|e| e.next_change(&namespace))
        .min();
    let done = next.map_or_else(Action::await_change, Action::requeue);
    let Some(status) = sync::desired_status(&quota, &ctx.evaluators) else {
        return Ok(done);
    };
    let mut updated = (*quota).clone();
    updated.status = Some(status);
    let api: Api<ResourceQuota> = Api::namespaced(ctx.client.clone(), &namespace);
    match api
        .replace_status(&name, &PostParams::default(), &updated)
        .await
    {
        Ok(_) => {
            tracing::debug!(resourcequota = %format!("{namespace}/{name}"), "status updated");
            Ok(done)
        }
        // Deleted meanwhile, or our copy is stale: the watch brings the news.
        Err(e) if is_not_found(&e) => Ok(Action::await_change()),
        Err(e) if is_conflict(&e) => Err(Error::Pending(format!(
            "resourcequota {namespace}/{name}: conflict"
        ))),
        Err(e) => Err(Error::api(
            "update status",
            format!("resourcequota {namespace}/{name}"),
        )(e)),
    }
}
