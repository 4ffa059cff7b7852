//! The StatefulSet controller's decisions as pure functions (upstream's
//! pkg/controller/statefulset/stateful_set_utils.go: `getOrdinal`,
//! `newVersionedStatefulSetPod`, `updateIdentity`, `updateStorage`,
//! `getPersistentVolumeClaims`; stateful_set_control.go:
//! `updateStatefulSet`'s order of work and `computeReplicaStatus`).

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::history::CONTROLLER_REVISION_HASH;
use crate::replicaset::ranking::{is_available, is_ready};

/// Upstream's `StatefulSetPodNameLabel`.
pub const POD_NAME: &str = "statefulset.kubernetes.io/pod-name";
/// Upstream's `PodIndexLabel`.
pub const POD_INDEX: &str = "apps.kubernetes.io/pod-index";

/// What a sync needs of a StatefulSet.
#[derive(Debug, Clone)]
pub struct Set {
    pub name: String,
    pub replicas: i32,
    /// `spec.ordinals.start`.
    pub start: i32,
    /// OrderedReady (one at a time, in order) rather than Parallel.
    pub monotonic: bool,
    pub rolling: bool,
    pub partition: i32,
    pub min_ready_seconds: i64,
}

impl Set {
    pub fn from(sts: &StatefulSet) -> Option<Set> {
        let spec = sts.spec.as_ref()?;
        let ru = spec.update_strategy.as_ref();
        Some(Set {
            name: sts.metadata.name.clone()?,
            replicas: spec.replicas.unwrap_or(1).max(0),
            start: spec
                .ordinals
                .as_ref()
                .and_then(|o| o.start)
                .unwrap_or(0)
                .max(0),
            monotonic: spec.pod_management_policy.as_deref() != Some("Parallel"),
            rolling: ru
                .and_then(|u| u.type_.as_deref())
                .unwrap_or("RollingUpdate")
                == "RollingUpdate",
            partition: ru
                .and_then(|u| u.rolling_update.as_ref())
                .and_then(|r| r.partition)
                .unwrap_or(0),
            min_ready_seconds: i64::from(spec.min_ready_seconds.unwrap_or(0)),
        })
    }
}

/// Upstream's `getParentNameAndOrdinal`: `<set>-<ordinal>` only.
pub fn ordinal(set: &str, pod: &Pod) -> Option<i32> {
    let name = pod.metadata.name.as_deref()?;
    let rest = name.strip_prefix(set)?.strip_prefix('-')?;
    if rest.is_empty()
        || !rest.bytes().all(|b| b.is_ascii_digit())
        || (rest.len() > 1 && rest.starts_with('0'))
    {
        return None;
    }
    rest.parse().ok()
}

pub fn pod_name(set: &str, ordinal: i32) -> String {
    format!("{set}-{ordinal}")
}

/// Upstream's `getPersistentVolumeClaimName`.
pub fn claim_name(template: &str, set: &str, ordinal: i32) -> String {
    format!("{template}-{set}-{ordinal}")
}

/// The revision (name) a pod was made from.
pub fn revision_of(pod: &Pod) -> Option<&str> {
    pod.metadata
        .labels
        .as_ref()?
        .get(CONTROLLER_REVISION_HASH)
        .map(String::as_str)
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

pub fn is_terminating(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some()
}

/// Upstream's `isRunningAndReady`.
pub fn running_and_ready(p: &Pod) -> bool {
    phase(p) == "Running" && is_ready(p)
}

/// Upstream's `isHealthy` with availability (`isRunningAndAvailable`).
pub fn healthy(p: &Pod, min_ready_seconds: i64, now: Timestamp) -> bool {
    running_and_ready(p) && !is_terminating(p) && is_available(p, min_ready_seconds, now)
}

/// Upstream's `isFailed` / `isSucceeded`: a pod that must be replaced.
fn finished(p: &Pod) -> bool {
    matches!(phase(p), "Failed" | "Succeeded")
}

/// Upstream's `newVersionedStatefulSetPod` choice: with RollingUpdate, an
/// ordinal below the partition is made from the current revision.
pub fn from_current(set: &Set, ordinal: i32) -> bool {
    set.rolling && ordinal - set.start < set.partition
}

/// One step of a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create the pod of this ordinal (its claims first), from the current
    /// revision when `current`, else from the update revision.
    Create { ordinal: i32, current: bool },
    /// Delete this pod (failed, condemned, or out of date).
    Delete(String),
    /// Put the identity labels back on this pod.
    Relabel(String),
}

