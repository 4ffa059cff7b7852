//! The DaemonSet controller (upstream's pkg/controller/daemon:
//! daemon_controller.go, update.go): one pod per eligible node
//! ([`util::should_run`]: nodeSelector, required node affinity, taints
//! against the pod's tolerations plus the default daemon tolerations),
//! each pinned to its node by a `metadata.name` node affinity for the
//! scheduler to bind; one ControllerRevision per template
//! ([`crate::history`]), pods labelled with its `controller-revision-hash`;
//! RollingUpdate within maxUnavailable or maxSurge, or OnDelete; and the
//! status `kubectl rollout status ds/…` reads.
//!
//! Pods are claimed as upstream's ControllerRefManager does
//! (`controllerref.rs`): orphans matching the selector are adopted.

pub mod util;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use apimachinery::labels::Selector;
use futures::future::join_all;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::descriptors::ControllerFuture;
use crate::history::{self, CONTROLLER_REVISION_HASH};
use crate::replicaset::expectations::{Expectations, Seen};
use crate::replicaset::sync::slow_start_batch;
use crate::replicaset::BURST_REPLICAS;
use crate::{is_not_found, ControllerContext, Error, StartError};

pub const NAME: &str = "daemonset-controller";

pub(crate) struct Ctx {
    pub client: kube::Client,
    pub events: crate::events::EventRecorder,
    pub pods: Store<Pod>,
    pub nodes: Store<Node>,
    pub revisions: Store<ControllerRevision>,
    pub expectations: Expectations,
}

/// Upstream's `startDaemonSetController`.
pub fn start(ctx: &ControllerContext) -> Result<ControllerFuture, StartError> {
    let sets = ctx.informers.informer::<DaemonSet>();
    let pods = ctx.informers.informer::<Pod>();
    let nodes = ctx.informers.informer::<Node>();
    let revisions = ctx.informers.informer::<ControllerRevision>();
    let ds_store = sets.store();
    // Any node change may change where every DaemonSet should run.
    let node_mapper = move |_: Arc<Node>| {
        ds_store
            .state()
            .iter()
            .map(|d| ObjectRef::from_obj(&**d))
            .collect::<Vec<_>>()
    };
    let controller = Controller::for_shared_stream(sets.subscribe(), sets.store())
        .owns_shared_stream(pods.subscribe())
        .owns_shared_stream(revisions.subscribe())
        .watches_shared_stream(nodes.subscribe(), node_mapper)
        .with_config(kube::runtime::controller::Config::default().concurrency(2));
    let c = Arc::new(Ctx {
        client: ctx.client.clone(),
        events: crate::events::EventRecorder::new(ctx.client.clone(), NAME),
        pods: pods.store(),
        nodes: nodes.store(),
        revisions: revisions.store(),
        expectations: Expectations::default(),
    });
    Ok(Box::pin(crate::runner::drive(
        NAME,
        controller,
        ctx.metrics.clone(),
        c,
        reconcile,
    )))
}

fn controlled_by(refs: &[OwnerReference], uid: &str) -> bool {
    refs.iter()
        .any(|o| o.controller == Some(true) && o.uid == uid)
}

