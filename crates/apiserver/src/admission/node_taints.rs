//! `TaintNodesByCondition` (upstream's `plugin/pkg/admission/nodetaint`): a
//! node is born with the `node.kubernetes.io/not-ready:NoSchedule` taint, so
//! nothing is scheduled to it before the node lifecycle controller has seen
//! it Ready and removed the taint.

use apimachinery::ApiError;
use async_trait::async_trait;
use serde_json::{json, Value};

use super::{Attributes, Operation, Plugin};
use crate::state::ApiState;

const NOT_READY: &str = "node.kubernetes.io/not-ready";

pub struct TaintNodesByCondition;

/// Adds the taint unless the node has it (same key and effect).
fn add_not_ready_taint(node: &mut Value) {
    let Some(obj) = node.as_object_mut() else {
        return;
    };
    let spec = obj.entry("spec").or_insert_with(|| json!({}));
    if !spec.is_object() {
        *spec = json!({});
    }
    let taints = &mut spec["taints"];
    if !taints.is_array() {
        *taints = json!([]);
    }
    let Some(list) = taints.as_array_mut() else {
        return;
    };
    let has = list.iter().any(|t| {
        t.get("key").and_then(Value::as_str) == Some(NOT_READY)
            && t.get("effect").and_then(Value::as_str) == Some("NoSchedule")
    });
    if !has {
        list.push(json!({"key": NOT_READY, "effect": "NoSchedule"}));
    }
}

#[async_trait]
impl Plugin for TaintNodesByCondition {
    fn name(&self) -> &'static str {
        "TaintNodesByCondition"
    }

    async fn admit(
        &self,
        _state: &ApiState,
        a: &Attributes<'_>,
        obj: &mut Value,
    ) -> Result<(), ApiError> {
        if a.operation == Operation::Create && a.is("", "nodes") {
            add_not_ready_taint(obj);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_node_gets_the_taint_once() {
        let mut node = json!({"metadata": {"name": "n"}});
        add_not_ready_taint(&mut node);
        assert_eq!(
            node["spec"]["taints"],
            json!([{"key": NOT_READY, "effect": "NoSchedule"}])
        );
        add_not_ready_taint(&mut node);
        assert_eq!(node["spec"]["taints"].as_array().unwrap().len(), 1);
        let mut other = json!({"spec": {"taints": [{"key": "k", "effect": "NoExecute"}]}});
        add_not_ready_taint(&mut other);
        assert_eq!(other["spec"]["taints"].as_array().unwrap().len(), 2);
    }
}
