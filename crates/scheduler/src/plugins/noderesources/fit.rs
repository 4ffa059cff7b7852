//! NodeResourcesFit (upstream's `plugins/noderesources/fit.go`,
//! `least_allocated.go`, `most_allocated.go`,
//! `requested_to_capacity_ratio.go`): Filter checks the pod's requests
//! against the node's free allocatable resources and pod count; Score
//! applies the configured scoring strategy.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use super::{allocatable_requested, default_resources, Requested, ResourceSpec};
use crate::framework::resource::{CPU, EPHEMERAL_STORAGE, MEMORY};
use crate::framework::runtime::Handle;
use crate::framework::{
    ActionType, CycleState, EventInterest, EventResource, FilterPlugin, NodeInfo, Plugin, PodInfo,
    ScorePlugin, Status, MAX_NODE_SCORE,
};

pub const NAME: &str = "NodeResourcesFit";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum StrategyType {
    #[default]
    LeastAllocated,
    MostAllocated,
    RequestedToCapacityRatio,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UtilizationShapePoint {
    pub utilization: i64,
    pub score: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestedToCapacityRatio {
    #[serde(default)]
    pub shape: Vec<UtilizationShapePoint>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScoringStrategy {
    #[serde(default, rename = "type")]
    pub type_: StrategyType,
    #[serde(default)]
    pub resources: Vec<ResourceSpec>,
    #[serde(default)]
    pub requested_to_capacity_ratio: Option<RequestedToCapacityRatio>,
}

/// `NodeResourcesFitArgs`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Args {
    #[serde(default)]
    pub ignored_resources: Vec<String>,
    #[serde(default)]
    pub ignored_resource_groups: Vec<String>,
    #[serde(default)]
    pub scoring_strategy: Option<ScoringStrategy>,
}

pub struct Fit {
    ignored: Vec<String>,
    ignored_groups: Vec<String>,
    strategy: StrategyType,
    resources: Vec<ResourceSpec>,
    shape: Vec<UtilizationShapePoint>,
}

pub fn new(args: Option<&Value>, _: &Handle) -> Result<Arc<dyn Plugin>, String> {
    let args: Args = super::super::decode_args(args)?;
    Ok(Arc::new(Fit::from_args(args)?))
}

impl Fit {
    pub fn from_args(args: Args) -> Result<Self, String> {
        let s = args.scoring_strategy.unwrap_or_default();
        let mut resources = if s.resources.is_empty() {
            default_resources()
        } else {
            s.resources
        };
        for (i, r) in resources.iter_mut().enumerate() {
            if r.weight == 0 {
                r.weight = 1;
            }
            if !(1..=100).contains(&r.weight) {
                return Err(format!(
                    "scoringStrategy.resources[{i}].weight: Invalid value: {}: resource weight of {} should be in the range [1, 100]",
                    r.weight, r.name
                ));
            }
        }
        let shape = match s.type_ {
            StrategyType::RequestedToCapacityRatio => {
                let shape = s
                    .requested_to_capacity_ratio
                    .map(|r| r.shape)
                    .unwrap_or_default();
                if shape.is_empty() {
                    return Err("scoringStrategy.requestedToCapacityRatio.shape: Required value: at least one point must be specified".into());
                }
                for (i, p) in shape.iter().enumerate() {
                    if !(0..=100).contains(&p.utilization) {
                        return Err(format!("scoringStrategy.requestedToCapacityRatio.shape[{i}].utilization: Invalid value: {}: not in valid range [0, 100]", p.utilization));
                    }
                    if !(0..=10).contains(&p.score) {
                        return Err(format!("scoringStrategy.requestedToCapacityRatio.shape[{i}].score: Invalid value: {}: not in valid range [0, 10]", p.score));
                    }
                    if i > 0 && p.utilization <= shape[i - 1].utilization {
                        return Err(format!("scoringStrategy.requestedToCapacityRatio.shape[{i}].utilization: Invalid value: {}: utilization values must be sorted in increasing order", p.utilization));
                    }
                }
                shape
            }
            _ => Vec::new(),
        };
        Ok(Fit {
            ignored: args.ignored_resources,
            ignored_groups: args.ignored_resource_groups,
            strategy: s.type_,
            resources,
            shape,
        })
    }

    fn is_ignored(&self, name: &str) -> bool {
        self.ignored.iter().any(|i| i == name)
            || name
                .split_once('/')
                .is_some_and(|(group, _)| self.ignored_groups.iter().any(|g| g == group))
    }

    /// Upstream's `fitsRequest`: every insufficient resource, in order.
    pub fn insufficient(&self, pod: &PodInfo, node: &NodeInfo) -> Vec<String> {
        let mut out = Vec::new();
        if node.pods.len() as i64 + 1 > node.allocatable.allowed_pod_number {
            out.push("Too many pods".to_string());
        }
        let req = &pod.requests;
        if req.milli_cpu == 0
            && req.memory == 0
            && req.ephemeral_storage == 0
            && req.scalar.values().all(|v| *v == 0)
        {
            return out;
        }
        let free = |name: &str| node.allocatable.get(name) - node.requested.get(name);
        for name in [CPU, MEMORY, EPHEMERAL_STORAGE] {
            let want = req.get(name);
            if want > 0 && want > free(name) {
                out.push(format!("Insufficient {name}"));
            }
        }
        for (name, want) in &req.scalar {
            if *want == 0 || self.is_ignored(name) {
                continue;
            }
            if *want > free(name) {
                out.push(format!("Insufficient {name}"));
            }
        }
        out
    }

    fn shape_score(&self, utilization: i64) -> i64 {
        // The shape's scores are 0..=10; node scores 0..=100.
        let scale = MAX_NODE_SCORE / 10;
        let pts = &self.shape;
        let Some(first) = pts.first() else { return 0 };
        if utilization <= first.utilization {
            return first.score * scale;
        }
        for w in pts.windows(2) {
            let (a, b) = (&w[0], &w[1]);
            if utilization <= b.utilization {
                let s = a.score * scale
                    + (b.score - a.score) * scale * (utilization - a.utilization)
                        / (b.utilization - a.utilization);
                return s;
            }
        }
        pts.last().map_or(0, |p| p.score * scale)
    }
}

impl Plugin for Fit {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Vec<EventInterest> {
        vec![
            EventInterest {
                resource: EventResource::AssignedPod,
                actions: &[ActionType::Delete, ActionType::Update],
            },
            EventInterest {
                resource: EventResource::Node,
                actions: &[ActionType::Add, ActionType::Update],
            },
            EventInterest {
                resource: EventResource::UnscheduledPod,
                actions: &[ActionType::Update],
            },
        ]
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl FilterPlugin for Fit {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let reasons = self.insufficient(pod, node);
        if reasons.is_empty() {
            return Status::success();
        }
        Status {
            code: crate::framework::Code::Unschedulable,
            reasons,
            plugin: NAME,
        }
    }
}

impl ScorePlugin for Fit {
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let (mut total, mut weights) = (0i64, 0i64);
        for r in &self.resources {
            let Some((alloc, req)) = allocatable_requested(node, pod, &r.name, Requested::NonZero)
            else {
                continue;
            };
            let s = match self.strategy {
                StrategyType::LeastAllocated => {
                    if req > alloc {
                        0
                    } else {
                        (alloc - req) * MAX_NODE_SCORE / alloc
                    }
                }
                StrategyType::MostAllocated => req.min(alloc) * MAX_NODE_SCORE / alloc,
                StrategyType::RequestedToCapacityRatio => {
                    self.shape_score((req * MAX_NODE_SCORE / alloc).min(MAX_NODE_SCORE))
                }
            };
            total += s * r.weight;
            weights += r.weight;
        }
        Ok(if weights == 0 { 0 } else { total / weights })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod, pod_req};
    use serde_json::json;

    fn fit(args: Value) -> Fit {
        Fit::from_args(serde_json::from_value(args).unwrap()).unwrap()
    }

    #[test]
    fn filter_reports_every_insufficient_resource() {
        let mut full = node(
            "n",
            json!({"status": {"allocatable": {"cpu": "2", "memory": "1Gi", "pods": "2", "example.com/gpu": "1"}}}),
        );
        full.add_pod(Arc::new(pod_req("1500m", "512Mi")));
        let cases: Vec<(&str, PodInfo, Vec<&str>)> = vec![
            ("fits", pod_req("500m", "512Mi"), vec![]),
            ("cpu", pod_req("600m", "1Mi"), vec!["Insufficient cpu"]),
            (
                "cpu and memory",
                pod_req("1", "1Gi"),
                vec!["Insufficient cpu", "Insufficient memory"],
            ),
            ("best effort always fits resources", pod(json!({})), vec![]),
            (
                "extended resource",
                pod(
                    json!({"containers": [{"name": "c", "resources": {"requests": {"example.com/gpu": "2"}}}]}),
                ),
                vec!["Insufficient example.com/gpu"],
            ),
        ];
        let f = fit(json!({}));
        for (name, p, want) in cases {
            assert_eq!(f.insufficient(&p, &full), want, "{name}");
        }
        full.add_pod(Arc::new(pod(json!({}))));
        assert_eq!(
            f.insufficient(&pod(json!({})), &full),
            vec!["Too many pods"]
        );
        let ignoring = fit(json!({"ignoredResourceGroups": ["example.com"]}));
        let gpu = pod(
            json!({"containers": [{"name": "c", "resources": {"requests": {"example.com/gpu": "2"}}}]}),
        );
        assert!(ignoring
            .insufficient(&gpu, &node("m", json!({})))
            .is_empty());
    }

    #[test]
    fn scoring_strategies() {
        // Upstream's least_allocated_test "differently sized machines": cpu
        // 3000m/mem 5000 requested on a 4000m/10000 node.
        let mut n = node(
            "n",
            json!({"status": {"allocatable": {"cpu": "4", "memory": "10000", "pods": "10"}}}),
        );
        n.add_pod(Arc::new(pod_req("2", "2000")));
        let p = pod_req("1", "3000");
        let least = fit(json!({}));
        assert_eq!(
            least.score(&CycleState::default(), &p, &n).unwrap(),
            (25 + 50) / 2
        );
        let most = fit(json!({"scoringStrategy": {"type": "MostAllocated"}}));
        assert_eq!(
            most.score(&CycleState::default(), &p, &n).unwrap(),
            (75 + 50) / 2
        );
        let ratio = fit(
            json!({"scoringStrategy": {"type": "RequestedToCapacityRatio",
            "requestedToCapacityRatio": {"shape": [{"utilization": 0, "score": 10}, {"utilization": 100, "score": 0}]}}}),
        );
        assert_eq!(
            ratio.score(&CycleState::default(), &p, &n).unwrap(),
            (25 + 50) / 2
        );
        let weighted = fit(
            json!({"scoringStrategy": {"resources": [{"name": "cpu", "weight": 3}, {"name": "memory", "weight": 1}]}}),
        );
        assert_eq!(
            weighted.score(&CycleState::default(), &p, &n).unwrap(),
            (25 * 3 + 50) / 4
        );
    }

    #[test]
    fn invalid_args_are_refused() {
        for args in [
            json!({"scoringStrategy": {"resources": [{"name": "cpu", "weight": 101}]}}),
            json!({"scoringStrategy": {"type": "RequestedToCapacityRatio"}}),
            json!({"scoringStrategy": {"type": "Fancy"}}),
            json!({"unknown": true}),
        ] {
            assert!(new(Some(&args), &Handle::default()).is_err(), "{args}");
        }
    }
}
