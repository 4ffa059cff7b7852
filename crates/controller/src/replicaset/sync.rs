//! One sync of a ReplicaSet or ReplicationController (upstream's
//! `syncReplicaSet`, `claimPods`, `manageReplicas`, `slowStartBatch` and
//! `calculateStatus`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::ResourceExt;
use serde_json::{json, Value};

use super::expectations::Seen;
use super::ranking::{is_active, is_available, is_ready, pods_to_delete};
use super::{Ctx, Owner, ReplicaOwner, BURST_REPLICAS};
use crate::{is_not_found, Error};

fn terminating_namespace(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403 && s.message.contains("being terminated"))
}

fn controller_ref(owner: &Owner) -> OwnerReference {
    OwnerReference {
        api_version: owner.api_version.into(),
        kind: owner.kind.into(),
        name: owner.name.clone(),
        uid: owner.uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Upstream's `GetPodFromTemplate`.
pub(crate) fn pod_from_template(owner: &Owner) -> Option<Pod> {
    let t = owner.template.as_ref()?;
    let tm = t.metadata.clone().unwrap_or_default();
    Some(Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", owner.name)),
            namespace: Some(owner.namespace.clone()),
            labels: tm.labels,
            annotations: tm.annotations,
            finalizers: tm.finalizers,
            owner_references: Some(vec![controller_ref(owner)]),
            ..Default::default()
        },
        spec: t.spec.clone(),
        status: None,
    })
}

pub(super) async fn sync<K: ReplicaOwner>(ctx: &Ctx<K>, owner: &Owner) -> Result<Action, Error> {
    let key = format!("{}/{}", owner.namespace, owner.name);
    let all: Vec<Arc<Pod>> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(owner.namespace.as_str()))
        .collect();
    let by_uid: HashMap<&str, Seen> = all
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
    let needs_sync = ctx
        .expectations
        .satisfied(&key, |uid| by_uid.get(uid).copied().unwrap_or(Seen::Absent));
    let active: Vec<Arc<Pod>> = all.into_iter().filter(|p| is_active(p)).collect();
    let claimed = claim_pods::<K>(ctx, owner, active).await?;
    let mut manage_err = None;
    if needs_sync && !owner.deleting {
        if let Err(e) = manage_replicas(ctx, owner, &key, &claimed).await {
            manage_err = Some(e);
        }
    }
    let now = Timestamp::now();
    let failure = manage_err
        .as_ref()
        .map(|(reason, e)| (*reason, e.to_string()));
    let status = calculate_status(owner, &claimed, failure, now);
    if normalized(&status) != normalized(&owner.status) {
        let api: Api<K> = Api::namespaced(ctx.client.clone(), &owner.namespace);
        let patch = json!({ "status": status });
        match api
            .patch_status(&owner.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => return Ok(Action::await_change()),
            Err(e) => {
                return Err(Error::api(
                    "update status of",
                    format!("{} {key}", owner.kind),
                )(e))
            }
        }
    }
    if let Some((_, e)) = manage_err {
        return Err(e);
    }
    let ready = claimed.iter().filter(|p| is_ready(p)).count();
    let available = claimed
        .iter()
        .filter(|p| is_available(p, i64::from(owner.min_ready_seconds), now))
        .count();
    if owner.min_ready_seconds > 0
        && ready == usize::try_from(owner.replicas).unwrap_or(0)
        && available != ready
    {
        // Availability changes with time alone: look again when it may have.
        return Ok(Action::requeue(Duration::from_secs(
            u64::try_from(owner.min_ready_seconds).unwrap_or(1),
        )));
    }
    Ok(Action::await_change())
}

/// Upstream's `ClaimPods` (ControllerRefManager), shared with the
/// DaemonSet and StatefulSet controllers; an owner being deleted claims
/// what it controls and writes nothing.
async fn claim_pods<K: ReplicaOwner>(
    ctx: &Ctx<K>,
    owner: &Owner,
    pods: Vec<Arc<Pod>>,
) -> Result<Vec<Arc<Pod>>, Error> {
    if owner.deleting {
        return Ok(pods
            .into_iter()
            .filter(|p| {
                let labels: BTreeMap<String, String> =
                    p.metadata.labels.clone().unwrap_or_default();
                p.owner_references()
                    .iter()
                    .any(|r| r.controller == Some(true) && r.uid == owner.uid)
                    && owner.selector.matches(&labels)
            })
            .collect());
    }
    crate::controllerref::claim_pods(
        &ctx.client,
        &owner.namespace,
        &controller_ref(owner),
        &owner.selector,
        pods,
        || still_owner::<K>(ctx, owner),
    )
    .await
}

