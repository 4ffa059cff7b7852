//! How lists of the built-in types merge: upstream's `+listType`/`+listMapKey`
//! and `+patchStrategy`/`+patchMergeKey` markers, which become the OpenAPI
//! extensions `x-kubernetes-list-type`, `x-kubernetes-list-map-keys`,
//! `x-kubernetes-patch-strategy` and `x-kubernetes-patch-merge-key`
//! (upstream's `staging/src/k8s.io/api/*/types.go` tags).
//!
//! One table serves both the OpenAPI documents (so kubectl computes its
//! strategic merge patches with these keys) and the server's strategic merge
//! patch (`apiserver::patch`), so the two always agree. The entries follow
//! the list strategies k8s-openapi derives from the same markers.

/// `x-kubernetes-list-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListType {
    /// Items are identified by `keys`.
    Map,
    /// Items are unique scalars.
    Set,
}

/// The merge behaviour of one list field.
#[derive(Debug)]
pub struct ListMeta {
    /// The definition holding the field (`io.k8s.api.core.v1.PodSpec`).
    pub ty: &'static str,
    pub field: &'static str,
    pub list_type: ListType,
    /// `x-kubernetes-list-map-keys`; the first is the patch merge key.
    pub keys: &'static [&'static str],
    /// Whether strategic merge patch merges the list by its first key
    /// (`patchStrategy=merge`); otherwise a patch replaces it whole.
    pub patch_merge: bool,
}

use ListType::{Map, Set};

const fn m(ty: &'static str, field: &'static str, keys: &'static [&'static str]) -> ListMeta {
    ListMeta {
        ty,
        field,
        list_type: Map,
        keys,
        patch_merge: true,
    }
}
const fn map_only(
    ty: &'static str,
    field: &'static str,
    keys: &'static [&'static str],
) -> ListMeta {
    ListMeta {
        ty,
        field,
        list_type: Map,
        keys,
        patch_merge: false,
    }
}
const fn set(ty: &'static str, field: &'static str) -> ListMeta {
    ListMeta {
        ty,
        field,
        list_type: Set,
        keys: &[],
        patch_merge: false,
    }
}

const CORE: &str = "io.k8s.api.core.v1.";

