//! `DefaultTolerationSeconds` (upstream's `plugin/pkg/admission/defaulttolerationseconds`):
//! every pod tolerates the `not-ready` and `unreachable` NoExecute taints
//! for a while (`--default-not-ready-toleration-seconds`,
//! `--default-unreachable-toleration-seconds`, 300 s each) unless it says
//! otherwise, so that a node that goes away evicts its pods after that.

use apimachinery::ApiError;
use async_trait::async_trait;
use serde_json::{json, Value};

use super::{Attributes, Operation, Plugin};
use crate::state::ApiState;

const NOT_READY: &str = "node.kubernetes.io/not-ready";
const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

pub struct DefaultTolerationSeconds {
    pub not_ready_seconds: i64,
    pub unreachable_seconds: i64,
}

impl Default for DefaultTolerationSeconds {
    fn default() -> Self {
        Self {
            not_ready_seconds: 300,
            unreachable_seconds: 300,
        }
    }
}

/// Whether `t` already tolerates the NoExecute taint `key` (an empty key or
/// effect matches everything, like upstream's check).
fn tolerates(t: &Value, key: &str) -> bool {
    let field = |f: &str| t.get(f).and_then(Value::as_str).unwrap_or("");
    (field("key") == key || field("key").is_empty())
        && (field("effect") == "NoExecute" || field("effect").is_empty())
}

/// Adds the two default tolerations to the pod `obj` where missing.
pub fn add_defaults(obj: &mut Value, not_ready_seconds: i64, unreachable_seconds: i64) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let list = spec
        .entry("tolerations")
        .or_insert_with(|| Value::Array(Vec::new()));
    if list.is_null() {
        *list = Value::Array(Vec::new());
    }
    let Some(list) = list.as_array_mut() else {
        return;
    };
    for (key, seconds) in [
        (NOT_READY, not_ready_seconds),
        (UNREACHABLE, unreachable_seconds),
    ] {
        if !list.iter().any(|t| tolerates(t, key)) {
            list.push(
                json!({"key": key, "operator": "Exists", "effect": "NoExecute",
                             "tolerationSeconds": seconds}),
            );
        }
    }
}

#[async_trait]
impl Plugin for DefaultTolerationSeconds {
    fn name(&self) -> &'static str {
        "DefaultTolerationSeconds"
    }

    async fn admit(
        &self,
        _state: &ApiState,
        a: &Attributes<'_>,
        obj: &mut Value,
    ) -> Result<(), ApiError> {
        if matches!(a.operation, Operation::Create | Operation::Update) && a.is("", "pods") {
            add_defaults(obj, self.not_ready_seconds, self.unreachable_seconds);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tolerations(spec: Value) -> Value {
        let mut pod = json!({ "spec": spec });
        add_defaults(&mut pod, 300, 200);
        pod["spec"]["tolerations"].clone()
    }

    #[test]
    fn both_defaults_are_added_to_a_pod_without_tolerations() {
        assert_eq!(
            tolerations(json!({"containers": []})),
            json!([
                {"key": NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 200}
            ])
        );
    }

    #[test]
    fn a_pod_that_already_tolerates_keeps_its_own() {
        let own = json!({"key": NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5});
        let got = tolerations(json!({"tolerations": [own.clone()]}));
        assert_eq!(got.as_array().unwrap().len(), 2);
        assert_eq!(got[0], own);
        assert_eq!(got[1]["key"], UNREACHABLE);
        // Tolerating everything (empty key and effect) needs nothing more.
        let all = json!([{"operator": "Exists"}]);
        assert_eq!(tolerations(json!({"tolerations": all.clone()})), all);
        // A NoSchedule toleration does not count.
        let ns = json!({"key": NOT_READY, "operator": "Exists", "effect": "NoSchedule"});
        assert_eq!(
            tolerations(json!({"tolerations": [ns]}))
                .as_array()
                .unwrap()
                .len(),
            3
        );
    }
}
