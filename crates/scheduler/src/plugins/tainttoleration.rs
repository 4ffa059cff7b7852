//! TaintToleration (upstream's `plugins/tainttoleration`): Filter rejects
//! nodes with an untolerated `NoSchedule`/`NoExecute` taint; Score prefers
//! nodes with fewer untolerated `PreferNoSchedule` taints.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Toleration;
use serde_json::Value;

use crate::cache::Snapshot;
use crate::framework::nodeselector::{find_untolerated, tolerates};
use crate::framework::runtime::{normalize, Handle};
use crate::framework::{
    ActionType, CycleState, EventInterest, EventResource, FilterPlugin, NodeInfo, NodeScore,
    Plugin, PodInfo, PreScorePlugin, ScorePlugin, Status,
};

pub const NAME: &str = "TaintToleration";

pub struct TaintToleration;

pub fn new(_: Option<&Value>, _: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(TaintToleration))
}

impl Plugin for TaintToleration {
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

impl FilterPlugin for TaintToleration {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let hard = |t: &k8s_openapi::api::core::v1::Taint| {
            t.effect == "NoSchedule" || t.effect == "NoExecute"
        };
        match find_untolerated(node.taints(), pod.tolerations(), hard) {
            None => Status::success(),
            Some(t) => Status::unresolvable(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                t.key,
                t.value.as_deref().unwrap_or("")
            )),
        }
    }
}

/// The pod's tolerations that matter for PreferNoSchedule.
struct PreScoreState(Vec<Toleration>);

impl PreScorePlugin for TaintToleration {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _: &Snapshot,
        _: &[Arc<NodeInfo>],
    ) -> Status {
        let tols = pod
            .tolerations()
            .iter()
            .filter(|t| {
                matches!(
                    t.effect.as_deref(),
                    None | Some("") | Some("PreferNoSchedule")
                )
            })
            .cloned()
            .collect();
        state.write(NAME, PreScoreState(tols));
        Status::success()
    }
}

impl ScorePlugin for TaintToleration {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let own;
        let tols = match state.read::<PreScoreState>(NAME) {
            Some(s) => &s.0,
            None => {
                own = pod.tolerations().to_vec();
                &own
            }
        };
        let n = node
            .taints()
            .iter()
            .filter(|t| t.effect == "PreferNoSchedule")
            .filter(|taint| !tols.iter().any(|t| tolerates(t, taint)))
            .count();
        Ok(n as i64)
    }

    fn normalize(&self, _: &CycleState, _: &PodInfo, scores: &mut [NodeScore]) -> Option<Status> {
        normalize(true, scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod};
    use serde_json::json;

    #[test]
    fn filter_untolerated_taints() {
        let tainted = node(
            "n",
            json!({"spec": {"taints": [{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}]}}),
        );
        let cases = [
            ("no taints", pod(json!({})), node("n", json!({})), None),
            (
                "untolerated",
                pod(json!({})),
                tainted.clone(),
                Some("node(s) had untolerated taint {dedicated: infra}"),
            ),
            (
                "tolerated",
                pod(
                    json!({"tolerations": [{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}]}),
                ),
                tainted.clone(),
                None,
            ),
            (
                "PreferNoSchedule does not filter",
                pod(json!({})),
                node(
                    "n",
                    json!({"spec": {"taints": [{"key": "k", "effect": "PreferNoSchedule"}]}}),
                ),
                None,
            ),
        ];
        for (name, p, n, want) in cases {
            let s = TaintToleration.filter(&CycleState::default(), &p, &n);
            match want {
                None => assert!(s.is_success(), "{name}: {s:?}"),
                Some(msg) => {
                    assert_eq!(
                        s.code,
                        crate::framework::Code::UnschedulableAndUnresolvable,
                        "{name}"
                    );
                    assert_eq!(s.message(), msg, "{name}");
                }
            }
        }
    }

    #[test]
    fn score_prefers_fewer_intolerable_taints() {
        let p = pod(
            json!({"tolerations": [{"key": "a", "operator": "Exists", "effect": "PreferNoSchedule"}]}),
        );
        let nodes = [
            node("none", json!({})),
            node(
                "tolerated",
                json!({"spec": {"taints": [{"key": "a", "effect": "PreferNoSchedule"}]}}),
            ),
            node(
                "one",
                json!({"spec": {"taints": [{"key": "b", "effect": "PreferNoSchedule"}]}}),
            ),
            node(
                "two",
                json!({"spec": {"taints": [{"key": "b", "effect": "PreferNoSchedule"}, {"key": "c", "effect": "PreferNoSchedule"}]}}),
            ),
        ];
        let mut state = CycleState::default();
        TaintToleration.pre_score(&mut state, &p, &Snapshot::default(), &[]);
        let mut scores: Vec<NodeScore> = nodes
            .iter()
            .map(|n| NodeScore {
                name: n.name.clone(),
                score: TaintToleration.score(&state, &p, n).unwrap(),
            })
            .collect();
        TaintToleration.normalize(&state, &p, &mut scores);
        let got: Vec<i64> = scores.iter().map(|s| s.score).collect();
        assert_eq!(got, vec![100, 100, 50, 0]);
    }
}
