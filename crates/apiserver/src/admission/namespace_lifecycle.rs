//! `NamespaceLifecycle` (upstream's `plugin/namespace/lifecycle`): nothing
//! is created in a namespace that does not exist or is terminating, and the
//! namespaces the system needs cannot be deleted.

use apimachinery::{ApiError, GroupResource};
use async_trait::async_trait;
use serde_json::Value;

use super::{Attributes, Operation, Plugin};
use crate::state::ApiState;

/// Namespaces that may never be deleted (upstream's `immortalNamespaces`).
const IMMORTAL: [&str; 3] = ["default", "kube-system", "kube-public"];

pub struct NamespaceLifecycle;

#[async_trait]
impl Plugin for NamespaceLifecycle {
    fn name(&self) -> &'static str {
        "NamespaceLifecycle"
    }

    // Upstream's Lifecycle decides in the mutating phase, first of all
    // plugins and before validation.
    async fn admit(
        &self,
        state: &ApiState,
        a: &Attributes<'_>,
        _obj: &mut Value,
    ) -> Result<(), ApiError> {
        if a.operation == Operation::Delete {
            if a.is("", "namespaces") && IMMORTAL.contains(&a.name) {
                return Err(a.forbidden("this namespace may not be deleted"));
            }
            return Ok(());
        }
        // Access reviews name a namespace without writing into it.
        if a.operation != Operation::Create
            || a.namespace.is_empty()
            || a.is("", "namespaces")
            || a.resource == "localsubjectaccessreviews"
        {
            return Ok(());
        }
        let key = format!("{}namespaces/{}", state.prefix, a.namespace);
        let cached = state.cacher.get(&key).0.and_then(|o| o.value().ok());
        // A namespace created a moment ago may not be in the cache yet.
        let ns = match cached {
            Some(v) => Some(v),
            None => state.store.get(&key).await.ok().map(|o| o.value),
        };
        match ns {
            None => Err(ApiError::not_found(
                &GroupResource::new("", "namespaces"),
                a.namespace,
            )),
            Some(v) if apimachinery::meta::deletion_timestamp(&v).is_some() => {
                Err(a.forbidden(format_args!(
                    "unable to create new content in namespace {} because it is being terminated",
                    a.namespace
                )))
            }
            Some(_) => Ok(()),
        }
    }
}
