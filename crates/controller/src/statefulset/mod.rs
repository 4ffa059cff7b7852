//! The StatefulSet controller (upstream's pkg/controller/statefulset:
//! stateful_set.go, stateful_set_control.go, stateful_pod_control.go):
//! pods with stable identities `<set>-<ordinal>` (pod-name and pod-index
//! labels, hostname, `serviceName` as subdomain), their claims from
//! `volumeClaimTemplates` created first and kept; OrderedReady (one pod at a
//! time, each Running and Ready before the next, scale down from the
//! highest ordinal) or Parallel; ControllerRevisions for the current and
//! update revisions; RollingUpdate from the highest ordinal down to
//! `partition`, or OnDelete; and the status `kubectl rollout status sts/…` reads.
//!
//! Member pods are claimed as upstream's ControllerRefManager does
//! (`controllerref.rs`): orphans matching the selector are adopted.

pub mod plan;

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use serde_json::json;

use crate::descriptors::ControllerFuture;
use crate::history::{self, CONTROLLER_REVISION_HASH};
use crate::replicaset::expectations::{Expectations, Seen};
use crate::{is_already_exists, is_not_found, ControllerContext, Error, StartError};
use plan::{Op, Set};

pub const NAME: &str = "statefulset-controller";

pub(crate) struct Ctx {
    pub client: kube::Client,
    pub events: crate::events::EventRecorder,
    pub pods: Store<Pod>,
    pub claims: Store<PersistentVolumeClaim>,
    pub revisions: Store<ControllerRevision>,
    pub expectations: Expectations,
}

