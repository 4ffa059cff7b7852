//! InterPodAffinity (upstream's `plugins/interpodaffinity`: filtering.go,
//! scoring.go). PreFilter counts, per topology domain, the existing pods
//! the incoming pod's required terms match and the existing pods whose
//! required anti-affinity matches the incoming pod; Filter checks a node's
//! domains against those counts. Score adds preferred term weights (and
//! existing pods' terms towards the incoming pod) per domain and scales
//! them min–max to 0..=100.
//!
//! Not yet: `namespaceSelector` with labels (only an empty selector, all
//! namespaces, is understood) and `matchLabelKeys`.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::cache::Snapshot;
use crate::framework::affinity::AffinityTerm;
use crate::framework::runtime::Handle;
use crate::framework::{
    ActionType, CycleState, EventInterest, EventResource, FilterPlugin, NodeInfo, NodeScore,
    Plugin, PodInfo, PreFilterPlugin, PreFilterResult, PreScorePlugin, ScorePlugin, Status,
    ALL_ACTIONS, MAX_NODE_SCORE,
};

pub const NAME: &str = "InterPodAffinity";
pub const ERR_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const ERR_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
pub const ERR_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

/// `InterPodAffinityArgs`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Args {
    #[serde(default = "one")]
    pub hard_pod_affinity_weight: i32,
    #[serde(default)]
    pub ignore_preferred_terms_of_existing_pods: bool,
}

fn one() -> i32 {
    1
}

impl Default for Args {
    fn default() -> Self {
        Args {
            hard_pod_affinity_weight: 1,
            ignore_preferred_terms_of_existing_pods: false,
        }
    }
}

pub struct InterPodAffinity {
    args: Args,
}

pub fn new(args: Option<&Value>, _: &Handle) -> Result<Arc<dyn Plugin>, String> {
    let args: Args = super::decode_args(args)?;
    if !(0..=100).contains(&args.hard_pod_affinity_weight) {
        return Err(format!(
            "hardPodAffinityWeight: Invalid value: {}: not in valid range [0, 100]",
            args.hard_pod_affinity_weight
        ));
    }
    Ok(Arc::new(InterPodAffinity { args }))
}

type Counts = HashMap<(String, String), i64>;

fn bump(counts: &mut Counts, node: &NodeInfo, key: &str, by: i64) {
    if let Some(v) = node.node_labels().get(key) {
        *counts.entry((key.to_string(), v.clone())).or_default() += by;
    }
}

fn matches(t: &AffinityTerm, p: &PodInfo) -> bool {
    t.matches(&p.namespace, p.labels())
}

#[derive(Default)]
struct FilterState {
    existing_anti: Counts,
    affinity: Counts,
    anti: Counts,
}

