//! Quota evaluators: what one kind of object uses (upstream's
//! `quota.Evaluator` in staging/src/k8s.io/apiserver/pkg/quota/v1, the
//! generic object counter and `CalculateUsageStats` of its `generic`
//! package, and the core evaluators of pkg/quota/v1/evaluator/core).
//!
//! - [`pods`]: compute resources, `pods` and `count/pods`, with scopes.
//! - [`services`]: `services`, `services.loadbalancers`, `services.nodeports`.
//! - [`pvcs`]: `persistentvolumeclaims`, `requests.storage`, per storage class.
//! - [`ObjectCountEvaluator`]: `count/<resource>.<group>` for any cached kind,
//!   with upstream's legacy aliases (`configmaps`, `secrets` …).
//!
//! Evaluators read the shared caches only; they never call the API server.

pub mod pods;
pub mod pvcs;
pub mod services;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ScopedResourceSelectorRequirement;
use kube::runtime::reflector::Store;
use kube::ResourceExt;

use apimachinery::quantity::Quantity;

use crate::resources::{self, ResourceList};
use crate::Watched;

/// What to measure (upstream's `quota.UsageStatsOptions`).
pub struct UsageStatsOptions<'a> {
    pub namespace: &'a str,
    /// The quota's `scopes` (each as an `Exists` requirement) followed by
    /// its `scopeSelector` expressions; an object counts only if it
    /// matches all of them.
    pub selectors: &'a [ScopedResourceSelectorRequirement],
    /// The resources to report, each starting at zero.
    pub resources: &'a [String],
}

/// One kind's usage measurement.
pub trait Evaluator: Send + Sync {
    /// The resources among `input` this evaluator measures.
    fn matching_resources(&self, input: &[String]) -> Vec<String>;
    /// The namespace's usage of `options.resources` (and possibly more,
    /// which the caller masks away).
    fn usage_stats(&self, options: &UsageStatsOptions<'_>) -> ResourceList;
    /// How long until this namespace's usage changes with no object
    /// changing (a terminating pod's grace running out); `None` if never.
    fn next_change(&self, _namespace: &str) -> Option<Duration> {
        None
    }
}

/// Whether an object matches one scope requirement; an error for a
/// requirement that cannot be evaluated (upstream's `MatchesScopeFunc`).
pub type ScopeMatch<T> = fn(&ScopedResourceSelectorRequirement, &T) -> Result<bool, String>;

/// The scope function of kinds that know no scope (upstream's
/// `MatchesNoScopeFunc`): a scoped quota counts none of them.
pub fn matches_no_scope<T>(_: &ScopedResourceSelectorRequirement, _: &T) -> Result<bool, String> {
    Ok(false)
}

/// Sums the usage of every item matching all selectors, each tracked
/// resource starting at zero (upstream's `CalculateUsageStats`). Like
/// upstream, a requirement that cannot be evaluated stops the sum where it
/// is.
pub fn calculate_usage_stats<T>(
    options: &UsageStatsOptions<'_>,
    items: &[Arc<T>],
    scope: ScopeMatch<T>,
    usage: impl Fn(&T) -> ResourceList,
) -> ResourceList {
    let mut used: ResourceList = options
        .resources
        .iter()
        .map(|r| (r.clone(), Quantity::default()))
        .collect();
    for item in items {
        let mut matches = true;
        for selector in options.selectors {
            match scope(selector, item) {
                Ok(m) => matches = matches && m,
                Err(e) => {
                    tracing::debug!(scope = %selector.scope_name, error = %e, "scope not evaluable");
                    return used;
                }
            }
        }
        if matches {
            resources::add_into(&mut used, &usage(item));
        }
    }
    used
}

/// The cached objects of one namespace (upstream's listers by namespace).
pub fn in_namespace<K: Watched>(store: &Store<K>, namespace: &str) -> Vec<Arc<K>> {
    store
        .state()
        .into_iter()
        .filter(|o| o.namespace().as_deref() == Some(namespace))
        .collect()
}

/// A store with nothing in it: for an evaluator used only to name the
/// resources it measures (the admission plugin charging one object).
pub fn empty_store<K: Watched>() -> Store<K> {
    kube::runtime::reflector::store::Writer::<K>::default().as_reader()
}

/// The object-count resource name for a group and resource (upstream's
/// `ObjectCountQuotaResourceNameFor`): `count/pods`, `count/deployments.apps`.
pub fn object_count_name(group: &str, resource: &str) -> String {
    if group.is_empty() {
        format!("count/{resource}")
    } else {
        format!("count/{resource}.{group}")
    }
}

/// Counts the objects of one kind (upstream's `objectCountEvaluator`).
pub struct ObjectCountEvaluator<K: Watched> {
    store: Store<K>,
    /// `count/<resource>.<group>`, then the legacy alias if any.
    names: Vec<String>,
}

impl<K: Watched> ObjectCountEvaluator<K> {
    /// Upstream's `NewObjectCountEvaluator`; `alias` is the legacy name
    /// (`configmaps` for `count/configmaps`) for the four kinds that have one.
    pub fn new(store: Store<K>, group: &str, resource: &str, alias: Option<&str>) -> Self {
        let mut names = vec![object_count_name(group, resource)];
        names.extend(alias.map(str::to_string));
        Self { store, names }
    }
}

impl<K: Watched> Evaluator for ObjectCountEvaluator<K> {
    fn matching_resources(&self, input: &[String]) -> Vec<String> {
        input
            .iter()
            .filter(|n| self.names.contains(n))
            .cloned()
            .collect()
    }

