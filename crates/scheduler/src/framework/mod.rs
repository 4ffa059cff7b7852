//! The scheduling framework's interfaces (upstream's
//! `pkg/scheduler/framework/interface.go` and `cycle_state.go`): a
//! [`Status`] whose [`Code`] tells the queue what to do, the cycle state
//! plugins share within one attempt, and one small trait per extension
//! point. A plugin is one value implementing [`Plugin`], which hands out
//! the extension points it implements.

pub mod affinity;
pub mod nodeselector;
pub mod resource;
pub mod runtime;
pub mod types;

use std::any::Any;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

pub use types::{NodeInfo, PodInfo, QueuedPodInfo};

use crate::cache::Snapshot;

/// What a plugin's answer means for the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// The plugin ran and found nothing wrong.
    Success,
    /// An internal error: the pod goes to the backoff queue and is retried.
    Error,
    /// The pod does not fit now; preemption may help.
    Unschedulable,
    /// The pod does not fit and preemption on this node cannot help.
    UnschedulableAndUnresolvable,
    /// Permit: the pod waits (not used by in-tree plugins).
    Wait,
    /// The plugin has nothing to do for this pod (PreFilter/PreScore/Bind).
    Skip,
    /// The pod waits for something outside the scheduler (PreEnqueue).
    Pending,
}

/// A plugin's answer: a code, human-readable reasons, and the plugin that
/// gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub reasons: Vec<String>,
    pub plugin: &'static str,
}

impl Status {
    pub fn success() -> Self {
        Status::new(Code::Success, "")
    }

    pub fn new(code: Code, reason: impl Into<String>) -> Self {
        let r = reason.into();
        Status {
            code,
            reasons: if r.is_empty() { vec![] } else { vec![r] },
            plugin: "",
        }
    }

    pub fn unschedulable(reason: impl Into<String>) -> Self {
        Status::new(Code::Unschedulable, reason)
    }

    pub fn unresolvable(reason: impl Into<String>) -> Self {
        Status::new(Code::UnschedulableAndUnresolvable, reason)
    }

    pub fn error(reason: impl Into<String>) -> Self {
        Status::new(Code::Error, reason)
    }

    pub fn skip() -> Self {
        Status::new(Code::Skip, "")
    }

    pub fn with_plugin(mut self, plugin: &'static str) -> Self {
        if self.plugin.is_empty() {
            self.plugin = plugin;
        }
        self
    }

    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }

    pub fn is_skip(&self) -> bool {
        self.code == Code::Skip
    }

    pub fn is_rejected(&self) -> bool {
        matches!(
            self.code,
            Code::Unschedulable | Code::UnschedulableAndUnresolvable | Code::Pending
        )
    }

    pub fn message(&self) -> String {
        self.reasons.join(", ")
    }
}

/// Data plugins keep for one scheduling attempt (PreFilter → Filter,
/// PreScore → Score), keyed by the plugin's own name.
#[derive(Default)]
pub struct CycleState {
    /// A handful of entries read once per node: a linear scan comparing
    /// the static names' addresses first beats hashing the names.
    data: Vec<(&'static str, Box<dyn Any + Send + Sync>)>,
    /// Plugins whose PreFilter said Skip: their Filter is not run.
    pub skip_filter: BTreeSet<&'static str>,
    /// Plugins whose PreScore said Skip: their Score is not run.
    pub skip_score: BTreeSet<&'static str>,
}

impl CycleState {
    pub fn write<T: Any + Send + Sync>(&mut self, key: &'static str, value: T) {
        match self.data.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = Box::new(value),
            None => self.data.push((key, Box::new(value))),
        }
    }

    pub fn read<T: Any>(&self, key: &'static str) -> Option<&T> {
        self.data
            .iter()
            .find(|(k, _)| std::ptr::eq(*k, key) || *k == key)
            .and_then(|(_, b)| b.downcast_ref())
    }
}

/// PreFilter may narrow the nodes worth filtering (NodeName, NodeAffinity).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreFilterResult {
    /// `None`: all nodes.
    pub node_names: Option<BTreeSet<String>>,
}

/// A node's score from one plugin or in total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeScore {
    pub name: String,
    pub score: i64,
}

/// Upstream's `MaxNodeScore`.
pub const MAX_NODE_SCORE: i64 = 100;

/// The per-node outcome of filtering.
pub type NodeToStatus = HashMap<String, Status>;

/// What PostFilter achieved (preemption nominates a node).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostFilterResult {
    pub nominated_node_name: Option<String>,
}

/// Kinds of objects whose changes can make pods schedulable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventResource {
    Pod,
    AssignedPod,
    UnscheduledPod,
    Node,
    PersistentVolume,
    PersistentVolumeClaim,
    StorageClass,
    CSINode,
    Namespace,
}

/// What changed (upstream's `ActionType` bits, a subset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionType {
    Add,
    Update,
    Delete,
}

/// A cluster event that may move unschedulable pods (upstream's `ClusterEvent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClusterEvent {
    pub resource: EventResource,
    pub action: ActionType,
    pub label: &'static str,
}