impl Plugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Vec<EventInterest> {
        vec![
            EventInterest {
                resource: EventResource::AssignedPod,
                actions: ALL_ACTIONS,
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
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl PreFilterPlugin for InterPodAffinity {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        let aff = &pod.affinity;
        let any_existing_anti = snap.any_pod_with_required_anti_affinity();
        if aff.required_affinity.is_empty()
            && aff.required_anti_affinity.is_empty()
            && !any_existing_anti
        {
            return (None, Status::skip());
        }
        let mut s = FilterState::default();
        let want_incoming =
            !aff.required_affinity.is_empty() || !aff.required_anti_affinity.is_empty();
        for ni in snap.nodes() {
            if ni.pods_with_required_anti_affinity > 0 {
                for existing in &ni.pods {
                    for t in &existing.affinity.required_anti_affinity {
                        if matches(t, pod) {
                            bump(&mut s.existing_anti, ni, &t.topology_key, 1);
                        }
                    }
                }
            }
            if !want_incoming {
                continue;
            }
            for existing in &ni.pods {
                if !aff.required_affinity.is_empty()
                    && aff.required_affinity.iter().all(|t| matches(t, existing))
                {
                    for t in &aff.required_affinity {
                        bump(&mut s.affinity, ni, &t.topology_key, 1);
                    }
                }
                for t in &aff.required_anti_affinity {
                    if matches(t, existing) {
                        bump(&mut s.anti, ni, &t.topology_key, 1);
                    }
                }
            }
        }
        state.write(NAME, s);
        (None, Status::success())
    }
}

impl InterPodAffinity {
    fn satisfies_affinity(s: &FilterState, pod: &PodInfo, node: &NodeInfo) -> bool {
        let terms = &pod.affinity.required_affinity;
        let labels = node.node_labels();
        let mut pods_exist = true;
        for t in terms {
            match labels.get(&t.topology_key) {
                Some(v) => {
                    if s.affinity
                        .get(&(t.topology_key.clone(), v.clone()))
                        .copied()
                        .unwrap_or(0)
                        <= 0
                    {
                        pods_exist = false;
                    }
                }
                None => return false,
            }
        }
        if pods_exist {
            return true;
        }
        // The first pod of a group matching its own affinity may go anywhere
        // its topology keys exist.
        s.affinity.is_empty() && terms.iter().all(|t| matches(t, pod))
    }
}

impl FilterPlugin for InterPodAffinity {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<FilterState>(NAME) else {
            return Status::error("reading InterPodAffinity pre-filter state: not found");
        };
        if !Self::satisfies_affinity(s, pod, node) {
            return Status::unresolvable(ERR_AFFINITY);
        }
        let labels = node.node_labels();
        let hit = |counts: &Counts, key: &str| {
            labels.get(key).is_some_and(|v| {
                counts
                    .get(&(key.to_string(), v.clone()))
                    .copied()
                    .unwrap_or(0)
                    > 0
            })
        };
        if pod
            .affinity
            .required_anti_affinity
            .iter()
            .any(|t| hit(&s.anti, &t.topology_key))
        {
            return Status::unschedulable(ERR_ANTI_AFFINITY);
        }
        if !s.existing_anti.is_empty() && labels.keys().any(|k| hit(&s.existing_anti, k)) {
            return Status::unschedulable(ERR_EXISTING_ANTI_AFFINITY);
        }
        Status::success()
    }
}

struct ScoreState(Counts);

impl InterPodAffinity {
    fn score_existing(
        &self,
        scores: &mut Counts,
        pod: &PodInfo,
        existing: &PodInfo,
        node: &NodeInfo,
    ) {
        let aff = &pod.affinity;
        for w in &aff.preferred_affinity {
            if matches(&w.term, existing) {
                bump(scores, node, &w.term.topology_key, i64::from(w.weight));
            }
        }
        for w in &aff.preferred_anti_affinity {
            if matches(&w.term, existing) {
                bump(scores, node, &w.term.topology_key, -i64::from(w.weight));
            }
        }
        let ex = &existing.affinity;
        if self.args.hard_pod_affinity_weight > 0 {
            for t in &ex.required_affinity {
                if matches(t, pod) {
                    bump(
                        scores,
                        node,
                        &t.topology_key,
                        i64::from(self.args.hard_pod_affinity_weight),
                    );
                }
            }
        }
        if self.args.ignore_preferred_terms_of_existing_pods {
            return;
        }
        for w in &ex.preferred_affinity {
            if matches(&w.term, pod) {
                bump(scores, node, &w.term.topology_key, i64::from(w.weight));
            }
        }
        for w in &ex.preferred_anti_affinity {
            if matches(&w.term, pod) {
                bump(scores, node, &w.term.topology_key, -i64::from(w.weight));
            }
        }
    }
}

impl PreScorePlugin for InterPodAffinity {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
        _: &[Arc<NodeInfo>],
    ) -> Status {
        let has_preferred = !pod.affinity.preferred_affinity.is_empty()
            || !pod.affinity.preferred_anti_affinity.is_empty();
        let any_existing = snap.any_pod_with_affinity();
        if !has_preferred && !any_existing {
            return Status::skip();
        }
        let mut scores = Counts::new();
        for ni in snap.nodes() {
            if !has_preferred && ni.pods_with_affinity == 0 {
                continue;
            }
            for existing in &ni.pods {
                if has_preferred || existing.has_pod_affinity {
                    self.score_existing(&mut scores, pod, existing, ni);
                }
            }
        }
        if scores.is_empty() {
            return Status::skip();
        }
        state.write(NAME, ScoreState(scores));
        Status::success()
    }
}

