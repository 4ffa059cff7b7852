//! One profile's plugins, built from the configuration and run in order
//! (upstream's `pkg/scheduler/framework/runtime/framework.go` and
//! `registry.go`). MultiPoint plugins are expanded to every extension
//! point they implement; plugins named at one extension point come first
//! and override the MultiPoint weight.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;

use super::{
    default_normalize_score, CycleState, NodeInfo, NodeScore, NodeToStatus, Plugin, PodInfo,
    PostFilterResult, PreFilterResult, QueuedPodInfo, Status, MAX_NODE_SCORE,
};
use crate::cache::Snapshot;
use crate::config::{PluginSet, Profile};

/// What a plugin factory may use: the API client (binder, volume
/// binding) and the listers of the objects the scheduler watches.
#[derive(Clone, Default)]
pub struct Handle {
    pub client: Option<kube::Client>,
    pub listers: Option<crate::listers::Listers>,
}

/// Builds a plugin from its `pluginConfig` args (`None`: defaults).
pub type Factory = fn(Option<&Value>, &Handle) -> Result<Arc<dyn Plugin>, String>;

/// Plugin names to factories (upstream's `Registry`).
#[derive(Clone, Default)]
pub struct Registry {
    factories: HashMap<&'static str, Factory>,
}

impl Registry {
    /// Adds a factory; a name registered twice is a start-up error.
    pub fn register(&mut self, name: &'static str, f: Factory) -> Result<(), String> {
        if self.factories.insert(name, f).is_some() {
            return Err(format!("a plugin named {name} already exists"));
        }
        Ok(())
    }

    /// Replaces a factory (tests and benchmarks swap the binder).
    pub fn replace(&mut self, name: &'static str, f: Factory) {
        self.factories.insert(name, f);
    }

    pub fn get(&self, name: &str) -> Option<Factory> {
        self.factories.get(name).copied()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.factories.contains_key(name)
    }
}

/// The extension points, named as in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExtensionPoint {
    QueueSort,
    PreEnqueue,
    PreFilter,
    Filter,
    PostFilter,
    PreScore,
    Score,
    Reserve,
    Permit,
    PreBind,
    Bind,
    PostBind,
}

impl ExtensionPoint {
    pub const ALL: [ExtensionPoint; 12] = [
        Self::QueueSort,
        Self::PreEnqueue,
        Self::PreFilter,
        Self::Filter,
        Self::PostFilter,
        Self::PreScore,
        Self::Score,
        Self::Reserve,
        Self::Permit,
        Self::PreBind,
        Self::Bind,
        Self::PostBind,
    ];

    /// The field name in `plugins`.
    pub fn field(self) -> &'static str {
        match self {
            Self::QueueSort => "queueSort",
            Self::PreEnqueue => "preEnqueue",
            Self::PreFilter => "preFilter",
            Self::Filter => "filter",
            Self::PostFilter => "postFilter",
            Self::PreScore => "preScore",
            Self::Score => "score",
            Self::Reserve => "reserve",
            Self::Permit => "permit",
            Self::PreBind => "preBind",
            Self::Bind => "bind",
            Self::PostBind => "postBind",
        }
    }

    fn implemented_by(self, p: &dyn Plugin) -> bool {
        match self {
            Self::QueueSort => p.as_queue_sort().is_some(),
            Self::PreEnqueue => p.as_pre_enqueue().is_some(),
            Self::PreFilter => p.as_pre_filter().is_some(),
            Self::Filter => p.as_filter().is_some(),
            Self::PostFilter => p.as_post_filter().is_some(),
            Self::PreScore => p.as_pre_score().is_some(),
            Self::Score => p.as_score().is_some(),
            Self::Reserve => p.as_reserve().is_some(),
            Self::Permit => p.as_permit().is_some(),
            Self::PreBind => p.as_pre_bind().is_some(),
            Self::Bind => p.as_bind().is_some(),
            Self::PostBind => p.as_post_bind().is_some(),
        }
    }
}

type Plugins = Vec<Arc<dyn Plugin>>;

/// A profile's runnable plugins.
pub struct Framework {
    pub scheduler_name: String,
    pub percentage_of_nodes_to_score: Option<i32>,
    points: HashMap<ExtensionPoint, Plugins>,
    score_weights: HashMap<&'static str, i64>,
    all: Plugins,
}

