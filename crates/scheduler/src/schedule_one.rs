//! The scheduling cycle's pure part (upstream's
//! `pkg/scheduler/schedule_one.go`: `schedulePod`,
//! `findNodesThatFitPod`, `numFeasibleNodesToFind`, `prioritizeNodes`,
//! `selectHost`) and the `FitError` whose message users read in
//! `FailedScheduling` events: `0/3 nodes are available: 1 node(s) had
//! untolerated taint {k: v}, 2 Insufficient cpu. preemption: …`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use rand::Rng;

use crate::cache::Snapshot;
use crate::framework::runtime::Framework;
use crate::framework::{CycleState, NodeInfo, NodeToStatus, PodInfo, Status};

/// Upstream's `minFeasibleNodesToFind`.
pub const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// Upstream's `minFeasibleNodesPercentageToFind`.
pub const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: i64 = 5;

pub const NO_NODES_AVAILABLE: &str = "no nodes available to schedule pods";

/// Why filtering left no node.
#[derive(Debug, Clone, Default)]
pub struct Diagnosis {
    pub node_to_status: NodeToStatus,
    /// The status of nodes PreFilter ruled out without filtering.
    pub absent_status: Option<Status>,
    pub unschedulable_plugins: HashSet<&'static str>,
    pub pre_filter_msg: String,
    pub post_filter_msg: String,
}

/// No node fits the pod.
#[derive(Debug, Clone)]
pub struct FitError {
    pub num_all_nodes: usize,
    pub diagnosis: Diagnosis,
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0/{} nodes are available:", self.num_all_nodes)?;
        let d = &self.diagnosis;
        if !d.pre_filter_msg.is_empty() {
            write!(f, " {}.", d.pre_filter_msg)?;
        } else {
            let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
            for s in d.node_to_status.values() {
                for r in &s.reasons {
                    *reasons.entry(r).or_default() += 1;
                }
            }
            let absent = self.num_all_nodes.saturating_sub(d.node_to_status.len());
            if let Some(s) = d.absent_status.as_ref().filter(|_| absent > 0) {
                for r in &s.reasons {
                    *reasons.entry(r).or_default() += absent;
                }
            }
            let mut list: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
            list.sort();
            if !list.is_empty() {
                write!(f, " {}.", list.join(", "))?;
            }
        }
        if !d.post_filter_msg.is_empty() {
            write!(f, " {}.", d.post_filter_msg)?;
        }
        Ok(())
    }
}

