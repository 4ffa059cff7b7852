//! `ResourceQuota` (upstream's `plugin/pkg/admission/resourcequota` and
//! the quota evaluator of `apiserver/pkg/admission/plugin/resourcequota`):
//! a new object is charged to every quota of its namespace that constrains
//! what it uses (and whose scopes select it); a charge beyond `hard` is
//! refused with upstream's `exceeded quota` message, a quota the controller
//! has not measured yet refuses with `status unknown`, and a pod must
//! state the cpu/memory requests and limits a quota constrains. Accepted
//! charges are added to the quotas' `status.used` at once, each quota
//! written with a compare-and-swap retried from its current state, so
//! concurrent creates cannot both take the last unit. The resourcequota
//! controller later recomputes `used` from what really exists.
//!
//! Charged: pods, services and claims by the `quota` evaluators, any
//! other kind by `count/<resource>[.<group>]` (with the legacy names of
//! configmaps, secrets, replicationcontrollers and resourcequotas), on
//! create only (upstream also re-charges claim resizes and in-place pod
//! resizes).

use std::collections::BTreeSet;

use apimachinery::quantity::Quantity;
use apimachinery::ApiError;
use async_trait::async_trait;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, Pod, ResourceQuota as Quota, ScopedResourceSelectorRequirement, Service,
};
use quota::evaluator::pods::{pod_matches_scope, pod_usage, PodEvaluator};
use quota::evaluator::pvcs::{pvc_usage, PvcEvaluator};
use quota::evaluator::services::{service_usage, ServiceEvaluator};
use quota::evaluator::{empty_store, object_count_name, Evaluator};
use quota::resources::{self, ResourceList};
use serde_json::Value;

use super::{Attributes, Operation, Plugin};
use crate::state::ApiState;

pub struct ResourceQuota;

/// The kinds whose `count/` name has a legacy alias.
const ALIASED: [&str; 4] = [
    "configmaps",
    "secrets",
    "replicationcontrollers",
    "resourcequotas",
];

/// The cpu and memory names a pod's every container must state once a
/// quota constrains them (upstream's backward-compatible `Constraints`).
const MUST_SPECIFY: [&str; 6] = [
    "cpu",
    "memory",
    "requests.cpu",
    "requests.memory",
    "limits.cpu",
    "limits.memory",
];

/// What the new object would use.
struct Charge {
    usage: ResourceList,
    /// The quota resources this kind is measured by, among `hard`.
    matching: Box<dyn Fn(&[String]) -> Vec<String> + Send + Sync>,
    /// Set for pods: scopes and constraints look at it.
    pod: Option<Pod>,
}

fn charge(a: &Attributes<'_>, obj: &Value) -> Option<Charge> {
    let now = jiff::Timestamp::now();
    match (a.group, a.resource) {
        ("", "pods") => {
            let pod: Pod = serde_json::from_value(obj.clone()).ok()?;
            let e = PodEvaluator::new(empty_store(), std::sync::Arc::new(jiff::Timestamp::now));
            Some(Charge {
                usage: pod_usage(&pod, now),
                matching: Box::new(move |hard| e.matching_resources(hard)),
                pod: Some(pod),
            })
        }
        ("", "services") => {
            let svc: Service = serde_json::from_value(obj.clone()).ok()?;
            let e = ServiceEvaluator::new(empty_store());
            Some(Charge {
                usage: service_usage(&svc),
                matching: Box::new(move |hard| e.matching_resources(hard)),
                pod: None,
            })
        }
        ("", "persistentvolumeclaims") => {
            let pvc: PersistentVolumeClaim = serde_json::from_value(obj.clone()).ok()?;
            let e = PvcEvaluator::new(empty_store());
            Some(Charge {
                usage: pvc_usage(&pvc),
                matching: Box::new(move |hard| e.matching_resources(hard)),
                pod: None,
            })
        }
        (group, resource) => {
            let mut names = vec![object_count_name(group, resource)];
            if group.is_empty() && ALIASED.contains(&resource) {
                names.push(resource.to_string());
            }
            let usage = names
                .iter()
                .map(|n| (n.clone(), Quantity::from_int(1)))
                .collect();
            Some(Charge {
                usage,
                matching: Box::new(move |hard| {
                    hard.iter().filter(|h| names.contains(h)).cloned().collect()
                }),
                pod: None,
            })
        }
    }
}

