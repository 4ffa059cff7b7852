//! SchedulingGates (upstream's `plugins/schedulinggates`): a pod with
//! `spec.schedulingGates` stays out of the active queue until every gate
//! is removed.

use std::sync::Arc;

use serde_json::Value;

use crate::framework::runtime::Handle;
use crate::framework::{
    ActionType, EventInterest, EventResource, Plugin, PodInfo, PreEnqueuePlugin, Status,
};

pub const NAME: &str = "SchedulingGates";

pub struct SchedulingGates;

pub fn new(_: Option<&Value>, _: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(SchedulingGates))
}

impl Plugin for SchedulingGates {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Vec<EventInterest> {
        vec![EventInterest {
            resource: EventResource::UnscheduledPod,
            actions: &[ActionType::Update],
        }]
    }
    fn as_pre_enqueue(&self) -> Option<&dyn PreEnqueuePlugin> {
        Some(self)
    }
}

impl PreEnqueuePlugin for SchedulingGates {
    fn pre_enqueue(&self, pod: &PodInfo) -> Status {
        if pod.scheduling_gates.is_empty() {
            return Status::success();
        }
        Status::unresolvable(format!(
            "waiting for scheduling gates: [{}]",
            pod.scheduling_gates.join(" ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::plugins::testing::pod;
    use serde_json::json;

    #[test]
    fn gated_pods_wait() {
        let s = SchedulingGates.pre_enqueue(&pod(json!({})));
        assert!(s.is_success());
        let s = SchedulingGates.pre_enqueue(&pod(
            json!({"schedulingGates": [{"name": "a"}, {"name": "b"}]}),
        ));
        assert_eq!(s.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(s.message(), "waiting for scheduling gates: [a b]");
    }
}