fn name(p: &Pod) -> String {
    p.metadata.name.clone().unwrap_or_default()
}

fn identity_ok(set: &Set, p: &Pod, ordinal: i32) -> bool {
    let l = p.metadata.labels.clone().unwrap_or_default();
    l.get(POD_NAME) == Some(&pod_name(&set.name, ordinal))
        && l.get(POD_INDEX) == Some(&ordinal.to_string())
}

/// Upstream's `updateStatefulSet` order of work: replicas in order
/// (create, replace failed, wait for Running and Ready when OrderedReady),
/// then condemned pods from the highest ordinal, then the rolling update
/// from the highest ordinal down to the partition, one pod at a time.
pub fn plan(
    set: &Set,
    replicas: &BTreeMap<i32, &Pod>,
    condemned: &[(i32, &Pod)],
    update_revision: &str,
    now: Timestamp,
) -> Vec<Op> {
    let mut ops = Vec::new();
    let healthy = |p: &Pod| healthy(p, set.min_ready_seconds, now);
    let first_unhealthy: Option<String> = replicas
        .values()
        .copied()
        .chain(condemned.iter().rev().map(|(_, p)| *p))
        .find(|p| !healthy(p))
        .map(name);
    let mut missing = false;
    for ordinal in set.start..set.start.saturating_add(set.replicas) {
        match replicas.get(&ordinal) {
            None => {
                ops.push(Op::Create {
                    ordinal,
                    current: from_current(set, ordinal),
                });
                missing = true;
                if set.monotonic {
                    return ops;
                }
            }
            Some(p) if finished(p) && !is_terminating(p) => {
                ops.push(Op::Delete(name(p)));
                missing = true;
                if set.monotonic {
                    return ops;
                }
            }
            Some(p) => {
                if !identity_ok(set, p, ordinal) && !is_terminating(p) {
                    ops.push(Op::Relabel(name(p)));
                }
                if set.monotonic && !healthy(p) {
                    return ops;
                }
            }
        }
    }
    let mut condemned: Vec<&(i32, &Pod)> = condemned.iter().collect();
    condemned.sort_by_key(|(o, _)| std::cmp::Reverse(*o));
    for (_, p) in condemned {
        if is_terminating(p) {
            if set.monotonic {
                return ops;
            }
            continue;
        }
        if set.monotonic && !healthy(p) && first_unhealthy.as_deref() != Some(name(p).as_str()) {
            return ops;
        }
        ops.push(Op::Delete(name(p)));
        if set.monotonic {
            return ops;
        }
    }
    if !set.rolling || missing {
        return ops;
    }
    let min = set.start.saturating_add(set.partition.max(0));
    for ordinal in (min..set.start.saturating_add(set.replicas)).rev() {
        let Some(p) = replicas.get(&ordinal) else {
            return ops;
        };
        if revision_of(p) != Some(update_revision) && !is_terminating(p) {
            ops.push(Op::Delete(name(p)));
            return ops;
        }
        if !healthy(p) {
            return ops;
        }
    }
    ops
}