impl Framework {
    /// Instantiates the profile's plugins. Errors name the field at fault
    /// relative to the profile (`plugins.score.enabled[0]`, …).
    pub fn new(profile: &Profile, registry: &Registry, handle: &Handle) -> Result<Self, String> {
        let args: HashMap<&str, &Value> = profile
            .plugin_config
            .iter()
            .map(|c| (c.name.as_str(), &c.args))
            .collect();
        let mut instances: HashMap<String, Arc<dyn Plugin>> = HashMap::new();
        let mut order: Vec<String> = Vec::new();
        let sets: Vec<(&str, &PluginSet)> =
            std::iter::once(("multiPoint", &profile.plugins.multi_point))
                .chain(
                    ExtensionPoint::ALL
                        .iter()
                        .map(|ep| (ep.field(), profile.plugins.get(*ep))),
                )
                .collect();
        for (field, set) in &sets {
            for (i, p) in set.enabled.iter().enumerate() {
                if instances.contains_key(&p.name) {
                    continue;
                }
                let factory = registry.get(&p.name).ok_or_else(|| {
                    format!(
                        "plugins.{field}.enabled[{i}]: plugin {:?} does not exist",
                        p.name
                    )
                })?;
                let plugin = factory(args.get(p.name.as_str()).copied(), handle)
                    .map_err(|e| format!("pluginConfig[{}].args: {e}", p.name))?;
                instances.insert(p.name.clone(), plugin);
                order.push(p.name.clone());
            }
        }
        let mut points: HashMap<ExtensionPoint, Plugins> = HashMap::new();
        let mut score_weights = HashMap::new();
        let multi = &profile.plugins.multi_point;
        for ep in ExtensionPoint::ALL {
            let set = profile.plugins.get(ep);
            let mut list: Plugins = Vec::new();
            let mut seen = BTreeSet::new();
            for (i, p) in set.enabled.iter().enumerate() {
                let Some(plugin) = instances.get(&p.name) else {
                    continue;
                };
                if !ep.implemented_by(plugin.as_ref()) {
                    return Err(format!(
                        "plugins.{}.enabled[{i}]: plugin {:?} does not extend {} plugin",
                        ep.field(),
                        p.name,
                        ep.field()
                    ));
                }
                if !seen.insert(p.name.clone()) {
                    return Err(format!(
                        "plugins.{}.enabled[{i}]: plugin {:?} already registered as {:?}",
                        ep.field(),
                        p.name,
                        ep.field()
                    ));
                }
                if ep == ExtensionPoint::Score {
                    score_weights.insert(plugin.name(), i64::from(p.weight.unwrap_or(1)));
                }
                list.push(plugin.clone());
            }
            let all_disabled = set.disabled.iter().any(|d| d.name == "*");
            for p in &multi.enabled {
                let Some(plugin) = instances.get(&p.name) else {
                    continue;
                };
                if all_disabled
                    || set.disabled.iter().any(|d| d.name == p.name)
                    || seen.contains(&p.name)
                    || !ep.implemented_by(plugin.as_ref())
                {
                    continue;
                }
                seen.insert(p.name.clone());
                if ep == ExtensionPoint::Score {
                    score_weights.insert(plugin.name(), i64::from(p.weight.unwrap_or(1)));
                }
                list.push(plugin.clone());
            }
            points.insert(ep, list);
        }
        for (ep, min) in [(ExtensionPoint::QueueSort, 1), (ExtensionPoint::Bind, 1)] {
            let n = points.get(&ep).map_or(0, Vec::len);
            if n < min {
                return Err(format!(
                    "plugins.{}: at least one {} plugin is needed",
                    ep.field(),
                    ep.field()
                ));
            }
        }
        if points.get(&ExtensionPoint::QueueSort).map_or(0, Vec::len) > 1 {
            return Err("plugins.queueSort: only one queue sort plugin can be enabled".into());
        }
        let all = order
            .iter()
            .filter_map(|n| instances.get(n).cloned())
            .collect();
        Ok(Framework {
            scheduler_name: profile.scheduler_name.clone(),
            percentage_of_nodes_to_score: profile.percentage_of_nodes_to_score,
            points,
            score_weights,
            all,
        })
    }

    fn list(&self, ep: ExtensionPoint) -> &[Arc<dyn Plugin>] {
        self.points.get(&ep).map_or(&[], Vec::as_slice)
    }

