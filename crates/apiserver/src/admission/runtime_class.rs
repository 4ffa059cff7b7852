//! `RuntimeClass` (upstream's `plugin/pkg/admission/runtimeclass`): a new
//! pod naming a RuntimeClass gets the class's `overhead.podFixed` as its
//! `spec.overhead` and the class's `scheduling` (nodeSelector merged,
//! tolerations added); a missing class, a conflicting node selector or an
//! overhead that does not match the class is refused.

use apimachinery::ApiError;
use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{Attributes, Operation, Plugin};
use crate::state::ApiState;

pub struct RuntimeClass;

/// The class the pod names: None when it names none, else the class or
/// upstream's Forbidden (the cache first, then etcd, like upstream's live
/// lookup).
async fn class_of(
    state: &ApiState,
    a: &Attributes<'_>,
    pod: &Value,
) -> Result<Option<Value>, ApiError> {
    let Some(name) = pod
        .pointer("/spec/runtimeClassName")
        .and_then(Value::as_str)
    else {
        return Ok(None);
    };
    let key = format!("{}runtimeclasses/{name}", state.prefix);
    if let Some(v) = state.cacher.get(&key).0.and_then(|o| o.value().ok()) {
        return Ok(Some(v));
    }
    match state.store.get(&key).await {
        Ok(o) => Ok(Some(o.value)),
        Err(_) => Err(a.forbidden(format!("pod rejected: RuntimeClass {name:?} not found"))),
    }
}

/// Whether two resource lists are the same quantities (`1000m` = `1`).
fn same_resources(a: Option<&Value>, b: Option<&Value>) -> bool {
    let parse = |v: Option<&Value>| -> Option<Vec<(String, i64)>> {
        let m = v.filter(|v| !v.is_null())?.as_object()?;
        Some(
            m.iter()
                .map(|(k, q)| {
                    let milli = q
                        .as_str()
                        .and_then(apimachinery::quantity::parse_f64)
                        .map_or(i64::MIN, |f| (f * 1000.0).round() as i64);
                    (k.clone(), milli)
                })
                .collect(),
        )
    };
    parse(a) == parse(b)
}

fn overhead(class: &Value) -> Option<&Value> {
    class.pointer("/overhead/podFixed").filter(|v| !v.is_null())
}

fn spec_mut(pod: &mut Value) -> Option<&mut Map<String, Value>> {
    pod.get_mut("spec").and_then(Value::as_object_mut)
}

fn set_overhead(a: &Attributes<'_>, pod: &mut Value, class: &Value) -> Result<(), ApiError> {
    let Some(fixed) = overhead(class) else {
        return Ok(());
    };
    let current = pod.pointer("/spec/overhead").filter(|v| !v.is_null());
    if current.is_some() && !same_resources(current, Some(fixed)) {
        return Err(a.forbidden(
            "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead",
        ));
    }
    if let Some(spec) = spec_mut(pod) {
        spec.insert("overhead".into(), fixed.clone());
    }
    Ok(())
}

fn set_scheduling(a: &Attributes<'_>, pod: &mut Value, class: &Value) -> Result<(), ApiError> {
    let Some(scheduling) = class.get("scheduling").filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let Some(spec) = spec_mut(pod) else {
        return Ok(());
    };
    if let Some(wanted) = scheduling.get("nodeSelector").and_then(Value::as_object) {
        let selector = spec
            .entry("nodeSelector")
            .or_insert_with(|| Value::Object(Map::new()));
        if !selector.is_object() {
            *selector = Value::Object(Map::new());
        }
        if let Some(selector) = selector.as_object_mut() {
            for (key, value) in wanted {
                if let Some(own) = selector.get(key).filter(|v| *v != value) {
                    return Err(a.forbidden(format!(
                        "conflict: runtimeClass.scheduling.nodeSelector[{key}] = {}; pod.spec.nodeSelector[{key}] = {}",
                        value.as_str().unwrap_or_default(),
                        own.as_str().unwrap_or_default()
                    )));
                }
                selector.insert(key.clone(), value.clone());
            }
        }
    }
    if let Some(extra) = scheduling.get("tolerations").and_then(Value::as_array) {
        let list = spec
            .entry("tolerations")
            .or_insert_with(|| Value::Array(Vec::new()));
        if !list.is_array() {
            *list = Value::Array(Vec::new());
        }
        if let Some(list) = list.as_array_mut() {
            for t in extra {
                if !list.contains(t) {
                    list.push(t.clone());
                }
            }
        }
    }
    Ok(())
}