/// The pod of `ordinal` from a revision's template (upstream's
/// `newStatefulSetPod` + `updateIdentity` + `updateStorage`).
pub fn new_pod(
    sts: &StatefulSet,
    template: &PodTemplateSpec,
    controller_ref: &OwnerReference,
    revision: &str,
    ordinal: i32,
) -> Option<Pod> {
    let set = sts.metadata.name.clone()?;
    let spec = sts.spec.as_ref()?;
    let tm = template.metadata.clone().unwrap_or_default();
    let name = pod_name(&set, ordinal);
    let mut labels = tm.labels.unwrap_or_default();
    labels.insert(POD_NAME.into(), name.clone());
    labels.insert(POD_INDEX.into(), ordinal.to_string());
    labels.insert(CONTROLLER_REVISION_HASH.into(), revision.to_string());
    let mut pod_spec = template.spec.clone()?;
    pod_spec.hostname = Some(name.clone());
    pod_spec.subdomain = spec.service_name.clone().filter(|s| !s.is_empty());
    let claims = spec.volume_claim_templates.as_deref().unwrap_or_default();
    if !claims.is_empty() {
        let volumes = pod_spec.volumes.get_or_insert_with(Vec::new);
        for c in claims {
            let tname = c.metadata.name.clone().unwrap_or_default();
            volumes.retain(|v| v.name != tname);
            volumes.push(Volume {
                name: tname.clone(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim_name(&tname, &set, ordinal),
                    read_only: None,
                }),
                ..Default::default()
            });
        }
    }
    Some(Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: sts.metadata.namespace.clone(),
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

/// The claims of `ordinal` (upstream's `getPersistentVolumeClaims`): each
/// template's, named `<template>-<set>-<ordinal>`, labelled with the
/// selector's matchLabels; owned by the set when
/// `persistentVolumeClaimRetentionPolicy.whenDeleted` is Delete.
pub fn claims(
    sts: &StatefulSet,
    set_ref: &OwnerReference,
    ordinal: i32,
) -> Vec<PersistentVolumeClaim> {
    let Some(spec) = sts.spec.as_ref() else {
        return Vec::new();
    };
    let set = sts.metadata.name.clone().unwrap_or_default();
    let delete_with_set = spec
        .persistent_volume_claim_retention_policy
        .as_ref()
        .and_then(|p| p.when_deleted.as_deref())
        == Some("Delete");
    spec.volume_claim_templates
        .iter()
        .flatten()
        .map(|t| {
            let tname = t.metadata.name.clone().unwrap_or_default();
            let mut labels = t.metadata.labels.clone().unwrap_or_default();
            for (k, v) in spec.selector.match_labels.iter().flatten() {
                labels.insert(k.clone(), v.clone());
            }
            let owner = OwnerReference {
                controller: None,
                block_owner_deletion: None,
                ..set_ref.clone()
            };
            PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(claim_name(&tname, &set, ordinal)),
                    namespace: sts.metadata.namespace.clone(),
                    labels: Some(labels),
                    annotations: t.metadata.annotations.clone(),
                    owner_references: delete_with_set.then(|| vec![owner]),
                    ..Default::default()
                },
                spec: t.spec.clone(),
                status: None,
            }
        })
        .collect()
}

/// The counts of upstream's `computeReplicaStatus`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub replicas: i32,
    pub ready: i32,
    pub available: i32,
    pub current: i32,
    pub updated: i32,
}