/// Upstream's `startStatefulSetController`.
pub fn start(ctx: &ControllerContext) -> Result<ControllerFuture, StartError> {
    let sets = ctx.informers.informer::<StatefulSet>();
    let pods = ctx.informers.informer::<Pod>();
    let claims = ctx.informers.informer::<PersistentVolumeClaim>();
    let revisions = ctx.informers.informer::<ControllerRevision>();
    let controller = Controller::for_shared_stream(sets.subscribe(), sets.store())
        .owns_shared_stream(pods.subscribe())
        .owns_shared_stream(revisions.subscribe())
        .with_config(kube::runtime::controller::Config::default().concurrency(5));
    let c = Arc::new(Ctx {
        client: ctx.client.clone(),
        events: crate::events::EventRecorder::new(ctx.client.clone(), NAME),
        pods: pods.store(),
        claims: claims.store(),
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

async fn reconcile(sts: Arc<StatefulSet>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let (Some(ns), Some(uid), Some(spec), Some(set)) = (
        sts.metadata.namespace.clone(),
        sts.metadata.uid.clone(),
        sts.spec.as_ref(),
        Set::from(&sts),
    ) else {
        tracing::warn!(name = %sts.name_any(), "statefulset without namespace, uid or spec; skipped");
        return Ok(Action::await_change());
    };
    if sts.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = set.name.clone();
    let key = format!("{ns}/{name}");
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
        kind: "StatefulSet".into(),
        name: name.clone(),
        uid: uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let selector = serde_json::to_value(&spec.selector)
        .ok()
        .and_then(|v| apimachinery::labels::Selector::from_label_selector(&v).ok())
        .filter(|s| !s.is_empty());
    let Some(selector) = selector else {
        tracing::warn!(statefulset = %key, "empty or invalid selector; skipped");
        return Ok(Action::await_change());
    };
    let all_pods = ctx.pods.state();
    // Only pods named as the set's members are claimed (upstream's `isMemberOf`).
    let members: Vec<Arc<Pod>> = crate::controllerref::candidates(&all_pods, &ns, &uid)
        .into_iter()
        .filter(|p| plan::ordinal(&name, p).is_some())
        .collect();
    let claimed = crate::controllerref::claim_pods(
        &ctx.client,
        &ns,
        &controller_ref,
        &selector,
        members,
        || crate::controllerref::owner_is_live::<StatefulSet>(&ctx.client, &ns, &name, &uid),
    )
    .await?;
    let pods: Vec<&Pod> = claimed.iter().map(|p| &**p).collect();
    let status = sts.status.clone().unwrap_or_default();
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
    let update_name = revs.update.metadata.name.clone().unwrap_or_default();
    let current = status
        .current_revision
        .as_deref()
        .and_then(|c| {
            revs.all
                .iter()
                .find(|r| r.metadata.name.as_deref() == Some(c))
        })
        .unwrap_or(&revs.update)
        .clone();
    let current_name = current.metadata.name.clone().unwrap_or_default();

    let end = set.start.saturating_add(set.replicas);
    let mut replicas = std::collections::BTreeMap::new();
    let mut condemned = Vec::new();
    for p in &pods {
        let Some(o) = plan::ordinal(&name, p) else {
            continue;
        };
        if (set.start..end).contains(&o) {
            replicas.insert(o, *p);
        } else {
            condemned.push((o, *p));
        }
    }
    let by_uid: std::collections::HashMap<&str, Seen> = all_pods
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
    let now = Timestamp::now();
    let mut sync_err = None;
    if satisfied {
        let ops = plan::plan(&set, &replicas, &condemned, &update_name, now);
        let templates = Templates {
            current: history::template_of(&current).unwrap_or_else(|| spec.template.clone()),
            current_name: &current_name,
            update: &spec.template,
            update_name: &update_name,
        };
        if let Err(e) = apply(&ctx, &sts, &key, &controller_ref, &templates, &ops, &pods).await {
            sync_err = Some(e);
        }
    }

    let c = plan::counts(
        &pods,
        &current_name,
        &update_name,
        set.min_ready_seconds,
        now,
    );
    // Upstream's `completeRollingUpdate`: once every pod is updated and ready.
    let (mut cur_name, mut cur_count) = (current_name.clone(), c.current);
    if set.rolling && c.updated == c.replicas && c.ready == c.replicas && c.replicas == set.replicas
    {
        cur_name = update_name.clone();
        cur_count = c.updated;
    }
    let in_use: Vec<&str> = pods
        .iter()
        .filter_map(|p| p.metadata.labels.as_ref()?.get(CONTROLLER_REVISION_HASH))
        .map(String::as_str)
        .collect();
    history::truncate(
        &ctx.client,
        &ns,
        &revs.all,
        &in_use,
        &[cur_name.as_str(), update_name.as_str()],
        spec.revision_history_limit.unwrap_or(10),
    )
    .await?;
    let new_status = json!({
        "replicas": c.replicas,
        "readyReplicas": c.ready,
        "availableReplicas": c.available,
        "currentReplicas": cur_count,
        "updatedReplicas": c.updated,
        "currentRevision": cur_name,
        "updateRevision": update_name,
        "observedGeneration": sts.metadata.generation,
        "collisionCount": revs.collision_count.unwrap_or(0),
    });
    let old = serde_json::to_value(&status).unwrap_or_default();
    let changed = new_status.as_object().into_iter().flatten().any(|(k, v)| {
        let cur = old.get(k).cloned().unwrap_or(serde_json::Value::Null);
        let zero = |v: &serde_json::Value| v.is_null() || v == &json!(0);
        !(cur == *v || zero(&cur) && zero(v))
    });
    if changed {
        let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &ns);
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
            Err(e) => return Err(Error::api("update status of", format!("statefulset {key}"))(e)),
        }
    }
    if let Some(e) = sync_err {
        return Err(e);
    }
    if set.min_ready_seconds > 0 && c.ready > c.available {
        return Ok(Action::requeue(Duration::from_secs(
            u64::try_from(set.min_ready_seconds).unwrap_or(1),
        )));
    }
    Ok(Action::await_change())
}

struct Templates<'a> {
    current: k8s_openapi::api::core::v1::PodTemplateSpec,
    current_name: &'a str,
    update: &'a k8s_openapi::api::core::v1::PodTemplateSpec,
    update_name: &'a str,
}

