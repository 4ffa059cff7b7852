//! RBAC's escalation prevention (upstream's `pkg/registry/rbac` policy
//! based storage and `validation.ConfirmNoEscalation`): a user may write a
//! Role or ClusterRole only with rules it already holds (or the `escalate`
//! verb on it), and a binding only to a role whose rules it holds (or the
//! `bind` verb on that role). Members of `system:masters` may do both.

use apimachinery::{ApiError, GroupResource};
use component_base::authn::User;
use serde_json::Value;

use super::rbac::GROUP;
use super::rules::{self, Rule};
use super::{Attributes, PRIVILEGED_GROUP};
use crate::state::ApiState;

/// Whether only what the garbage collector writes changed (upstream's
/// `IsOnlyMutatingGCFields`): such updates are not checked.
fn only_gc_fields(obj: &Value, old: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in [
                "ownerReferences",
                "finalizers",
                "resourceVersion",
                "managedFields",
                "generation",
            ] {
                m.remove(k);
            }
        }
        v
    };
    strip(obj) == strip(old)
}

fn allowed(
    state: &ApiState,
    user: &User,
    verb: &str,
    resource: &str,
    ns: &str,
    name: &str,
) -> bool {
    let a = Attributes {
        user,
        verb,
        resource_request: true,
        namespace: ns,
        api_group: GROUP,
        resource,
        subresource: "",
        name,
        path: "",
    };
    state.authorizer.allows(state, &a)
}

/// Go's `%q` of a string slice: `["a" "b"]`.
fn go_quoted(l: &[String]) -> String {
    let parts: Vec<String> = l.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", parts.join(" "))
}

/// Upstream's `ConfirmNoEscalation`: the message when `user` lacks some of
/// `wanted` in `namespace`.
fn confirm_no_escalation(
    state: &ApiState,
    user: &User,
    namespace: &str,
    wanted: &[Rule],
) -> Result<(), String> {
    let (owned, errors) = state.authorizer.rules_for(user, namespace);
    let missing = rules::missing(&owned, wanted);
    if missing.is_empty() {
        return Ok(());
    }
    let mut described: Vec<String> = rules::compact(missing)
        .iter()
        .map(Rule::compact_string)
        .collect();
    described.sort();
    described.dedup();
    let mut msg = format!(
        "user {:?} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
        user.name,
        go_quoted(&user.groups),
        described.join("\n")
    );
    if !errors.is_empty() {
        msg.push_str(&format!("; resolution errors: [{}]", errors.join(" ")));
    }
    Err(msg)
}

/// The rules of the role a binding refers to, read from storage (as
/// upstream's registry does), so that a Role written just before its
/// binding is found even before the watch cache has it.
async fn referenced_rules(
    state: &ApiState,
    namespace: &str,
    kind: &str,
    name: &str,
) -> Result<Vec<Rule>, String> {
    let (plural, ns, what) = match kind {
        "Role" => ("roles", namespace, "role"),
        "ClusterRole" => ("clusterroles", "", "clusterrole"),
        other => return Err(format!("unsupported role reference kind: {other:?}")),
    };
    let def = state
        .resource(GROUP, "v1", plural)
        .ok_or_else(|| format!("{what}.{GROUP} {name:?} not found"))?;
    match state.store.get(&state.object_key(&def, ns, name)).await {
        Ok(o) => Ok(Rule::parse_all(&o.value)),
        Err(storage::Error::NotFound { .. }) => Err(format!("{what}.{GROUP} {name:?} not found")),
        Err(e) => Err(e.to_string()),
    }
}

/// Checks a create (`old` None) or update of an RBAC object by `user`.
pub async fn check(
    state: &ApiState,
    user: &User,
    group: &str,
    plural: &str,
    namespace: &str,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    if group != GROUP || user.groups.iter().any(|g| g == PRIVILEGED_GROUP) {
        return Ok(());
    }
    if old.is_some_and(|o| only_gc_fields(obj, o)) {
        return Ok(());
    }
    let name = apimachinery::meta::name(obj);
    let forbidden =
        |why: String| ApiError::forbidden_named(&GroupResource::new(GROUP, plural), name, why);
    match plural {
        "roles" | "clusterroles" => {
            if allowed(state, user, "escalate", plural, namespace, name) {
                return Ok(());
            }
            confirm_no_escalation(state, user, namespace, &Rule::parse_all(obj))
                .map_err(forbidden)?;
            if plural == "clusterroles" && obj.get("aggregationRule").is_some_and(|a| !a.is_null())
            {
                confirm_no_escalation(state, user, namespace, &rules::everything()).map_err(
                    |_| {
                        forbidden(
                            "must have cluster-admin privileges to use the aggregationRule".into(),
                        )
                    },
                )?;
            }
            Ok(())
        }
        "rolebindings" | "clusterrolebindings" => {
            let kind = obj
                .pointer("/roleRef/kind")
                .and_then(Value::as_str)
                .unwrap_or("");
            let role = obj
                .pointer("/roleRef/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let role_resource = match kind {
                "Role" => "roles",
                _ => "clusterroles",
            };
            if allowed(state, user, "bind", role_resource, namespace, role) {
                return Ok(());
            }
            let rules = referenced_rules(state, namespace, kind, role)
                .await
                .map_err(forbidden)?;
            confirm_no_escalation(state, user, namespace, &rules).map_err(forbidden)
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn garbage_collector_writes_are_not_checked() {
        let old = json!({"metadata": {"name": "r", "resourceVersion": "1"}, "rules": []});
        let gc = json!({"metadata": {"name": "r", "resourceVersion": "2", "finalizers": ["x"], "ownerReferences": []}, "rules": []});
        assert!(only_gc_fields(&gc, &old));
        let relabelled = json!({"metadata": {"name": "r", "labels": {"a": "b"}}, "rules": []});
        assert!(!only_gc_fields(&relabelled, &old));
    }

    #[test]
    fn groups_are_quoted_like_go() {
        assert_eq!(
            go_quoted(&["system:authenticated".into(), "dev".into()]),
            r#"["system:authenticated" "dev"]"#
        );
    }
}