/// Why a scheduling attempt found no host.
#[derive(Debug, Clone)]
pub enum ScheduleError {
    /// The cluster has no nodes.
    NoNodes,
    /// Plugins rejected every node.
    Fit(Box<FitError>),
    /// A plugin failed.
    Internal(Status),
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleError::NoNodes => f.write_str(NO_NODES_AVAILABLE),
            ScheduleError::Fit(e) => e.fmt(f),
            ScheduleError::Internal(s) => {
                write!(f, "running {:?} plugin: {}", s.plugin, s.message())
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleResult {
    pub suggested_host: String,
    pub evaluated_nodes: usize,
    pub feasible_nodes: usize,
}

/// The state kept across cycles: where the next node search starts.
#[derive(Debug, Default)]
pub struct Algorithm {
    pub next_start_node_index: usize,
    /// The global `percentageOfNodesToScore` (0: adaptive).
    pub percentage_of_nodes_to_score: i32,
    /// Pods nominated to nodes by preemption, set before each attempt.
    pub nominated: HashMap<String, Vec<Arc<PodInfo>>>,
}

/// Upstream's `numFeasibleNodesToFind`: all nodes below 100, else an
/// adaptive share (50 % minus 1 % per 125 nodes, at least 5 %), at least 100.
pub fn num_feasible_nodes_to_find(percentage: i32, num_all_nodes: usize) -> usize {
    let n = num_all_nodes as i64;
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND {
        return num_all_nodes;
    }
    let mut pct = i64::from(percentage);
    if pct == 0 {
        pct = (50 - n / 125).max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND);
    }
    let found = (n * pct / 100) as usize;
    found.max(MIN_FEASIBLE_NODES_TO_FIND)
}

impl Algorithm {
    /// Filters and scores the snapshot's nodes for one pod.
    pub fn schedule_pod(
        &mut self,
        fwk: &Framework,
        state: &mut CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
    ) -> Result<ScheduleResult, ScheduleError> {
        if snap.is_empty() {
            return Err(ScheduleError::NoNodes);
        }
        let (feasible, diagnosis) = self.find_nodes_that_fit(fwk, state, pod, snap)?;
        if feasible.is_empty() {
            return Err(ScheduleError::Fit(Box::new(FitError {
                num_all_nodes: snap.len(),
                diagnosis,
            })));
        }
        let evaluated = feasible.len() + diagnosis.node_to_status.len();
        if feasible.len() == 1 {
            return Ok(ScheduleResult {
                suggested_host: feasible[0].name.clone(),
                evaluated_nodes: evaluated,
                feasible_nodes: 1,
            });
        }
        let scores = fwk
            .run_score(state, pod, snap, &feasible)
            .map_err(ScheduleError::Internal)?;
        let host = select_host(&scores).unwrap_or_else(|| feasible[0].name.clone());
        Ok(ScheduleResult {
            suggested_host: host,
            evaluated_nodes: evaluated,
            feasible_nodes: feasible.len(),
        })
    }