async fn reconcile(ds: Arc<DaemonSet>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let (Some(ns), Some(uid), Some(spec)) = (
        ds.metadata.namespace.clone(),
        ds.metadata.uid.clone(),
        ds.spec.as_ref(),
    ) else {
        tracing::warn!(name = %ds.name_any(), "daemonset without namespace, uid or spec; skipped");
        return Ok(Action::await_change());
    };
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = ds.name_any();
    let key = format!("{ns}/{name}");
    let selector = serde_json::to_value(&spec.selector)
        .ok()
        .and_then(|v| Selector::from_label_selector(&v).ok());
    let Some(selector) = selector.filter(|s| !s.is_empty()) else {
        tracing::warn!(daemonset = %key, "empty or invalid selector; skipped");
        return Ok(Action::await_change());
    };
    let generation = ds.metadata.generation;
    let revisions: Vec<ControllerRevision> = ctx
        .revisions
        .state()
        .iter()
        .filter(|r| {
            r.metadata.namespace.as_deref() == Some(ns.as_str())
                && controlled_by(r.owner_references(), &uid)
        })
        .map(|r| (**r).clone())
        .collect();
    let controller_ref = OwnerReference {
        api_version: "apps/v1".into(),
        kind: "DaemonSet".into(),
        name: name.clone(),
        uid: uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let all_pods = ctx.pods.state();
    let claimed = crate::controllerref::claim_pods(
        &ctx.client,
        &ns,
        &controller_ref,
        &selector,
        crate::controllerref::candidates(&all_pods, &ns, &uid),
        || crate::controllerref::owner_is_live::<DaemonSet>(&ctx.client, &ns, &name, &uid),
    )
    .await?;
    let pods: Vec<&Pod> = claimed.iter().map(|p| &**p).collect();
    let status = ds.status.clone().unwrap_or_default();
    let revs = history::sync_revisions(
        &ctx.client,
        &history::Owner {
            namespace: &ns,
            name: &name,
            controller_ref: controller_ref.clone(),
            template: &spec.template,
            collision_count: status.collision_count,
        },
        revisions,
    )
    .await?;
    let hash = revs.hash.clone();

    let nodes: Vec<(Arc<Node>, (bool, bool))> = ctx
        .nodes
        .state()
        .into_iter()
        .map(|n| {
            let r = util::should_run(&ds, &n);
            (n, r)
        })
        .collect();
    let mut node_pods: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
    for p in &pods {
        if let Some(n) = util::target_node(p) {
            node_pods.entry(n.to_string()).or_default().push(p);
        }
    }
    let by_uid: BTreeMap<&str, Seen> = all_pods
        .iter()
        .filter_map(|p| {
            let seen = if p.metadata.deletion_timestamp.is_some() {
                Seen::Terminating
            } else {
                Seen::Present
            };
            Some((p.metadata.uid.as_deref()?, seen))
        })
        .collect();
    let satisfied = ctx
        .expectations
        .satisfied(&key, |u| by_uid.get(u).copied().unwrap_or(Seen::Absent));
    let strategy = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate");
    let now = Timestamp::now();
    let min_ready = i64::from(spec.min_ready_seconds.unwrap_or(0));
    let desired = nodes.iter().filter(|(_, (run, _))| *run).count();
    let bounds = util::bounds(&ds, i32::try_from(desired).unwrap_or(i32::MAX));
    let surge = strategy == "RollingUpdate" && bounds.max_surge > 0;
    let mut sync_err = None;
    if satisfied {
        let mut create_on = Vec::new();
        let mut delete = Vec::new();
        for (node, (run, cont)) in &nodes {
            let n = node.metadata.name.clone().unwrap_or_default();
            let on = node_pods.get(&n).cloned().unwrap_or_default();
            let (create, del) = util::pods_for_node(*run, *cont, &on, &hash, generation, surge);
            if create {
                create_on.push(n);
            }
            delete.extend(del);
        }
        if create_on.is_empty() && delete.is_empty() && strategy == "RollingUpdate" {
            let continuing: BTreeMap<String, Vec<&Pod>> = nodes
                .iter()
                .filter(|(_, (_, cont))| *cont)
                .filter_map(|(n, _)| {
                    let n = n.metadata.name.clone()?;
                    let pods = node_pods.get(&n)?.clone();
                    Some((n, pods))
                })
                .collect();
            let step = util::rolling_update(&continuing, &hash, generation, bounds, min_ready, now);
            create_on = step.create_on;
            delete = step.delete;
        }
        if let Err(e) = sync_nodes(
            &ctx,
            &ds,
            &key,
            &controller_ref,
            &hash,
            &create_on,
            &delete,
            &pods,
        )
        .await
        {
            sync_err = Some(e);
        }
    }

    let in_use: Vec<&str> = pods
        .iter()
        .filter_map(|p| p.metadata.labels.as_ref()?.get(CONTROLLER_REVISION_HASH))
        .map(String::as_str)
        .collect();
    let current = revs.update.metadata.name.clone().unwrap_or_default();
    history::truncate(
        &ctx.client,
        &ns,
        &revs.all,
        &in_use,
        &[current.as_str()],
        spec.revision_history_limit.unwrap_or(10),
    )
    .await?;

    let flags: Vec<(Arc<Node>, bool)> = nodes
        .iter()
        .map(|(n, (run, _))| (n.clone(), *run))
        .collect();
    let c = util::counts(&flags, &node_pods, &hash, generation, min_ready, now);
    let new_status = json!({
        "desiredNumberScheduled": c.desired,
        "currentNumberScheduled": c.current,
        "numberMisscheduled": c.misscheduled,
        "numberReady": c.ready,
        "numberAvailable": c.available,
        "numberUnavailable": c.desired - c.available,
        "updatedNumberScheduled": c.updated,
        "observedGeneration": generation,
        "collisionCount": revs.collision_count,
    });
    let old = serde_json::to_value(&status).unwrap_or_default();
    let changed = new_status.as_object().into_iter().flatten().any(|(k, v)| {
        let cur = old.get(k).cloned().unwrap_or(serde_json::Value::Null);
        let zero = |v: &serde_json::Value| v.is_null() || v == &json!(0);
        !(cur == *v || zero(&cur) && zero(v))
    });
    if changed {
        let api: Api<DaemonSet> = Api::namespaced(ctx.client.clone(), &ns);
        match api
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": new_status})),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => return Ok(Action::await_change()),
            Err(e) => {
                return Err(Error::api("update status of", format!("daemonset {key}"))(
                    e,
                ))
            }
        }
    }
    if let Some(e) = sync_err {
        return Err(e);
    }
    if min_ready > 0 && c.ready > c.available {
        return Ok(Action::requeue(Duration::from_secs(
            u64::try_from(min_ready).unwrap_or(1),
        )));
    }
    Ok(Action::await_change())
}

