//! The arithmetic of a PodDisruptionBudget's status (upstream's
//! pkg/controller/disruption/disruption.go: `getExpectedPodCount`,
//! `buildDisruptedPodMap`, `countHealthyPods`, `updatePdbStatus`,
//! `failSafe`; intstr's `GetScaledValueFromIntOrPercent`; and
//! pkg/apis/policy/helper's `UpdateDisruptionAllowedCondition` /
//! `ConditionsAreUpToDate`). Pure functions over the budget, its pods and
//! "now"; nothing here talks to the API server.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::{
    PodDisruptionBudget, PodDisruptionBudgetSpec, PodDisruptionBudgetStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::replicaset::ranking::is_ready;

/// How long a pod listed in `status.disruptedPods` (an eviction was
/// granted for it) is counted as gone before the controller gives up
/// waiting for its deletion (upstream's `DeletionTimeout`).
pub const DELETION_TIMEOUT: SignedDuration = SignedDuration::from_secs(120);

/// The condition type and its reasons (upstream's policy/v1 constants).
pub const DISRUPTION_ALLOWED: &str = "DisruptionAllowed";
pub const SUFFICIENT_PODS: &str = "SufficientPods";
pub const INSUFFICIENT_PODS: &str = "InsufficientPods";
pub const SYNC_FAILED: &str = "SyncFailed";

/// An int, or a percentage of `total` (upstream's
/// `GetScaledValueFromIntOrPercent`): `"n%"` only, rounded up or down.
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> Result<i32, String> {
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let pct: i64 = s
                .strip_suffix('%')
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: invalid value {s:?}: it is not a percentage"))?;
            let product = pct * i64::from(total);
            let scaled = if round_up {
                product.div_euclid(100) + i64::from(product.rem_euclid(100) != 0)
            } else {
                product.div_euclid(100)
            };
            i32::try_from(scaled)
                .map_err(|_| format!("percentage {s:?} of {total} is out of range"))
        }
    }
}

/// What the budget expects: `expectedPods` and `desiredHealthy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expectation {
    pub expected: i32,
    pub desired_healthy: i32,
}

/// Whether the budget needs its pods' controllers' scale: maxUnavailable,
/// or minAvailable as a percentage.
pub fn needs_scale(spec: &PodDisruptionBudgetSpec) -> bool {
    spec.max_unavailable.is_some() || matches!(spec.min_available, Some(IntOrString::String(_)))
}

/// Upstream's `getExpectedPodCount`. `selected` is how many pods the
/// selector matches; `scale` sums the scale of their controllers, asked
/// only when the budget needs it (maxUnavailable, or a percentage
/// minAvailable); its error becomes the sync failure.
pub fn expectation(
    spec: &PodDisruptionBudgetSpec,
    selected: i32,
    scale: impl FnOnce() -> Result<i32, String>,
) -> Result<Expectation, String> {
    if let Some(max) = &spec.max_unavailable {
        let expected = scale()?;
        let max = scaled_value(max, expected, true)?;
        return Ok(Expectation {
            expected,
            desired_healthy: (expected - max).max(0),
        });
    }
    match &spec.min_available {
        Some(IntOrString::Int(min)) => Ok(Expectation {
            expected: selected,
            desired_healthy: *min,
        }),
        Some(pct @ IntOrString::String(_)) => {
            let expected = scale()?;
            Ok(Expectation {
                expected,
                desired_healthy: scaled_value(pct, expected, true)?,
            })
        }
        None => Ok(Expectation {
            expected: 0,
            desired_healthy: 0,
        }),
    }
}

/// Upstream's rule: no disruption while nothing is expected (a budget whose
/// first pods have just appeared is safe), never a negative count.
pub fn disruptions_allowed(current_healthy: i32, e: Expectation) -> i32 {
    if e.expected <= 0 {
        return 0;
    }
    (current_healthy - e.desired_healthy).max(0)
}

fn expires(since: &Time) -> Timestamp {
    since.0.checked_add(DELETION_TIMEOUT).unwrap_or(since.0)
}

/// [`live_disruptions`]' answer.
#[derive(Debug, Default, PartialEq)]
pub struct Disruptions {
    /// The entries to keep in `status.disruptedPods`.
    pub kept: BTreeMap<String, Time>,
    /// When the earliest kept entry expires.
    pub recheck: Option<Timestamp>,
    /// Pods granted an eviction longer than [`DELETION_TIMEOUT`] ago that
    /// still exist (upstream's `NotDeleted` Event).
    pub expired: Vec<String>,
}

