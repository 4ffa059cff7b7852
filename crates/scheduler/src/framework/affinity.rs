//! Pod (anti-)affinity terms parsed once per pod (upstream's
//! `framework/types.go` `AffinityTerm`, `WeightedAffinityTerm` and
//! `getAffinityTerms`). A term matches a pod when the pod's namespace is
//! one of the term's namespaces (its own pod's namespace when none are
//! listed; all with an empty `namespaceSelector`) and its labels match the
//! selector. A selector that cannot be parsed matches nothing.

use std::collections::BTreeMap;

use apimachinery::labels::Selector;
use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm, WeightedPodAffinityTerm};

#[derive(Debug, Clone)]
pub struct AffinityTerm {
    pub namespaces: Vec<String>,
    /// An empty `namespaceSelector`: every namespace.
    pub all_namespaces: bool,
    pub selector: Selector,
    pub topology_key: String,
}

impl AffinityTerm {
    fn parse(t: &PodAffinityTerm, own_namespace: &str) -> Self {
        let selector = t
            .label_selector
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok())
            .and_then(|v| Selector::from_label_selector(&v).ok())
            .unwrap_or_else(Selector::nothing);
        let ns_sel = t.namespace_selector.as_ref();
        let all_namespaces = ns_sel.is_some_and(|s| {
            s.match_labels.as_ref().is_none_or(|m| m.is_empty())
                && s.match_expressions.as_ref().is_none_or(|e| e.is_empty())
        });
        let mut namespaces = t.namespaces.clone().unwrap_or_default();
        if namespaces.is_empty() && ns_sel.is_none() {
            namespaces.push(own_namespace.to_string());
        }
        AffinityTerm {
            namespaces,
            all_namespaces,
            selector,
            topology_key: t.topology_key.clone(),
        }
    }

    /// Whether the term selects a pod with these namespace and labels.
    pub fn matches(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        (self.all_namespaces || self.namespaces.iter().any(|n| n == namespace))
            && self.selector.matches(labels)
    }
}

#[derive(Debug, Clone)]
pub struct WeightedTerm {
    pub weight: i32,
    pub term: AffinityTerm,
}

/// A pod's parsed `affinity.podAffinity` and `affinity.podAntiAffinity`.
#[derive(Debug, Clone, Default)]
pub struct PodAffinityInfo {
    pub required_affinity: Vec<AffinityTerm>,
    pub required_anti_affinity: Vec<AffinityTerm>,
    pub preferred_affinity: Vec<WeightedTerm>,
    pub preferred_anti_affinity: Vec<WeightedTerm>,
}

impl PodAffinityInfo {
    pub fn parse(pod: &Pod, namespace: &str) -> Self {
        let aff = pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
        let req = |terms: Option<&Vec<PodAffinityTerm>>| -> Vec<AffinityTerm> {
            terms
                .into_iter()
                .flatten()
                .map(|t| AffinityTerm::parse(t, namespace))
                .collect()
        };
        let pref = |terms: Option<&Vec<WeightedPodAffinityTerm>>| -> Vec<WeightedTerm> {
            terms
                .into_iter()
                .flatten()
                .filter(|t| t.weight != 0)
                .map(|t| WeightedTerm {
                    weight: t.weight,
                    term: AffinityTerm::parse(&t.pod_affinity_term, namespace),
                })
                .collect()
        };
        let pa = aff.and_then(|a| a.pod_affinity.as_ref());
        let anti = aff.and_then(|a| a.pod_anti_affinity.as_ref());
        PodAffinityInfo {
            required_affinity: req(pa.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            required_anti_affinity: req(anti.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            preferred_affinity: pref(pa.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            preferred_anti_affinity: pref(anti.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.required_affinity.is_empty()
            && self.required_anti_affinity.is_empty()
            && self.preferred_affinity.is_empty()
            && self.preferred_anti_affinity.is_empty()
    }
}