    /// PreFilter, then Filter over nodes from a rotating start until enough
    /// feasible nodes are found. A nominated node is tried first.
    pub fn find_nodes_that_fit(
        &mut self,
        fwk: &Framework,
        state: &mut CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
    ) -> Result<(Vec<Arc<NodeInfo>>, Diagnosis), ScheduleError> {
        let mut diagnosis = Diagnosis::default();
        let (pre, status, narrowing) = fwk.run_pre_filter(state, pod, snap);
        if !status.is_success() {
            if !status.is_rejected() {
                return Err(ScheduleError::Internal(status));
            }
            diagnosis.pre_filter_msg = status.message();
            diagnosis.unschedulable_plugins.insert(status.plugin);
            for n in snap.nodes() {
                diagnosis
                    .node_to_status
                    .insert(n.name.clone(), status.clone());
            }
            return Ok((Vec::new(), diagnosis));
        }
        let narrowed: Vec<Arc<NodeInfo>>;
        let nodes: &[Arc<NodeInfo>] = match &pre.node_names {
            None => snap.nodes(),
            Some(names) => {
                narrowed = names.iter().filter_map(|n| snap.get(n).cloned()).collect();
                diagnosis.absent_status = Some(Status::unresolvable(format!(
                    "node(s) didn't satisfy plugin(s) [{}]",
                    narrowing.join(" ")
                )));
                diagnosis
                    .unschedulable_plugins
                    .extend(narrowing.iter().copied());
                &narrowed
            }
        };
        if let Some(nominated) = nominated_node(pod) {
            if let Some(ni) = nodes.iter().find(|n| n.name == nominated) {
                if fwk.run_filter(state, pod, ni).is_success() {
                    return Ok((vec![ni.clone()], diagnosis));
                }
            }
        }
        let pct = fwk
            .percentage_of_nodes_to_score
            .unwrap_or(self.percentage_of_nodes_to_score);
        let want = num_feasible_nodes_to_find(pct, nodes.len());
        let n = nodes.len();
        let mut feasible = Vec::with_capacity(want.min(n));
        if n == 0 {
            return Ok((feasible, diagnosis));
        }
        let start = self.next_start_node_index % n;
        let mut processed = 0;
        let active = fwk.active_filters(state);
        for i in 0..n {
            let ni = &nodes[(start + i) % n];
            processed += 1;
            let s = self.filter_with_nominated(&active, state, pod, ni);
            if s.is_success() {
                feasible.push(ni.clone());
                if feasible.len() >= want {
                    break;
                }
            } else if s.is_rejected() {
                diagnosis.unschedulable_plugins.insert(s.plugin);
                diagnosis.node_to_status.insert(ni.name.clone(), s);
            } else {
                return Err(ScheduleError::Internal(s));
            }
        }
        self.next_start_node_index = (start + processed) % n;
        Ok((feasible, diagnosis))
    }
}

impl Algorithm {
    /// Upstream's `RunFilterPluginsWithNominatedPods`: when pods of at least
    /// this priority are nominated to the node, the pod must fit with them
    /// added and without them.
    fn filter_with_nominated(
        &self,
        active: &[(&'static str, &dyn crate::framework::FilterPlugin)],
        state: &CycleState,
        pod: &PodInfo,
        ni: &Arc<NodeInfo>,
    ) -> Status {
        let others: Vec<&Arc<PodInfo>> = self
            .nominated
            .get(&ni.name)
            .into_iter()
            .flatten()
            .filter(|p| p.key != pod.key && p.priority >= pod.priority)
            .collect();
        if !others.is_empty() {
            let mut with = (**ni).clone();
            for p in others {
                with.add_pod(p.clone());
            }
            let s = Framework::run_filters(active, state, pod, &with);
            if !s.is_success() {
                return s;
            }
        }
        Framework::run_filters(active, state, pod, ni)
    }
}

fn nominated_node(pod: &PodInfo) -> Option<&str> {
    pod.pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// The highest total; ties broken uniformly at random (reservoir sampling).
pub fn select_host(scores: &[crate::framework::NodeScore]) -> Option<String> {
    let mut rng = rand::rng();
    let mut best: Option<&crate::framework::NodeScore> = None;
    let mut ties = 0u32;
    for s in scores {
        match best {
            Some(b) if s.score < b.score => {}
            Some(b) if s.score == b.score => {
                ties += 1;
                if rng.random_range(0..ties) == 0 {
                    best = Some(s);
                }
            }
            _ => {
                best = Some(s);
                ties = 1;
            }
        }
    }
    best.map(|b| b.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{default_profiles, node, pod, pod_req};
    use serde_json::json;

    fn fwk() -> Arc<Framework> {
        default_profiles().values().next().cloned().unwrap()
    }

    #[test]
    fn feasible_nodes_to_find() {
        let cases = [
            (0, 10, 10),
            (0, 99, 99),
            (0, 100, 100),
            (0, 1000, 420),
            (0, 5000, 500),
            (0, 6000, 300),
            (0, 10000, 500),
            (50, 1000, 500),
            (1, 1000, 100),
        ];
        for (pct, nodes, want) in cases {
            assert_eq!(
                num_feasible_nodes_to_find(pct, nodes),
                want,
                "{pct}% of {nodes}"
            );
        }
    }

    #[test]
    fn fit_error_message_has_upstream_form() {
        let snap = Snapshot::from_nodes([
            node(
                "tainted",
                json!({"spec": {"taints": [{"key": "node-role", "value": "master", "effect": "NoSchedule"}]}}),
            ),
            node(
                "small1",
                json!({"status": {"allocatable": {"cpu": "1", "memory": "8Gi", "pods": "10"}}}),
            ),
            node(
                "small2",
                json!({"status": {"allocatable": {"cpu": "1", "memory": "8Gi", "pods": "10"}}}),
            ),
        ]);
        let err = Algorithm::default()
            .schedule_pod(
                &fwk(),
                &mut CycleState::default(),
                &pod_req("2", "1Mi"),
                &snap,
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "0/3 nodes are available: 1 node(s) had untolerated taint {node-role: master}, 2 Insufficient cpu."
        );
        let ScheduleError::Fit(fit) = err else {
            panic!("a fit error")
        };
        assert_eq!(
            fit.diagnosis.unschedulable_plugins,
            HashSet::from(["TaintToleration", "NodeResourcesFit"])
        );
    }

    #[test]
    fn no_nodes_and_prefilter_narrowing_messages() {
        let err = Algorithm::default()
            .schedule_pod(
                &fwk(),
                &mut CycleState::default(),
                &pod(json!({})),
                &Snapshot::default(),
            )
            .unwrap_err();
        assert_eq!(err.to_string(), "no nodes available to schedule pods");
        let snap = Snapshot::from_nodes([node("a", json!({})), node("b", json!({}))]);
        let p = pod(
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]}]}}},
            "nodeSelector": {"disk": "ssd"}}),
        );
        let err = Algorithm::default()
            .schedule_pod(&fwk(), &mut CycleState::default(), &p, &snap)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) didn't satisfy plugin(s) [NodeAffinity]."
        );
    }

    #[test]
    fn picks_the_best_scored_node() {
        // LeastAllocated + BalancedAllocation prefer the emptier node.
        let mut busy = node("busy", json!({}));
        busy.add_pod(Arc::new(pod_req("3", "6Gi")));
        let snap = Snapshot::from_nodes([busy, node("idle", json!({}))]);
        let mut alg = Algorithm::default();
        for _ in 0..5 {
            let r = alg
                .schedule_pod(
                    &fwk(),
                    &mut CycleState::default(),
                    &pod_req("500m", "512Mi"),
                    &snap,
                )
                .unwrap();
            assert_eq!(r.suggested_host, "idle");
            assert_eq!(r.feasible_nodes, 2);
        }
        // Preferred affinity (weight 2 × 100) outweighs the resource scores.
        let p = pod(
            json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "100m"}}}],
            "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 1, "preference": {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["busy"]}]}}]}}}),
        );
        let r = alg
            .schedule_pod(&fwk(), &mut CycleState::default(), &p, &snap)
            .unwrap();
        assert_eq!(r.suggested_host, "busy");
    }

    #[test]
    fn search_stops_at_enough_feasible_nodes_and_rotates() {
        let snap = Snapshot::from_nodes((0..200).map(|i| node(&format!("n{i}"), json!({}))));
        let mut alg = Algorithm {
            percentage_of_nodes_to_score: 10,
            ..Default::default()
        };
        let (found, _) = alg
            .find_nodes_that_fit(&fwk(), &mut CycleState::default(), &pod(json!({})), &snap)
            .unwrap();
        assert_eq!(found.len(), 100, "at least 100 nodes are scored");
        assert_eq!(alg.next_start_node_index, 100);
        let (found, _) = alg
            .find_nodes_that_fit(&fwk(), &mut CycleState::default(), &pod(json!({})), &snap)
            .unwrap();
        assert_eq!(
            found[0].name,
            snap.nodes()[100].name,
            "the next search starts where the last stopped"
        );
    }

    #[test]
    fn room_held_for_a_nominated_pod_is_not_taken_by_a_lower_priority_pod() {
        let snap = Snapshot::from_nodes([node(
            "n",
            json!({"status": {"allocatable": {"cpu": "2", "memory": "8Gi", "pods": "10"}}}),
        )]);
        let mut nominee = pod_req("2", "1Mi");
        nominee.key = "default/nominee".into();
        nominee.priority = 100;
        let mut alg = Algorithm::default();
        alg.nominated.insert("n".into(), vec![Arc::new(nominee)]);
        let err = alg
            .schedule_pod(
                &fwk(),
                &mut CycleState::default(),
                &pod_req("1", "1Mi"),
                &snap,
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "0/1 nodes are available: 1 Insufficient cpu."
        );
        let mut higher = pod_req("1", "1Mi");
        higher.priority = 200;
        assert!(alg
            .schedule_pod(&fwk(), &mut CycleState::default(), &higher, &snap)
            .is_ok());
    }
}
