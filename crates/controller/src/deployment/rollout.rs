//! One sync of a Deployment (upstream's sync.go `getAllReplicaSetsAndSyncRevision`,
//! `scale`, `cleanupDeployment`, `syncDeploymentStatus`; rolling.go;
//! recreate.go; progress.go `syncRolloutStatus`).

use std::collections::BTreeMap;
use std::time::Duration;

use apimachinery::labels::Selector;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde_json::{json, Value};

use super::util::*;
use super::Ctx;
use crate::replicaset::ranking::is_active;
use crate::{is_already_exists, is_not_found, Error};

fn controller_ref(d: &Deployment) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        name: d.name_any(),
        uid: d.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn key(d: &Deployment) -> String {
    format!("{}/{}", d.namespace().unwrap_or_default(), d.name_any())
}

pub(super) async fn sync(ctx: &Ctx, d: &Deployment, sel: &Selector) -> Result<Action, Error> {
    let ns = d.namespace().unwrap_or_default();
    let mut rss = claim_replica_sets(ctx, d, sel, &ns).await?;
    // Oldest first, as upstream's sorts by creation time.
    rss.sort_by(|a, b| {
        a.metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0)
            .cmp(&b.metadata.creation_timestamp.as_ref().map(|t| t.0))
    });
    let template = d
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let want = without_hash(&template);
    let new_idx = rss.iter().position(|rs| {
        rs.spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .is_some_and(|t| without_hash(t) == want)
    });
    let mut new_rs = new_idx.map(|i| rss.remove(i));
    let mut old = rss;
    let desired = replicas(d);
    let (surge, unavailable) = fenceposts(d);
    let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
    let mut conds: Vec<DeploymentCondition> = d
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let now = Timestamp::now();

    // Pause and resume show in the Progressing condition (upstream's checkPausedConditions).
    let progressing_reason = conds
        .iter()
        .find(|c| c.type_ == "Progressing")
        .and_then(|c| c.reason.clone());
    if paused && progressing_reason.as_deref() != Some("DeploymentPaused") {
        set_condition(
            &mut conds,
            condition(
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused".into(),
                now,
            ),
        );
    } else if !paused && progressing_reason.as_deref() == Some("DeploymentPaused") {
        set_condition(
            &mut conds,
            condition(
                "Progressing",
                "Unknown",
                "DeploymentResumed",
                "Deployment is resumed".into(),
                now,
            ),
        );
    }

    if paused {
        // Only scaling while paused (upstream's `sync`).
        let active: Vec<usize> = old
            .iter()
            .enumerate()
            .filter(|(_, r)| rs_replicas(r) > 0)
            .map(|(i, _)| i)
            .collect();
        match (&mut new_rs, active.as_slice()) {
            (Some(n), []) => scale(ctx, d, n, desired, surge).await?,
            (None, [i]) => scale(ctx, d, &mut old[*i], desired, surge).await?,
            _ => {}
        }
        cleanup(ctx, d, &old).await?;
        write_status(ctx, d, new_rs.as_ref(), &old, conds, unavailable, now).await?;
        return Ok(Action::await_change());
    }

    let max_old_revision = old.iter().map(revision).max().unwrap_or(0);
    let new_revision = max_old_revision + 1;
    let created_now;
    match new_rs.as_mut() {
        Some(n) => {
            created_now = false;
            if revision(n) < new_revision && revision(n) <= max_old_revision {
                // A template rolled back to: the old ReplicaSet becomes the newest revision.
                set_revision(ctx, n, new_revision).await?;
            }
            if !conds.iter().any(|c| c.type_ == "Progressing") {
                set_condition(
                    &mut conds,
                    condition(
                        "Progressing",
                        "True",
                        "FoundNewReplicaSet",
                        format!("Found new replica set {:?}", n.name_any()),
                        now,
                    ),
                );
            }
        }
        None => {
            let all_old: i32 = old.iter().map(rs_replicas).sum();
            let initial = if is_recreate(d) {
                0
            } else {
                new_rs_new_replicas(desired, surge, all_old, 0).max(0)
            };
            let created = create_new_rs(ctx, d, &ns, new_revision, initial, surge).await?;
            set_condition(
                &mut conds,
                condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetCreated",
                    format!("Created new replica set {:?}", created.name_any()),
                    now,
                ),
            );
            new_rs = Some(created);
            created_now = true;
        }
    }
    let Some(mut new_rs) = new_rs else {
        return Ok(Action::await_change());
    };
    let rev = revision(&new_rs).to_string();
    if d.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        != Some(&rev)
    {
        let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
        let patch = json!({"metadata": {"annotations": {REVISION: rev}}});
        api.patch(
            &d.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(Error::api("annotate", format!("deployment {}", key(d))))?;
    }

    if is_recreate(d) {
        let mut scaled_old = false;
        for rs in old.iter_mut().filter(|r| rs_replicas(r) > 0) {
            scale(ctx, d, rs, 0, surge).await?;
            scaled_old = true;
        }
        let old_uids: Vec<String> = old.iter().filter_map(|r| r.metadata.uid.clone()).collect();
        let old_pods_running = ctx.pods.state().iter().any(|p| {
            p.metadata.namespace.as_deref() == Some(ns.as_str())
                && p.owner_references()
                    .iter()
                    .any(|o| o.controller == Some(true) && old_uids.contains(&o.uid))
                && (is_active(p)
                    || p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        });
        if !scaled_old && !old_pods_running && rs_replicas(&new_rs) != desired {
            scale(ctx, d, &mut new_rs, desired, surge).await?;
        }
    } else if !created_now {
        rolling(ctx, d, &mut new_rs, &mut old, desired, surge, unavailable).await?;
    }

    let complete = write_status(ctx, d, Some(&new_rs), &old, conds, unavailable, now).await?;
    if complete {
        cleanup(ctx, d, &old).await?;
    }
    Ok(match requeue_for_deadline(d, now, complete) {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

/// Upstream's `rolloutRolling`: grow the new ReplicaSet within maxSurge,
/// then shrink old ones within maxUnavailable.
async fn rolling(
    ctx: &Ctx,
    d: &Deployment,
    new_rs: &mut ReplicaSet,
    old: &mut [ReplicaSet],
    desired: i32,
    surge: i32,
    unavailable: i32,
) -> Result<(), Error> {
    let all: i32 = rs_replicas(new_rs) + old.iter().map(rs_replicas).sum::<i32>();
    let cur = rs_replicas(new_rs);
    let target = if cur > desired {
        desired
    } else {
        new_rs_new_replicas(desired, surge, all, cur)
    };
    if target != cur {
        scale(ctx, d, new_rs, target, surge).await?;
        if target > cur {
            return Ok(());
        }
    }
    if old.iter().map(rs_replicas).sum::<i32>() == 0 {
        return Ok(());
    }
    let max_unavailable = unavailable.min(desired);
    let all: i32 = rs_replicas(new_rs) + old.iter().map(rs_replicas).sum::<i32>();
    let mut budget = max_scaled_down(
        desired,
        max_unavailable,
        all,
        rs_replicas(new_rs),
        rs_available(new_rs),
    );
    if budget <= 0 {
        return Ok(());
    }
    // Unhealthy old pods go first (upstream's cleanupUnhealthyReplicas).
    for rs in old.iter_mut() {
        if budget <= 0 {
            break;
        }
        let unhealthy = (rs_replicas(rs) - rs_available(rs)).max(0).min(budget);
        if unhealthy > 0 {
            let to = rs_replicas(rs) - unhealthy;
            scale(ctx, d, rs, to, surge).await?;
            budget -= unhealthy;
        }
    }
    // Then available ones, keeping at least desired - maxUnavailable available.
    let available: i32 = rs_available(new_rs)
        + old
            .iter()
            .map(|r| rs_available(r).min(rs_replicas(r)))
            .sum::<i32>();
    let mut down = available - (desired - max_unavailable);
    for rs in old.iter_mut() {
        if down <= 0 {
            break;
        }
        let n = rs_replicas(rs).min(down);
        if n > 0 {
            let to = rs_replicas(rs) - n;
            scale(ctx, d, rs, to, surge).await?;
            down -= n;
        }
    }
    Ok(())
}

/// Adopts matching orphans, releases owned ReplicaSets that stopped matching.
async fn claim_replica_sets(
    ctx: &Ctx,
    d: &Deployment,
    sel: &Selector,
    ns: &str,
) -> Result<Vec<ReplicaSet>, Error> {
    let uid = d.metadata.uid.clone().unwrap_or_default();
    let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), ns);
    let mut out = Vec::new();
    for rs in ctx.replica_sets.state() {
        if rs.metadata.namespace.as_deref() != Some(ns) {
            continue;
        }
        let labels: BTreeMap<String, String> = rs.metadata.labels.clone().unwrap_or_default();
        let matches = sel.matches(&labels);
        let refs = rs.owner_references().to_vec();
        let patch_refs = |refs: Value| {
            let patch = json!({"metadata": {"resourceVersion": rs.metadata.resource_version, "ownerReferences": refs}});
            let api = api.clone();
            let name = rs.name_any();
            async move {
                match api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(r) => Ok(Some(r)),
                    Err(e) if is_not_found(&e) => Ok(None),
                    Err(e) => Err(Error::api(
                        "patch ownerReferences of",
                        format!("replicaset {name}"),
                    )(e)),
                }
            }
        };
        match refs.iter().find(|r| r.controller == Some(true)) {
            Some(r) if r.uid == uid => {
                if matches {
                    out.push((*rs).clone());
                } else {
                    let keep: Vec<&OwnerReference> = refs.iter().filter(|r| r.uid != uid).collect();
                    patch_refs(if keep.is_empty() {
                        Value::Null
                    } else {
                        json!(keep)
                    })
                    .await?;
                }
            }
            Some(_) => {}
            None if matches && rs.metadata.deletion_timestamp.is_none() => {
                let mut new_refs = refs.clone();
                new_refs.push(controller_ref(d));
                if let Some(adopted) = patch_refs(json!(new_refs)).await? {
                    out.push(adopted);
                }
            }
            None => {}
        }
    }
    Ok(out)
}

async fn create_new_rs(
    ctx: &Ctx,
    d: &Deployment,
    ns: &str,
    rev: i64,
    replicas: i32,
    surge: i32,
) -> Result<ReplicaSet, Error> {
    let spec = d.spec.clone().unwrap_or_default();
    let collision = d.status.as_ref().and_then(|s| s.collision_count);
    let hash = template_hash(&spec.template, collision);
    let mut template = spec.template.clone();
    let tm = template.metadata.get_or_insert_with(Default::default);
    tm.labels
        .get_or_insert_with(BTreeMap::new)
        .insert(POD_TEMPLATE_HASH.into(), hash.clone());
    let labels = tm.labels.clone();
    let mut selector = spec.selector.clone();
    selector
        .match_labels
        .get_or_insert_with(BTreeMap::new)
        .insert(POD_TEMPLATE_HASH.into(), hash.clone());
    let mut annotations = copied_annotations(d);
    annotations.insert(REVISION.into(), rev.to_string());
    annotations.insert(DESIRED_REPLICAS.into(), replicas_of(d).to_string());
    annotations.insert(MAX_REPLICAS.into(), (replicas_of(d) + surge).to_string());
    let name = format!("{}-{hash}", d.name_any());
    let rs = ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ns.into()),
            labels,
            annotations: Some(annotations),
            owner_references: Some(vec![controller_ref(d)]),
            ..Default::default()
        },
        spec: Some(k8s_openapi::api::apps::v1::ReplicaSetSpec {
            replicas: Some(replicas),
            min_ready_seconds: spec.min_ready_seconds,
            selector,
            template: Some(template),
        }),
        status: None,
    };
    let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), ns);
    match api.create(&PostParams::default(), &rs).await {
        Ok(rs) => {
            tracing::info!(deployment = %key(d), replicaset = %name, replicas, "created new replica set");
            if replicas > 0 {
                ctx.events.normal(
                    &d.object_ref(&()),
                    "ScalingReplicaSet",
                    format!("Scaled up replica set {name} to {replicas}"),
                );
            }
            Ok(rs)
        }
        Err(e) if is_already_exists(&e) => {
            // Someone else's ReplicaSet has our name: a hash collision.
            // Bump collisionCount so the next attempt hashes differently.
            let dapi: Api<Deployment> = Api::namespaced(ctx.client.clone(), ns);
            let next = collision.unwrap_or(0).saturating_add(1);
            dapi.patch_status(
                &d.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": {"collisionCount": next}})),
            )
            .await
            .map_err(Error::api(
                "update collisionCount of",
                format!("deployment {}", key(d)),
            ))?;
            Err(Error::Pending(format!(
                "replica set {name} exists with another template; collisionCount is now {next}"
            )))
        }
        Err(e) => Err(Error::api(
            "create replicaset for",
            format!("deployment {}", key(d)),
        )(e)),
    }
}