    fn usage_stats(&self, options: &UsageStatsOptions<'_>) -> ResourceList {
        let items = in_namespace(&self.store, options.namespace);
        calculate_usage_stats(options, &items, matches_no_scope, |_| {
            self.names
                .iter()
                .map(|n| (n.clone(), Quantity::from_int(1)))
                .collect()
        })
    }
}

pub mod testing {
    //! Stores filled by hand, for the evaluators' and their users' tests.

    use kube::runtime::reflector::store::Writer;
    use kube::runtime::watcher::Event;

    use super::*;

    pub fn store<K: Watched>(objects: Vec<serde_json::Value>) -> Store<K> {
        let mut writer: Writer<K> = Writer::default();
        for o in objects {
            match serde_json::from_value::<K>(o) {
                Ok(k) => writer.apply_watcher_event(&Event::Apply(k)),
                Err(e) => panic!("test object: {e}"),
            }
        }
        writer.as_reader()
    }

    pub fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    pub fn text(list: &ResourceList) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use serde_json::json;

    use super::testing::{names, store, text};
    use super::*;

    #[test]
    fn object_count_with_alias_counts_its_namespace_only() {
        let cms = store::<ConfigMap>(vec![
            json!({"metadata": {"name": "a", "namespace": "ns"}}),
            json!({"metadata": {"name": "b", "namespace": "ns"}}),
            json!({"metadata": {"name": "c", "namespace": "other"}}),
        ]);
        let e = ObjectCountEvaluator::new(cms, "", "configmaps", Some("configmaps"));
        let wanted = names(&["configmaps", "count/configmaps", "pods"]);
        let matched = e.matching_resources(&wanted);
        assert_eq!(matched, names(&["configmaps", "count/configmaps"]));
        let used = e.usage_stats(&UsageStatsOptions {
            namespace: "ns",
            selectors: &[],
            resources: &matched,
        });
        assert_eq!(
            text(&used),
            vec![
                ("configmaps".into(), "2".into()),
                ("count/configmaps".into(), "2".into())
            ]
        );
        // A scoped quota counts no object of a kind without scopes.
        let scoped = [ScopedResourceSelectorRequirement {
            scope_name: "BestEffort".into(),
            operator: "Exists".into(),
            values: None,
        }];
        let used = e.usage_stats(&UsageStatsOptions {
            namespace: "ns",
            selectors: &scoped,
            resources: &matched,
        });
        assert_eq!(
            text(&used),
            vec![
                ("configmaps".into(), "0".into()),
                ("count/configmaps".into(), "0".into())
            ]
        );
        assert_eq!(
            object_count_name("apps", "deployments"),
            "count/deployments.apps"
        );
    }
}
