//! Clearing stale `DisruptionTarget` pod conditions (upstream's
//! `nonTerminatingPodHasStaleDisruptionCondition` and
//! `syncStalePodDisruption` in disruption.go): a pod marked as about to be
//! disrupted (`DisruptionTarget` True, set by an eviction, preemption or
//! taint eviction) that is still not terminating two minutes later was
//! not disrupted after all, so the condition is set back to False.
//! Conditions the kubelet set (`TerminationByKubelet`) and pods in a
//! terminal phase are left alone, as upstream does.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;
use kube::ResourceExt;

use crate::clock::Clock;
use crate::{is_conflict, is_not_found, Error};

/// Upstream's `stalePodDisruptionTimeout`.
pub const STALE_POD_DISRUPTION_TIMEOUT: SignedDuration = SignedDuration::from_secs(120);

pub const DISRUPTION_TARGET: &str = "DisruptionTarget";
const TERMINATION_BY_KUBELET: &str = "TerminationByKubelet";

fn target_condition(pod: &Pod) -> Option<&PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == DISRUPTION_TARGET)
}

/// How long until the pod's `DisruptionTarget` condition is stale at
/// `now` (zero: it is); `None` when there is nothing to clear.
pub fn stale_in(pod: &Pod, now: Timestamp) -> Option<Duration> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded") | Some("Failed")) {
        return None;
    }
    let cond = target_condition(pod)?;
    if cond.status != "True" || cond.reason.as_deref() == Some(TERMINATION_BY_KUBELET) {
        return None;
    }
    let since = cond.last_transition_time.as_ref().map_or(now, |t| t.0);
    let left = STALE_POD_DISRUPTION_TIMEOUT - now.duration_since(since);
    Some(Duration::try_from(left).unwrap_or(Duration::ZERO))
}

/// The pod with its `DisruptionTarget` condition replaced by a False one
/// (upstream's `UpdatePodCondition` with just type and status).
pub fn cleared(pod: &Pod, now: Timestamp) -> Pod {
    let mut p = pod.clone();
    if let Some(c) = p
        .status
        .as_mut()
        .and_then(|s| s.conditions.as_mut())
        .and_then(|cs| cs.iter_mut().find(|c| c.type_ == DISRUPTION_TARGET))
    {
        *c = PodCondition {
            type_: DISRUPTION_TARGET.into(),
            status: "False".into(),
            last_transition_time: Some(Time(now)),
            ..Default::default()
        };
    }
    p
}

/// Resets one pod's stale condition once its time has come.
pub(crate) async fn reconcile(
    pod: Arc<Pod>,
    client: &kube::Client,
    clock: &dyn Clock,
) -> Result<Action, Error> {
    let now = clock.now();
    let Some(left) = stale_in(&pod, now) else {
        return Ok(Action::await_change());
    };
    if !left.is_zero() {
        return Ok(Action::requeue(left));
    }
    let ns = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    match api
        .replace_status(&name, &PostParams::default(), &cleared(&pod, now))
        .await
    {
        Ok(_) => {
            tracing::info!(pod = %format!("{ns}/{name}"), "reset stale DisruptionTarget condition to False");
            Ok(Action::await_change())
        }
        Err(e) if is_not_found(&e) => Ok(Action::await_change()),
        Err(e) if is_conflict(&e) => Err(Error::Pending(format!("pod {ns}/{name}: conflict"))),
        Err(e) => Err(Error::api("update status of", format!("pod {ns}/{name}"))(
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn pod(status: &str, reason: &str, phase: &str, deleting: bool) -> Pod {
        let mut v = json!({
            "metadata": {"name": "p", "namespace": "n"},
            "status": {"phase": phase, "conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "DisruptionTarget", "status": status, "reason": reason,
                    "message": "m", "lastTransitionTime": at(0).to_string()}]},
        });
        if deleting {
            v["metadata"]["deletionTimestamp"] = json!(at(0).to_string());
        }
        serde_json::from_value(v).unwrap_or_default()
    }

    #[test]
    fn only_a_live_pods_true_condition_goes_stale_after_two_minutes() {
        let p = pod("True", "EvictionByEvictionAPI", "Running", false);
        assert_eq!(stale_in(&p, at(20)), Some(Duration::from_secs(100)));
        assert_eq!(stale_in(&p, at(120)), Some(Duration::ZERO));
        assert_eq!(stale_in(&p, at(500)), Some(Duration::ZERO));
        let left_alone = [
            pod("False", "EvictionByEvictionAPI", "Running", false),
            pod("True", "TerminationByKubelet", "Running", false),
            pod("True", "EvictionByEvictionAPI", "Failed", false),
            pod("True", "EvictionByEvictionAPI", "Running", true),
        ];
        for p in left_alone {
            assert_eq!(stale_in(&p, at(500)), None, "{p:?}");
        }
    }

    #[test]
    fn clearing_replaces_only_that_condition() {
        let p = cleared(
            &pod("True", "EvictionByEvictionAPI", "Running", false),
            at(200),
        );
        let conds = p.status.and_then(|s| s.conditions).unwrap_or_default();
        assert_eq!(conds.len(), 2);
        assert_eq!(
            (conds[0].type_.as_str(), conds[0].status.as_str()),
            ("Ready", "True")
        );
        let c = &conds[1];
        assert_eq!(
            (c.type_.as_str(), c.status.as_str()),
            (DISRUPTION_TARGET, "False")
        );
        assert_eq!((c.reason.clone(), c.message.clone()), (None, None));
        assert_eq!(c.last_transition_time.as_ref().map(|t| t.0), Some(at(200)));
    }
}