/// The pod a DaemonSet runs on `node` (upstream's `CreatePodsWithGenerateName`
/// on the template with the daemon tolerations and the node affinity).
pub fn new_pod(
    ds: &DaemonSet,
    controller_ref: &OwnerReference,
    hash: &str,
    node: &str,
) -> Option<Pod> {
    let spec = ds.spec.as_ref()?;
    let tm = spec.template.metadata.clone().unwrap_or_default();
    let mut labels = tm.labels.unwrap_or_default();
    labels.insert(CONTROLLER_REVISION_HASH.into(), hash.to_string());
    if let Some(g) = ds.metadata.generation {
        labels.insert(util::POD_TEMPLATE_GENERATION.into(), g.to_string());
    }
    let mut pod_spec = spec.template.spec.clone()?;
    util::add_default_tolerations(&mut pod_spec);
    util::set_node_affinity(&mut pod_spec, node);
    Some(Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", controller_ref.name)),
            namespace: ds.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: tm.annotations,
            finalizers: tm.finalizers,
            owner_references: Some(vec![controller_ref.clone()]),
            ..Default::default()
        },
        spec: Some(pod_spec),
        status: None,
    })
}

/// Upstream's `syncNodes`: deletes, then creates (slow start), recording
/// expectations. Deleting first (upstream creates first) keeps a surging
/// rollout within maxSurge at every moment: an old pod whose replacement
/// became available is gone before the next node's surge pod appears.
#[allow(clippy::too_many_arguments)]
async fn sync_nodes(
    ctx: &Ctx,
    ds: &DaemonSet,
    key: &str,
    controller_ref: &OwnerReference,
    hash: &str,
    create_on: &[String],
    delete: &[String],
    pods: &[&Pod],
) -> Result<(), Error> {
    let ns = ds.metadata.namespace.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let victims: Vec<&Pod> = pods
        .iter()
        .copied()
        .filter(|p| delete.contains(&p.name_any()))
        .collect();
    ctx.expectations
        .expect_deletions(key, victims.iter().filter_map(|p| p.metadata.uid.clone()));
    let results = join_all(victims.iter().map(|p| {
        let api = api.clone();
        let name = p.name_any();
        let events = &ctx.events;
        async move {
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {
                    events.normal(
                        &ds.object_ref(&()),
                        "SuccessfulDelete",
                        format!("Deleted pod: {name}"),
                    );
                    Ok(())
                }
                Err(e) if is_not_found(&e) => Ok(()),
                Err(e) => Err(e),
            }
        }
    }))
    .await;
    if let Some(e) = results.into_iter().find_map(Result::err) {
        ctx.events.warning(
            &ds.object_ref(&()),
            "FailedDelete",
            format!("Error deleting: {e}"),
        );
        return Err(Error::api("delete pod of", format!("daemonset {key}"))(e));
    }
    let create_on: Vec<&String> = create_on.iter().take(BURST_REPLICAS).collect();
    let (created, err) = slow_start_batch(create_on.len(), 1, |i| {
        let api = api.clone();
        let pod = create_on
            .get(i)
            .and_then(|n| new_pod(ds, controller_ref, hash, n));
        async move {
            match pod {
                Some(p) => api
                    .create(&PostParams::default(), &p)
                    .await
                    .map(|p| Some((p.metadata.uid, p.metadata.name))),
                None => Ok(None),
            }
        }
    })
    .await;
    for (_, name) in created.iter().flatten() {
        ctx.events.normal(
            &ds.object_ref(&()),
            "SuccessfulCreate",
            format!("Created pod: {}", name.as_deref().unwrap_or_default()),
        );
    }
    ctx.expectations.expect_creations(
        key,
        created.into_iter().flatten().filter_map(|(uid, _)| uid),
    );
    if let Some(e) = err {
        ctx.events.warning(
            &ds.object_ref(&()),
            "FailedCreate",
            format!("Error creating: {e}"),
        );
        return Err(Error::api("create pod for", format!("daemonset {key}"))(e));
    }
    if !create_on.is_empty() || !victims.is_empty() {
        tracing::debug!(daemonset = %key, created = create_on.len(), deleted = victims.len(), "synced nodes");
    }
    Ok(())
}
