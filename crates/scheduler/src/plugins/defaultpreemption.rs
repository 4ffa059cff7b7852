//! DefaultPreemption (upstream's `plugins/defaultpreemption` and
//! `framework/preemption/preemption.go`): when no node fits, find nodes
//! where evicting lower-priority pods would make room, keep as many of
//! those pods as still leaves room (most important first), pick the node
//! whose victims matter least, delete the victims and nominate the node.
//!
//! Not yet: PodDisruptionBudgets are not consulted; the PreFilter
//! state is not updated for removed victims (upstream's
//! `PreFilterExtensions.RemovePod`), so a victim's own anti-affinity still
//! counts during the dry run.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams};
use serde::Deserialize;
use serde_json::Value;

use crate::cache::Snapshot;
use crate::framework::runtime::{Framework, Handle};
use crate::framework::{
    Code, CycleState, NodeInfo, NodeToStatus, Plugin, PodInfo, PostFilterPlugin, PostFilterResult,
    Status,
};
use crate::schedule_one::{Diagnosis, FitError};

pub const NAME: &str = "DefaultPreemption";
pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

/// `DefaultPreemptionArgs`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Args {
    #[serde(default = "default_pct")]
    pub min_candidate_nodes_percentage: i32,
    #[serde(default = "default_abs")]
    pub min_candidate_nodes_absolute: i32,
}

fn default_pct() -> i32 {
    10
}
fn default_abs() -> i32 {
    100
}

impl Default for Args {
    fn default() -> Self {
        Args {
            min_candidate_nodes_percentage: default_pct(),
            min_candidate_nodes_absolute: default_abs(),
        }
    }
}

pub struct DefaultPreemption {
    args: Args,
    client: Option<kube::Client>,
}

pub fn new(args: Option<&Value>, h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    let args: Args = super::decode_args(args)?;
    if !(0..=100).contains(&args.min_candidate_nodes_percentage) {
        return Err(format!(
            "minCandidateNodesPercentage: Invalid value: {}: not in valid range [0, 100]",
            args.min_candidate_nodes_percentage
        ));
    }
    if args.min_candidate_nodes_absolute < 0 {
        return Err(format!(
            "minCandidateNodesAbsolute: Invalid value: {}: not in valid range [0, inf)",
            args.min_candidate_nodes_absolute
        ));
    }
    if args.min_candidate_nodes_percentage == 0 && args.min_candidate_nodes_absolute == 0 {
        return Err("minCandidateNodesPercentage: Invalid value: 0: cannot be zero at the same time as minCandidateNodesAbsolute".into());
    }
    Ok(Arc::new(DefaultPreemption {
        args,
        client: h.client.clone(),
    }))
}

impl Plugin for DefaultPreemption {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_post_filter(&self) -> Option<&dyn PostFilterPlugin> {
        Some(self)
    }
}

/// One node where preemption would work, and what it costs.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub node: String,
    pub victims: Vec<Arc<PodInfo>>,
}

/// Upstream's `MoreImportantPod`: higher priority, then earlier start.
fn more_important(a: &PodInfo, b: &PodInfo) -> Ordering {
    let start = |p: &PodInfo| {
        p.pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.clone())
            .map(|t| t.0)
    };
    b.priority
        .cmp(&a.priority)
        .then_with(|| match (start(a), start(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        })
}

fn preemption_policy_never(pod: &PodInfo) -> bool {
    pod.pod
        .spec
        .as_ref()
        .and_then(|s| s.preemption_policy.as_deref())
        == Some("Never")
}