/// Upstream's `buildDisruptedPodMap`: the `disruptedPods` entries still
/// worth keeping (a selected pod, not yet being deleted, granted an
/// eviction less than [`DELETION_TIMEOUT`] ago) and when the earliest of
/// them expires, so the budget is looked at again then.
pub fn live_disruptions(
    pods: &[Arc<Pod>],
    recorded: Option<&BTreeMap<String, Time>>,
    now: Timestamp,
) -> Disruptions {
    let mut out = Disruptions::default();
    let Some(recorded) = recorded else {
        return out;
    };
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(since) = recorded.get(&name) else {
            continue;
        };
        let expiry = expires(since);
        if expiry < now {
            out.expired.push(name);
            continue;
        }
        out.recheck = Some(out.recheck.map_or(expiry, |r| r.min(expiry)));
        out.kept.insert(name, since.clone());
    }
    out
}

/// Upstream's `countHealthyPods`: Ready pods that are neither being
/// deleted nor about to be (a recent eviction).
pub fn count_healthy(pods: &[Arc<Pod>], disrupted: &BTreeMap<String, Time>, now: Timestamp) -> i32 {
    let healthy = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            let name = p.metadata.name.as_deref().unwrap_or_default();
            disrupted
                .get(name)
                .is_none_or(|since| expires(since) <= now)
        })
        .filter(|p| is_ready(p))
        .count();
    i32::try_from(healthy).unwrap_or(i32::MAX)
}

/// Upstream's `meta.SetStatusCondition`: the transition time moves only
/// when the status changes; reason, message and generation follow.
pub fn set_condition(conditions: &mut Vec<Condition>, new: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(c) => {
            if c.status != new.status {
                c.status = new.status;
                c.last_transition_time = new.last_transition_time;
            }
            c.reason = new.reason;
            c.message = new.message;
            c.observed_generation = new.observed_generation;
        }
        None => conditions.push(new),
    }
}

fn allowed_condition(status: &PodDisruptionBudgetStatus, now: Timestamp) -> Condition {
    let (s, reason) = if status.disruptions_allowed > 0 {
        ("True", SUFFICIENT_PODS)
    } else {
        ("False", INSUFFICIENT_PODS)
    };
    Condition {
        type_: DISRUPTION_ALLOWED.into(),
        status: s.into(),
        reason: reason.into(),
        message: String::new(),
        observed_generation: status.observed_generation,
        last_transition_time: Time(now),
    }
}

/// The status the budget should have (upstream's `updatePdbStatus` before
/// the write), its existing conditions kept apart from DisruptionAllowed.
pub fn computed_status(
    pdb: &PodDisruptionBudget,
    current_healthy: i32,
    e: Expectation,
    disrupted: BTreeMap<String, Time>,
    now: Timestamp,
) -> PodDisruptionBudgetStatus {
    let old = pdb.status.clone().unwrap_or_default();
    let mut status = PodDisruptionBudgetStatus {
        current_healthy,
        desired_healthy: e.desired_healthy,
        expected_pods: e.expected,
        disruptions_allowed: disruptions_allowed(current_healthy, e),
        disrupted_pods: Some(disrupted),
        observed_generation: pdb.metadata.generation,
        conditions: old.conditions,
    };
    let cond = allowed_condition(&status, now);
    set_condition(status.conditions.get_or_insert_with(Vec::new), cond);
    status
}

/// Upstream's `failSafe`: no disruption allowed, `SyncFailed` with the
/// error, everything else (observedGeneration included) left as it was.
pub fn failed_status(
    pdb: &PodDisruptionBudget,
    message: &str,
    now: Timestamp,
) -> PodDisruptionBudgetStatus {
    let mut status = pdb.status.clone().unwrap_or_default();
    status.disruptions_allowed = 0;
    let cond = Condition {
        type_: DISRUPTION_ALLOWED.into(),
        status: "False".into(),
        reason: SYNC_FAILED.into(),
        message: message.to_string(),
        observed_generation: status.observed_generation,
        last_transition_time: Time(now),
    };
    set_condition(status.conditions.get_or_insert_with(Vec::new), cond);
    status
}

