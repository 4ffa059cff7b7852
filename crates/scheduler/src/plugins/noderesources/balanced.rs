//! NodeResourcesBalancedAllocation (upstream's
//! `plugins/noderesources/balanced_allocation.go`): prefers nodes whose
//! resource fractions (requested / allocatable, with the pod) are close to
//! each other: score = (1 − standard deviation) × 100.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::{allocatable_requested, default_resources, Requested, ResourceSpec};
use crate::cache::Snapshot;
use crate::framework::runtime::Handle;
use crate::framework::{
    CycleState, NodeInfo, Plugin, PodInfo, PreScorePlugin, ScorePlugin, Status, MAX_NODE_SCORE,
};

pub const NAME: &str = "NodeResourcesBalancedAllocation";

/// `NodeResourcesBalancedAllocationArgs`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Args {
    #[serde(default)]
    pub resources: Vec<ResourceSpec>,
}

pub struct BalancedAllocation {
    resources: Vec<ResourceSpec>,
}

pub fn new(args: Option<&Value>, _: &Handle) -> Result<Arc<dyn Plugin>, String> {
    let args: Args = super::super::decode_args(args)?;
    let resources = if args.resources.is_empty() {
        default_resources()
    } else {
        args.resources
    };
    Ok(Arc::new(BalancedAllocation { resources }))
}

impl Plugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl PreScorePlugin for BalancedAllocation {
    fn pre_score(
        &self,
        _: &mut CycleState,
        pod: &PodInfo,
        _: &Snapshot,
        _: &[Arc<NodeInfo>],
    ) -> Status {
        // A best-effort pod changes no fraction.
        let r = &pod.requests;
        if r.milli_cpu == 0
            && r.memory == 0
            && r.ephemeral_storage == 0
            && r.scalar.values().all(|v| *v == 0)
        {
            return Status::skip();
        }
        Status::success()
    }
}

impl ScorePlugin for BalancedAllocation {
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let fractions: Vec<f64> = self
            .resources
            .iter()
            .filter_map(|r| allocatable_requested(node, pod, &r.name, Requested::Actual))
            .map(|(alloc, req)| (req as f64 / alloc as f64).min(1.0))
            .collect();
        let std = match fractions.as_slice() {
            [] | [_] => 0.0,
            [a, b] => (a - b).abs() / 2.0,
            fs => {
                let mean = fs.iter().sum::<f64>() / fs.len() as f64;
                (fs.iter().map(|f| (f - mean).powi(2)).sum::<f64>() / fs.len() as f64).sqrt()
            }
        };
        Ok(((1.0 - std) * MAX_NODE_SCORE as f64) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod, pod_req};
    use serde_json::json;

    #[test]
    fn balanced_fractions_score_higher() {
        let p = new(None, &Handle::default()).unwrap();
        let sp = p.as_score().unwrap();
        let n = node(
            "n",
            json!({"status": {"allocatable": {"cpu": "4", "memory": "4000", "pods": "10"}}}),
        );
        let cases = [
            ("equal fractions", pod_req("2", "2000"), 100),
            ("cpu 50% memory 0%", pod_req("2", "0"), 75),
            ("cpu 100% memory 0%", pod_req("4", "0"), 50),
            (
                "over-committed fractions cap at 1",
                pod_req("8", "4000"),
                100,
            ),
        ];
        for (name, pod, want) in cases {
            assert_eq!(
                sp.score(&CycleState::default(), &pod, &n).unwrap(),
                want,
                "{name}"
            );
        }
        let s = p.as_pre_score().unwrap().pre_score(
            &mut CycleState::default(),
            &pod(json!({})),
            &Snapshot::default(),
            &[],
        );
        assert!(s.is_skip(), "best-effort pods are not scored");
    }
}
