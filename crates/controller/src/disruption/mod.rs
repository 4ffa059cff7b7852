//! The disruption controller (upstream's pkg/controller/disruption/
//! disruption.go): keeps every PodDisruptionBudget's status current —
//! `currentHealthy`, `desiredHealthy`, `expectedPods`,
//! `disruptionsAllowed`, `observedGeneration`, the `DisruptionAllowed`
//! condition and the `disruptedPods` the eviction handler records — which
//! the API server's eviction subresource spends.
//!
//! - [`budget`]: the arithmetic (pure).
//! - [`scale`]: the expected pod count from the pods' controllers.
//! - [`stale`]: resetting `DisruptionTarget` pod conditions nobody acted on.
//!
//! A budget is synced when it changes, when a pod it selects (or selected
//! before the pod's labels changed) changes, when a controller in its
//! namespace changes (its scale), and when the oldest `disruptedPods`
//! entry expires. A sync that cannot compute the status (no controller for
//! a pod, a bad percentage, a bad selector) writes upstream's fail-safe:
//! `disruptionsAllowed: 0` with `SyncFailed`. Status is written through
//! the `status` subresource, guarded by resourceVersion, and only when it
//! changed.
//!
//! Events (`NoPods`, `UnmanagedPods`, `NotDeleted`,
//! `CalculateExpectedPodCountFailed`) are upstream's, sent when the status
//! changes rather than at every sync.

pub mod budget;
pub mod scale;
pub mod stale;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apimachinery::labels::Selector;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};

use crate::clock::Clock;
use crate::descriptors::ControllerFuture;
use crate::events::EventRecorder;
use crate::informers::Informer;
use crate::{is_conflict, is_not_found, ControllerContext, Error, StartError};

pub const NAME: &str = "disruption-controller";
/// The second loop's name in spans and metrics.
const STALE_POD_DISRUPTION: &str = "disruption-controller-stale-pod-disruption";

type Budget = PodDisruptionBudget;

struct Ctx {
    client: kube::Client,
    pods: Store<Pod>,
    owners: scale::Owners,
    clock: Arc<dyn Clock>,
    events: EventRecorder,
}

/// The budget's selector (upstream's `LabelSelectorAsSelector`): a missing
/// one selects nothing, an empty one every pod of the namespace.
pub fn selector(pdb: &Budget) -> Result<Selector, String> {
    let sel = pdb.spec.as_ref().and_then(|s| s.selector.as_ref());
    let v = serde_json::to_value(sel).map_err(|e| e.to_string())?;
    Selector::from_label_selector(&v)
}

/// The budgets selecting the pod now or with the labels it had at its
/// previous event, so a pod relabelled out of a budget wakes it (upstream's
/// `updatePod` looks at the new pod only and leaves that budget stale until
/// something else syncs it). The labels are forgotten once the pod is gone
/// from the cache.
fn pod_mapper(
    budgets: Store<Budget>,
    pods: Store<Pod>,
) -> impl Fn(Arc<Pod>) -> Vec<ObjectRef<Budget>> + Send + Sync + 'static {
    let last: Mutex<HashMap<ObjectRef<Pod>, BTreeMap<String, String>>> = Mutex::default();
    move |pod: Arc<Pod>| {
        let key = ObjectRef::from_obj(&*pod);
        let labels = pod.labels().clone();
        let before = {
            let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
            if pods.get(&key).is_some() {
                last.insert(key, labels.clone())
            } else {
                last.remove(&key)
            }
        };
        budgets
            .state()
            .iter()
            .filter(|b| b.namespace() == pod.namespace())
            .filter(|b| {
                selector(b).is_ok_and(|s| {
                    s.matches(&labels) || before.as_ref().is_some_and(|l| s.matches(l))
                })
            })
            .map(|b| ObjectRef::from_obj(&**b))
            .collect()
    }
}

/// Every budget in the namespace of a changed controller (its scale may
/// be what a budget expects).
fn namespace_mapper<K: Resource + 'static>(
    budgets: Store<Budget>,
) -> impl Fn(Arc<K>) -> Vec<ObjectRef<Budget>> + Send + Sync + 'static {
    move |owner: Arc<K>| {
        let ns = owner.meta().namespace.clone();
        budgets
            .state()
            .iter()
            .filter(|b| b.metadata.namespace == ns)
            .map(|b| ObjectRef::from_obj(&**b))
            .collect()
    }
}

