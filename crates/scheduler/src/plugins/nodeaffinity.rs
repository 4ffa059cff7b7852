//! NodeAffinity (upstream's `plugins/nodeaffinity`): Filter enforces
//! `spec.nodeSelector` and the required node affinity (plus the profile's
//! `addedAffinity`); Score sums the weights of matching preferred terms.
//! PreFilter narrows the nodes when every term names nodes with
//! `metadata.name In`.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::NodeAffinity as ApiNodeAffinity;
use serde::Deserialize;
use serde_json::Value;

use crate::cache::Snapshot;
use crate::framework::nodeselector::{Selector, Term};
use crate::framework::runtime::{normalize, Handle};
use crate::framework::{
    ActionType, CycleState, EventInterest, EventResource, FilterPlugin, NodeInfo, NodeScore,
    Plugin, PodInfo, PreFilterPlugin, PreFilterResult, PreScorePlugin, ScorePlugin, Status,
};

pub const NAME: &str = "NodeAffinity";
pub const ERR_REASON_POD: &str = "node(s) didn't match Pod's node affinity/selector";
pub const ERR_REASON_ENFORCED: &str = "node(s) didn't match scheduler-enforced node affinity";

/// `NodeAffinityArgs`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Args {
    #[serde(default)]
    pub added_affinity: Option<ApiNodeAffinity>,
}

pub struct NodeAffinity {
    added_required: Option<Selector>,
    added_preferred: Vec<(i32, Term)>,
}

pub fn new(args: Option<&Value>, _: &Handle) -> Result<Arc<dyn Plugin>, String> {
    let args: Args = super::decode_args(args)?;
    let added = args.added_affinity.unwrap_or_default();
    Ok(Arc::new(NodeAffinity {
        added_required: added
            .required_during_scheduling_ignored_during_execution
            .as_ref()
            .map(Selector::parse),
        added_preferred: added
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
            .map(|t| (t.weight, Term::parse(&t.preference)))
            .collect(),
    }))
}

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Vec<EventInterest> {
        vec![
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
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl PreFilterPlugin for NodeAffinity {
    fn pre_filter(
        &self,
        _: &mut CycleState,
        pod: &PodInfo,
        _: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        let req = &pod.required_affinity;
        if req.node_selector.is_empty() && req.required.is_none() && self.added_required.is_none() {
            return (None, Status::skip());
        }
        let names = req.required.as_ref().and_then(Selector::node_names);
        (
            names.map(|n| PreFilterResult {
                node_names: Some(n.into_iter().collect::<BTreeSet<_>>()),
            }),
            Status::success(),
        )
    }
}

impl FilterPlugin for NodeAffinity {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if node.node.is_none() {
            return Status::unresolvable(ERR_REASON_POD);
        }
        if let Some(added) = &self.added_required {
            if !added.matches(&node.name, node.node_labels()) {
                return Status::unresolvable(ERR_REASON_ENFORCED);
            }
        }
        if pod
            .required_affinity
            .matches_labels(&node.name, node.node_labels())
        {
            Status::success()
        } else {
            Status::unresolvable(ERR_REASON_POD)
        }
    }
}

impl PreScorePlugin for NodeAffinity {
    fn pre_score(
        &self,
        _: &mut CycleState,
        pod: &PodInfo,
        _: &Snapshot,
        _: &[Arc<NodeInfo>],
    ) -> Status {
        if pod.preferred_affinity.is_empty() && self.added_preferred.is_empty() {
            return Status::skip();
        }
        Status::success()
    }
}

impl ScorePlugin for NodeAffinity {
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let labels = node.node_labels();
        let score = pod
            .preferred_affinity
            .iter()
            .chain(&self.added_preferred)
            .filter(|(_, t)| t.matches(&node.name, labels))
            .map(|(w, _)| i64::from(*w))
            .sum();
        Ok(score)
    }

    fn normalize(&self, _: &CycleState, _: &PodInfo, scores: &mut [NodeScore]) -> Option<Status> {
        normalize(false, scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod};
    use serde_json::json;

    fn plugin(args: Option<Value>) -> Arc<dyn Plugin> {
        new(args.as_ref(), &Handle::default()).unwrap()
    }

    #[test]
    fn filter_selector_and_required_affinity() {
        let zone_a = node(
            "a",
            json!({"metadata": {"labels": {"zone": "a", "disk": "ssd"}}}),
        );
        let required = |zone: &str| {
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": [zone]}]}]}}}})
        };
        let cases = [
            ("nothing required", json!({}), true),
            (
                "nodeSelector matches",
                json!({"nodeSelector": {"zone": "a"}}),
                true,
            ),
            (
                "nodeSelector misses",
                json!({"nodeSelector": {"zone": "b"}}),
                false,
            ),
            ("required affinity matches", required("a"), true),
            ("required affinity misses", required("b"), false),
            (
                "both must match",
                {
                    let mut s = required("a");
                    s["nodeSelector"] = json!({"disk": "hdd"});
                    s
                },
                false,
            ),
        ];
        let p = plugin(None);
        for (name, spec, want) in cases {
            let s = p
                .as_filter()
                .unwrap()
                .filter(&CycleState::default(), &pod(spec), &zone_a);
            assert_eq!(s.is_success(), want, "{name}");
            if !want {
                assert_eq!(s.message(), ERR_REASON_POD);
            }
        }
    }

    #[test]
    fn added_affinity_is_enforced() {
        let p = plugin(Some(
            json!({"addedAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchExpressions": [{"key": "pool", "operator": "In", "values": ["x"]}]}]}}}),
        ));
        let s = p.as_filter().unwrap().filter(
            &CycleState::default(),
            &pod(json!({})),
            &node("n", json!({})),
        );
        assert_eq!(s.message(), ERR_REASON_ENFORCED);
        assert!(
            new(Some(&json!({"bogus": 1})), &Handle::default()).is_err(),
            "unknown args field"
        );
    }

    #[test]
    fn prefilter_narrows_by_metadata_name() {
        let p = plugin(None);
        let spec = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}]}}}});
        let (r, s) = p.as_pre_filter().unwrap().pre_filter(
            &mut CycleState::default(),
            &pod(spec),
            &Snapshot::default(),
        );
        assert!(s.is_success());
        assert_eq!(
            r.unwrap()
                .node_names
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            vec!["n2"]
        );
        let (_, s) = p.as_pre_filter().unwrap().pre_filter(
            &mut CycleState::default(),
            &pod(json!({})),
            &Snapshot::default(),
        );
        assert!(s.is_skip());
    }

    #[test]
    fn score_sums_matching_preferred_weights() {
        let p = plugin(None);
        let spec = json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 2, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}},
            {"weight": 8, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}
        ]}}});
        let pi = pod(spec);
        let nodes = [
            node(
                "both",
                json!({"metadata": {"labels": {"zone": "a", "disk": "ssd"}}}),
            ),
            node("zone", json!({"metadata": {"labels": {"zone": "a"}}})),
            node("none", json!({})),
        ];
        let sp = p.as_score().unwrap();
        let mut scores: Vec<NodeScore> = nodes
            .iter()
            .map(|n| NodeScore {
                name: n.name.clone(),
                score: sp.score(&CycleState::default(), &pi, n).unwrap(),
            })
            .collect();
        assert_eq!(
            scores.iter().map(|s| s.score).collect::<Vec<_>>(),
            vec![10, 2, 0]
        );
        sp.normalize(&CycleState::default(), &pi, &mut scores);
        assert_eq!(
            scores.iter().map(|s| s.score).collect::<Vec<_>>(),
            vec![100, 20, 0]
        );
    }
}
