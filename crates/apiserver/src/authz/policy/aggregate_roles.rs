//! The user-facing roles `admin`, `edit` and `view` and the
//! `system:aggregate-to-*` roles whose rules they collect (upstream's
//! `bootstrappolicy/policy.go`, `ClusterRoles`). The three user-facing roles
//! carry no rules of their own: the clusterrole-aggregation-controller fills
//! them from every ClusterRole labelled for them, so `view` flows into
//! `edit` and `edit` into `admin`.

use serde_json::{json, Value};

use super::{
    cluster_role, metadata, rule, RuleBuilder, APPS, AUTHORIZATION, AUTOSCALING, BATCH,
    COORDINATION, DISCOVERY, EXTENSIONS, LEGACY, NETWORKING, POLICY, RBAC_GROUP, RBAC_V1, READ,
    READ_WRITE, WRITE,
};

/// The user-facing role a ClusterRole's rules are aggregated into.
#[derive(Clone, Copy)]
enum AggregateTo {
    Admin,
    Edit,
    View,
}

impl AggregateTo {
    fn label(self) -> &'static str {
        match self {
            AggregateTo::Admin => "rbac.authorization.k8s.io/aggregate-to-admin",
            AggregateTo::Edit => "rbac.authorization.k8s.io/aggregate-to-edit",
            AggregateTo::View => "rbac.authorization.k8s.io/aggregate-to-view",
        }
    }
}

pub(super) fn aggregate_roles() -> Vec<Value> {
    use AggregateTo::{Admin, Edit, View};
    vec![
        // A namespace admin: `edit` plus the power to grant permissions.
        aggregated("admin", Admin),
        // All user-level actions in a namespace, without the system's
        // `/status` subresources or the quota and limits that govern it.
        labelled(aggregated("edit", Edit), Admin),
        // Read-only access to the non-escalating resources of a namespace.
        labelled(aggregated("view", View), Edit),
        labelled(
            cluster_role("system:aggregate-to-admin", admin_rules()),
            Admin,
        ),
        labelled(cluster_role("system:aggregate-to-edit", edit_rules()), Edit),
        labelled(cluster_role("system:aggregate-to-view", view_rules()), View),
    ]
}

/// A ClusterRole whose rules are those of the ClusterRoles labelled for `to`.
fn aggregated(name: &str, to: AggregateTo) -> Value {
    json!({
        "apiVersion": RBAC_V1,
        "kind": "ClusterRole",
        "metadata": metadata(name, None),
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {to.label(): "true"}}]},
        "rules": [],
    })
}

/// `role` with the label that aggregates it into `to`.
fn labelled(mut role: Value, to: AggregateTo) -> Value {
    role["metadata"]["labels"][to.label()] = json!("true");
    role
}

fn admin_rules() -> Vec<RuleBuilder> {
    vec![
        rule(&["create"])
            .groups(&[AUTHORIZATION])
            .resources(&["localsubjectaccessreviews"]),
        rule(READ_WRITE)
            .groups(&[RBAC_GROUP])
            .resources(&["roles", "rolebindings"]),
    ]
}