fn replicas_of(d: &Deployment) -> i32 {
    replicas(d)
}

/// Upstream's `scaleReplicaSet`: replicas and the desired/max annotations.
async fn scale(
    ctx: &Ctx,
    d: &Deployment,
    rs: &mut ReplicaSet,
    to: i32,
    surge: i32,
) -> Result<(), Error> {
    let ns = rs.namespace().unwrap_or_default();
    let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ns);
    let patch = json!({
        "metadata": {"annotations": {DESIRED_REPLICAS: replicas(d).to_string(), MAX_REPLICAS: (replicas(d) + surge).to_string()}},
        "spec": {"replicas": to},
    });
    let updated = api
        .patch(
            &rs.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(Error::api(
            "scale",
            format!("replicaset {ns}/{}", rs.name_any()),
        ))?;
    let from = rs_replicas(rs);
    tracing::info!(deployment = %key(d), replicaset = %rs.name_any(), from, to, "scaled replica set");
    if from != to {
        let direction = if to > from { "up" } else { "down" };
        ctx.events.normal(
            &d.object_ref(&()),
            "ScalingReplicaSet",
            format!(
                "Scaled {direction} replica set {} to {to} from {from}",
                rs.name_any()
            ),
        );
    }
    *rs = updated;
    Ok(())
}

