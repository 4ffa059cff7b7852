//! One `system:controller:<name>` ClusterRole per kube-controller-manager
//! loop, each bound to the ServiceAccount `kube-system/<name>` the loop runs
//! as under `--use-service-account-credentials` (upstream's
//! `bootstrappolicy/controller_policy.go`, `buildControllerRoles`). This
//! file holds the loops of the API machinery, nodes, services and
//! certificates; the workload and storage controllers' rules are in
//! [`super::workload_controller_roles`] and [`super::storage_controller_roles`].
//!
//! Left out with their feature gates, off by default in 1.33: the
//! resource-claim and device-taint-eviction controllers
//! (DynamicResourceAllocation), volumeattributesclass-protection
//! (VolumeAttributesClass), the kube-apiserver-serving ClusterTrustBundle
//! publisher (ClusterTrustBundle), storage-version-garbage-collector
//! (StorageVersionAPI) and storage-version-migrator (StorageVersionMigrator).

use serde_json::Value;

use super::{
    cluster_role, cluster_role_binding, events_rule, project_extras, rule, service_account,
    storage_controller_roles, workload_controller_roles, RuleBuilder, ADMISSION_REGISTRATION,
    AUTHORIZATION, CERTIFICATES, DISCOVERY, LEGACY, NETWORKING, RBAC_GROUP, SYSTEM_NAMESPACE,
};

const PREFIX: &str = "system:controller:";