/// Performs a plan: claims then pods created, pods deleted, identities
/// relabelled; expectations record what the cache must show next.
async fn apply(
    ctx: &Ctx,
    sts: &StatefulSet,
    key: &str,
    controller_ref: &OwnerReference,
    templates: &Templates<'_>,
    ops: &[Op],
    pods: &[&Pod],
) -> Result<(), Error> {
    let ns = sts.metadata.namespace.clone().unwrap_or_default();
    let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let ns = ns.as_str();
    let results = join_all(ops.iter().map(|op| {
        let pod_api = pod_api.clone();
        async move {
            match op {
                Op::Create { ordinal, current } => {
                    create_claims(ctx, sts, controller_ref, *ordinal).await?;
                    let (t, rev) = if *current {
                        (&templates.current, templates.current_name)
                    } else {
                        (templates.update, templates.update_name)
                    };
                    let Some(pod) = plan::new_pod(sts, t, controller_ref, rev, *ordinal) else {
                        return Ok(());
                    };
                    let pname = pod.name_any();
                    match pod_api.create(&PostParams::default(), &pod).await {
                        Ok(p) => {
                            ctx.expectations.expect_creations(key, p.metadata.uid);
                            tracing::debug!(statefulset = %key, pod = %pname, "created pod");
                            ctx.events.normal(
                                &sts.object_ref(&()),
                                "SuccessfulCreate",
                                format!(
                                    "create Pod {pname} in StatefulSet {} successful",
                                    sts.name_any()
                                ),
                            );
                            Ok(())
                        }
                        // Still terminating under the same name: the next sync retries.
                        Err(e) if is_already_exists(&e) => Ok(()),
                        Err(e) => Err(Error::api(
                            "create",
                            format!("pod {ns}/{pname} for statefulset {key}"),
                        )(e)),
                    }
                }
                Op::Delete(pname) => {
                    let uid = pods
                        .iter()
                        .find(|p| p.metadata.name.as_deref() == Some(pname))
                        .and_then(|p| p.metadata.uid.clone());
                    ctx.expectations.expect_deletions(key, uid);
                    match pod_api.delete(pname, &DeleteParams::default()).await {
                        Ok(_) => ctx.events.normal(
                            &sts.object_ref(&()),
                            "SuccessfulDelete",
                            format!(
                                "delete Pod {pname} in StatefulSet {} successful",
                                sts.name_any()
                            ),
                        ),
                        Err(e) if is_not_found(&e) => {}
                        Err(e) => return Err(Error::api("delete", format!("pod {ns}/{pname}"))(e)),
                    }
                    tracing::debug!(statefulset = %key, pod = %pname, "deleted pod");
                    delete_scaled_claims(ctx, sts, pname).await
                }
                Op::Relabel(pname) => {
                    let ordinal = pods
                        .iter()
                        .find(|p| p.metadata.name.as_deref() == Some(pname))
                        .and_then(|p| plan::ordinal(&sts.name_any(), p));
                    let patch = json!({"metadata": {"labels": {
                        plan::POD_NAME: pname, plan::POD_INDEX: ordinal.map(|o| o.to_string())}}});
                    match pod_api
                        .patch(pname, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                    {
                        Ok(_) => Ok(()),
                        Err(e) if is_not_found(&e) => Ok(()),
                        Err(e) => Err(Error::api(
                            "update identity of",
                            format!("pod {ns}/{pname}"),
                        )(e)),
                    }
                }
            }
        }
    }))
    .await;
    results
        .into_iter()
        .collect::<Result<Vec<()>, Error>>()
        .map(|_| ())
}

/// Upstream's `createPersistentVolumeClaims`: missing claims are created;
/// existing ones are kept as they are.
async fn create_claims(
    ctx: &Ctx,
    sts: &StatefulSet,
    controller_ref: &OwnerReference,
    ordinal: i32,
) -> Result<(), Error> {
    let ns = sts.metadata.namespace.clone().unwrap_or_default();
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    for claim in plan::claims(sts, controller_ref, ordinal) {
        let cname = claim.name_any();
        if ctx
            .claims
            .get(&ObjectRef::new(&cname).within(&ns))
            .is_some()
        {
            continue;
        }
        match api.create(&PostParams::default(), &claim).await {
            Ok(_) => tracing::debug!(claim = %cname, "created claim"),
            Err(e) if is_already_exists(&e) => {}
            Err(e) => {
                return Err(Error::api(
                    "create",
                    format!("persistentvolumeclaim {ns}/{cname}"),
                )(e))
            }
        }
    }
    Ok(())
}

/// `persistentVolumeClaimRetentionPolicy.whenScaled: Delete`: the claims
/// of a pod removed by a scale down go with it. (Upstream makes the pod
/// their owner and lets the GC delete them; here they are deleted
/// directly, with the same result.)
async fn delete_scaled_claims(ctx: &Ctx, sts: &StatefulSet, pod: &str) -> Result<(), Error> {
    let Some(spec) = sts.spec.as_ref() else {
        return Ok(());
    };
    let when_scaled = spec
        .persistent_volume_claim_retention_policy
        .as_ref()
        .and_then(|p| p.when_scaled.as_deref());
    let set = sts.name_any();
    let Some(ordinal) = pod
        .strip_prefix(set.as_str())
        .and_then(|r| r.strip_prefix('-'))
        .and_then(|r| r.parse::<i32>().ok())
    else {
        return Ok(());
    };
    let start = spec.ordinals.as_ref().and_then(|o| o.start).unwrap_or(0);
    let scaled_away =
        ordinal >= start.saturating_add(spec.replicas.unwrap_or(1)) || ordinal < start;
    if when_scaled != Some("Delete") || !scaled_away {
        return Ok(());
    }
    let ns = sts.metadata.namespace.clone().unwrap_or_default();
    let api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    for t in spec.volume_claim_templates.iter().flatten() {
        let cname = plan::claim_name(&t.name_any(), &set, ordinal);
        match api.delete(&cname, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                return Err(Error::api(
                    "delete",
                    format!("persistentvolumeclaim {ns}/{cname}"),
                )(e))
            }
        }
    }
    Ok(())
}