/// Whether the quota's scopes select the object: every requirement must
/// hold; kinds other than pods know no scope (upstream's `MatchesNoScopeFunc`).
fn selected(
    selectors: &[ScopedResourceSelectorRequirement],
    pod: Option<&Pod>,
) -> Result<bool, String> {
    if selectors.is_empty() {
        return Ok(true);
    }
    let Some(pod) = pod else {
        return Ok(false);
    };
    for s in selectors {
        if !pod_matches_scope(s, pod)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Upstream's `prettyPrint`: `name=quantity` in name order, comma-joined.
fn pretty(list: &ResourceList) -> String {
    list.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Upstream's `enforcePodContainerConstraints` message, or None.
fn missing_constraints(pod: &Pod, required: &BTreeSet<String>) -> Option<String> {
    let required: BTreeSet<&str> = required
        .iter()
        .map(String::as_str)
        .filter(|r| MUST_SPECIFY.contains(r))
        .collect();
    if required.is_empty() {
        return None;
    }
    let spec = pod.spec.as_ref()?;
    let mut missing: std::collections::BTreeMap<&str, BTreeSet<String>> = Default::default();
    for c in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        let r = c.resources.as_ref();
        let requests = resources::parse(r.and_then(|r| r.requests.as_ref()));
        let limits = resources::parse(r.and_then(|r| r.limits.as_ref()));
        let stated = quota::evaluator::pods::compute_usage(&requests, &limits);
        for name in &required {
            if !stated.contains_key(*name) {
                missing.entry(name).or_default().insert(c.name.clone());
            }
        }
    }
    if missing.is_empty() {
        return None;
    }
    let parts: Vec<String> = missing
        .iter()
        .map(|(r, cs)| {
            format!(
                "{r} for: {}",
                cs.iter().cloned().collect::<Vec<_>>().join(",")
            )
        })
        .collect();
    Some(format!("must specify {}", parts.join("; ")))
}

/// The quota with `charge` added to its used, or upstream's refusal.
fn charged(a: &Attributes<'_>, stored: &Value, c: &Charge) -> Result<Option<Value>, ApiError> {
    let q: Quota = serde_json::from_value(stored.clone())
        .map_err(|e| ApiError::internal(format!("decoding a stored ResourceQuota: {e}")))?;
    let name = q.metadata.name.clone().unwrap_or_default();
    let status = q.status.clone().unwrap_or_default();
    let hard = resources::parse(status.hard.as_ref());
    let hard_names: Vec<String> = hard.keys().cloned().collect();
    let matching = (c.matching)(&hard_names);
    if matching.is_empty() {
        return Ok(None);
    }
    let selectors = quota::selectors(&q);
    match selected(&selectors, c.pod.as_ref()) {
        Ok(true) => {}
        Ok(false) => return Ok(None),
        Err(e) => return Err(a.forbidden(format!("failed quota: {name}: {e}"))),
    }
    if let Some(pod) = &c.pod {
        let required: BTreeSet<String> = matching.iter().cloned().collect();
        if let Some(message) = missing_constraints(pod, &required) {
            return Err(a.forbidden(format!("failed quota: {name}: {message}")));
        }
    }
    let used = resources::parse(status.used.as_ref());
    let unknown: Vec<&str> = matching
        .iter()
        .filter(|r| !used.contains_key(*r))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(a.forbidden(format!(
            "status unknown for quota: {name}, resources: {}",
            unknown.join(",")
        )));
    }
    let requested = resources::mask(&c.usage, &matching);
    if requested.is_empty() {
        return Ok(None);
    }
    let new_used = resources::add(&used, &requested);
    let exceeded: Vec<String> = requested
        .keys()
        .filter(|r| matches!((new_used.get(*r), hard.get(*r)), (Some(u), Some(h)) if u > h))
        .cloned()
        .collect();
    if !exceeded.is_empty() {
        return Err(a.forbidden(format!(
            "exceeded quota: {name}, requested: {}, used: {}, limited: {}",
            pretty(&resources::mask(&requested, &exceeded)),
            pretty(&resources::mask(&used, &exceeded)),
            pretty(&resources::mask(&hard, &exceeded)),
        )));
    }
    let mut out = stored.clone();
    out["status"]["used"] = serde_json::to_value(resources::to_api(&new_used))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Some(out))
}