impl DefaultPreemption {
    /// Upstream's `PodEligibleToPreemptOthers`.
    fn eligible(&self, pod: &PodInfo, snap: &Snapshot) -> Result<(), &'static str> {
        if preemption_policy_never(pod) {
            return Err("not eligible due to preemptionPolicy=Never.");
        }
        let nominated = pod
            .pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            .unwrap_or("");
        if let Some(ni) = snap.get(nominated) {
            let terminating = ni
                .pods
                .iter()
                .any(|p| p.pod.metadata.deletion_timestamp.is_some() && p.priority < pod.priority);
            if terminating {
                return Err("not eligible due to a terminating pod on the nominated node.");
            }
        }
        Ok(())
    }

    /// How many candidates to look for (upstream's `calculateNumCandidates`).
    fn num_candidates(&self, nodes: usize) -> usize {
        let n = nodes as i64 * i64::from(self.args.min_candidate_nodes_percentage) / 100;
        let n = n.max(i64::from(self.args.min_candidate_nodes_absolute));
        (n.max(0) as usize).min(nodes)
    }

    /// Upstream's `SelectVictimsOnNode`: `None` when even removing every
    /// lower-priority pod does not make the pod fit.
    pub fn select_victims(
        fwk: &Framework,
        state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
    ) -> Option<Vec<Arc<PodInfo>>> {
        let mut ni = node.clone();
        let mut potential: Vec<Arc<PodInfo>> = node
            .pods
            .iter()
            .filter(|p| p.priority < pod.priority)
            .cloned()
            .collect();
        if potential.is_empty() {
            return None;
        }
        for v in &potential {
            ni.remove_pod(&v.key);
        }
        if !fwk.run_filter(state, pod, &ni).is_success() {
            return None;
        }
        potential.sort_by(|a, b| more_important(a, b));
        let mut victims = Vec::new();
        for v in potential {
            ni.add_pod(v.clone());
            if !fwk.run_filter(state, pod, &ni).is_success() {
                ni.remove_pod(&v.key);
                victims.push(v);
            }
        }
        Some(victims)
    }

    fn delete_victims(&self, pod: &PodInfo, c: &Candidate) {
        let Some(client) = self.client.clone() else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        for v in &c.victims {
            let (client, v) = (client.clone(), v.clone());
            let (preemptor, node) = (pod.key.clone(), c.node.clone());
            tokio::spawn(async move {
                let api: Api<Pod> = Api::namespaced(client, &v.namespace);
                match api.delete(&v.name, &DeleteParams::default()).await {
                    Ok(_) => {
                        tracing::info!(victim = %v.key, preemptor = %preemptor, node = %node, "preempted")
                    }
                    Err(e) => {
                        tracing::info!(victim = %v.key, error = %e, "deleting a preemption victim")
                    }
                }
            });
        }
    }
}

/// Upstream's `pickOneNodeForPreemption` without PDBs: the lowest
/// highest-priority victim, then the lowest priority sum, then the fewest
/// victims, then the first.
pub fn pick_one(candidates: &[Candidate]) -> Option<&Candidate> {
    let key = |c: &Candidate| {
        let highest = c
            .victims
            .iter()
            .map(|v| v.priority)
            .max()
            .unwrap_or(i32::MIN);
        let sum: i64 = c
            .victims
            .iter()
            .map(|v| i64::from(v.priority) + i64::from(i32::MAX) + 1)
            .sum();
        (highest, sum, c.victims.len())
    };
    candidates.iter().min_by_key(|c| key(c))
}