/// Every list of the served types that is not atomic, sorted by type and field.
pub const LISTS: &[ListMeta] = &[
    m(
        "io.k8s.api.apps.v1.DaemonSetStatus",
        "conditions",
        &["type"],
    ),
    m(
        "io.k8s.api.apps.v1.DeploymentStatus",
        "conditions",
        &["type"],
    ),
    m(
        "io.k8s.api.apps.v1.ReplicaSetStatus",
        "conditions",
        &["type"],
    ),
    m(
        "io.k8s.api.apps.v1.StatefulSetStatus",
        "conditions",
        &["type"],
    ),
    m(
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus",
        "conditions",
        &["type"],
    ),
    set(
        "io.k8s.api.batch.v1.PodFailurePolicyOnExitCodesRequirement",
        "values",
    ),
    m("io.k8s.api.batch.v1.JobStatus", "conditions", &["type"]),
    set("io.k8s.api.batch.v1.UncountedTerminatedPods", "failed"),
    set("io.k8s.api.batch.v1.UncountedTerminatedPods", "succeeded"),
    m(
        "io.k8s.api.certificates.v1.CertificateSigningRequestStatus",
        "conditions",
        &["type"],
    ),
    m("io.k8s.api.core.v1.Container", "env", &["name"]),
    m(
        "io.k8s.api.core.v1.Container",
        "ports",
        &["containerPort", "protocol"],
    ),
    m(
        "io.k8s.api.core.v1.Container",
        "volumeDevices",
        &["devicePath"],
    ),
    m(
        "io.k8s.api.core.v1.Container",
        "volumeMounts",
        &["mountPath"],
    ),
    map_only(
        "io.k8s.api.core.v1.ContainerStatus",
        "allocatedResourcesStatus",
        &["name"],
    ),
    map_only(
        "io.k8s.api.core.v1.ContainerStatus",
        "volumeMounts",
        &["mountPath"],
    ),
    m("io.k8s.api.core.v1.EphemeralContainer", "env", &["name"]),
    m(
        "io.k8s.api.core.v1.EphemeralContainer",
        "ports",
        &["containerPort", "protocol"],
    ),
    m(
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeDevices",
        &["devicePath"],
    ),
    m(
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeMounts",
        &["mountPath"],
    ),
    m(
        "io.k8s.api.core.v1.NamespaceStatus",
        "conditions",
        &["type"],
    ),
    m("io.k8s.api.core.v1.NodeStatus", "addresses", &["type"]),
    m("io.k8s.api.core.v1.NodeStatus", "conditions", &["type"]),
    m(
        "io.k8s.api.core.v1.PersistentVolumeClaimStatus",
        "conditions",
        &["type"],
    ),
    m("io.k8s.api.core.v1.PodSpec", "containers", &["name"]),
    m(
        "io.k8s.api.core.v1.PodSpec",
        "ephemeralContainers",
        &["name"],
    ),
    m("io.k8s.api.core.v1.PodSpec", "hostAliases", &["ip"]),
    m("io.k8s.api.core.v1.PodSpec", "imagePullSecrets", &["name"]),
    m("io.k8s.api.core.v1.PodSpec", "initContainers", &["name"]),
    m("io.k8s.api.core.v1.PodSpec", "resourceClaims", &["name"]),
    m("io.k8s.api.core.v1.PodSpec", "schedulingGates", &["name"]),
    m(
        "io.k8s.api.core.v1.PodSpec",
        "topologySpreadConstraints",
        &["topologyKey", "whenUnsatisfiable"],
    ),
    m("io.k8s.api.core.v1.PodSpec", "volumes", &["name"]),
    m("io.k8s.api.core.v1.PodStatus", "conditions", &["type"]),
    m("io.k8s.api.core.v1.PodStatus", "hostIPs", &["ip"]),
    m("io.k8s.api.core.v1.PodStatus", "podIPs", &["ip"]),
    m(
        "io.k8s.api.core.v1.PodStatus",
        "resourceClaimStatuses",
        &["name"],
    ),
    m(
        "io.k8s.api.core.v1.ReplicationControllerStatus",
        "conditions",
        &["type"],
    ),
    map_only(
        "io.k8s.api.core.v1.ResourceRequirements",
        "claims",
        &["name"],
    ),
    map_only(
        "io.k8s.api.core.v1.ResourceStatus",
        "resources",
        &["resourceID"],
    ),
    m("io.k8s.api.core.v1.ServiceAccount", "secrets", &["name"]),
    m(
        "io.k8s.api.core.v1.ServiceSpec",
        "ports",
        &["port", "protocol"],
    ),
    m("io.k8s.api.core.v1.ServiceStatus", "conditions", &["type"]),
    set("io.k8s.api.discovery.v1.Endpoint", "addresses"),
    m(
        "io.k8s.api.policy.v1.PodDisruptionBudgetStatus",
        "conditions",
        &["type"],
    ),
    set(
        "io.k8s.api.storage.v1.CSIDriverSpec",
        "volumeLifecycleModes",
    ),
    m("io.k8s.api.storage.v1.CSINodeSpec", "drivers", &["name"]),
    m(
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus",
        "conditions",
        &["type"],
    ),
    map_only(
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
        "x-kubernetes-validations",
        &["rule"],
    ),
    set(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
    ),
    m(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
        &["uid"],
    ),
    m(
        "io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIServiceStatus",
        "conditions",
        &["type"],
    ),
];

/// The merge behaviour of `field` in definition `ty`, when not atomic.
pub fn list_meta(ty: &str, field: &str) -> Option<&'static ListMeta> {
    static BY_TYPE: std::sync::LazyLock<
        std::collections::HashMap<&'static str, Vec<&'static ListMeta>>,
    > = std::sync::LazyLock::new(|| {
        let mut m: std::collections::HashMap<_, Vec<_>> = std::collections::HashMap::new();
        for l in LISTS {
            m.entry(l.ty).or_default().push(l);
        }
        m
    });
    BY_TYPE.get(ty)?.iter().find(|l| l.field == field).copied()
}

/// The key strategic merge patch merges `ty.field`'s items by.
pub fn merge_key(ty: &str, field: &str) -> Option<&'static str> {
    list_meta(ty, field)
        .filter(|l| l.patch_merge)
        .and_then(|l| l.keys.first().copied())
}

/// `io.k8s.api.core.v1.Pod` for a short core type name (tests and callers).
pub fn core(name: &str) -> String {
    format!("{CORE}{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert_eq!(merge_key(&core("PodSpec"), "containers"), Some("name"));
        assert_eq!(
            merge_key(&core("Container"), "ports"),
            Some("containerPort")
        );
        assert_eq!(merge_key(&core("ServiceSpec"), "ports"), Some("port"));
        assert_eq!(merge_key(&core("ResourceRequirements"), "claims"), None);
        assert_eq!(
            merge_key("io.k8s.api.rbac.v1.PolicyRule", "resources"),
            None
        );
        let mut seen = std::collections::HashSet::new();
        for l in LISTS {
            assert!(
                seen.insert((l.ty, l.field)),
                "duplicate {}.{}",
                l.ty,
                l.field
            );
            assert_eq!(
                l.list_type == Map,
                !l.keys.is_empty(),
                "{}.{}",
                l.ty,
                l.field
            );
        }
    }
}
