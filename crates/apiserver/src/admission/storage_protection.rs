//! `StorageObjectInUseProtection` (upstream's
//! `plugin/pkg/admission/storage/storageobjectinuseprotection`): new claims
//! get the `kubernetes.io/pvc-protection` finalizer and new volumes
//! `kubernetes.io/pv-protection`, which the controller manager's protection
//! controllers remove once nothing uses them.

use apimachinery::ApiError;
use async_trait::async_trait;
use serde_json::{json, Value};

use super::{Attributes, Operation, Plugin};
use crate::state::ApiState;

pub struct StorageObjectInUseProtection;

fn add_finalizer(obj: &mut Value, finalizer: &str) {
    let meta = apimachinery::meta::metadata_mut(obj);
    let list = meta.entry("finalizers").or_insert_with(|| json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    if let Some(list) = list.as_array_mut() {
        if !list.iter().any(|f| f.as_str() == Some(finalizer)) {
            list.push(json!(finalizer));
        }
    }
}

#[async_trait]
impl Plugin for StorageObjectInUseProtection {
    fn name(&self) -> &'static str {
        "StorageObjectInUseProtection"
    }

    async fn admit(
        &self,
        _state: &ApiState,
        a: &Attributes<'_>,
        obj: &mut Value,
    ) -> Result<(), ApiError> {
        if a.operation != Operation::Create {
            return Ok(());
        }
        if a.is("", "persistentvolumeclaims") {
            add_finalizer(obj, "kubernetes.io/pvc-protection");
        } else if a.is("", "persistentvolumes") {
            add_finalizer(obj, "kubernetes.io/pv-protection");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_finalizer_is_added_once() {
        let mut claim = json!({"metadata": {"finalizers": ["example.com/keep"]}});
        add_finalizer(&mut claim, "kubernetes.io/pvc-protection");
        add_finalizer(&mut claim, "kubernetes.io/pvc-protection");
        assert_eq!(
            claim["metadata"]["finalizers"],
            json!(["example.com/keep", "kubernetes.io/pvc-protection"])
        );
    }
}
