//! NodePorts (upstream's `plugins/nodeports`): a pod's host ports must be
//! free on the node (same protocol and port conflict unless both bind
//! different specific addresses).

use std::sync::Arc;

use serde_json::Value;

use crate::cache::Snapshot;
use crate::framework::runtime::Handle;
use crate::framework::{
    ActionType, CycleState, EventInterest, EventResource, FilterPlugin, NodeInfo, Plugin, PodInfo,
    PreFilterPlugin, PreFilterResult, Status,
};

pub const NAME: &str = "NodePorts";
pub const ERR_REASON: &str = "node(s) didn't have free ports for the requested pod ports";

pub struct NodePorts;

pub fn new(_: Option<&Value>, _: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(NodePorts))
}

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Vec<EventInterest> {
        vec![
            EventInterest {
                resource: EventResource::AssignedPod,
                actions: &[ActionType::Delete],
            },
            EventInterest {
                resource: EventResource::Node,
                actions: &[ActionType::Add, ActionType::Update],
            },
        ]
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl PreFilterPlugin for NodePorts {
    fn pre_filter(
        &self,
        _: &mut CycleState,
        pod: &PodInfo,
        _: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        if pod.host_ports.is_empty() {
            return (None, Status::skip());
        }
        (None, Status::success())
    }
}

impl FilterPlugin for NodePorts {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let conflict = pod
            .host_ports
            .iter()
            .any(|want| node.used_ports.iter().any(|used| used.conflicts(want)));
        if conflict {
            Status::unschedulable(ERR_REASON)
        } else {
            Status::success()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod};
    use serde_json::json;

    fn port_pod(ip: &str, proto: &str, port: i32) -> PodInfo {
        pod(
            json!({"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": port, "hostIP": ip, "protocol": proto}]}]}),
        )
    }

    #[test]
    fn host_port_conflicts() {
        let cases = [
            (
                "free",
                port_pod("", "TCP", 8080),
                port_pod("", "TCP", 8081),
                true,
            ),
            (
                "same port",
                port_pod("", "TCP", 8080),
                port_pod("", "TCP", 8080),
                false,
            ),
            (
                "other protocol",
                port_pod("", "UDP", 8080),
                port_pod("", "TCP", 8080),
                true,
            ),
            (
                "different specific IPs",
                port_pod("127.0.0.1", "TCP", 8080),
                port_pod("127.0.0.2", "TCP", 8080),
                true,
            ),
            (
                "wildcard against specific",
                port_pod("0.0.0.0", "TCP", 8080),
                port_pod("127.0.0.1", "TCP", 8080),
                false,
            ),
        ];
        for (name, existing, incoming, want) in cases {
            let mut n = node("n", json!({}));
            n.add_pod(Arc::new(existing));
            let s = NodePorts.filter(&CycleState::default(), &incoming, &n);
            assert_eq!(s.is_success(), want, "{name}");
        }
        let (_, s) = NodePorts.pre_filter(
            &mut CycleState::default(),
            &pod(json!({})),
            &Snapshot::default(),
        );
        assert!(s.is_skip(), "pods without host ports skip the filter");
    }
}