async fn set_revision(ctx: &Ctx, rs: &mut ReplicaSet, rev: i64) -> Result<(), Error> {
    let ns = rs.namespace().unwrap_or_default();
    let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ns);
    let old = revision(rs);
    let mut history: Vec<String> = rs
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION_HISTORY))
        .map(|h| h.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    if old > 0 {
        history.push(old.to_string());
    }
    let patch = json!({"metadata": {"annotations": {REVISION: rev.to_string(), REVISION_HISTORY: history.join(",")}}});
    *rs = api
        .patch(
            &rs.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(Error::api(
            "set revision of",
            format!("replicaset {ns}/{}", rs.name_any()),
        ))?;
    Ok(())
}

/// Upstream's `cleanupDeployment`: old, empty ReplicaSets beyond
/// revisionHistoryLimit are deleted, lowest revision first.
async fn cleanup(ctx: &Ctx, d: &Deployment, old: &[ReplicaSet]) -> Result<(), Error> {
    let limit = d
        .spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(10)
        .max(0);
    let mut empty: Vec<&ReplicaSet> = old
        .iter()
        .filter(|r| {
            rs_replicas(r) == 0
                && r.status.as_ref().map_or(0, |s| s.replicas) == 0
                && r.metadata.deletion_timestamp.is_none()
        })
        .collect();
    let excess = empty
        .len()
        .saturating_sub(usize::try_from(limit).unwrap_or(0));
    empty.sort_by_key(|r| revision(r));
    for rs in empty.into_iter().take(excess) {
        let api: Api<ReplicaSet> =
            Api::namespaced(ctx.client.clone(), &rs.namespace().unwrap_or_default());
        match api.delete(&rs.name_any(), &DeleteParams::default()).await {
            Ok(_) => {
                tracing::info!(deployment = %key(d), replicaset = %rs.name_any(), "deleted old replica set")
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                return Err(Error::api(
                    "delete",
                    format!("replicaset {}", rs.name_any()),
                )(e))
            }
        }
    }
    Ok(())
}

fn deadline(d: &Deployment) -> Option<i64> {
    match d.spec.as_ref().and_then(|s| s.progress_deadline_seconds) {
        Some(i32::MAX) => None,
        Some(s) => Some(i64::from(s)),
        None => Some(600),
    }
}

fn requeue_for_deadline(d: &Deployment, now: Timestamp, complete: bool) -> Option<Duration> {
    let secs = deadline(d)?;
    if complete {
        return None;
    }
    let c = d
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Progressing")?;
    if c.reason.as_deref() == Some("ProgressDeadlineExceeded") {
        return None;
    }
    let last = c.last_update_time.as_ref()?.0.as_second();
    let left = last + secs - now.as_second();
    Some(Duration::from_secs(u64::try_from(left.max(1)).unwrap_or(1)))
}

/// Upstream's `calculateStatus` plus `syncRolloutStatus`. Answers whether
/// the rollout is complete.
async fn write_status(
    ctx: &Ctx,
    d: &Deployment,
    new_rs: Option<&ReplicaSet>,
    old: &[ReplicaSet],
    mut conds: Vec<DeploymentCondition>,
    unavailable: i32,
    now: Timestamp,
) -> Result<bool, Error> {
    let st = |r: &ReplicaSet| r.status.clone().unwrap_or_default();
    let all: Vec<&ReplicaSet> = new_rs.into_iter().chain(old.iter()).collect();
    let replicas_total: i32 = all.iter().map(|r| st(r).replicas).sum();
    let updated = new_rs.map_or(0, |r| st(r).replicas);
    let ready: i32 = all.iter().map(|r| st(r).ready_replicas.unwrap_or(0)).sum();
    let available: i32 = all
        .iter()
        .map(|r| st(r).available_replicas.unwrap_or(0))
        .sum();
    let desired = replicas(d);
    let min_available = desired - unavailable.min(desired);
    if available >= min_available {
        set_condition(
            &mut conds,
            condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into(),
                now,
            ),
        );
    } else {
        set_condition(
            &mut conds,
            condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.".into(),
                now,
            ),
        );
    }
    let complete = updated == desired && replicas_total == desired && available == desired;
    let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
    let current = conds.iter().find(|c| c.type_ == "Progressing").cloned();
    let timed_out_already =
        current.as_ref().and_then(|c| c.reason.as_deref()) == Some("ProgressDeadlineExceeded");
    if let (Some(secs), false, false, Some(n)) = (deadline(d), paused, timed_out_already, new_rs) {
        let name = n.name_any();
        let old_status = d.status.clone().unwrap_or_default();
        let progressed = updated > old_status.updated_replicas.unwrap_or(0)
            || (replicas_total - updated)
                < (old_status.replicas.unwrap_or(0) - old_status.updated_replicas.unwrap_or(0))
            || ready > old_status.ready_replicas.unwrap_or(0)
            || available > old_status.available_replicas.unwrap_or(0);
        if complete {
            set_condition(
                &mut conds,
                condition(
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    format!("ReplicaSet {name:?} has successfully progressed."),
                    now,
                ),
            );
        } else if progressed {
            let mut c = condition(
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                format!("ReplicaSet {name:?} is progressing."),
                now,
            );
            if let Some(cur) = current.as_ref().filter(|c| c.status == "True") {
                c.last_transition_time = cur.last_transition_time.clone();
            }
            conds.retain(|c| c.type_ != "Progressing");
            conds.push(c);
        } else if let Some(cur) = &current {
            let last = cur
                .last_update_time
                .as_ref()
                .map(|t: &Time| t.0.as_second())
                .unwrap_or(0);
            if cur.reason.as_deref() != Some("NewReplicaSetAvailable")
                && last + secs < now.as_second()
            {
                set_condition(
                    &mut conds,
                    condition(
                        "Progressing",
                        "False",
                        "ProgressDeadlineExceeded",
                        format!("ReplicaSet {name:?} has timed out progressing."),
                        now,
                    ),
                );
            }
        }
    } else if deadline(d).is_none() {
        conds.retain(|c| c.type_ != "Progressing");
    }
    let status = json!({
        "observedGeneration": d.metadata.generation,
        "replicas": replicas_total,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "unavailableReplicas": (desired - available).max(0),
        "collisionCount": d.status.as_ref().and_then(|s| s.collision_count),
        "conditions": conds,
    });
    let current = serde_json::to_value(&d.status).unwrap_or(Value::Null);
    if normalized(&status) != normalized(&current) {
        let api: Api<Deployment> =
            Api::namespaced(ctx.client.clone(), &d.namespace().unwrap_or_default());
        match api
            .patch_status(
                &d.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": status})),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                return Err(Error::api(
                    "update status of",
                    format!("deployment {}", key(d)),
                )(e))
            }
        }
    }
    Ok(complete)
}

/// A status without nulls and omitempty zeros, for comparison.
fn normalized(v: &Value) -> Value {
    let mut s = v.as_object().cloned().unwrap_or_default();
    s.retain(|_, v| !(v.is_null() || v == &json!(0) || v == &json!([])));
    Value::Object(s)
}
