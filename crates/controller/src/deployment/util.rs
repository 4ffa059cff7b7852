//! The deployment controller's arithmetic and bookkeeping (upstream's
//! pkg/controller/deployment/util/deployment_util.go and
//! pkg/controller/history's hashing): surge/unavailable fenceposts, how
//! far to scale, revisions, the pod-template hash, and conditions.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// An int-or-percent against a total (upstream's
/// `GetScaledValueFromIntOrPercent`); bad strings count as 0.
pub fn scaled(v: Option<&IntOrString>, total: i32, round_up: bool, default_percent: i32) -> i32 {
    let pct = |p: i32| {
        let x = f64::from(p) * f64::from(total) / 100.0;
        // Cast after rounding; values are bounded by total.
        (if round_up { x.ceil() } else { x.floor() }) as i32
    };
    match v {
        None => pct(default_percent),
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) => s
            .strip_suffix('%')
            .and_then(|n| n.parse::<i32>().ok())
            .map_or(0, pct),
    }
}

/// Upstream's `ResolveFenceposts`: (maxSurge, maxUnavailable), surge
/// rounded up, unavailable down, and never both zero.
pub fn fenceposts(d: &Deployment) -> (i32, i32) {
    let desired = replicas(d);
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let surge = scaled(ru.and_then(|r| r.max_surge.as_ref()), desired, true, 25).max(0);
    let mut unavailable = scaled(
        ru.and_then(|r| r.max_unavailable.as_ref()),
        desired,
        false,
        25,
    )
    .max(0);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable)
}

pub fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

pub fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

pub fn is_recreate(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        == Some("Recreate")
}

/// Upstream's `NewRSNewReplicas` for RollingUpdate: how big the new
/// ReplicaSet may be now, given every ReplicaSet's size.
pub fn new_rs_new_replicas(
    desired: i32,
    max_surge: i32,
    all_replicas: i32,
    new_replicas: i32,
) -> i32 {
    let max_total = desired + max_surge;
    if all_replicas >= max_total {
        return new_replicas;
    }
    let scale_up = max_total - all_replicas;
    (new_replicas + scale_up).min(desired)
}

/// Upstream's `reconcileOldReplicaSets` bound: how many old pods may go now.
pub fn max_scaled_down(
    desired: i32,
    max_unavailable: i32,
    all_replicas: i32,
    new_replicas: i32,
    new_available: i32,
) -> i32 {
    let min_available = desired - max_unavailable;
    let new_unavailable = new_replicas - new_available;
    all_replicas - min_available - new_unavailable
}

pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// A template without the pod-template-hash label, for comparison
/// (upstream's `EqualIgnoreHash`).
pub fn without_hash(t: &PodTemplateSpec) -> serde_json::Value {
    let mut t = t.clone();
    if let Some(l) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        l.remove(POD_TEMPLATE_HASH);
        if l.is_empty() {
            if let Some(m) = t.metadata.as_mut() {
                m.labels = None;
            }
        }
    }
    if t.metadata
        .as_ref()
        .is_some_and(|m| m == &Default::default())
    {
        t.metadata = None;
    }
    serde_json::to_value(&t).unwrap_or(serde_json::Value::Null)
}

/// The pod-template hash: FNV-1a (32 bit) of the template and the
/// collision count, spelled in upstream's `SafeEncodeString` alphabet.
/// (Upstream hashes a Go object dump, so the strings differ from
/// upstream's; what matters — same template, same name — holds.)
pub fn template_hash(t: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut h: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
    };
    feed(without_hash(t).to_string().as_bytes());
    if let Some(c) = collision_count {
        feed(&c.to_le_bytes());
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string()
        .bytes()
        .map(|d| ALPHABET[usize::from(d) % ALPHABET.len()] as char)
        .collect()
}

/// Upstream's `SetDeploymentCondition`: an unchanged status and reason
/// keeps the old condition; a changed reason keeps the transition time.
pub fn set_condition(conds: &mut Vec<DeploymentCondition>, new: DeploymentCondition) {
    if let Some(cur) = conds.iter().find(|c| c.type_ == new.type_) {
        if cur.status == new.status && cur.reason == new.reason {
            return;
        }
        let mut new = new;
        if cur.status == new.status {
            new.last_transition_time = cur.last_transition_time.clone();
        }
        conds.retain(|c| c.type_ != new.type_);
        conds.push(new);
    } else {
        conds.push(new);
    }
}

