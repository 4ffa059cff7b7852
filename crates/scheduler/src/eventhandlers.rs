//! From watch events to the cache and the queue (upstream's
//! `pkg/scheduler/eventhandlers.go`). kube-rs watchers follow pods and
//! nodes; assigned pods go to the cache, unassigned pods this scheduler is
//! responsible for go to the queue, and changes that may make waiting pods
//! schedulable move them (node added or changed, assigned pod deleted).
//! A re-list (`Init` … `InitDone`) drops what disappeared meanwhile.

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::watcher::{self, Event};
use kube::Api;

use crate::framework::{ActionType, ClusterEvent, EventResource, PodInfo};
use crate::scheduler::Scheduler;

const NODE_ADD: ClusterEvent = ClusterEvent::new(EventResource::Node, ActionType::Add, "NodeAdd");
const NODE_UPDATE: ClusterEvent =
    ClusterEvent::new(EventResource::Node, ActionType::Update, "NodeUpdate");
const ASSIGNED_POD_ADD: ClusterEvent = ClusterEvent::new(
    EventResource::AssignedPod,
    ActionType::Add,
    "AssignedPodAdd",
);
const ASSIGNED_POD_UPDATE: ClusterEvent = ClusterEvent::new(
    EventResource::AssignedPod,
    ActionType::Update,
    "AssignedPodUpdate",
);
const ASSIGNED_POD_DELETE: ClusterEvent = ClusterEvent::new(
    EventResource::AssignedPod,
    ActionType::Delete,
    "AssignedPodDelete",
);

impl Scheduler {
    /// A pod as the API server has it now.
    pub fn on_pod(&self, pod: Pod) {
        let pi = Arc::new(PodInfo::new(Arc::new(pod)));
        if !pi.node_name.is_empty() {
            self.queue.delete(&pi.key);
            if pi.is_terminal() {
                return self.on_pod_delete(&pi.key);
            }
            let known = {
                let mut cache = self.cache_mut();
                let known = cache.contains_pod(&pi.key) && !cache.is_assumed(&pi.key);
                cache.add_pod(pi);
                known
            };
            self.queue.move_all_to_active_or_backoff(if known {
                ASSIGNED_POD_UPDATE
            } else {
                ASSIGNED_POD_ADD
            });
            return;
        }
        if !self.responsible_for(&pi.scheduler_name) {
            return;
        }
        if pi.is_terminal() || pi.pod.metadata.deletion_timestamp.is_some() {
            self.queue.delete(&pi.key);
            return;
        }
        if self.with_cache(|c| c.is_assumed(&pi.key)) {
            // Our own binding is on its way; this is an older copy.
            return;
        }
        self.queue.update(pi);
    }

    pub fn on_pod_delete(&self, key: &str) {
        self.queue.delete(key);
        let was_cached = {
            let mut cache = self.cache_mut();
            let c = cache.contains_pod(key);
            cache.remove_pod(key);
            c
        };
        if was_cached {
            self.queue
                .move_all_to_active_or_backoff(ASSIGNED_POD_DELETE);
        }
    }

    pub fn on_node(&self, node: Node) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let node = Arc::new(node);
        let event = {
            let mut cache = self.cache_mut();
            let old = cache.node(&name);
            cache.add_or_update_node(node.clone());
            match old {
                None => Some(NODE_ADD),
                Some(old) if scheduling_properties_changed(&old, &node) => Some(NODE_UPDATE),
                Some(_) => None,
            }
        };
        if let Some(e) = event {
            self.queue.move_all_to_active_or_backoff(e);
        }
    }

    pub fn on_node_delete(&self, name: &str) {
        self.cache_mut().remove_node(name);
    }

    /// Follows pods until the stream ends (it does not, short of a panic).
    pub async fn watch_pods(self: Arc<Self>, api: Api<Pod>) {
        let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
        let mut seen: Option<HashSet<String>> = None;
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(Event::Apply(p)) => self.on_pod(p),
                Ok(Event::Delete(p)) => self.on_pod_delete(&pod_key(&p)),
                Ok(Event::Init) => seen = Some(HashSet::new()),
                Ok(Event::InitApply(p)) => {
                    if let Some(s) = seen.as_mut() {
                        s.insert(pod_key(&p));
                    }
                    self.on_pod(p);
                }
                Ok(Event::InitDone) => {
                    if let Some(s) = seen.take() {
                        let gone: Vec<String> = self
                            .with_cache(|c| c.pod_keys())
                            .into_iter()
                            .chain(self.queue.keys())
                            .filter(|k| !s.contains(k))
                            .collect();
                        for k in gone {
                            self.on_pod_delete(&k);
                        }
                    }
                    self.mark_synced(true);
                }
                Err(e) => tracing::warn!(error = %e, "watching pods"),
            }
        }
    }

    pub async fn watch_nodes(self: Arc<Self>, api: Api<Node>) {
        let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
        let mut seen: Option<HashSet<String>> = None;
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(Event::Apply(n)) => self.on_node(n),
                Ok(Event::Delete(n)) => {
                    self.on_node_delete(n.metadata.name.as_deref().unwrap_or(""))
                }
                Ok(Event::Init) => seen = Some(HashSet::new()),
                Ok(Event::InitApply(n)) => {
                    if let Some(s) = seen.as_mut() {
                        s.insert(n.metadata.name.clone().unwrap_or_default());
                    }
                    self.on_node(n);
                }
                Ok(Event::InitDone) => {
                    if let Some(s) = seen.take() {
                        let gone: Vec<String> = self
                            .with_cache(|c| c.node_names())
                            .into_iter()
                            .filter(|n| !s.contains(n))
                            .collect();
                        for n in gone {
                            self.on_node_delete(&n);
                        }
                    }
                    self.mark_synced(false);
                }
                Err(e) => tracing::warn!(error = %e, "watching nodes"),
            }
        }
    }
}

fn pod_key(p: &Pod) -> String {
    format!(
        "{}/{}",
        p.metadata.namespace.as_deref().unwrap_or("default"),
        p.metadata.name.as_deref().unwrap_or("")
    )
}

/// Upstream's `nodeSchedulingPropertiesChange`: what a kubelet heartbeat
/// does not touch but scheduling reads.
fn scheduling_properties_changed(old: &Node, new: &Node) -> bool {
    let alloc = |n: &Node| n.status.as_ref().and_then(|s| s.allocatable.clone());
    let ready = |n: &Node| {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .map(|cs| {
                cs.iter()
                    .map(|c| (c.type_.clone(), c.status.clone()))
                    .collect::<Vec<_>>()
            })
    };
    old.spec != new.spec
        || old.metadata.labels != new.metadata.labels
        || old.metadata.annotations != new.metadata.annotations
        || alloc(old) != alloc(new)
        || ready(old) != ready(new)
}