/// Upstream's `startDisruptionController`.
pub fn start(ctx: &ControllerContext) -> Result<ControllerFuture, StartError> {
    let budgets = ctx.informers.informer::<Budget>();
    let pods = ctx.informers.informer::<Pod>();
    let rcs: Informer<ReplicationController> = ctx.informers.informer();
    let rss: Informer<ReplicaSet> = ctx.informers.informer();
    let deployments: Informer<Deployment> = ctx.informers.informer();
    let sets: Informer<StatefulSet> = ctx.informers.informer();
    let controller = Controller::for_shared_stream(budgets.subscribe(), budgets.store())
        .watches_shared_stream(pods.subscribe(), pod_mapper(budgets.store(), pods.store()))
        .watches_shared_stream(rcs.subscribe(), namespace_mapper(budgets.store()))
        .watches_shared_stream(rss.subscribe(), namespace_mapper(budgets.store()))
        .watches_shared_stream(deployments.subscribe(), namespace_mapper(budgets.store()))
        .watches_shared_stream(sets.subscribe(), namespace_mapper(budgets.store()))
        .with_config(kube::runtime::controller::Config::default().concurrency(2));
    let c = Arc::new(Ctx {
        client: ctx.client.clone(),
        pods: pods.store(),
        owners: scale::Owners {
            replication_controllers: rcs.store(),
            replica_sets: rss.store(),
            deployments: deployments.store(),
            stateful_sets: sets.store(),
        },
        clock: ctx.config.clock.clone(),
        events: EventRecorder::new(ctx.client.clone(), NAME),
    });
    // Upstream's stale-pod-disruption queue: one pod at a time, requeued
    // until its DisruptionTarget condition is old enough.
    let mut stale_pods = Controller::for_shared_stream(pods.subscribe(), pods.store());
    if let Some(steps) = ctx.config.clock.steps() {
        stale_pods = stale_pods.reconcile_all_on(steps);
    }
    let budgets_loop =
        crate::runner::drive(NAME, controller, ctx.metrics.clone(), c.clone(), reconcile);
    let stale_loop = crate::runner::drive(
        STALE_POD_DISRUPTION,
        stale_pods,
        ctx.metrics.clone(),
        c,
        |pod: Arc<Pod>, ctx: Arc<Ctx>| async move {
            stale::reconcile(pod, &ctx.client, &*ctx.clock).await
        },
    );
    Ok(Box::pin(async move {
        tokio::join!(budgets_loop, stale_loop);
    }))
}

/// What a sync found (upstream's `trySync`): the status, when to look
/// again, and what upstream reports in Events.
struct Synced {
    status: PodDisruptionBudgetStatus,
    recheck: Option<Duration>,
    pods: Vec<Arc<Pod>>,
    /// Selected pods without a controller while the budget needs the
    /// controllers' scale (upstream's `UnmanagedPods`).
    unmanaged: bool,
    /// Pods evicted longer ago than the deletion timeout, still there.
    not_deleted: Vec<String>,
}

/// The status the budget should have now, or why it cannot be computed.
async fn sync_status(pdb: &Budget, ctx: &Ctx) -> Result<Synced, String> {
    let sel = selector(pdb)?;
    let ns = pdb.namespace();
    let pods: Vec<Arc<Pod>> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| p.namespace() == ns && sel.matches(p.labels()))
        .collect();
    let spec = pdb.spec.clone().unwrap_or_default();
    let selected = i32::try_from(pods.len()).unwrap_or(i32::MAX);
    let needs_scale = budget::needs_scale(&spec);
    let scale = if needs_scale {
        Some(ctx.owners.expected_scale(&ctx.client, &pods).await)
    } else {
        None
    };
    let expectation = budget::expectation(&spec, selected, || {
        scale.unwrap_or_else(|| Err("the controllers' scale was not read".into()))
    })?;
    let now = ctx.clock.now();
    let recorded = pdb.status.as_ref().and_then(|s| s.disrupted_pods.as_ref());
    let disruptions = budget::live_disruptions(&pods, recorded, now);
    let healthy = budget::count_healthy(&pods, &disruptions.kept, now);
    let recheck = disruptions.recheck.map(|t| {
        let secs = t.duration_since(now).as_secs_f64().max(0.0);
        Duration::from_secs_f64(secs) + Duration::from_millis(100)
    });
    let status = budget::computed_status(pdb, healthy, expectation, disruptions.kept, now);
    let unmanaged = needs_scale
        && pods.iter().any(|p| {
            !p.owner_references()
                .iter()
                .any(|r| r.controller == Some(true))
        });
    Ok(Synced {
        status,
        recheck,
        pods,
        unmanaged,
        not_deleted: disruptions.expired,
    })
}

/// Upstream's Events of a sync, sent only when the status changes (upstream
/// sends them at every sync; the status write is the moment worth telling).
fn report(ctx: &Ctx, pdb: &Budget, synced: &Synced) {
    let reference = pdb.object_ref(&());
    if synced.pods.is_empty() {
        ctx.events
            .normal(&reference, "NoPods", "No matching pods found".into());
    }
    if synced.unmanaged {
        let selector = serde_json::to_string(&pdb.spec.as_ref().and_then(|s| s.selector.as_ref()))
            .unwrap_or_default();
        ctx.events.warning(
            &reference,
            "UnmanagedPods",
            format!(
                "Pods selected by this PodDisruptionBudget (selector: {selector}) were found to be unmanaged. \
                 As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. \
                 To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value."
            ),
        );
    }
    let (ns, name) = (pdb.namespace().unwrap_or_default(), pdb.name_any());
    for pod in synced
        .pods
        .iter()
        .filter(|p| synced.not_deleted.contains(&p.name_any()))
    {
        tracing::info!(pod = %pod.name_any(), pdb = %format!("{ns}/{name}"), "pod was expected to be deleted but it wasn't");
        ctx.events.warning(
            &pod.object_ref(&()),
            "NotDeleted",
            format!("Pod was expected by PDB {ns}/{name} to be deleted but it wasn't"),
        );
    }
}