pub fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// Annotations a new ReplicaSet copies from its Deployment (upstream's
/// `skipCopyAnnotation` leaves out the revision bookkeeping and kubectl's).
pub fn copied_annotations(d: &Deployment) -> BTreeMap<String, String> {
    d.metadata
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| {
            ![
                REVISION,
                REVISION_HISTORY,
                DESIRED_REPLICAS,
                MAX_REPLICAS,
                "kubectl.kubernetes.io/last-applied-configuration",
            ]
            .contains(&k.as_str())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(
        replicas: i32,
        surge: Option<IntOrString>,
        unavailable: Option<IntOrString>,
    ) -> Deployment {
        let mut d = Deployment::default();
        let mut spec = k8s_openapi::api::apps::v1::DeploymentSpec {
            replicas: Some(replicas),
            ..Default::default()
        };
        spec.strategy = Some(k8s_openapi::api::apps::v1::DeploymentStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(k8s_openapi::api::apps::v1::RollingUpdateDeployment {
                max_surge: surge,
                max_unavailable: unavailable,
            }),
        });
        d.spec = Some(spec);
        d
    }

    #[test]
    fn fenceposts_round_like_upstream() {
        let s = |v: &str| Some(IntOrString::String(v.into()));
        let i = |v: i32| Some(IntOrString::Int(v));
        let cases = [
            (dep(10, None, None), (3, 2)), // 25% up, 25% down
            (dep(4, s("50%"), s("50%")), (2, 2)),
            (dep(3, i(0), i(0)), (0, 1)),         // never both zero
            (dep(1, s("25%"), s("25%")), (1, 0)), // 0.25 up is 1, down is 0
            (dep(5, i(2), s("bogus")), (2, 0)),
        ];
        for (d, want) in cases {
            assert_eq!(
                fenceposts(&d),
                want,
                "{:?}",
                d.spec.and_then(|s| s.strategy)
            );
        }
    }

    #[test]
    fn surge_math() {
        // 10 desired, surge 3: with 10 old and 0 new, the new one may grow to 3.
        assert_eq!(new_rs_new_replicas(10, 3, 10, 0), 3);
        // Already at 13 in total: no growth.
        assert_eq!(new_rs_new_replicas(10, 3, 13, 3), 3);
        // Never past desired.
        assert_eq!(new_rs_new_replicas(10, 3, 4, 9), 10);
        // 10 desired, 2 unavailable allowed, 13 pods, new 3 of which 0 available: 0 may go.
        assert_eq!(max_scaled_down(10, 2, 13, 3, 0), 2);
        assert_eq!(max_scaled_down(10, 0, 10, 0, 0), 0);
    }

    #[test]
    fn hash_ignores_its_own_label_and_changes_with_collisions() {
        let mut t = PodTemplateSpec::default();
        let a = template_hash(&t, None);
        t.metadata = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            labels: Some(BTreeMap::from([(POD_TEMPLATE_HASH.to_string(), a.clone())])),
            ..Default::default()
        });
        assert_eq!(template_hash(&t, None), a);
        assert_ne!(template_hash(&t, Some(1)), a);
        assert!(a
            .bytes()
            .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b)));
    }

    #[test]
    fn conditions_keep_transition_time_when_status_holds() {
        let t0: Timestamp = "2026-01-01T00:00:00Z"
            .parse()
            .unwrap_or(Timestamp::UNIX_EPOCH);
        let t1: Timestamp = "2026-01-01T00:01:00Z"
            .parse()
            .unwrap_or(Timestamp::UNIX_EPOCH);
        let mut c = vec![condition(
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            "m".into(),
            t0,
        )];
        set_condition(
            &mut c,
            condition(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                "done".into(),
                t1,
            ),
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].last_transition_time, Some(Time(t0)));
        assert_eq!(c[0].reason.as_deref(), Some("NewReplicaSetAvailable"));
    }
}
