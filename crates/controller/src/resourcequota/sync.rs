//! The status a ResourceQuota should have (upstream's `syncResourceQuota`
//! in pkg/controller/resourcequota/resource_quota_controller.go and
//! `CalculateUsage` in staging/src/k8s.io/apiserver/pkg/quota/v1), without
//! the write: `status.hard` is `spec.hard`; `status.used` holds, for every
//! hard resource some evaluator measures, the namespace's usage; a used
//! entry no evaluator measured keeps its last value while it stays in
//! `spec.hard`.

use k8s_openapi::api::core::v1::{
    ResourceQuota, ResourceQuotaStatus, ScopedResourceSelectorRequirement,
};

use super::evaluator::{Evaluator, UsageStatsOptions};
use super::resources::{self, ResourceList};

pub use quota::selectors;

/// The namespace's usage of the hard resources the evaluators measure
/// (upstream's `CalculateUsage`).
pub fn calculate_usage(
    namespace: &str,
    selectors: &[ScopedResourceSelectorRequirement],
    hard: &ResourceList,
    evaluators: &[Box<dyn Evaluator>],
) -> ResourceList {
    let hard_names: Vec<String> = hard.keys().cloned().collect();
    let mut matched: Vec<String> = Vec::new();
    for e in evaluators {
        for name in e.matching_resources(&hard_names) {
            if !matched.contains(&name) {
                matched.push(name);
            }
        }
    }
    let mut used = ResourceList::new();
    for e in evaluators {
        let mine = e.matching_resources(&matched);
        if mine.is_empty() {
            continue;
        }
        let stats = e.usage_stats(&UsageStatsOptions {
            namespace,
            selectors,
            resources: &mine,
        });
        resources::add_into(&mut used, &stats);
    }
    resources::mask(&used, &matched)
}