impl ClusterEvent {
    pub const fn new(resource: EventResource, action: ActionType, label: &'static str) -> Self {
        ClusterEvent {
            resource,
            action,
            label,
        }
    }
}

/// The events a plugin listens to: one resource and the actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventInterest {
    pub resource: EventResource,
    pub actions: &'static [ActionType],
}

impl EventInterest {
    pub fn matches(&self, e: &ClusterEvent) -> bool {
        let resource = self.resource == e.resource
            || (self.resource == EventResource::Pod
                && matches!(
                    e.resource,
                    EventResource::AssignedPod | EventResource::UnscheduledPod
                ));
        resource && self.actions.contains(&e.action)
    }
}

pub const ALL_ACTIONS: &[ActionType] = &[ActionType::Add, ActionType::Update, ActionType::Delete];

/// Every plugin: a name and the extension points it implements.
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;
    /// Cluster events that may make a pod this plugin rejected schedulable
    /// (upstream's `EnqueueExtensions.EventsToRegister`).
    fn events_to_register(&self) -> Vec<EventInterest> {
        Vec::new()
    }
    fn as_queue_sort(&self) -> Option<&dyn QueueSortPlugin> {
        None
    }
    fn as_pre_enqueue(&self) -> Option<&dyn PreEnqueuePlugin> {
        None
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        None
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        None
    }
    fn as_post_filter(&self) -> Option<&dyn PostFilterPlugin> {
        None
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        None
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        None
    }
    fn as_reserve(&self) -> Option<&dyn ReservePlugin> {
        None
    }
    fn as_permit(&self) -> Option<&dyn PermitPlugin> {
        None
    }
    fn as_pre_bind(&self) -> Option<&dyn PreBindPlugin> {
        None
    }
    fn as_bind(&self) -> Option<&dyn BindPlugin> {
        None
    }
    fn as_post_bind(&self) -> Option<&dyn PostBindPlugin> {
        None
    }
}

/// Orders the active queue; one per scheduler (all profiles share it).
pub trait QueueSortPlugin: Send + Sync {
    /// Whether `a` is scheduled before `b`.
    fn less(&self, a: &QueuedPodInfo, b: &QueuedPodInfo) -> bool;
}

/// Decides whether a pod may enter the active queue at all.
pub trait PreEnqueuePlugin: Send + Sync {
    fn pre_enqueue(&self, pod: &PodInfo) -> Status;
}

pub trait PreFilterPlugin: Send + Sync {
    /// Runs once per attempt; Unschedulable rejects the pod on every node,
    /// Skip disables this plugin's Filter for the attempt.
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status);
}

pub trait FilterPlugin: Send + Sync {
    /// Whether the pod fits on this node.
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status;
}

pub trait PostFilterPlugin: Send + Sync {
    /// Runs when no node fits (preemption).
    fn post_filter(
        &self,
        fwk: &runtime::Framework,
        state: &CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        statuses: &NodeToStatus,
    ) -> (Option<PostFilterResult>, Status);
}

pub trait PreScorePlugin: Send + Sync {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        nodes: &[Arc<NodeInfo>],
    ) -> Status;
}

pub trait ScorePlugin: Send + Sync {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status>;
    /// Brings the raw scores to 0..=100; `None` when they already are.
    fn normalize(
        &self,
        _state: &CycleState,
        _pod: &PodInfo,
        _scores: &mut [NodeScore],
    ) -> Option<Status> {
        None
    }
}

pub trait ReservePlugin: Send + Sync {
    fn reserve(&self, state: &CycleState, pod: &PodInfo, node: &str) -> Status;
    fn unreserve(&self, state: &CycleState, pod: &PodInfo, node: &str);
}

pub trait PermitPlugin: Send + Sync {
    /// Success lets the pod bind; a rejection sends it back to the queue.
    fn permit(&self, state: &CycleState, pod: &PodInfo, node: &str) -> (Status, Duration);
}

#[async_trait::async_trait]
pub trait PreBindPlugin: Send + Sync {
    async fn pre_bind(&self, state: &CycleState, pod: &PodInfo, node: &str) -> Status;
}

#[async_trait::async_trait]
pub trait BindPlugin: Send + Sync {
    /// Skip hands the pod to the next binder.
    async fn bind(&self, state: &CycleState, pod: &PodInfo, node: &str) -> Status;
}

pub trait PostBindPlugin: Send + Sync {
    fn post_bind(&self, state: &CycleState, pod: &PodInfo, node: &str);
}

/// Upstream's `DefaultNormalizeScore`: scales to 0..=`max`, reversed when
/// a lower raw score is better.
pub fn default_normalize_score(max: i64, reverse: bool, scores: &mut [NodeScore]) {
    let highest = scores.iter().map(|s| s.score).max().unwrap_or(0);
    if highest == 0 {
        if reverse {
            for s in scores {
                s.score = max;
            }
        }
        return;
    }
    for s in scores {
        let v = max * s.score / highest;
        s.score = if reverse { max - v } else { v };
    }
}