#[async_trait]
impl Plugin for RuntimeClass {
    fn name(&self) -> &'static str {
        "RuntimeClass"
    }

    async fn admit(
        &self,
        state: &ApiState,
        a: &Attributes<'_>,
        pod: &mut Value,
    ) -> Result<(), ApiError> {
        if a.operation != Operation::Create || !a.is("", "pods") {
            return Ok(());
        }
        let Some(class) = class_of(state, a, pod).await? else {
            return Ok(());
        };
        set_overhead(a, pod, &class)?;
        set_scheduling(a, pod, &class)
    }

    async fn validate(
        &self,
        state: &ApiState,
        a: &Attributes<'_>,
        pod: &Value,
    ) -> Result<(), ApiError> {
        if a.operation != Operation::Create || !a.is("", "pods") {
            return Ok(());
        }
        let class = class_of(state, a, pod).await?;
        let own = pod.pointer("/spec/overhead").filter(|v| !v.is_null());
        match class.as_ref().and_then(overhead) {
            Some(fixed) if !same_resources(own, Some(fixed)) => Err(a.forbidden(
                "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead",
            )),
            None if own.is_some() => Err(a.forbidden(
                "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead",
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs() -> Attributes<'static> {
        Attributes {
            operation: Operation::Create,
            group: "",
            version: "v1",
            kind: "Pod",
            resource: "pods",
            subresource: "",
            namespace: "default",
            name: "p",
            old: None,
            dry_run: false,
            user: Box::leak(Box::default()),
        }
    }

    #[test]
    fn scheduling_merges_and_conflicts_are_refused() {
        let class = json!({"scheduling": {"nodeSelector": {"sandbox": "gvisor"},
            "tolerations": [{"key": "sandbox", "operator": "Exists", "effect": "NoSchedule"}]}});
        let mut pod = json!({"spec": {"nodeSelector": {"zone": "a"}}});
        set_scheduling(&attrs(), &mut pod, &class).unwrap();
        assert_eq!(
            pod["spec"]["nodeSelector"],
            json!({"zone": "a", "sandbox": "gvisor"})
        );
        assert_eq!(pod["spec"]["tolerations"].as_array().map(Vec::len), Some(1));
        set_scheduling(&attrs(), &mut pod, &class).unwrap();
        assert_eq!(
            pod["spec"]["tolerations"].as_array().map(Vec::len),
            Some(1),
            "no duplicates"
        );
        let mut clash = json!({"spec": {"nodeSelector": {"sandbox": "kata"}}});
        let err = set_scheduling(&attrs(), &mut clash, &class).unwrap_err();
        assert!(
            err.to_string().contains("conflict: runtimeClass.scheduling.nodeSelector[sandbox] = gvisor; pod.spec.nodeSelector[sandbox] = kata"),
            "{err}"
        );
    }

    #[test]
    fn overhead_is_set_and_must_match() {
        let class = json!({"overhead": {"podFixed": {"cpu": "250m", "memory": "64Mi"}}});
        let mut pod = json!({"spec": {}});
        set_overhead(&attrs(), &mut pod, &class).unwrap();
        assert_eq!(
            pod["spec"]["overhead"],
            json!({"cpu": "250m", "memory": "64Mi"})
        );
        let mut same = json!({"spec": {"overhead": {"cpu": "0.25", "memory": "64Mi"}}});
        assert!(set_overhead(&attrs(), &mut same, &class).is_ok());
        let mut other = json!({"spec": {"overhead": {"cpu": "1"}}});
        assert!(set_overhead(&attrs(), &mut other, &class).is_err());
    }
}