impl PostFilterPlugin for DefaultPreemption {
    fn post_filter(
        &self,
        fwk: &Framework,
        state: &CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
        statuses: &NodeToStatus,
    ) -> (Option<PostFilterResult>, Status) {
        if let Err(why) = self.eligible(pod, snap) {
            return (None, Status::unschedulable(format!("preemption: {why}")));
        }
        let mut result: NodeToStatus = HashMap::new();
        let mut potential = Vec::new();
        for ni in snap.nodes() {
            match statuses.get(&ni.name) {
                Some(s) if s.code == Code::UnschedulableAndUnresolvable => {
                    result.insert(ni.name.clone(), Status::unresolvable(NOT_HELPFUL));
                }
                _ => potential.push(ni.clone()),
            }
        }
        let clear = Some(PostFilterResult {
            nominated_node_name: Some(String::new()),
        });
        let fit_error = |result: NodeToStatus| {
            FitError {
                num_all_nodes: snap.len(),
                diagnosis: Diagnosis {
                    node_to_status: result,
                    ..Default::default()
                },
            }
            .to_string()
        };
        if potential.is_empty() {
            return (
                clear,
                Status::unschedulable(format!("preemption: {}", fit_error(result))),
            );
        }
        let want = self.num_candidates(potential.len()).max(1);
        let offset = rand::random_range(0..potential.len());
        let mut candidates = Vec::new();
        for i in 0..potential.len() {
            let ni = &potential[(offset + i) % potential.len()];
            match Self::select_victims(fwk, state, pod, ni) {
                Some(victims) => {
                    candidates.push(Candidate {
                        node: ni.name.clone(),
                        victims,
                    });
                    if candidates.len() >= want {
                        break;
                    }
                }
                None => {
                    result.insert(ni.name.clone(), Status::unschedulable(NO_VICTIMS));
                }
            }
        }
        let Some(best) = pick_one(&candidates) else {
            return (
                clear,
                Status::unschedulable(format!("preemption: {}", fit_error(result))),
            );
        };
        self.delete_victims(pod, best);
        (
            Some(PostFilterResult {
                nominated_node_name: Some(best.node.clone()),
            }),
            Status::success(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{default_profiles, node, pod_meta};
    use serde_json::json;

    fn prio_pod(name: &str, prio: i32, cpu: &str) -> Arc<PodInfo> {
        Arc::new(pod_meta(
            json!({"name": name, "namespace": "ns"}),
            json!({"priority": prio, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}),
        ))
    }

    fn fwk() -> Arc<Framework> {
        default_profiles().values().next().cloned().unwrap()
    }

    #[test]
    fn victims_are_the_fewest_least_important_pods() {
        let mut n = node(
            "n",
            json!({"status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "10"}}}),
        );
        for (name, prio) in [("p1", 1), ("p2", 2), ("p3", 3), ("high", 100)] {
            n.add_pod(prio_pod(name, prio, "1"));
        }
        let preemptor = prio_pod("incoming", 10, "2");
        let snap = Snapshot::from_nodes([n.clone()]);
        let mut state = CycleState::default();
        fwk().run_pre_filter(&mut state, &preemptor, &snap);
        let victims = DefaultPreemption::select_victims(&fwk(), &state, &preemptor, &n).unwrap();
        let names: Vec<&str> = victims.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            names,
            vec!["p2", "p1"],
            "p3 is reprieved first as the most important"
        );
        let too_big = prio_pod("huge", 10, "4");
        assert!(DefaultPreemption::select_victims(&fwk(), &state, &too_big, &n).is_none());
    }

    #[test]
    fn picks_the_node_with_the_least_important_victims() {
        let c = |node: &str, prios: &[i32]| Candidate {
            node: node.into(),
            victims: prios.iter().map(|p| prio_pod("v", *p, "1")).collect(),
        };
        let cands = [c("a", &[5]), c("b", &[1, 1]), c("c", &[1])];
        assert_eq!(pick_one(&cands).unwrap().node, "c");
    }

    #[test]
    fn post_filter_messages() {
        let p = new(None, &Handle::default()).unwrap();
        let pf = p.as_post_filter().unwrap();
        let mut n1 = node(
            "n1",
            json!({"status": {"allocatable": {"cpu": "1", "memory": "8Gi", "pods": "10"}}}),
        );
        n1.add_pod(prio_pod("same", 10, "1"));
        let n2 = node("n2", json!({}));
        let snap = Snapshot::from_nodes([n1, n2]);
        let statuses: NodeToStatus = [
            ("n1".to_string(), Status::unschedulable("Insufficient cpu")),
            (
                "n2".to_string(),
                Status::unresolvable("node(s) had untolerated taint {a: b}"),
            ),
        ]
        .into_iter()
        .collect();
        let incoming = prio_pod("in", 10, "1");
        let mut state = CycleState::default();
        fwk().run_pre_filter(&mut state, &incoming, &snap);
        let (r, s) = pf.post_filter(&fwk(), &state, &incoming, &snap, &statuses);
        assert_eq!(
            s.message(),
            "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."
        );
        assert_eq!(r.unwrap().nominated_node_name.as_deref(), Some(""));
        let never = Arc::new(pod_meta(
            json!({"name": "x"}),
            json!({"preemptionPolicy": "Never"}),
        ));
        let (_, s) = pf.post_filter(&fwk(), &CycleState::default(), &never, &snap, &statuses);
        assert_eq!(
            s.message(),
            "preemption: not eligible due to preemptionPolicy=Never."
        );
    }
}