/// The status `quota` should have, or `None` when it already has it
/// (compared by value, so `1000m` equals `1`).
pub fn desired_status(
    quota: &ResourceQuota,
    evaluators: &[Box<dyn Evaluator>],
) -> Option<ResourceQuotaStatus> {
    let namespace = quota.metadata.namespace.as_deref().unwrap_or_default();
    let status = quota.status.as_ref();
    let hard = resources::parse(quota.spec.as_ref().and_then(|s| s.hard.as_ref()));
    let status_hard = resources::parse(status.and_then(|s| s.hard.as_ref()));
    let last_used = resources::parse(status.and_then(|s| s.used.as_ref()));
    let mut used = last_used.clone();
    let selectors = selectors(quota);
    used.extend(calculate_usage(namespace, &selectors, &hard, evaluators));
    let hard_names: Vec<String> = hard.keys().cloned().collect();
    let used = resources::mask(&used, &hard_names);
    // Upstream also writes when status.hard or status.used is unset; an
    // empty list may be stored as unset, so that counts only when there
    // is something to write (else every write would trigger another).
    let unset = (status.and_then(|s| s.hard.as_ref()).is_none() && !hard.is_empty())
        || (status.and_then(|s| s.used.as_ref()).is_none() && !used.is_empty());
    let dirty =
        unset || !resources::equals(&hard, &status_hard) || !resources::equals(&used, &last_used);
    dirty.then(|| ResourceQuotaStatus {
        hard: Some(resources::to_api(&hard)),
        used: Some(resources::to_api(&used)),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::{ConfigMap, Pod};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
    use serde_json::json;

    use super::*;
    use crate::resourcequota::evaluator::pods::PodEvaluator;
    use crate::resourcequota::evaluator::testing::store;
    use crate::resourcequota::evaluator::ObjectCountEvaluator;

    fn evaluators() -> Vec<Box<dyn Evaluator>> {
        let pods = store::<Pod>(vec![
            json!({"metadata": {"name": "a", "namespace": "ns"}, "spec": {"containers": [
                {"name": "c", "image": "x", "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}}}]}}),
            json!({"metadata": {"name": "b", "namespace": "ns"}, "spec": {"containers": [
                {"name": "c", "image": "x", "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}}}]}}),
            json!({"metadata": {"name": "done", "namespace": "ns"}, "spec": {"containers": [
                {"name": "c", "image": "x", "resources": {"requests": {"cpu": "4"}}}]},
                "status": {"phase": "Succeeded"}}),
        ]);
        let cms = store::<ConfigMap>(vec![json!({"metadata": {"name": "a", "namespace": "ns"}})]);
        let now = "2026-12-01T00:00:00Z".parse().unwrap_or_default();
        vec![
            Box::new(PodEvaluator::new(pods, std::sync::Arc::new(move || now)))
                as Box<dyn Evaluator>,
            Box::new(ObjectCountEvaluator::new(
                cms,
                "",
                "configmaps",
                Some("configmaps"),
            )),
        ]
    }

    fn quota(v: serde_json::Value) -> ResourceQuota {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("quota: {e}"))
    }

    fn text(m: &Option<BTreeMap<String, ApiQuantity>>) -> Vec<(String, String)> {
        m.iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn status_mirrors_hard_and_measures_used() {
        let q = quota(
            json!({"metadata": {"name": "q", "namespace": "ns"}, "spec": {"hard": {
            "pods": "10", "requests.cpu": "2000m", "requests.memory": "2Gi",
            "configmaps": "5", "count/pods": "20", "example.com/unknown": "1"}}}),
        );
        let e = evaluators();
        let status = desired_status(&q, &e).unwrap_or_default();
        assert_eq!(
            text(&status.hard),
            pairs(&[
                ("configmaps", "5"),
                ("count/pods", "20"),
                ("example.com/unknown", "1"),
                ("pods", "10"),
                ("requests.cpu", "2"),
                ("requests.memory", "2Gi"),
            ])
        );
        // The succeeded pod counts for count/pods only; nothing measures
        // example.com/unknown, so it has no used entry.
        assert_eq!(
            text(&status.used),
            pairs(&[
                ("configmaps", "1"),
                ("count/pods", "3"),
                ("pods", "2"),
                ("requests.cpu", "500m"),
                ("requests.memory", "1Gi"),
            ])
        );
        // Once written, the status is current: no second write.
        let mut written = q.clone();
        written.status = Some(status);
        assert_eq!(desired_status(&written, &e), None);
        // A semantically equal status text is current too.
        if let Some(u) = written.status.as_mut().and_then(|s| s.used.as_mut()) {
            u.insert("requests.memory".into(), ApiQuantity("1024Mi".into()));
        }
        assert_eq!(desired_status(&written, &e), None);
        // A hard limit removed from spec leaves status.used too.
        if let Some(h) = written.spec.as_mut().and_then(|s| s.hard.as_mut()) {
            h.remove("configmaps");
        }
        let status = desired_status(&written, &e).unwrap_or_default();
        assert!(!text(&status.used).iter().any(|(k, _)| k == "configmaps"));
    }

    #[test]
    fn empty_quota_is_written_once_at_most() {
        let q = quota(json!({"metadata": {"name": "q", "namespace": "ns"}, "spec": {}}));
        assert_eq!(desired_status(&q, &evaluators()), None);
    }

    #[test]
    fn scopes_and_selector_become_requirements() {
        let q = quota(
            json!({"metadata": {"name": "q", "namespace": "ns"}, "spec": {
            "scopes": ["BestEffort"],
            "scopeSelector": {"matchExpressions": [
                {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}}}),
        );
        let s = selectors(&q);
        let got: Vec<(&str, &str)> = s
            .iter()
            .map(|r| (r.scope_name.as_str(), r.operator.as_str()))
            .collect();
        assert_eq!(got, [("BestEffort", "Exists"), ("PriorityClass", "In")]);
    }
}
