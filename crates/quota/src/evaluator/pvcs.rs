//! What PersistentVolumeClaims use (upstream's
//! pkg/quota/v1/evaluator/core/persistent_volume_claims.go): each claim
//! counts for `persistentvolumeclaims` and `count/persistentvolumeclaims`
//! and its storage request for `requests.storage` (rounded up to whole
//! bytes; the larger `status.allocatedResources` if an expansion allocated
//! more); with a storage class (the beta annotation first, then
//! `spec.storageClassName`) also for
//! `<class>.storageclass.storage.k8s.io/persistentvolumeclaims` and
//! `<class>.storageclass.storage.k8s.io/requests.storage`.
//!
//! Not mirrored: the VolumeAttributesClass scope (beta, off by default in
//! 1.33); claims know no scopes here.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::runtime::reflector::Store;

use super::{
    calculate_usage_stats, in_namespace, matches_no_scope, object_count_name, Evaluator,
    UsageStatsOptions,
};
use apimachinery::quantity::Quantity;

use crate::resources::ResourceList;

const PVC_RESOURCES: [&str; 2] = ["persistentvolumeclaims", "requests.storage"];

/// The infix of per-storage-class resource names.
pub const STORAGE_CLASS_SUFFIX: &str = ".storageclass.storage.k8s.io/";

const BETA_STORAGE_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

/// Measures claims from the shared claim cache.
pub struct PvcEvaluator {
    store: Store<PersistentVolumeClaim>,
}

impl PvcEvaluator {
    pub fn new(store: Store<PersistentVolumeClaim>) -> Self {
        Self { store }
    }
}

impl Evaluator for PvcEvaluator {
    fn matching_resources(&self, input: &[String]) -> Vec<String> {
        let count = object_count_name("", "persistentvolumeclaims");
        input
            .iter()
            .filter(|name| {
                **name == count
                    || PVC_RESOURCES.contains(&name.as_str())
                    || PVC_RESOURCES
                        .iter()
                        .any(|r| name.ends_with(&format!("{STORAGE_CLASS_SUFFIX}{r}")))
            })
            .cloned()
            .collect()
    }

    fn usage_stats(&self, options: &UsageStatsOptions<'_>) -> ResourceList {
        let items = in_namespace(&self.store, options.namespace);
        calculate_usage_stats(options, &items, matches_no_scope, pvc_usage)
    }
}

/// The claim's storage class (upstream's `GetPersistentVolumeClaimClass`).
pub fn claim_class(pvc: &PersistentVolumeClaim) -> String {
    if let Some(class) = pvc
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(BETA_STORAGE_CLASS_ANNOTATION))
    {
        return class.clone();
    }
    pvc.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .unwrap_or_default()
}

/// The storage charged (upstream's `getStorageUsage`).
fn storage_usage(pvc: &PersistentVolumeClaim) -> Option<Quantity> {
    let requested = pvc
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| Quantity::parse(&q.0))?
        .round_up_to_integer();
    let allocated = pvc
        .status
        .as_ref()
        .and_then(|s| s.allocated_resources.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| Quantity::parse(&q.0));
    Some(match allocated {
        Some(a) if a > requested => a.round_up_to_integer(),
        _ => requested,
    })
}

/// One claim's usage (upstream's `pvcEvaluator.Usage`).
pub fn pvc_usage(pvc: &PersistentVolumeClaim) -> ResourceList {
    let mut out = ResourceList::new();
    let one = Quantity::from_int(1);
    out.insert("persistentvolumeclaims".into(), one);
    out.insert(object_count_name("", "persistentvolumeclaims"), one);
    let class = claim_class(pvc);
    if !class.is_empty() {
        out.insert(
            format!("{class}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"),
            one,
        );
    }
    if let Some(storage) = storage_usage(pvc) {
        out.insert("requests.storage".into(), storage);
        if !class.is_empty() {
            out.insert(
                format!("{class}{STORAGE_CLASS_SUFFIX}requests.storage"),
                storage,
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::{names, store, text};
    use super::*;
    use crate::resources;

    #[test]
    fn storage_by_class() {
        let claim = |name: &str, class: Option<&str>, size: &str| {
            let mut v = json!({"metadata": {"name": name, "namespace": "ns"},
                "spec": {"resources": {"requests": {"storage": size}}}});
            if let Some(c) = class {
                v["spec"]["storageClassName"] = json!(c);
            }
            v
        };
        let mut beta = claim("beta", Some("gold"), "1Gi");
        beta["metadata"]["annotations"] =
            json!({"volume.beta.kubernetes.io/storage-class": "silver"});
        let mut expanded = claim("expanded", Some("gold"), "1Gi");
        expanded["status"] = json!({"allocatedResources": {"storage": "2Gi"}});
        let pvcs = store::<PersistentVolumeClaim>(vec![
            claim("a", Some("gold"), "1Gi"),
            claim("b", None, "500Mi"),
            claim("fraction", Some("gold"), "1500m"),
            beta,
            expanded,
        ]);
        let e = PvcEvaluator::new(pvcs);
        let resources = e.matching_resources(&names(&[
            "persistentvolumeclaims",
            "requests.storage",
            "count/persistentvolumeclaims",
            "gold.storageclass.storage.k8s.io/requests.storage",
            "gold.storageclass.storage.k8s.io/persistentvolumeclaims",
            "bronze.storageclass.storage.k8s.io/requests.storage",
            "silver.storageclass.storage.k8s.io/persistentvolumeclaims",
            "requests.cpu",
        ]));
        assert_eq!(resources.len(), 7);
        let used = e.usage_stats(&UsageStatsOptions {
            namespace: "ns",
            selectors: &[],
            resources: &resources,
        });
        let used = resources::mask(&used, &resources);
        let want: Vec<(String, String)> = [
            ("bronze.storageclass.storage.k8s.io/requests.storage", "0"),
            ("count/persistentvolumeclaims", "5"),
            (
                "gold.storageclass.storage.k8s.io/persistentvolumeclaims",
                "3",
            ),
            // 1Gi + 2 (1500m rounded up) + 2Gi (allocated by an expansion)
            (
                "gold.storageclass.storage.k8s.io/requests.storage",
                "3221225474",
            ),
            ("persistentvolumeclaims", "5"),
            // ... + 1Gi (silver) + 500Mi (no class)
            ("requests.storage", "4819255298"),
            (
                "silver.storageclass.storage.k8s.io/persistentvolumeclaims",
                "1",
            ),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(text(&used), want);
    }
}