pub fn counts(
    pods: &[&Pod],
    current: &str,
    update: &str,
    min_ready_seconds: i64,
    now: Timestamp,
) -> Counts {
    let mut c = Counts::default();
    for p in pods {
        c.replicas += 1;
        if running_and_ready(p) {
            c.ready += 1;
            if is_available(p, min_ready_seconds, now) {
                c.available += 1;
            }
        }
        if !is_terminating(p) {
            if revision_of(p) == Some(current) {
                c.current += 1;
            }
            if revision_of(p) == Some(update) {
                c.updated += 1;
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ord: i32, rev: &str, state: &str) -> Pod {
        let (phase, ready, deleting) = match state {
            "ready" => ("Running", "True", false),
            "pending" => ("Pending", "False", false),
            "failed" => ("Failed", "False", false),
            "terminating" => ("Running", "True", true),
            _ => ("Running", "False", false),
        };
        match serde_json::from_value(json!({
            "metadata": {"name": format!("web-{ord}"), "deletionTimestamp": deleting.then_some("2024-01-01T00:00:00Z"),
                "labels": {"controller-revision-hash": rev, POD_NAME: format!("web-{ord}"), POD_INDEX: ord.to_string()}},
            "spec": {"containers": []},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": ready,
                "lastTransitionTime": "2024-01-01T00:00:00Z"}]}
        })) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    fn set(replicas: i32, monotonic: bool, partition: i32) -> Set {
        Set {
            name: "web".into(),
            replicas,
            start: 0,
            monotonic,
            rolling: true,
            partition,
            min_ready_seconds: 0,
        }
    }

    #[test]
    fn plans() {
        let now: Timestamp = "2024-01-02T00:00:00Z"
            .parse()
            .unwrap_or(Timestamp::UNIX_EPOCH);
        type Case<'a> = (&'a str, Set, Vec<(i32, &'a str, &'a str)>, Vec<Op>);
        let create = |ordinal, current| Op::Create { ordinal, current };
        let del = |n: &str| Op::Delete(n.to_string());
        let cases: Vec<Case> = vec![
            (
                "ordered: first pod",
                set(3, true, 0),
                vec![],
                vec![create(0, false)],
            ),
            (
                "ordered: waits for pod 0",
                set(3, true, 0),
                vec![(0, "u", "pending")],
                vec![],
            ),
            (
                "ordered: next after ready",
                set(3, true, 0),
                vec![(0, "u", "ready")],
                vec![create(1, false)],
            ),
            (
                "parallel: all at once",
                set(3, false, 0),
                vec![(0, "u", "pending")],
                vec![create(1, false), create(2, false)],
            ),
            (
                "failed pod replaced",
                set(2, true, 0),
                vec![(0, "u", "failed")],
                vec![del("web-0")],
            ),
            (
                "scale down from the highest, one at a time",
                set(1, true, 0),
                vec![(0, "u", "ready"), (1, "u", "ready"), (2, "u", "ready")],
                vec![del("web-2")],
            ),
            (
                "scale down waits for the terminating one",
                set(1, true, 0),
                vec![
                    (0, "u", "ready"),
                    (1, "u", "ready"),
                    (2, "u", "terminating"),
                ],
                vec![],
            ),
            (
                "parallel scale down: all condemned",
                set(1, false, 0),
                vec![(0, "u", "ready"), (1, "u", "ready"), (2, "u", "ready")],
                vec![del("web-2"), del("web-1")],
            ),
            (
                "rolling update from the highest ordinal",
                set(3, true, 0),
                vec![(0, "c", "ready"), (1, "c", "ready"), (2, "c", "ready")],
                vec![del("web-2")],
            ),
            (
                "rolling update waits for the updated pod",
                set(3, false, 0),
                vec![(0, "c", "ready"), (1, "c", "ready"), (2, "u", "pending")],
                vec![],
            ),
            (
                "partition stops the update",
                set(3, true, 2),
                vec![(0, "c", "ready"), (1, "c", "ready"), (2, "u", "ready")],
                vec![],
            ),
            (
                "below the partition: current revision",
                set(3, true, 2),
                vec![(0, "c", "ready")],
                vec![create(1, true)],
            ),
        ];
        for (what, s, pods, want) in cases {
            let all: Vec<(i32, Pod)> = pods.iter().map(|(o, r, st)| (*o, pod(*o, r, st))).collect();
            let replicas: BTreeMap<i32, &Pod> = all
                .iter()
                .filter(|(o, _)| *o < s.replicas)
                .map(|(o, p)| (*o, p))
                .collect();
            let condemned: Vec<(i32, &Pod)> = all
                .iter()
                .filter(|(o, _)| *o >= s.replicas)
                .map(|(o, p)| (*o, p))
                .collect();
            assert_eq!(plan(&s, &replicas, &condemned, "u", now), want, "{what}");
        }
    }

    #[test]
    fn identities() {
        let sts: StatefulSet = match serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"serviceName": "svc", "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [],
                    "volumes": [{"name": "data", "emptyDir": {}}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}],
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"}}
        })) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        let owner = OwnerReference {
            api_version: "apps/v1".into(),
            kind: "StatefulSet".into(),
            name: "web".into(),
            uid: "u".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        let t = sts
            .spec
            .as_ref()
            .map(|s| s.template.clone())
            .unwrap_or_default();
        let p = new_pod(&sts, &t, &owner, "web-abc", 2);
        let meta = p.as_ref().map(|p| &p.metadata);
        assert_eq!(meta.and_then(|m| m.name.as_deref()), Some("web-2"));
        let labels = meta.and_then(|m| m.labels.clone()).unwrap_or_default();
        assert_eq!(labels.get(POD_NAME).map(String::as_str), Some("web-2"));
        assert_eq!(labels.get(POD_INDEX).map(String::as_str), Some("2"));
        assert_eq!(
            labels.get(CONTROLLER_REVISION_HASH).map(String::as_str),
            Some("web-abc")
        );
        let spec = p.and_then(|p| p.spec).unwrap_or_default();
        assert_eq!(
            (spec.hostname.as_deref(), spec.subdomain.as_deref()),
            (Some("web-2"), Some("svc"))
        );
        let vols = spec.volumes.unwrap_or_default();
        assert_eq!(
            vols.len(),
            1,
            "the claim replaces the template's volume of the same name"
        );
        assert_eq!(
            vols[0]
                .persistent_volume_claim
                .as_ref()
                .map(|c| c.claim_name.as_str()),
            Some("data-web-2")
        );
        let c = claims(&sts, &owner, 2);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].metadata.name.as_deref(), Some("data-web-2"));
        assert_eq!(
            c[0].metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("app"))
                .map(String::as_str),
            Some("web")
        );
        assert_eq!(
            c[0].metadata
                .owner_references
                .as_ref()
                .map(|o| o[0].controller),
            Some(None)
        );
        let named = |n: &str| Pod {
            metadata: ObjectMeta {
                name: Some(n.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(ordinal("web", &named("web-12")), Some(12));
        assert_eq!(ordinal("web", &named("web-012")), None);
        assert_eq!(ordinal("web", &named("web-x")), None);
        assert_eq!(ordinal("web", &named("webapp-1")), None);
    }
}