/// A controller's service account name and the rules of its role.
pub(super) type Controller = (&'static str, Vec<RuleBuilder>);

/// The controllers' ClusterRoles and their ClusterRoleBindings, by name.
pub(super) fn controller_roles() -> (Vec<Value>, Vec<Value>) {
    let mut controllers = workload_controller_roles::controllers();
    controllers.extend(storage_controller_roles::controllers());
    controllers.extend(cluster_controllers());
    controllers.sort_by_key(|(name, _)| *name);
    controllers
        .into_iter()
        .map(|(controller, mut rules)| {
            rules.extend(project_extras::controller_extras(controller));
            let name = format!("{PREFIX}{controller}");
            let subject = service_account(SYSTEM_NAMESPACE, controller);
            (
                cluster_role(&name, rules),
                cluster_role_binding(&name, vec![subject]),
            )
        })
        .unzip()
}

fn cluster_controllers() -> Vec<Controller> {
    vec![
        (
            "clusterrole-aggregation-controller",
            // Full power over ClusterRoles, to rewrite them in any way.
            vec![
                rule(&["escalate", "get", "list", "watch", "update", "patch"])
                    .groups(&[RBAC_GROUP])
                    .resources(&["clusterroles"]),
            ],
        ),
        (
            "endpoint-controller",
            vec![
                rule(&["get", "list", "watch"])
                    .groups(&[LEGACY])
                    .resources(&["services", "pods"]),
                rule(&["get", "list", "watch", "create", "update", "delete"])
                    .groups(&[LEGACY])
                    .resources(&["endpoints"]),
                rule(&["create"])
                    .groups(&[LEGACY])
                    .resources(&["endpoints/restricted"]),
                events_rule(),
            ],
        ),
        (
            "endpointslice-controller",
            vec![
                rule(&["get", "list", "watch"])
                    .groups(&[LEGACY])
                    .resources(&["services", "pods", "nodes"]),
                // Setting blockOwnerDeletion on a slice owned by the service
                // takes update on the service's finalizers.
                rule(&["update"])
                    .groups(&[LEGACY])
                    .resources(&["services/finalizers"]),
                rule(&["get", "list", "watch", "create", "update", "delete"])
                    .groups(&[DISCOVERY])
                    .resources(&["endpointslices"]),
                events_rule(),
            ],
        ),
        (
            "endpointslicemirroring-controller",
            vec![
                rule(&["get", "list", "watch"])
                    .groups(&[LEGACY])
                    .resources(&["services", "endpoints"]),
                // As above, for slices owned by the service or the endpoints.
                rule(&["update"])
                    .groups(&[LEGACY])
                    .resources(&["services/finalizers"]),
                rule(&["update"])
                    .groups(&[LEGACY])
                    .resources(&["endpoints/finalizers"]),
                rule(&["get", "list", "watch", "create", "update", "delete"])
                    .groups(&[DISCOVERY])
                    .resources(&["endpointslices"]),
                events_rule(),
            ],
        ),
        (
            "generic-garbage-collector",
            // List, watch, get and update anything.
            vec![
                rule(&["get", "list", "watch", "patch", "update", "delete"])
                    .groups(&["*"])
                    .resources(&["*"]),
                events_rule(),
            ],
        ),
        (
            "namespace-controller",
            vec![
                rule(&["get", "list", "watch", "delete"])
                    .groups(&[LEGACY])
                    .resources(&["namespaces"]),
                rule(&["update"])
                    .groups(&[LEGACY])
                    .resources(&["namespaces/finalize", "namespaces/status"]),
                rule(&["get", "list", "watch", "delete", "deletecollection"])
                    .groups(&["*"])
                    .resources(&["*"]),
            ],
        ),
        (
            "node-controller",
            vec![
                rule(&["get", "list", "watch", "update", "delete", "patch"])
                    .groups(&[LEGACY])
                    .resources(&["nodes"]),
                rule(&["patch", "update"])
                    .groups(&[LEGACY])
                    .resources(&["nodes/status"]),
                // Marking and deleting the pods of lost nodes.
                rule(&["patch", "update"])
                    .groups(&[LEGACY])
                    .resources(&["pods/status"]),
                rule(&["list", "watch", "get", "delete"])
                    .groups(&[LEGACY])
                    .resources(&["pods"]),
                events_rule(),
            ],
        ),
        (
            "pod-garbage-collector",
            vec![
                rule(&["list", "watch", "delete"])
                    .groups(&[LEGACY])
                    .resources(&["pods"]),
                rule(&["get", "list", "watch"])
                    .groups(&[LEGACY])
                    .resources(&["nodes"]),
                rule(&["patch"])
                    .groups(&[LEGACY])
                    .resources(&["pods/status"]),
            ],
        ),
        (
            "resourcequota-controller",
            vec![
                // Quota may count anything, so it must see everything.
                rule(&["list", "watch"]).groups(&["*"]).resources(&["*"]),
                rule(&["update"])
                    .groups(&[LEGACY])
                    .resources(&["resourcequotas/status"]),
                events_rule(),
            ],
        ),
        (
            "route-controller",
            vec![
                rule(&["list", "watch"])
                    .groups(&[LEGACY])
                    .resources(&["nodes"]),
                rule(&["patch"])
                    .groups(&[LEGACY])
                    .resources(&["nodes/status"]),
                events_rule(),
            ],
        ),
        (
            "service-account-controller",
            vec![
                rule(&["create"])
                    .groups(&[LEGACY])
                    .resources(&["serviceaccounts"]),
                events_rule(),
            ],
        ),
        (
            "service-controller",
            vec![
                rule(&["get", "list", "watch"])
                    .groups(&[LEGACY])
                    .resources(&["services"]),
                rule(&["patch", "update"])
                    .groups(&[LEGACY])
                    .resources(&["services/status"]),
                rule(&["list", "watch"])
                    .groups(&[LEGACY])
                    .resources(&["nodes"]),
                events_rule(),
            ],
        ),
        (
            // MultiCIDRServiceAllocator, GA in 1.33.
            "service-cidrs-controller",
            vec![
                rule(&["get", "list", "watch", "patch", "update"])
                    .groups(&[NETWORKING])
                    .resources(&["servicecidrs"]),
                rule(&["patch", "update"])
                    .groups(&[NETWORKING])
                    .resources(&["servicecidrs/finalizers"]),
                rule(&["patch", "update"])
                    .groups(&[NETWORKING])
                    .resources(&["servicecidrs/status"]),
                rule(&["get", "list", "watch"])
                    .groups(&[NETWORKING])
                    .resources(&["ipaddresses"]),
                events_rule(),
            ],
        ),
        (
            "ttl-controller",
            vec![
                rule(&["update", "patch", "list", "watch"])
                    .groups(&[LEGACY])
                    .resources(&["nodes"]),
                events_rule(),
            ],
        ),
        (
            "certificate-controller",
            vec![
                rule(&["get", "list", "watch", "delete"])
                    .groups(&[CERTIFICATES])
                    .resources(&["certificatesigningrequests"]),
                rule(&["update"]).groups(&[CERTIFICATES]).resources(&[
                    "certificatesigningrequests/status",
                    "certificatesigningrequests/approval",
                ]),
                rule(&["approve"])
                    .groups(&[CERTIFICATES])
                    .resources(&["signers"])
                    .names(&["kubernetes.io/kube-apiserver-client-kubelet"]),
                rule(&["sign"])
                    .groups(&[CERTIFICATES])
                    .resources(&["signers"])
                    .names(&[
                        "kubernetes.io/legacy-unknown",
                        "kubernetes.io/kube-apiserver-client",
                        "kubernetes.io/kube-apiserver-client-kubelet",
                        "kubernetes.io/kubelet-serving",
                    ]),
                rule(&["create"])
                    .groups(&[AUTHORIZATION])
                    .resources(&["subjectaccessreviews"]),
                events_rule(),
            ],
        ),
        (
            "root-ca-cert-publisher",
            vec![
                rule(&["create", "update"])
                    .groups(&[LEGACY])
                    .resources(&["configmaps"]),
                events_rule(),
            ],
        ),
        (
            "validatingadmissionpolicy-status-controller",
            vec![
                rule(&["get", "list", "watch"])
                    .groups(&[ADMISSION_REGISTRATION])
                    .resources(&["validatingadmissionpolicies"]),
                rule(&["get", "patch", "update"])
                    .groups(&[ADMISSION_REGISTRATION])
                    .resources(&["validatingadmissionpolicies/status"]),
                events_rule(),
            ],
        ),
        (
            "legacy-service-account-token-cleaner",
            vec![
                // The config map recording since when legacy tokens are
                // tracked (upstream's legacytokentracking.ConfigMapName).
                rule(&["get"])
                    .groups(&[LEGACY])
                    .resources(&["configmaps"])
                    .names(&["kube-apiserver-legacy-service-account-token-tracking"]),
                rule(&["patch", "delete"])
                    .groups(&[LEGACY])
                    .resources(&["secrets"]),
            ],
        ),
    ]
}
