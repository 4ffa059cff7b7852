//! NodeUnschedulable (upstream's `plugins/nodeunschedulable`): a cordoned
//! node (`spec.unschedulable`) takes only pods tolerating the
//! `node.kubernetes.io/unschedulable:NoSchedule` taint.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Taint;
use serde_json::Value;

use crate::framework::nodeselector::tolerates;
use crate::framework::runtime::Handle;
use crate::framework::{
    ActionType, CycleState, EventInterest, EventResource, FilterPlugin, NodeInfo, Plugin, PodInfo,
    Status,
};

pub const NAME: &str = "NodeUnschedulable";
pub const ERR_REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";
pub const ERR_REASON_UNKNOWN_CONDITION: &str = "node(s) had unknown conditions";

pub struct NodeUnschedulable;

pub fn new(_: Option<&Value>, _: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(NodeUnschedulable))
}

impl Plugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Vec<EventInterest> {
        vec![EventInterest {
            resource: EventResource::Node,
            actions: &[ActionType::Add, ActionType::Update],
        }]
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl FilterPlugin for NodeUnschedulable {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if node.node.is_none() {
            return Status::unresolvable(ERR_REASON_UNKNOWN_CONDITION);
        }
        if !node.unschedulable {
            return Status::success();
        }
        let taint = Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        if pod.tolerations().iter().any(|t| tolerates(t, &taint)) {
            return Status::success();
        }
        Status::unresolvable(ERR_REASON_UNSCHEDULABLE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod};
    use serde_json::json;

    #[test]
    fn cordoned_nodes() {
        let cordoned = node("n", json!({"spec": {"unschedulable": true}}));
        let cases = [
            (
                "schedulable node",
                pod(json!({})),
                node("n", json!({})),
                true,
            ),
            ("cordoned node", pod(json!({})), cordoned.clone(), false),
            (
                "tolerating pod",
                pod(
                    json!({"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}),
                ),
                cordoned,
                true,
            ),
        ];
        for (name, p, n, want) in cases {
            let s = NodeUnschedulable.filter(&CycleState::default(), &p, &n);
            assert_eq!(s.is_success(), want, "{name}");
            if !want {
                assert_eq!(s.message(), ERR_REASON_UNSCHEDULABLE);
            }
        }
    }
}