#[async_trait]
impl Plugin for ResourceQuota {
    fn name(&self) -> &'static str {
        "ResourceQuota"
    }

    async fn validate(
        &self,
        state: &ApiState,
        a: &Attributes<'_>,
        obj: &Value,
    ) -> Result<(), ApiError> {
        if a.operation != Operation::Create || !a.subresource.is_empty() || a.namespace.is_empty() {
            return Ok(());
        }
        let prefix = format!("{}resourcequotas/{}/", state.prefix, a.namespace);
        let (quotas, _) = state.cacher.list(&prefix, &|_| true);
        if quotas.is_empty() {
            return Ok(());
        }
        let Some(c) = charge(a, obj) else {
            return Ok(());
        };
        // Check every quota first (from the cache), then charge each one
        // against its current stored state.
        let mut to_charge = Vec::new();
        for q in &quotas {
            let Ok(value) = q.value() else { continue };
            if charged(a, &value, &c)?.is_some() {
                to_charge.push(q.key.clone());
            }
        }
        if a.dry_run {
            return Ok(());
        }
        for key in to_charge {
            let result = state
                .store
                .guaranteed_update(&key, false, &Default::default(), None, |cur| {
                    let Some(cur) = cur else {
                        return Err(storage::Error::NotFound { key: key.clone() });
                    };
                    match charged(a, &cur.value, &c) {
                        Ok(Some(v)) => Ok(v),
                        Ok(None) => Ok(cur.value.clone()),
                        Err(e) => Err(storage::Error::Api(e)),
                    }
                })
                .await;
            match result {
                Ok(_) | Err(storage::Error::NotFound { .. }) => {}
                Err(storage::Error::Api(e)) => return Err(e),
                Err(e) => {
                    return Err(a.forbidden(format!(
                    "unable to {} {} at this time because there was an error enforcing quota: {e}",
                    "create", a.resource
                )))
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(resource: &'static str) -> Attributes<'static> {
        Attributes {
            operation: Operation::Create,
            group: "",
            version: "v1",
            kind: "Pod",
            resource,
            subresource: "",
            namespace: "ns",
            name: "x",
            old: None,
            dry_run: false,
            user: Box::leak(Box::default()),
        }
    }

    fn quota(hard: Value, used: Value, spec: Value) -> Value {
        let mut s = json!({"hard": hard});
        if let (Some(m), Some(e)) = (s.as_object_mut(), spec.as_object()) {
            m.extend(e.clone());
        }
        json!({"metadata": {"name": "q", "namespace": "ns"}, "spec": s,
            "status": {"hard": hard, "used": used}})
    }

    fn pod(cpu: &str) -> Value {
        json!({"metadata": {"name": "x", "namespace": "ns"}, "spec": {"containers": [
            {"name": "app", "image": "busybox", "resources": {"requests": {"cpu": cpu}, "limits": {"cpu": cpu}}}]},
            "status": {"phase": "Pending"}})
    }

    #[test]
    fn a_charge_within_hard_is_added_and_beyond_it_refused() {
        let a = attrs("pods");
        let c = charge(&a, &pod("500m")).expect("charge");
        let q = quota(
            json!({"pods": "2", "requests.cpu": "1"}),
            json!({"pods": "1", "requests.cpu": "500m"}),
            json!({}),
        );
        let out = charged(&a, &q, &c).expect("allowed").expect("charged");
        assert_eq!(
            out["status"]["used"],
            json!({"pods": "2", "requests.cpu": "1"})
        );
        let err = charged(&a, &out, &c).expect_err("over");
        assert!(
            err.to_string().contains("exceeded quota: q, requested: pods=1,requests.cpu=500m, used: pods=2,requests.cpu=1, limited: pods=2,requests.cpu=1"),
            "{err}"
        );
    }

    #[test]
    fn unknown_status_constraints_and_scopes() {
        let a = attrs("pods");
        let c = charge(&a, &pod("100m")).expect("charge");
        let fresh = json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": "5"}}, "status": {"hard": {"pods": "5"}}});
        assert!(charged(&a, &fresh, &c)
            .expect_err("unknown")
            .to_string()
            .contains("status unknown for quota: q, resources: pods"));
        let mem = quota(
            json!({"limits.memory": "1Gi"}),
            json!({"limits.memory": "0"}),
            json!({}),
        );
        assert!(charged(&a, &mem, &c)
            .expect_err("constraint")
            .to_string()
            .contains("failed quota: q: must specify limits.memory for: app"));
        let best_effort_only = quota(
            json!({"pods": "1"}),
            json!({"pods": "1"}),
            json!({"scopes": ["BestEffort"]}),
        );
        assert!(charged(&a, &best_effort_only, &c)
            .expect("not selected")
            .is_none());
        // Other kinds by count, with the legacy alias.
        let cm = attrs("configmaps");
        let c = charge(&cm, &json!({"metadata": {"name": "c"}})).expect("charge");
        let q = quota(
            json!({"configmaps": "1"}),
            json!({"configmaps": "1"}),
            json!({}),
        );
        assert!(charged(&cm, &q, &c)
            .expect_err("over")
            .to_string()
            .contains("exceeded quota: q, requested: configmaps=1"));
    }
}
