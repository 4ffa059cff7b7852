//! NodeName (upstream's `plugins/nodename`): a pod naming a node in
//! `spec.nodeName` fits that node only.

use std::sync::Arc;

use serde_json::Value;

use crate::framework::runtime::Handle;
use crate::framework::{
    ActionType, CycleState, EventInterest, EventResource, FilterPlugin, NodeInfo, Plugin, PodInfo,
    Status,
};

pub const NAME: &str = "NodeName";
pub const ERR_REASON: &str = "node(s) didn't match the requested node name";

pub struct NodeName;

pub fn new(_: Option<&Value>, _: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(NodeName))
}

impl Plugin for NodeName {
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

impl FilterPlugin for NodeName {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if pod.node_name.is_empty() || pod.node_name == node.name {
            Status::success()
        } else {
            Status::unresolvable(ERR_REASON)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod};
    use serde_json::json;

    #[test]
    fn node_name() {
        let cases = [
            ("no node name", json!({}), true),
            ("same node", json!({"nodeName": "n1"}), true),
            ("other node", json!({"nodeName": "n2"}), false),
        ];
        for (name, spec, want) in cases {
            let s = NodeName.filter(&CycleState::default(), &pod(spec), &node("n1", json!({})));
            assert_eq!(s.is_success(), want, "{name}");
        }
    }
}