async fn reconcile(pdb: Arc<Budget>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let (status, recheck) = match sync_status(&pdb, &ctx).await {
        Ok(synced) => {
            if budget::needs_write(&pdb, &synced.status) {
                report(&ctx, &pdb, &synced);
            }
            (synced.status, synced.recheck)
        }
        Err(message) => {
            tracing::warn!(controller = NAME, pdb = %ObjectRef::from_obj(&*pdb), error = %message, "failed to sync pdb");
            let status = budget::failed_status(&pdb, &message, ctx.clock.now());
            if budget::needs_write(&pdb, &status) {
                ctx.events.warning(
                    &pdb.object_ref(&()),
                    "CalculateExpectedPodCountFailed",
                    format!("Failed to calculate the number of expected pods: {message}"),
                );
            }
            (status, None)
        }
    };
    if budget::needs_write(&pdb, &status) {
        write_status(&ctx.client, &pdb, status).await?;
    }
    Ok(recheck.map_or_else(Action::await_change, Action::requeue))
}

/// `PUT …/poddisruptionbudgets/<name>/status` at the cached resourceVersion.
async fn write_status(
    client: &kube::Client,
    pdb: &Budget,
    status: PodDisruptionBudgetStatus,
) -> Result<(), Error> {
    let ns = pdb.namespace().unwrap_or_default();
    let name = pdb.name_any();
    let mut updated = pdb.clone();
    updated.status = Some(status);
    let api: Api<Budget> = Api::namespaced(client.clone(), &ns);
    match api
        .replace_status(&name, &PostParams::default(), &updated)
        .await
    {
        Ok(_) => Ok(()),
        // Deleted meanwhile, or our copy is stale: the watch brings the news.
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) if is_conflict(&e) => Err(Error::Pending(format!("pdb {ns}/{name}: conflict"))),
        Err(e) => Err(Error::api("update status of", format!("pdb {ns}/{name}"))(
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector::store;
    use kube::runtime::watcher::Event;
    use serde_json::json;

    fn budget(name: &str, selector: serde_json::Value) -> Budget {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "n"},
            "spec": {"minAvailable": 1, "selector": selector},
        }))
        .unwrap_or_default()
    }

    fn pod(app: &str) -> Pod {
        serde_json::from_value(
            json!({"metadata": {"name": "p", "namespace": "n", "labels": {"app": app}}}),
        )
        .unwrap_or_default()
    }

    #[test]
    fn a_missing_selector_selects_nothing_an_empty_one_everything() {
        let labels = pod("web").metadata.labels.unwrap_or_default();
        let matches = |b: &Budget| selector(b).is_ok_and(|s| s.matches(&labels));
        assert!(!matches(&budget("nil", serde_json::Value::Null)));
        assert!(matches(&budget("all", json!({}))));
        assert!(matches(&budget(
            "web",
            json!({"matchLabels": {"app": "web"}})
        )));
        assert!(!matches(&budget(
            "db",
            json!({"matchLabels": {"app": "db"}})
        )));
        assert!(selector(&budget(
            "bad",
            json!({"matchExpressions": [{"key": "app", "operator": "Nope"}]})
        ))
        .is_err());
    }

    #[test]
    fn a_relabelled_pod_wakes_the_budget_it_left() {
        let (budgets, mut bw) = store::<Budget>();
        for b in [
            budget("web", json!({"matchLabels": {"app": "web"}})),
            budget("db", json!({"matchLabels": {"app": "db"}})),
        ] {
            bw.apply_watcher_event(&Event::Apply(b));
        }
        let (pods, mut pw) = store::<Pod>();
        let map = pod_mapper(budgets, pods);
        let names = |refs: Vec<ObjectRef<Budget>>| {
            let mut n: Vec<String> = refs.into_iter().map(|r| r.name).collect();
            n.sort();
            n
        };
        let web = pod("web");
        pw.apply_watcher_event(&Event::Apply(web.clone()));
        assert_eq!(names(map(Arc::new(web))), ["web"]);
        // Relabelled web → db: both budgets must look again.
        let db = pod("db");
        pw.apply_watcher_event(&Event::Apply(db.clone()));
        assert_eq!(names(map(Arc::new(db.clone()))), ["db", "web"]);
        // The next event only concerns db.
        assert_eq!(names(map(Arc::new(db.clone()))), ["db"]);
        // Deleted: its budget is woken, and the pod forgotten.
        pw.apply_watcher_event(&Event::Delete(db.clone()));
        assert_eq!(names(map(Arc::new(db))), ["db"]);
    }
}