/// Upstream's `RecheckDeletionTimestamp`: adopt only for the live owner.
async fn still_owner<K: ReplicaOwner>(ctx: &Ctx<K>, owner: &Owner) -> Result<bool, Error> {
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    match api.get_opt(&owner.name).await {
        Ok(Some(o)) => Ok(o.meta().uid.as_deref() == Some(owner.uid.as_str())
            && o.meta().deletion_timestamp.is_none()),
        Ok(None) => Ok(false),
        Err(e) => Err(Error::api(
            "get",
            format!("{} {}/{}", owner.kind, owner.namespace, owner.name),
        )(e)),
    }
}

/// Upstream's `manageReplicas`. The error names the condition reason.
async fn manage_replicas<K: ReplicaOwner>(
    ctx: &Ctx<K>,
    owner: &Owner,
    key: &str,
    claimed: &[Arc<Pod>],
) -> Result<(), (&'static str, Error)> {
    let want = usize::try_from(owner.replicas).unwrap_or(0);
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    if claimed.len() < want {
        let n = (want - claimed.len()).min(BURST_REPLICAS);
        let Some(pod) = pod_from_template(owner) else {
            return Err((
                "FailedCreate",
                Error::Pending(format!("{} {key} has no pod template", owner.kind)),
            ));
        };
        let (created, err) = slow_start_batch(n, 1, |_| {
            let api = api.clone();
            let pod = pod.clone();
            async move {
                match api.create(&PostParams::default(), &pod).await {
                    Ok(p) => Ok(Some((p.metadata.uid, p.metadata.name))),
                    Err(e) if terminating_namespace(&e) => Ok(None),
                    Err(e) => Err(e),
                }
            }
        })
        .await;
        // Upstream's PodControl events on the owner.
        let reference = owner.reference();
        for (_, name) in created.iter().flatten() {
            let name = name.clone().unwrap_or_default();
            ctx.events.normal(
                &reference,
                "SuccessfulCreate",
                format!("Created pod: {name}"),
            );
        }
        ctx.expectations.expect_creations(
            key,
            created.into_iter().flatten().filter_map(|(uid, _)| uid),
        );
        tracing::debug!(owner = %key, n, "created pods");
        if let Some(e) = err {
            ctx.events
                .warning(&reference, "FailedCreate", format!("Error creating: {e}"));
            return Err((
                "FailedCreate",
                Error::api("create pod for", format!("{} {key}", owner.kind))(e),
            ));
        }
    } else if claimed.len() > want {
        let n = (claimed.len() - want).min(BURST_REPLICAS);
        let refs: Vec<&Pod> = claimed.iter().map(|p| &**p).collect();
        let victims: Vec<&Pod> = pods_to_delete(&refs, n, Timestamp::now())
            .into_iter()
            .map(|i| refs[i])
            .collect();
        ctx.expectations
            .expect_deletions(key, victims.iter().filter_map(|p| p.metadata.uid.clone()));
        let reference = owner.reference();
        let results = join_all(victims.iter().map(|p| {
            let api = api.clone();
            let name = p.name_any();
            let (events, reference) = (&ctx.events, &reference);
            async move {
                match api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => {
                        events.normal(
                            reference,
                            "SuccessfulDelete",
                            format!("Deleted pod: {name}"),
                        );
                        Ok(())
                    }
                    Err(e) if is_not_found(&e) => Ok(()),
                    Err(e) => {
                        events.warning(reference, "FailedDelete", format!("Error deleting: {e}"));
                        Err(e)
                    }
                }
            }
        }))
        .await;
        tracing::debug!(owner = %key, n, "deleted pods");
        if let Some(e) = results.into_iter().find_map(Result::err) {
            return Err((
                "FailedDelete",
                Error::api("delete pod of", format!("{} {key}", owner.kind))(e),
            ));
        }
    }
    Ok(())
}

