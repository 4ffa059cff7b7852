//! The default RBAC policy that the `rbac/bootstrap-roles` post-start hook
//! puts in place (upstream's `plugin/pkg/auth/authorizer/rbac/bootstrappolicy`):
//! ClusterRoles and ClusterRoleBindings for users, nodes and the control
//! plane's components (`cluster_roles.rs`, `aggregate_roles.rs`,
//! `node_roles.rs`), one `system:controller:<name>` ClusterRole and binding
//! per kube-controller-manager loop (`controller_roles.rs` with
//! `workload_controller_roles.rs` and `storage_controller_roles.rs`), and the
//! Roles and RoleBindings in `kube-system` and `kube-public`
//! (`namespace_roles.rs`).
//!
//! Every object is the JSON upstream's serializes to under Kubernetes 1.33's
//! default feature gates: rules behind gates that are off by default are
//! left out, those of GA and on-by-default beta features are in. Like
//! upstream's `RuleOrDie`, the builder sorts every list of a rule, so rules
//! compare equal to the ones a real cluster holds. This module knows nothing
//! of storage: the hook in `authz/bootstrap.rs` writes the objects.

mod aggregate_roles;
mod cluster_roles;
mod controller_roles;
mod namespace_roles;
mod node_roles;
mod project_extras;
mod storage_controller_roles;
mod workload_controller_roles;

use serde_json::{json, Value};

const RBAC_V1: &str = "rbac.authorization.k8s.io/v1";
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
const BOOTSTRAPPING_LABEL: &str = "kubernetes.io/bootstrapping";
const AUTOUPDATE_ANNOTATION: &str = "rbac.authorization.kubernetes.io/autoupdate";

const SYSTEM_NAMESPACE: &str = "kube-system";
const PUBLIC_NAMESPACE: &str = "kube-public";

/// Users the control plane's components authenticate as (upstream's
/// `user.KubeControllerManager`, `user.KubeScheduler`, `user.KubeProxy`).
const KUBE_CONTROLLER_MANAGER: &str = "system:kube-controller-manager";
const KUBE_SCHEDULER: &str = "system:kube-scheduler";
const KUBE_PROXY: &str = "system:kube-proxy";

// Verb sets of upstream's policy.go.
const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];
const READ_WRITE: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];
const READ_UPDATE: &[&str] = &["get", "list", "watch", "update", "patch"];

// API groups.
const LEGACY: &str = "";
const ADMISSION_REGISTRATION: &str = "admissionregistration.k8s.io";
const APPS: &str = "apps";
const AUTHENTICATION: &str = "authentication.k8s.io";
const AUTHORIZATION: &str = "authorization.k8s.io";
const AUTOSCALING: &str = "autoscaling";
const BATCH: &str = "batch";
const CERTIFICATES: &str = "certificates.k8s.io";
const COORDINATION: &str = "coordination.k8s.io";
const CUSTOM_METRICS: &str = "custom.metrics.k8s.io";
const DISCOVERY: &str = "discovery.k8s.io";
const EVENTS: &str = "events.k8s.io";
const EXTENSIONS: &str = "extensions";
const EXTERNAL_METRICS: &str = "external.metrics.k8s.io";
const METRICS: &str = "metrics.k8s.io";
const NETWORKING: &str = "networking.k8s.io";
const NODE: &str = "node.k8s.io";
const POLICY: &str = "policy";
const STORAGE: &str = "storage.k8s.io";

/// The default roles and bindings: upstream's ClusterRoles in its order,
/// then the controllers' by name.
pub struct Policy {
    pub cluster_roles: Vec<Value>,
    pub cluster_role_bindings: Vec<Value>,
    /// Roles with metadata.namespace set.
    pub roles: Vec<Value>,
    pub role_bindings: Vec<Value>,
}

/// Everything the bootstrap hook creates or completes (upstream's
/// `ClusterRoles()` + `ControllerRoles()`, `ClusterRoleBindings()` +
/// `ControllerRoleBindings()`, `NamespaceRoles()`, `NamespaceRoleBindings()`).
pub fn bootstrap() -> Policy {
    let (controller_roles, controller_bindings) = controller_roles::controller_roles();
    let mut cluster_roles = cluster_roles::cluster_roles();
    cluster_roles.extend(controller_roles);
    let mut cluster_role_bindings = cluster_roles::cluster_role_bindings();
    cluster_role_bindings.extend(controller_bindings);
    Policy {
        cluster_roles,
        cluster_role_bindings,
        roles: namespace_roles::roles(),
        role_bindings: namespace_roles::role_bindings(),
    }
}