impl ScorePlugin for InterPodAffinity {
    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let Some(ScoreState(scores)) = state.read::<ScoreState>(NAME) else {
            return Ok(0);
        };
        let labels = node.node_labels();
        Ok(scores
            .iter()
            .filter(|((k, v), _)| labels.get(k) == Some(v))
            .map(|(_, s)| *s)
            .sum())
    }

    fn normalize(&self, _: &CycleState, _: &PodInfo, scores: &mut [NodeScore]) -> Option<Status> {
        let min = scores.iter().map(|s| s.score).min().unwrap_or(0);
        let max = scores.iter().map(|s| s.score).max().unwrap_or(0);
        let diff = max - min;
        for s in scores {
            s.score = if diff > 0 {
                (MAX_NODE_SCORE as f64 * ((s.score - min) as f64 / diff as f64)) as i64
            } else {
                0
            };
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod_meta};
    use serde_json::json;

    fn labelled(name: &str, labels: Value, spec: Value) -> Arc<PodInfo> {
        Arc::new(pod_meta(
            json!({"name": name, "namespace": "ns", "labels": labels}),
            spec,
        ))
    }

    fn zone(name: &str, z: &str) -> NodeInfo {
        node(
            name,
            json!({"metadata": {"labels": {"zone": z, "kubernetes.io/hostname": name}}}),
        )
    }

    fn term(key: &str, app: &str) -> Value {
        json!({"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key})
    }

    fn run_filter(pod: &PodInfo, nodes: Vec<NodeInfo>) -> Vec<(String, String)> {
        let p = new(None, &Handle::default()).unwrap();
        let snap = Snapshot::from_nodes(nodes);
        let mut state = CycleState::default();
        let (_, s) = p
            .as_pre_filter()
            .unwrap()
            .pre_filter(&mut state, pod, &snap);
        snap.nodes()
            .iter()
            .map(|n| {
                let msg = if s.is_skip() {
                    String::new()
                } else {
                    p.as_filter().unwrap().filter(&state, pod, n).message()
                };
                (n.name.clone(), msg)
            })
            .collect()
    }

    #[test]
    fn required_affinity_follows_matching_pods_to_their_zone() {
        let mut a = zone("a", "z1");
        a.add_pod(labelled("db", json!({"app": "db"}), json!({})));
        let b = zone("b", "z2");
        let web = labelled(
            "web",
            json!({"app": "web"}),
            json!({"affinity": {"podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [term("zone", "db")]}}}),
        );
        assert_eq!(
            run_filter(&web, vec![a, b]),
            vec![("a".into(), "".into()), ("b".into(), ERR_AFFINITY.into())]
        );
        // The first pod of a self-affine group may go anywhere.
        let first = labelled(
            "w1",
            json!({"app": "web"}),
            json!({"affinity": {"podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [term("zone", "web")]}}}),
        );
        let got = run_filter(&first, vec![zone("a", "z1"), zone("b", "z2")]);
        assert!(got.iter().all(|(_, m)| m.is_empty()), "{got:?}");
    }

    #[test]
    fn anti_affinity_both_ways() {
        let mut a = zone("a", "z1");
        a.add_pod(labelled("web1", json!({"app": "web"}), json!({})));
        let b = zone("b", "z2");
        let web2 = labelled(
            "web2",
            json!({"app": "web"}),
            json!({"affinity": {"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [term("kubernetes.io/hostname", "web")]}}}),
        );
        assert_eq!(
            run_filter(&web2, vec![a, b.clone()]),
            vec![
                ("a".into(), ERR_ANTI_AFFINITY.into()),
                ("b".into(), "".into())
            ]
        );
        // An existing pod's anti-affinity keeps matching pods out of its zone.
        let mut a = zone("a", "z1");
        a.add_pod(labelled(
            "loner",
            json!({"app": "loner"}),
            json!({"affinity": {"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [term("zone", "web")]}}}),
        ));
        let plain = labelled("web3", json!({"app": "web"}), json!({}));
        assert_eq!(
            run_filter(&plain, vec![a, b]),
            vec![
                ("a".into(), ERR_EXISTING_ANTI_AFFINITY.into()),
                ("b".into(), "".into())
            ]
        );
    }

    #[test]
    fn preferred_terms_score_min_max() {
        let p = new(None, &Handle::default()).unwrap();
        let mut a = zone("a", "z1");
        a.add_pod(labelled("cache", json!({"app": "cache"}), json!({})));
        let b = zone("b", "z2");
        let mut c = zone("c", "z3");
        c.add_pod(labelled("noisy", json!({"app": "noisy"}), json!({})));
        let snap = Snapshot::from_nodes([a, b, c]);
        let pod = labelled(
            "web",
            json!({}),
            json!({"affinity": {
            "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "podAffinityTerm": term("zone", "cache")}]},
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 5, "podAffinityTerm": term("zone", "noisy")}]}}}),
        );
        let mut state = CycleState::default();
        assert!(p
            .as_pre_score()
            .unwrap()
            .pre_score(&mut state, &pod, &snap, &[])
            .is_success());
        let sp = p.as_score().unwrap();
        let mut scores: Vec<NodeScore> = snap
            .nodes()
            .iter()
            .map(|n| NodeScore {
                name: n.name.clone(),
                score: sp.score(&state, &pod, n).unwrap(),
            })
            .collect();
        assert_eq!(
            scores.iter().map(|s| s.score).collect::<Vec<_>>(),
            vec![10, 0, -5]
        );
        sp.normalize(&state, &pod, &mut scores);
        assert_eq!(
            scores.iter().map(|s| s.score).collect::<Vec<_>>(),
            vec![100, 33, 0]
        );
    }
}
