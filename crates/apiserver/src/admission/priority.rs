//! `Priority` (upstream's `plugin/pkg/admission/priority`): a new pod's
//! `priorityClassName` becomes its `spec.priority` and
//! `spec.preemptionPolicy`; a pod without one gets the global default class
//! (or priority 0). Updates keep what creation computed. Only one
//! PriorityClass may be the global default.

use apimachinery::ApiError;
use async_trait::async_trait;
use serde_json::{json, Value};

use super::{Attributes, Operation, Plugin};
use crate::state::ApiState;

pub struct Priority;

/// What a class gives a pod: its name, value and preemption policy.
struct Resolved {
    class: String,
    value: i64,
    policy: Option<Value>,
}

fn resolved(pc: &Value) -> Resolved {
    Resolved {
        class: pc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        value: pc.get("value").and_then(Value::as_i64).unwrap_or(0),
        policy: pc.get("preemptionPolicy").filter(|p| !p.is_null()).cloned(),
    }
}

/// The global default class; with several (a race), the lowest value, like
/// upstream's `getDefaultPriorityClass`.
fn default_class(state: &ApiState) -> Option<Value> {
    let prefix = format!("{}priorityclasses/", state.prefix);
    // Most classes are no default: skip them without parsing.
    let (items, _) = state.cacher.list(&prefix, &|o| {
        super::contains(&o.json, b"\"globalDefault\":true")
    });
    items
        .iter()
        .filter_map(|o| o.value().ok())
        .filter(|pc| pc.get("globalDefault").and_then(Value::as_bool) == Some(true))
        .min_by_key(|pc| pc.get("value").and_then(Value::as_i64).unwrap_or(0))
}

/// The class named `name`, from the cache or else from etcd (a class
/// created a moment ago may not have reached the cache).
async fn class(state: &ApiState, name: &str) -> Option<Value> {
    let key = format!("{}priorityclasses/{name}", state.prefix);
    if let Some(v) = state.cacher.get(&key).0.and_then(|o| o.value().ok()) {
        return Some(v);
    }
    state.store.get(&key).await.ok().map(|o| o.value)
}

/// Keeps the priority and preemption policy that creation set when an
/// update leaves them out (validation refuses any real change).
fn keep_old(pod: &mut Value, old: &Value) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for field in ["priority", "preemptionPolicy"] {
        let missing = spec.get(field).is_none_or(Value::is_null);
        if let Some(v) = old
            .pointer(&format!("/spec/{field}"))
            .filter(|v| !v.is_null())
        {
            if missing {
                spec.insert(field.to_string(), v.clone());
            }
        }
    }
}

/// Applies `r` to the new pod, refusing values the client set that differ.
fn apply(a: &Attributes<'_>, pod: &mut Value, r: Resolved) -> Result<(), ApiError> {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    if let Some(given) = spec.get("priority").and_then(Value::as_i64) {
        if given != r.value {
            return Err(a.forbidden(format!(
                "the integer value of priority ({given}) must not be provided in pod spec; \
                 priority admission controller computed {} from the given PriorityClass name",
                r.value
            )));
        }
    }
    spec.insert("priority".into(), json!(r.value));
    if let Some(policy) = r.policy {
        if let Some(given) = spec.get("preemptionPolicy").filter(|p| !p.is_null()) {
            if *given != policy {
                return Err(a.forbidden(format!(
                    "the string value of PreemptionPolicy ({}) must not be provided in pod spec; \
                     priority admission controller computed {} from the given PriorityClass name",
                    given.as_str().unwrap_or_default(),
                    policy.as_str().unwrap_or_default()
                )));
            }
        }
        spec.insert("preemptionPolicy".into(), policy);
    }
    if !r.class.is_empty() {
        spec.insert("priorityClassName".into(), json!(r.class));
    }
    Ok(())
}

#[async_trait]
impl Plugin for Priority {
    fn name(&self) -> &'static str {
        "Priority"
    }

    async fn admit(
        &self,
        state: &ApiState,
        a: &Attributes<'_>,
        pod: &mut Value,
    ) -> Result<(), ApiError> {
        if !a.is("", "pods") {
            return Ok(());
        }
        match a.operation {
            Operation::Update => {
                if let Some(old) = a.old {
                    keep_old(pod, old);
                }
                Ok(())
            }
            Operation::Create => {
                let name = pod
                    .pointer("/spec/priorityClassName")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let r = if name.is_empty() {
                    default_class(state)
                        .map(|pc| resolved(&pc))
                        .unwrap_or(Resolved {
                            class: String::new(),
                            value: 0,
                            policy: Some(json!("PreemptLowerPriority")),
                        })
                } else {
                    let pc = class(state, &name).await.ok_or_else(|| {
                        a.forbidden(format!("no PriorityClass with name {name} was found"))
                    })?;
                    resolved(&pc)
                };
                apply(a, pod, r)
            }
            Operation::Delete => Ok(()),
        }
    }

    async fn validate(
        &self,
        state: &ApiState,
        a: &Attributes<'_>,
        pc: &Value,
    ) -> Result<(), ApiError> {
        let writes = matches!(a.operation, Operation::Create | Operation::Update);
        if !writes || !a.is("scheduling.k8s.io", "priorityclasses") {
            return Ok(());
        }
        if pc.get("globalDefault").and_then(Value::as_bool) != Some(true) {
            return Ok(());
        }
        let Some(current) = default_class(state) else {
            return Ok(());
        };
        let current = resolved(&current).class;
        let own = pc.pointer("/metadata/name").and_then(Value::as_str);
        if a.operation == Operation::Create || own != Some(current.as_str()) {
            return Err(a.forbidden(format!(
                "PriorityClass {current} is already marked as default. Only one default can exist"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_keep_the_priority_creation_computed() {
        let old = json!({"spec": {"priority": 7, "preemptionPolicy": "Never"}});
        let mut pod = json!({"spec": {"containers": []}});
        keep_old(&mut pod, &old);
        assert_eq!(pod["spec"]["priority"], 7);
        assert_eq!(pod["spec"]["preemptionPolicy"], "Never");
        let mut changed = json!({"spec": {"priority": 9}});
        keep_old(&mut changed, &old);
        assert_eq!(
            changed["spec"]["priority"], 9,
            "validation refuses this, not admission"
        );
    }
}