/// Upstream's `slowStartBatch`: calls `f` `count` times in batches of
/// 1, 2, 4 … concurrent calls, stopping after a batch with an error (so a
/// failing quota or admission costs one call, not hundreds). Answers the
/// successes and the first error.
pub(crate) async fn slow_start_batch<T, E, F, Fut>(
    count: usize,
    initial: usize,
    f: F,
) -> (Vec<T>, Option<E>)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut done = Vec::new();
    let mut remaining = count;
    let mut batch = initial.max(1);
    let mut index = 0;
    while remaining > 0 {
        let size = batch.min(remaining);
        let results = join_all((index..index + size).map(&f)).await;
        index += size;
        remaining -= size;
        let mut first_err = None;
        for r in results {
            match r {
                Ok(t) => done.push(t),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if first_err.is_some() {
            return (done, first_err);
        }
        batch *= 2;
    }
    (done, None)
}

/// Upstream's `calculateStatus`.
pub(crate) fn calculate_status(
    owner: &Owner,
    claimed: &[Arc<Pod>],
    failure: Option<(&str, String)>,
    now: Timestamp,
) -> Value {
    let template_labels: BTreeMap<String, String> = owner
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let fully_labeled = claimed
        .iter()
        .filter(|p| {
            let l = p.metadata.labels.clone().unwrap_or_default();
            template_labels.iter().all(|(k, v)| l.get(k) == Some(v))
        })
        .count();
    let ready = claimed.iter().filter(|p| is_ready(p)).count();
    let available = claimed
        .iter()
        .filter(|p| is_available(p, i64::from(owner.min_ready_seconds), now))
        .count();
    let mut conditions: Vec<Value> = owner
        .status
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let has_failure = conditions.iter().any(|c| c["type"] == "ReplicaFailure");
    match failure {
        Some((reason, message)) if !has_failure => conditions.push(json!({
            "type": "ReplicaFailure", "status": "True", "reason": reason, "message": message,
            "lastTransitionTime": now.to_string(),
        })),
        Some(_) => {}
        None => conditions.retain(|c| c["type"] != "ReplicaFailure"),
    }
    json!({
        "replicas": claimed.len(),
        "fullyLabeledReplicas": fully_labeled,
        "readyReplicas": ready,
        "availableReplicas": available,
        "observedGeneration": owner.generation,
        "conditions": if conditions.is_empty() { Value::Null } else { Value::Array(conditions) },
    })
}

/// A status with upstream's omitempty zeros and nulls dropped, for comparison.
fn normalized(status: &Value) -> Value {
    let mut s = status.as_object().cloned().unwrap_or_default();
    s.retain(|k, v| !(v.is_null() || (k != "replicas" && v == &json!(0))));
    if !s.contains_key("replicas") {
        s.insert("replicas".into(), json!(0));
    }
    Value::Object(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn slow_start_batches_double_and_stop_at_the_first_failing_batch() {
        let calls = AtomicUsize::new(0);
        let (ok, err) = slow_start_batch(10, 1, |_| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(())
        })
        .await;
        assert_eq!((ok.len(), err), (10, None));
        // Batches 1, 2, 4: the 5th call fails, its batch of 4 completes, no more.
        let calls = AtomicUsize::new(0);
        let (ok, err) = slow_start_batch(100, 1, |i| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if i == 4 {
                    Err("quota")
                } else {
                    Ok(i)
                }
            }
        })
        .await;
        assert_eq!(err, Some("quota"));
        assert_eq!(calls.load(Ordering::SeqCst), 7);
        assert_eq!(ok.len(), 6);
    }

    #[test]
    fn status_normalisation_ignores_omitted_zeros() {
        assert_eq!(
            normalized(
                &json!({"replicas": 0, "readyReplicas": 0, "conditions": null, "observedGeneration": 2})
            ),
            normalized(&json!({"observedGeneration": 2}))
        );
        assert_ne!(normalized(&json!({"replicas": 1})), normalized(&json!({})));
    }
}