/// Whether writing `new` would change what the API server holds: the
/// counts, the disrupted pods, the generation and the condition (upstream
/// compares the same fields and `ConditionsAreUpToDate`). An absent and an
/// empty `disruptedPods` are the same, as in upstream's semantic equality.
pub fn needs_write(pdb: &PodDisruptionBudget, new: &PodDisruptionBudgetStatus) -> bool {
    let Some(old) = &pdb.status else {
        return true;
    };
    let pods = |s: &PodDisruptionBudgetStatus| s.disrupted_pods.clone().unwrap_or_default();
    let cond = |s: &PodDisruptionBudgetStatus| {
        s.conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == DISRUPTION_ALLOWED)
            .map(|c| {
                (
                    c.status.clone(),
                    c.reason.clone(),
                    c.message.clone(),
                    c.observed_generation,
                )
            })
    };
    old.current_healthy != new.current_healthy
        || old.desired_healthy != new.desired_healthy
        || old.expected_pods != new.expected_pods
        || old.disruptions_allowed != new.disruptions_allowed
        || old.observed_generation != new.observed_generation
        || pods(old) != pods(new)
        || cond(old) != cond(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> PodDisruptionBudgetSpec {
        serde_json::from_value(v).unwrap_or_default()
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn pod(name: &str, ready: bool, deleting: bool) -> Arc<Pod> {
        let mut v = json!({
            "metadata": {"name": name, "namespace": "n"},
            "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        });
        if deleting {
            v["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        Arc::new(serde_json::from_value(v).unwrap_or_default())
    }

    fn pdb(generation: i64, status: Option<serde_json::Value>) -> PodDisruptionBudget {
        serde_json::from_value(json!({
            "metadata": {"name": "b", "namespace": "n", "generation": generation},
            "spec": {"minAvailable": 1, "selector": {}},
            "status": status,
        }))
        .unwrap_or_default()
    }

    #[test]
    fn percentages_scale_and_round_like_intstr() {
        let s = |v: &str| IntOrString::String(v.into());
        assert_eq!(scaled_value(&IntOrString::Int(3), 10, true), Ok(3));
        assert_eq!(scaled_value(&s("50%"), 3, true), Ok(2));
        assert_eq!(scaled_value(&s("50%"), 3, false), Ok(1));
        assert_eq!(scaled_value(&s("34%"), 3, true), Ok(2));
        assert_eq!(scaled_value(&s("100%"), 7, true), Ok(7));
        assert_eq!(scaled_value(&s("0%"), 7, true), Ok(0));
        assert_eq!(scaled_value(&s("20%"), 0, true), Ok(0));
        assert!(scaled_value(&s("5"), 10, true).is_err());
        assert!(scaled_value(&s("x%"), 10, true).is_err());
    }

    #[test]
    fn expectation_per_budget_kind() {
        let no_scale = || -> Result<i32, String> { Err("scale asked".into()) };
        // minAvailable as an integer: the selected pods are expected, no scale needed.
        assert_eq!(
            expectation(&spec(json!({"minAvailable": 2})), 5, no_scale),
            Ok(Expectation {
                expected: 5,
                desired_healthy: 2
            })
        );
        // minAvailable as a percentage of the controllers' scale, rounded up.
        assert_eq!(
            expectation(&spec(json!({"minAvailable": "50%"})), 2, || Ok(5)),
            Ok(Expectation {
                expected: 5,
                desired_healthy: 3
            })
        );
        // maxUnavailable as an integer, never below zero healthy.
        assert_eq!(
            expectation(&spec(json!({"maxUnavailable": 1})), 0, || Ok(4)),
            Ok(Expectation {
                expected: 4,
                desired_healthy: 3
            })
        );
        assert_eq!(
            expectation(&spec(json!({"maxUnavailable": 9})), 0, || Ok(4)),
            Ok(Expectation {
                expected: 4,
                desired_healthy: 0
            })
        );
        // maxUnavailable as a percentage: the unavailable count rounds up.
        assert_eq!(
            expectation(&spec(json!({"maxUnavailable": "30%"})), 0, || Ok(5)),
            Ok(Expectation {
                expected: 5,
                desired_healthy: 3
            })
        );
        // A missing controller fails the sync.
        assert_eq!(
            expectation(&spec(json!({"maxUnavailable": "30%"})), 1, no_scale),
            Err("scale asked".into())
        );
        assert!(expectation(&spec(json!({"minAvailable": "half"})), 1, || Ok(2)).is_err());
        // Only maxUnavailable and percentages read the controllers' scale.
        assert!(needs_scale(&spec(json!({"maxUnavailable": 1}))));
        assert!(needs_scale(&spec(json!({"minAvailable": "10%"}))));
        assert!(!needs_scale(&spec(json!({"minAvailable": 1}))));
        assert!(!needs_scale(&spec(json!({}))));
        assert_eq!(
            expectation(&spec(json!({})), 3, no_scale),
            Ok(Expectation {
                expected: 0,
                desired_healthy: 0
            })
        );
    }

    #[test]
    fn allowed_is_healthy_minus_desired_and_zero_without_pods() {
        let e = |expected, desired_healthy| Expectation {
            expected,
            desired_healthy,
        };
        assert_eq!(disruptions_allowed(3, e(3, 2)), 1);
        assert_eq!(disruptions_allowed(1, e(3, 2)), 0);
        assert_eq!(disruptions_allowed(5, e(5, 0)), 5);
        // No pods expected: nothing may go, even with a zero minimum.
        assert_eq!(disruptions_allowed(0, e(0, 0)), 0);
        assert_eq!(disruptions_allowed(2, e(0, 0)), 0);
    }

    #[test]
    fn healthy_pods_are_ready_not_deleting_nor_just_evicted() {
        let pods = vec![
            pod("a", true, false),
            pod("b", false, false),
            pod("c", true, true),
            pod("d", true, false),
            pod("e", true, false),
        ];
        let recorded: BTreeMap<String, Time> = [
            ("d".to_string(), Time(at(0))),
            ("e".to_string(), Time(at(-200))),
            ("c".to_string(), Time(at(0))),
            ("gone".to_string(), Time(at(0))),
        ]
        .into();
        let d = live_disruptions(&pods, Some(&recorded), at(10));
        // e expired, c is being deleted, gone is not selected any more.
        assert_eq!(d.kept.keys().collect::<Vec<_>>(), ["d"]);
        assert_eq!(d.recheck, Some(at(120)));
        assert_eq!(d.expired, ["e"]);
        assert_eq!(count_healthy(&pods, &d.kept, at(10)), 2);
        // Once d's eviction is older than the timeout it counts again.
        assert_eq!(count_healthy(&pods, &d.kept, at(121)), 3);
        assert_eq!(
            live_disruptions(&pods, None, at(10)),
            Disruptions::default()
        );
    }

    #[test]
    fn status_and_condition_follow_the_counts() {
        let b = pdb(3, None);
        let s = computed_status(
            &b,
            3,
            Expectation {
                expected: 3,
                desired_healthy: 2,
            },
            BTreeMap::new(),
            at(0),
        );
        assert_eq!(
            (
                s.current_healthy,
                s.desired_healthy,
                s.expected_pods,
                s.disruptions_allowed
            ),
            (3, 2, 3, 1)
        );
        assert_eq!(s.observed_generation, Some(3));
        let c = &s.conditions.clone().unwrap_or_default()[0];
        assert_eq!(
            (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
            (DISRUPTION_ALLOWED, "True", SUFFICIENT_PODS)
        );
        assert_eq!(c.observed_generation, Some(3));
        assert!(needs_write(&b, &s));
        // Written, the same computation needs no write.
        let written = pdb(3, serde_json::to_value(&s).ok());
        let again = computed_status(
            &written,
            3,
            Expectation {
                expected: 3,
                desired_healthy: 2,
            },
            BTreeMap::new(),
            at(50),
        );
        assert!(!needs_write(&written, &again));
        // The transition time stays while the status does not flip…
        let t = |s: &PodDisruptionBudgetStatus| {
            s.conditions.clone().unwrap_or_default()[0]
                .last_transition_time
                .0
        };
        assert_eq!(t(&again), at(0));
        // …and moves when it does.
        let worse = computed_status(
            &written,
            2,
            Expectation {
                expected: 3,
                desired_healthy: 2,
            },
            BTreeMap::new(),
            at(60),
        );
        assert_eq!(worse.disruptions_allowed, 0);
        let c = &worse.conditions.clone().unwrap_or_default()[0];
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", INSUFFICIENT_PODS)
        );
        assert_eq!(t(&worse), at(60));
        assert!(needs_write(&written, &worse));
    }

    #[test]
    fn a_lagging_observed_generation_is_written_even_with_equal_counts() {
        let e = Expectation {
            expected: 3,
            desired_healthy: 2,
        };
        let s = computed_status(&pdb(1, None), 3, e, BTreeMap::new(), at(0));
        // The spec changed (generation 2) without changing the counts.
        let lagging = pdb(2, serde_json::to_value(&s).ok());
        let new = computed_status(&lagging, 3, e, BTreeMap::new(), at(5));
        assert!(needs_write(&lagging, &new));
        assert_eq!(new.observed_generation, Some(2));
        let c = &new.conditions.clone().unwrap_or_default()[0];
        assert_eq!(c.observed_generation, Some(2));
    }

    #[test]
    fn failure_allows_nothing_and_keeps_the_generation() {
        let e = Expectation {
            expected: 3,
            desired_healthy: 1,
        };
        let ok = computed_status(&pdb(1, None), 3, e, BTreeMap::new(), at(0));
        assert_eq!(ok.disruptions_allowed, 2);
        let b = pdb(2, serde_json::to_value(&ok).ok());
        let failed = failed_status(&b, "found no controllers for pod \"p\"", at(9));
        assert_eq!(failed.disruptions_allowed, 0);
        assert_eq!(failed.observed_generation, Some(1));
        assert_eq!(failed.current_healthy, 3);
        let c = &failed.conditions.clone().unwrap_or_default()[0];
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", SYNC_FAILED)
        );
        assert_eq!(c.message, "found no controllers for pod \"p\"");
        assert_eq!(c.last_transition_time.0, at(9));
        assert!(needs_write(&b, &failed));
        let written = pdb(2, serde_json::to_value(&failed).ok());
        assert!(!needs_write(
            &written,
            &failed_status(&written, "found no controllers for pod \"p\"", at(20))
        ));
    }
}
