//! The RBAC authorizer (upstream's `plugin/pkg/auth/authorizer/rbac` and
//! `pkg/registry/rbac/validation` rule resolver). Roles and bindings are
//! followed in the watch cache and parsed once per change into a
//! [`Snapshot`]; a request only walks ready rules: the ClusterRoleBindings,
//! then the RoleBindings of the request's namespace, stopping at the first
//! rule that allows it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use component_base::authn::User;
use serde_json::Value;

use super::rules::Rule;
use super::{Attributes, Decision};
use crate::state::ApiState;

pub const GROUP: &str = "rbac.authorization.k8s.io";

/// A binding subject.
#[derive(Debug, Clone)]
struct Subject {
    kind: String,
    name: String,
    namespace: String,
    /// For a ServiceAccount, the user name it authenticates as (its
    /// namespace defaulting to the binding's), computed once.
    sa_user: Option<String>,
}

/// A RoleBinding or ClusterRoleBinding, parsed.
#[derive(Debug, Clone)]
struct Binding {
    name: String,
    /// Empty for a ClusterRoleBinding.
    namespace: String,
    role_kind: String,
    role_name: String,
    subjects: Vec<Subject>,
}

impl Binding {
    fn parse(v: &Value) -> Self {
        let s = |p: &str| {
            v.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let binding_ns = s("/metadata/namespace");
        Binding {
            name: s("/metadata/name"),
            namespace: binding_ns.clone(),
            role_kind: s("/roleRef/kind"),
            role_name: s("/roleRef/name"),
            subjects: v
                .get("subjects")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|x| {
                    let f = |k: &str| x.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    let (kind, name, namespace) = (f("kind"), f("name"), f("namespace"));
                    let ns = if namespace.is_empty() {
                        &binding_ns
                    } else {
                        &namespace
                    };
                    let sa_user = (kind == "ServiceAccount" && !ns.is_empty())
                        .then(|| format!("system:serviceaccount:{ns}:{name}"));
                    Subject {
                        kind,
                        name,
                        namespace,
                        sa_user,
                    }
                })
                .collect(),
        }
    }

    /// The first subject that is `user` (upstream's `appliesTo`).
    fn applies_to(&self, user: &User) -> Option<&Subject> {
        self.subjects.iter().find(|s| match s.kind.as_str() {
            "User" => s.name == user.name,
            "Group" => user.groups.contains(&s.name),
            "ServiceAccount" => s.sa_user.as_deref() == Some(user.name.as_str()),
            _ => false,
        })
    }

    /// `ClusterRoleBinding "x" of ClusterRole "y" to Group "z"` (upstream's describers).
    fn describe(&self, s: &Subject) -> String {
        let subject = if s.kind == "ServiceAccount" {
            let ns = if s.namespace.is_empty() {
                &self.namespace
            } else {
                &s.namespace
            };
            format!("{} {:?}", s.kind, format!("{}/{ns}", s.name))
        } else {
            format!("{} {:?}", s.kind, s.name)
        };
        if self.namespace.is_empty() {
            format!(
                "ClusterRoleBinding {:?} of {} {:?} to {subject}",
                self.name, self.role_kind, self.role_name
            )
        } else {
            format!(
                "RoleBinding {:?} of {} {:?} to {subject}",
                format!("{}/{}", self.name, self.namespace),
                self.role_kind,
                self.role_name
            )
        }
    }
}

type Rules = Arc<Vec<Rule>>;

/// The parsed policy, one part per kind.
#[derive(Default)]
pub struct Rbac {
    cluster_roles: RwLock<Arc<HashMap<String, Rules>>>,
    roles: RwLock<Arc<HashMap<(String, String), Rules>>>,
    cluster_bindings: RwLock<Arc<Vec<Binding>>>,
    /// By namespace.
    bindings: RwLock<Arc<HashMap<String, Vec<Binding>>>>,
}

fn read<T>(l: &RwLock<Arc<T>>) -> Arc<T> {
    l.read().unwrap_or_else(|p| p.into_inner()).clone()
}

fn write<T>(l: &RwLock<Arc<T>>, v: T) {
    *l.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(v);
}

/// What a walk of the user's rules found.
pub struct Walk {
    /// `allowed by …` when a rule allowed the request.
    pub allowed_by: Option<String>,
    pub errors: Vec<String>,
}

impl Rbac {
    /// The rules of a binding's role; an error names what is missing.
    pub fn role_rules(&self, namespace: &str, kind: &str, name: &str) -> Result<Rules, String> {
        match kind {
            "ClusterRole" => read(&self.cluster_roles)
                .get(name)
                .cloned()
                .ok_or_else(|| format!("clusterrole.{GROUP} {name:?} not found")),
            "Role" => read(&self.roles)
                .get(&(namespace.to_string(), name.to_string()))
                .cloned()
                .ok_or_else(|| format!("role.{GROUP} {name:?} not found")),
            other => Err(format!("unsupported role reference kind: {other:?}")),
        }
    }