    /// Names of the plugins at one extension point, in run order.
    pub fn plugin_names(&self, ep: ExtensionPoint) -> Vec<&'static str> {
        self.list(ep).iter().map(|p| p.name()).collect()
    }

    pub fn score_weight(&self, plugin: &str) -> Option<i64> {
        self.score_weights.get(plugin).copied()
    }

    /// Every instantiated plugin (for event registration).
    pub fn plugins(&self) -> &[Arc<dyn Plugin>] {
        &self.all
    }

    pub fn has_filter_plugins(&self) -> bool {
        !self.list(ExtensionPoint::Filter).is_empty()
    }

    pub fn queue_sort_less(&self, a: &QueuedPodInfo, b: &QueuedPodInfo) -> bool {
        match self
            .list(ExtensionPoint::QueueSort)
            .first()
            .and_then(|p| p.as_queue_sort())
        {
            Some(q) => q.less(a, b),
            None => a.timestamp < b.timestamp,
        }
    }

    pub fn run_pre_enqueue(&self, pod: &PodInfo) -> Status {
        for p in self.list(ExtensionPoint::PreEnqueue) {
            if let Some(pe) = p.as_pre_enqueue() {
                let s = pe.pre_enqueue(pod);
                if !s.is_success() {
                    return s.with_plugin(p.name());
                }
            }
        }
        Status::success()
    }

    /// All PreFilter plugins; the node sets they return are intersected.
    pub fn run_pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
    ) -> (PreFilterResult, Status, Vec<&'static str>) {
        let mut result = PreFilterResult::default();
        let mut narrowing = Vec::new();
        for p in self.list(ExtensionPoint::PreFilter) {
            let Some(pf) = p.as_pre_filter() else {
                continue;
            };
            let (r, s) = pf.pre_filter(state, pod, snap);
            if s.is_skip() {
                state.skip_filter.insert(p.name());
                continue;
            }
            if !s.is_success() {
                return (result, s.with_plugin(p.name()), narrowing);
            }
            if let Some(names) = r.and_then(|r| r.node_names) {
                narrowing.push(p.name());
                result.node_names = Some(match result.node_names.take() {
                    None => names,
                    Some(prev) => prev.intersection(&names).cloned().collect(),
                });
                if result.node_names.as_ref().is_some_and(BTreeSet::is_empty) {
                    let msg = format!("node(s) didn't satisfy plugin(s) [{}]", narrowing.join(" "));
                    return (
                        result,
                        Status::unresolvable(msg).with_plugin(p.name()),
                        narrowing,
                    );
                }
            }
        }
        (result, Status::success(), narrowing)
    }

    /// The Filter plugins this attempt runs (those whose PreFilter did not
    /// skip), computed once per attempt rather than once per node.
    pub fn active_filters(
        &self,
        state: &CycleState,
    ) -> Vec<(&'static str, &dyn super::FilterPlugin)> {
        self.list(ExtensionPoint::Filter)
            .iter()
            .filter(|p| !state.skip_filter.contains(p.name()))
            .filter_map(|p| p.as_filter().map(|f| (p.name(), f)))
            .collect()
    }

    /// The first rejection among `active` filters, or success.
    pub fn run_filters(
        active: &[(&'static str, &dyn super::FilterPlugin)],
        state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
    ) -> Status {
        for (name, f) in active {
            let s = f.filter(state, pod, node);
            if !s.is_success() {
                return s.with_plugin(name);
            }
        }
        Status::success()
    }

    /// The first rejection among the Filter plugins, or success.
    pub fn run_filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        Self::run_filters(&self.active_filters(state), state, pod, node)
    }

    pub fn run_post_filter(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
        statuses: &NodeToStatus,
    ) -> (Option<PostFilterResult>, Status) {
        let mut last = Status::unschedulable("");
        for p in self.list(ExtensionPoint::PostFilter) {
            let Some(pf) = p.as_post_filter() else {
                continue;
            };
            let (r, s) = pf.post_filter(self, state, pod, snap, statuses);
            if s.is_success() || s.code == super::Code::Error {
                return (r, s.with_plugin(p.name()));
            }
            last = s.with_plugin(p.name());
        }
        (None, last)
    }

    /// PreScore, Score, NormalizeScore and weights: each node's total.
    pub fn run_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
        nodes: &[Arc<NodeInfo>],
    ) -> Result<Vec<NodeScore>, Status> {
        for p in self.list(ExtensionPoint::PreScore) {
            let Some(ps) = p.as_pre_score() else { continue };
            let s = ps.pre_score(state, pod, snap, nodes);
            if s.is_skip() {
                state.skip_score.insert(p.name());
            } else if !s.is_success() {
                return Err(s.with_plugin(p.name()));
            }
        }
        let mut totals: Vec<NodeScore> = nodes
            .iter()
            .map(|n| NodeScore {
                name: n.name.clone(),
                score: 0,
            })
            .collect();
        let mut scores = totals.clone();
        for p in self.list(ExtensionPoint::Score) {
            if state.skip_score.contains(p.name()) {
                continue;
            }
            let Some(sp) = p.as_score() else { continue };
            for (s, n) in scores.iter_mut().zip(nodes) {
                s.score = sp
                    .score(state, pod, n)
                    .map_err(|e| e.with_plugin(p.name()))?;
            }
            if let Some(st) = sp.normalize(state, pod, &mut scores) {
                if !st.is_success() {
                    return Err(st.with_plugin(p.name()));
                }
            }
            let weight = self.score_weight(p.name()).unwrap_or(1);
            for (t, s) in totals.iter_mut().zip(&scores) {
                if !(0..=MAX_NODE_SCORE).contains(&s.score) {
                    return Err(Status::error(format!(
                        "plugin {:?} returns an invalid score {}, it should in the range of [0, {MAX_NODE_SCORE}] after normalizing",
                        p.name(),
                        s.score
                    )));
                }
                t.score += s.score * weight;
            }
        }
        Ok(totals)
    }

    /// Reserve in order; on a failure the caller runs [`Self::run_unreserve`].
    pub fn run_reserve(&self, state: &CycleState, pod: &PodInfo, node: &str) -> Status {
        for p in self.list(ExtensionPoint::Reserve) {
            if let Some(r) = p.as_reserve() {
                let s = r.reserve(state, pod, node);
                if !s.is_success() {
                    return s.with_plugin(p.name());
                }
            }
        }
        Status::success()
    }

    /// Unreserve in reverse order.
    pub fn run_unreserve(&self, state: &CycleState, pod: &PodInfo, node: &str) {
        for p in self.list(ExtensionPoint::Reserve).iter().rev() {
            if let Some(r) = p.as_reserve() {
                r.unreserve(state, pod, node);
            }
        }
    }

    pub fn run_permit(&self, state: &CycleState, pod: &PodInfo, node: &str) -> Status {
        for p in self.list(ExtensionPoint::Permit) {
            if let Some(pm) = p.as_permit() {
                let (s, _timeout) = pm.permit(state, pod, node);
                // Waiting pods are not supported yet: a Wait is a rejection.
                if !s.is_success() {
                    return s.with_plugin(p.name());
                }
            }
        }
        Status::success()
    }

    pub async fn run_pre_bind(&self, state: &CycleState, pod: &PodInfo, node: &str) -> Status {
        for p in self.list(ExtensionPoint::PreBind) {
            if let Some(pb) = p.as_pre_bind() {
                let s = pb.pre_bind(state, pod, node).await;
                if !s.is_success() && !s.is_skip() {
                    return s.with_plugin(p.name());
                }
            }
        }
        Status::success()
    }

    /// The first binder that does not Skip.
    pub async fn run_bind(&self, state: &CycleState, pod: &PodInfo, node: &str) -> Status {
        for p in self.list(ExtensionPoint::Bind) {
            if let Some(b) = p.as_bind() {
                let s = b.bind(state, pod, node).await;
                if !s.is_skip() {
                    return s.with_plugin(p.name());
                }
            }
        }
        Status::skip()
    }

    pub fn run_post_bind(&self, state: &CycleState, pod: &PodInfo, node: &str) {
        for p in self.list(ExtensionPoint::PostBind) {
            if let Some(pb) = p.as_post_bind() {
                pb.post_bind(state, pod, node);
            }
        }
    }
}

/// A `normalize` for plugins that scale by the highest score.
pub fn normalize(reverse: bool, scores: &mut [NodeScore]) -> Option<Status> {
    default_normalize_score(MAX_NODE_SCORE, reverse, scores);
    None
}