fn edit_rules() -> Vec<RuleBuilder> {
    vec![
        // Reading these escalates: exec into pods, read secrets.
        rule(READ).groups(&[LEGACY]).resources(&[
            "pods/attach",
            "pods/proxy",
            "pods/exec",
            "pods/portforward",
            "secrets",
            "services/proxy",
        ]),
        rule(&["impersonate"])
            .groups(&[LEGACY])
            .resources(&["serviceaccounts"]),
        rule(WRITE).groups(&[LEGACY]).resources(&[
            "pods",
            "pods/attach",
            "pods/proxy",
            "pods/exec",
            "pods/portforward",
        ]),
        rule(&["create"])
            .groups(&[LEGACY])
            .resources(&["pods/eviction"]),
        // No endpoints: writing them lets a service point anywhere
        // (CVE-2021-25740).
        rule(WRITE).groups(&[LEGACY]).resources(&[
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "serviceaccounts",
            "services",
            "services/proxy",
            "persistentvolumeclaims",
            "configmaps",
            "secrets",
            "events",
        ]),
        rule(&["create"])
            .groups(&[LEGACY])
            .resources(&["serviceaccounts/token"]),
        rule(WRITE).groups(&[APPS]).resources(&[
            "statefulsets",
            "statefulsets/scale",
            "daemonsets",
            "deployments",
            "deployments/scale",
            "deployments/rollback",
            "replicasets",
            "replicasets/scale",
        ]),
        rule(WRITE)
            .groups(&[AUTOSCALING])
            .resources(&["horizontalpodautoscalers"]),
        rule(WRITE)
            .groups(&[BATCH])
            .resources(&["jobs", "cronjobs"]),
        rule(WRITE).groups(&[EXTENSIONS]).resources(&[
            "daemonsets",
            "deployments",
            "deployments/scale",
            "deployments/rollback",
            "ingresses",
            "replicasets",
            "replicasets/scale",
            "replicationcontrollers/scale",
            "networkpolicies",
        ]),
        rule(WRITE)
            .groups(&[POLICY])
            .resources(&["poddisruptionbudgets"]),
        rule(WRITE)
            .groups(&[NETWORKING])
            .resources(&["networkpolicies", "ingresses"]),
        // So that namespaced workloads elect leaders with leases.
        rule(READ_WRITE)
            .groups(&[COORDINATION])
            .resources(&["leases"]),
    ]
}

fn view_rules() -> Vec<RuleBuilder> {
    vec![
        rule(READ).groups(&[LEGACY]).resources(&[
            "pods",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "serviceaccounts",
            "services",
            "services/status",
            "endpoints",
            "persistentvolumeclaims",
            "persistentvolumeclaims/status",
            "configmaps",
        ]),
        rule(READ).groups(&[LEGACY]).resources(&[
            "limitranges",
            "resourcequotas",
            "bindings",
            "events",
            "pods/status",
            "resourcequotas/status",
            "namespaces/status",
            "replicationcontrollers/status",
            "pods/log",
        ]),
        // Reading namespaces at namespace scope means reading *this* one:
        // a way to tell which namespaces one has access to.
        rule(READ).groups(&[LEGACY]).resources(&["namespaces"]),
        rule(READ)
            .groups(&[DISCOVERY])
            .resources(&["endpointslices"]),
        rule(READ).groups(&[APPS]).resources(&[
            "controllerrevisions",
            "statefulsets",
            "statefulsets/status",
            "statefulsets/scale",
            "daemonsets",
            "daemonsets/status",
            "deployments",
            "deployments/status",
            "deployments/scale",
            "replicasets",
            "replicasets/status",
            "replicasets/scale",
        ]),
        rule(READ).groups(&[AUTOSCALING]).resources(&[
            "horizontalpodautoscalers",
            "horizontalpodautoscalers/status",
        ]),
        rule(READ).groups(&[BATCH]).resources(&[
            "jobs",
            "cronjobs",
            "cronjobs/status",
            "jobs/status",
        ]),
        rule(READ).groups(&[EXTENSIONS]).resources(&[
            "daemonsets",
            "daemonsets/status",
            "deployments",
            "deployments/scale",
            "deployments/status",
            "ingresses",
            "ingresses/status",
            "replicasets",
            "replicasets/scale",
            "replicasets/status",
            "replicationcontrollers/scale",
            "networkpolicies",
        ]),
        rule(READ)
            .groups(&[POLICY])
            .resources(&["poddisruptionbudgets", "poddisruptionbudgets/status"]),
        rule(READ).groups(&[NETWORKING]).resources(&[
            "networkpolicies",
            "ingresses",
            "ingresses/status",
        ]),
    ]
}
