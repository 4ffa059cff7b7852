//! PrioritySort (upstream's `plugins/queuesort/priority_sort.go`): higher
//! priority first, then the earlier queue timestamp.

use std::sync::Arc;

use serde_json::Value;

use crate::framework::runtime::Handle;
use crate::framework::{Plugin, QueueSortPlugin, QueuedPodInfo};

pub const NAME: &str = "PrioritySort";

pub struct PrioritySort;

pub fn new(_: Option<&Value>, _: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(PrioritySort))
}

impl Plugin for PrioritySort {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_queue_sort(&self) -> Option<&dyn QueueSortPlugin> {
        Some(self)
    }
}

impl QueueSortPlugin for PrioritySort {
    fn less(&self, a: &QueuedPodInfo, b: &QueuedPodInfo) -> bool {
        let (pa, pb) = (a.pod_info.priority, b.pod_info.priority);
        pa > pb || (pa == pb && a.timestamp < b.timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::pod;
    use serde_json::json;
    use std::time::{Duration, Instant};

    #[test]
    fn priority_then_age() {
        let q = |prio: i32, age: u64| {
            let mut q = QueuedPodInfo::new(Arc::new(pod(json!({"priority": prio}))));
            q.timestamp = Instant::now() - Duration::from_secs(age);
            q
        };
        let cases = [
            ("higher priority first", q(10, 0), q(1, 100), true),
            ("lower priority later", q(1, 100), q(10, 0), false),
            ("same priority, older first", q(5, 10), q(5, 1), true),
            ("same priority, newer later", q(5, 1), q(5, 10), false),
        ];
        for (name, a, b, want) in cases {
            assert_eq!(PrioritySort.less(&a, &b), want, "{name}");
        }
    }
}