/// One PolicyRule under construction (upstream's `rbacv1helpers.NewRule`).
struct RuleBuilder {
    verbs: Vec<&'static str>,
    groups: Vec<&'static str>,
    resources: Vec<&'static str>,
    names: Vec<&'static str>,
    urls: Vec<&'static str>,
}

fn rule(verbs: &[&'static str]) -> RuleBuilder {
    RuleBuilder {
        verbs: verbs.to_vec(),
        groups: Vec::new(),
        resources: Vec::new(),
        names: Vec::new(),
        urls: Vec::new(),
    }
}

impl RuleBuilder {
    fn groups(mut self, groups: &[&'static str]) -> Self {
        self.groups.extend_from_slice(groups);
        self
    }

    fn resources(mut self, resources: &[&'static str]) -> Self {
        self.resources.extend_from_slice(resources);
        self
    }

    fn names(mut self, names: &[&'static str]) -> Self {
        self.names.extend_from_slice(names);
        self
    }

    fn urls(mut self, urls: &[&'static str]) -> Self {
        self.urls.extend_from_slice(urls);
        self
    }

    /// The rule as upstream serializes it: lists sorted, empty ones left out.
    fn build(self) -> Value {
        let mut out = serde_json::Map::new();
        for (field, mut list) in [
            ("verbs", self.verbs),
            ("apiGroups", self.groups),
            ("resources", self.resources),
            ("resourceNames", self.names),
            ("nonResourceURLs", self.urls),
        ] {
            if !list.is_empty() {
                list.sort_unstable();
                out.insert(field.to_owned(), json!(list));
            }
        }
        Value::Object(out)
    }
}

/// Emitting events through either events API (upstream's `eventsRule`).
fn events_rule() -> RuleBuilder {
    rule(&["create", "update", "patch"])
        .groups(&[LEGACY, EVENTS])
        .resources(&["events"])
}

fn metadata(name: &str, namespace: Option<&str>) -> Value {
    let mut meta = json!({
        "name": name,
        "labels": {BOOTSTRAPPING_LABEL: "rbac-defaults"},
        "annotations": {AUTOUPDATE_ANNOTATION: "true"},
    });
    if let Some(namespace) = namespace {
        meta["namespace"] = json!(namespace);
    }
    meta
}

fn build_rules(rules: Vec<RuleBuilder>) -> Vec<Value> {
    rules.into_iter().map(RuleBuilder::build).collect()
}

/// The `system:node` role's rules (upstream's `NodeRules`), which the Node
/// authorizer applies to what it does not subdivide.
pub fn node_rules() -> Vec<Value> {
    build_rules(node_roles::node_rules())
}

fn cluster_role(name: &str, rules: Vec<RuleBuilder>) -> Value {
    json!({
        "apiVersion": RBAC_V1,
        "kind": "ClusterRole",
        "metadata": metadata(name, None),
        "rules": build_rules(rules),
    })
}

fn role(namespace: &str, name: &str, rules: Vec<RuleBuilder>) -> Value {
    json!({
        "apiVersion": RBAC_V1,
        "kind": "Role",
        "metadata": metadata(name, Some(namespace)),
        "rules": build_rules(rules),
    })
}

/// A binding; upstream leaves `subjects` out when there are none.
fn binding(
    kind: &str,
    metadata: Value,
    role_kind: &str,
    role: &str,
    subjects: Vec<Value>,
) -> Value {
    let mut binding = json!({
        "apiVersion": RBAC_V1,
        "kind": kind,
        "metadata": metadata,
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": role_kind, "name": role},
    });
    if !subjects.is_empty() {
        binding["subjects"] = Value::Array(subjects);
    }
    binding
}

/// A ClusterRoleBinding named after the ClusterRole it binds (upstream's
/// `NewClusterBinding`).
fn cluster_role_binding(role: &str, subjects: Vec<Value>) -> Value {
    binding(
        "ClusterRoleBinding",
        metadata(role, None),
        "ClusterRole",
        role,
        subjects,
    )
}

fn role_binding(namespace: &str, name: &str, role: &str, subjects: Vec<Value>) -> Value {
    binding(
        "RoleBinding",
        metadata(name, Some(namespace)),
        "Role",
        role,
        subjects,
    )
}

fn user(name: &str) -> Value {
    json!({"kind": "User", "apiGroup": RBAC_GROUP, "name": name})
}

fn group(name: &str) -> Value {
    json!({"kind": "Group", "apiGroup": RBAC_GROUP, "name": name})
}

fn service_account(namespace: &str, name: &str) -> Value {
    json!({"kind": "ServiceAccount", "name": name, "namespace": namespace})
}

#[cfg(test)]
mod tests;
