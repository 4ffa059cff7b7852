//! Resource quota evaluation (upstream's `k8s.io/apiserver/pkg/quota/v1`
//! and `pkg/quota/v1/evaluator/core`), shared by the controller manager's
//! resourcequota controller (usage of a namespace, from its caches) and the
//! API server's ResourceQuota admission plugin (usage of one new object).
//!
//! - [`resources`]: resource lists and quota's set operations on them.
//! - [`evaluator`]: what pods, services, claims and counted kinds use, and
//!   which objects a quota's scopes select.

pub mod evaluator;
pub mod resources;

use std::fmt::Debug;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ResourceQuota, ScopedResourceSelectorRequirement};
use kube::Resource;
use serde::de::DeserializeOwned;

/// What an evaluator's cache can hold (the controller's shared informers).
pub trait Watched:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}
impl<K> Watched for K where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}

/// "Now" for the evaluators (pods stop being charged when their grace
/// period ends); the controller passes its clock.
pub type Now = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The quota's `scopes` as `Exists` requirements, then its `scopeSelector`
/// expressions (upstream's `getScopeSelectorsFromQuota`).
pub fn selectors(quota: &ResourceQuota) -> Vec<ScopedResourceSelectorRequirement> {
    let spec = quota.spec.as_ref();
    let scopes = spec.and_then(|s| s.scopes.as_ref()).into_iter().flatten();
    let expressions = spec
        .and_then(|s| s.scope_selector.as_ref())
        .and_then(|s| s.match_expressions.as_ref())
        .into_iter()
        .flatten();
    scopes
        .map(|scope| ScopedResourceSelectorRequirement {
            scope_name: scope.clone(),
            operator: "Exists".into(),
            values: None,
        })
        .chain(expressions.cloned())
        .collect()
}