    /// Calls `visit` with each rule granted to `user` in `namespace` (all
    /// cluster-wide ones when it is empty) and the binding that grants it,
    /// until `visit` returns false (upstream's `VisitRulesFor`).
    fn visit(
        &self,
        user: &User,
        namespace: &str,
        mut visit: impl FnMut(&Binding, &Subject, &Rule) -> bool,
    ) -> Vec<String> {
        let mut errors = Vec::new();
        let cluster = read(&self.cluster_bindings);
        let local = read(&self.bindings);
        let namespaced = if namespace.is_empty() {
            None
        } else {
            local.get(namespace)
        };
        for b in cluster.iter().chain(namespaced.into_iter().flatten()) {
            let Some(subject) = b.applies_to(user) else {
                continue;
            };
            match self.role_rules(&b.namespace, &b.role_kind, &b.role_name) {
                Ok(rules) => {
                    for r in rules.iter() {
                        if !visit(b, subject, r) {
                            return errors;
                        }
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        errors
    }

    /// Upstream's `RBACAuthorizer.Authorize`.
    pub fn authorize(&self, a: &Attributes) -> Decision {
        let mut allowed = None;
        let errors = self.visit(a.user, a.namespace, |b, s, r| {
            if r.allows(a) {
                allowed = Some(format!("RBAC: allowed by {}", b.describe(s)));
                return false;
            }
            true
        });
        match allowed {
            Some(reason) => Decision::Allow(reason),
            None if errors.is_empty() => {
                tracing::debug!(user = %a.user.name, groups = ?a.user.groups, verb = a.verb, resource = a.resource, path = a.path, namespace = a.namespace, "RBAC: no rules authorize the request");
                Decision::NoOpinion(String::new())
            }
            None => Decision::NoOpinion(format!("RBAC: [{}]", errors.join(", "))),
        }
    }

    /// Replaces one kind's objects (`clusterroles`, `roles`,
    /// `clusterrolebindings`, `rolebindings`) — what following the watch
    /// cache does, for benchmarks and tests; unknown kinds are ignored.
    pub fn load(&self, plural: &str, objects: Vec<Value>) {
        let kind = match plural {
            "clusterroles" => Kind::ClusterRoles,
            "roles" => Kind::Roles,
            "clusterrolebindings" => Kind::ClusterRoleBindings,
            "rolebindings" => Kind::RoleBindings,
            _ => return,
        };
        rebuild(self, kind, objects);
    }

    /// Every rule granted to `user` in `namespace`, and the errors met
    /// resolving them (upstream's `RulesFor`).
    pub fn rules_for(&self, user: &User, namespace: &str) -> (Vec<Rule>, Vec<String>) {
        let mut out = Vec::new();
        let errors = self.visit(user, namespace, |_, _, r| {
            out.push(r.clone());
            true
        });
        (out, errors)
    }
}

/// The four kinds RBAC follows.
#[derive(Debug, Clone, Copy)]
enum Kind {
    ClusterRoles,
    Roles,
    ClusterRoleBindings,
    RoleBindings,
}

impl Kind {
    fn plural(self) -> &'static str {
        match self {
            Kind::ClusterRoles => "clusterroles",
            Kind::Roles => "roles",
            Kind::ClusterRoleBindings => "clusterrolebindings",
            Kind::RoleBindings => "rolebindings",
        }
    }
}

fn rebuild(rbac: &Rbac, kind: Kind, objects: Vec<Value>) {
    let ns_name = |o: &Value| {
        (
            apimachinery::meta::namespace(o).to_string(),
            apimachinery::meta::name(o).to_string(),
        )
    };
    match kind {
        Kind::ClusterRoles => write(
            &rbac.cluster_roles,
            objects
                .iter()
                .map(|o| (ns_name(o).1, Arc::new(Rule::parse_all(o))))
                .collect(),
        ),
        Kind::Roles => write(
            &rbac.roles,
            objects
                .iter()
                .map(|o| (ns_name(o), Arc::new(Rule::parse_all(o))))
                .collect(),
        ),
        Kind::ClusterRoleBindings => {
            let mut v: Vec<Binding> = objects.iter().map(Binding::parse).collect();
            v.sort_by(|a, b| a.name.cmp(&b.name));
            write(&rbac.cluster_bindings, v)
        }
        Kind::RoleBindings => {
            let mut m: HashMap<String, Vec<Binding>> = HashMap::new();
            for o in &objects {
                let b = Binding::parse(o);
                m.entry(b.namespace.clone()).or_default().push(b);
            }
            for v in m.values_mut() {
                v.sort_by(|a, b| a.name.cmp(&b.name));
            }
            write(&rbac.bindings, m)
        }
    }
}

/// Follows roles and bindings in the watch cache until it closes.
pub async fn run(state: Arc<ApiState>) {
    state.cacher.wait_ready().await;
    let kinds = [
        Kind::ClusterRoles,
        Kind::Roles,
        Kind::ClusterRoleBindings,
        Kind::RoleBindings,
    ];
    let tasks: Vec<_> = kinds
        .into_iter()
        .map(|k| tokio::spawn(follow(state.clone(), k)))
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

async fn follow(state: Arc<ApiState>, kind: Kind) {
    let Some(def) = state.resource(GROUP, "v1", kind.plural()) else {
        return;
    };
    let prefix = state.collection_key(&def, "");
    crate::follow::reload_on_change(state, prefix, kind.plural(), move |state, objects| {
        tracing::debug!(
            kind = kind.plural(),
            objects = objects.len(),
            "RBAC policy reloaded"
        );
        rebuild(&state.authorizer.rbac, kind, objects)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(name: &str, groups: &[&str]) -> User {
        User {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..User::default()
        }
    }

    fn attrs<'a>(u: &'a User, verb: &'a str, ns: &'a str, resource: &'a str) -> Attributes<'a> {
        Attributes {
            user: u,
            verb,
            resource_request: true,
            namespace: ns,
            api_group: "",
            resource,
            subresource: "",
            name: "",
            path: "",
        }
    }

    fn policy() -> Rbac {
        let rbac = Rbac::default();
        rebuild(
            &rbac,
            Kind::ClusterRoles,
            vec![
                json!({"metadata": {"name": "view"}, "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]}),
            ],
        );
        rebuild(
            &rbac,
            Kind::Roles,
            vec![
                json!({"metadata": {"name": "cm", "namespace": "a"}, "rules": [{"verbs": ["*"], "apiGroups": [""], "resources": ["configmaps"]}]}),
            ],
        );
        rebuild(
            &rbac,
            Kind::ClusterRoleBindings,
            vec![
                json!({"metadata": {"name": "viewers"}, "roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [{"kind": "Group", "name": "viewers"}]}),
                json!({"metadata": {"name": "broken"}, "roleRef": {"kind": "ClusterRole", "name": "gone"}, "subjects": [{"kind": "User", "name": "carol"}]}),
            ],
        );
        rebuild(
            &rbac,
            Kind::RoleBindings,
            vec![
                json!({"metadata": {"name": "cm-sa", "namespace": "a"}, "roleRef": {"kind": "Role", "name": "cm"}, "subjects": [{"kind": "ServiceAccount", "name": "app"}]}),
                json!({"metadata": {"name": "view-bob", "namespace": "a"}, "roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [{"kind": "User", "name": "bob"}]}),
            ],
        );
        rbac
    }

    #[test]
    fn bindings_grant_their_roles_where_they_apply() {
        let rbac = policy();
        let bob = user("bob", &["system:authenticated"]);
        assert_eq!(
            rbac.authorize(&attrs(&bob, "list", "a", "pods")),
            Decision::Allow(
                r#"RBAC: allowed by RoleBinding "view-bob/a" of ClusterRole "view" to User "bob""#
                    .into()
            )
        );
        assert_eq!(
            rbac.authorize(&attrs(&bob, "list", "b", "pods")),
            Decision::NoOpinion(String::new())
        );
        let viewer = user("eve", &["viewers"]);
        assert!(matches!(
            rbac.authorize(&attrs(&viewer, "get", "", "pods")),
            Decision::Allow(r) if r.contains(r#"ClusterRoleBinding "viewers" of ClusterRole "view" to Group "viewers""#)
        ));
        let sa = user("system:serviceaccount:a:app", &[]);
        assert!(matches!(
            rbac.authorize(&attrs(&sa, "delete", "a", "configmaps")),
            Decision::Allow(r) if r.contains(r#"to ServiceAccount "app/a""#)
        ));
        assert_eq!(
            rbac.authorize(&attrs(&sa, "delete", "a", "pods")),
            Decision::NoOpinion(String::new())
        );
        let carol = user("carol", &[]);
        assert_eq!(
            rbac.authorize(&attrs(&carol, "get", "a", "pods")),
            Decision::NoOpinion(format!(r#"RBAC: [clusterrole.{GROUP} "gone" not found]"#))
        );
        let (rules, errors) = rbac.rules_for(&bob, "a");
        assert_eq!((rules.len(), errors.len()), (1, 0));
    }
}
