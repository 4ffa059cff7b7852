//! The scheduler cache and its per-cycle snapshot (upstream's
//! `pkg/scheduler/backend/cache/cache.go` and `snapshot.go`). The cache
//! holds every node and every assigned or assumed pod; a pod is *assumed*
//! on its node as soon as a scheduling cycle picks the node, before the
//! binding reaches the API server, and forgotten if binding fails.
//!
//! Nodes are `Arc<NodeInfo>` copied on write: the snapshot shares them,
//! and [`Cache::update_snapshot`] replaces only the nodes changed since
//! the last cycle, so a cycle costs nothing per unchanged node.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;

use crate::framework::{NodeInfo, PodInfo};

#[derive(Debug, Clone)]
struct PodState {
    pod: Arc<PodInfo>,
    node: String,
    assumed: bool,
}

/// Why the cache refused a change.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CacheError {
    /// The pod is already in the cache (assume twice).
    #[error("pod {0} is in the cache, so can't be assumed")]
    AlreadyPresent(String),
    /// The pod to forget or finish binding is not assumed.
    #[error("pod {0} wasn't assumed so cannot be forgotten")]
    NotAssumed(String),
}

/// Nodes and the pods on them.
#[derive(Default)]
pub struct Cache {
    nodes: HashMap<String, Arc<NodeInfo>>,
    pods: HashMap<String, PodState>,
    /// Nodes changed (or removed) since the last snapshot.
    dirty: HashSet<String>,
    generation: u64,
}

impl Cache {
    fn node_mut(&mut self, name: &str) -> &mut NodeInfo {
        self.generation += 1;
        let generation = self.generation;
        self.dirty.insert(name.to_string());
        let arc = self
            .nodes
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(NodeInfo::new(name)));
        let ni = Arc::make_mut(arc);
        ni.generation = generation;
        ni
    }

    fn add_to_node(&mut self, pod: Arc<PodInfo>, node: &str) {
        self.node_mut(node).add_pod(pod);
    }

    fn remove_from_node(&mut self, key: &str, node: &str) {
        if !self.nodes.contains_key(node) {
            return;
        }
        let ni = self.node_mut(node);
        ni.remove_pod(key);
        // A node the cache only knew from its pods goes with the last one.
        if ni.node.is_none() && ni.pods.is_empty() {
            self.nodes.remove(node);
        }
    }

    /// Puts a pod on `node` before its binding is confirmed.
    pub fn assume_pod(&mut self, pod: Arc<PodInfo>, node: &str) -> Result<(), CacheError> {
        if self.pods.contains_key(&pod.key) {
            return Err(CacheError::AlreadyPresent(pod.key.clone()));
        }
        self.add_to_node(pod.clone(), node);
        self.pods.insert(
            pod.key.clone(),
            PodState {
                pod,
                node: node.to_string(),
                assumed: true,
            },
        );
        Ok(())
    }

    /// Undoes [`Self::assume_pod`] after a failed binding.
    pub fn forget_pod(&mut self, key: &str) -> Result<(), CacheError> {
        match self.pods.get(key) {
            Some(s) if s.assumed => {
                let node = s.node.clone();
                self.pods.remove(key);
                self.remove_from_node(key, &node);
                Ok(())
            }
            _ => Err(CacheError::NotAssumed(key.to_string())),
        }
    }

    pub fn is_assumed(&self, key: &str) -> bool {
        self.pods.get(key).is_some_and(|s| s.assumed)
    }

    /// Whether the pod is in the cache (assigned or assumed).
    pub fn contains_pod(&self, key: &str) -> bool {
        self.pods.contains_key(key)
    }

    /// An assigned pod seen from the API server (confirms an assumed one).
    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        let key = pod.key.clone();
        if let Some(old) = self.pods.remove(&key) {
            self.remove_from_node(&key, &old.node);
        }
        let node = pod.node_name.clone();
        self.add_to_node(pod.clone(), &node);
        self.pods.insert(
            key,
            PodState {
                pod,
                node,
                assumed: false,
            },
        );
    }

    /// An assigned pod deleted (or finished).
    pub fn remove_pod(&mut self, key: &str) {
        if let Some(old) = self.pods.remove(key) {
            self.remove_from_node(key, &old.node);
        }
    }

    pub fn add_or_update_node(&mut self, node: Arc<Node>) {
        let name = node.metadata.name.clone().unwrap_or_default();
        self.node_mut(&name).set_node(node);
    }

    pub fn remove_node(&mut self, name: &str) {
        let Some(ni) = self.nodes.get(name) else {
            return;
        };
        self.dirty.insert(name.to_string());
        if ni.pods.is_empty() {
            self.nodes.remove(name);
        } else {
            // Pods stay accounted until their own deletions arrive.
            self.node_mut(name).node = None;
        }
    }

    pub fn node_count(&self) -> usize {
        self.nodes.values().filter(|n| n.node.is_some()).count()
    }

    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    /// The pod as the cache holds it.
    pub fn pod(&self, key: &str) -> Option<Arc<PodInfo>> {
        self.pods.get(key).map(|s| s.pod.clone())
    }

    /// The node object as the cache holds it.
    pub fn node(&self, name: &str) -> Option<Arc<Node>> {
        self.nodes.get(name).and_then(|n| n.node.clone())
    }

    pub fn node_names(&self) -> Vec<String> {
        self.nodes
            .values()
            .filter(|n| n.node.is_some())
            .map(|n| n.name.clone())
            .collect()
    }

    pub fn pod_keys(&self) -> Vec<String> {
        self.pods.keys().cloned().collect()
    }

    /// Brings `snap` up to date with the nodes changed since the last call.
    pub fn update_snapshot(&mut self, snap: &mut Snapshot) {
        for name in self.dirty.drain() {
            match self.nodes.get(&name).filter(|n| n.node.is_some()) {
                Some(ni) => snap.set(ni.clone()),
                None => snap.remove(&name),
            }
        }
        snap.generation = self.generation;
    }
}

/// The nodes one scheduling cycle sees, in a stable order.
#[derive(Default, Clone)]
pub struct Snapshot {
    nodes: Vec<Arc<NodeInfo>>,
    index: HashMap<String, usize>,
    /// Image name → number of nodes having it (ImageLocality's spread).
    image_nodes: HashMap<String, usize>,
    /// Nodes with pods having any pod (anti-)affinity / required anti-affinity,
    /// so InterPodAffinity skips without scanning every node.
    nodes_with_affinity: usize,
    nodes_with_required_anti_affinity: usize,
    pub generation: u64,
}

impl Snapshot {
    /// A snapshot of fixed nodes, for tests and benchmarks.
    pub fn from_nodes(nodes: impl IntoIterator<Item = NodeInfo>) -> Self {
        let mut s = Snapshot::default();
        for n in nodes {
            s.set(Arc::new(n));
        }
        s
    }

    fn set(&mut self, ni: Arc<NodeInfo>) {
        match self.index.get(&ni.name) {
            Some(&i) => {
                self.count_images(i, -1);
                self.nodes[i] = ni;
                self.count_images(i, 1);
            }
            None => {
                self.index.insert(ni.name.clone(), self.nodes.len());
                self.nodes.push(ni);
                self.count_images(self.nodes.len() - 1, 1);
            }
        }
    }

    fn remove(&mut self, name: &str) {
        let Some(i) = self.index.remove(name) else {
            return;
        };
        self.count_images(i, -1);
        self.nodes.swap_remove(i);
        if let Some(moved) = self.nodes.get(i) {
            self.index.insert(moved.name.clone(), i);
        }
    }

    fn count_images(&mut self, i: usize, delta: isize) {
        let Some(ni) = self.nodes.get(i) else {
            return;
        };
        if ni.pods_with_affinity > 0 {
            self.nodes_with_affinity = self.nodes_with_affinity.saturating_add_signed(delta);
        }
        if ni.pods_with_required_anti_affinity > 0 {
            self.nodes_with_required_anti_affinity = self
                .nodes_with_required_anti_affinity
                .saturating_add_signed(delta);
        }
        for name in ni.images.keys() {
            let c = self.image_nodes.entry(name.clone()).or_default();
            *c = c.saturating_add_signed(delta);
            if *c == 0 {
                self.image_nodes.remove(name);
            }
        }
    }

    pub fn nodes(&self) -> &[Arc<NodeInfo>] {
        &self.nodes
    }

    pub fn get(&self, name: &str) -> Option<&Arc<NodeInfo>> {
        self.index.get(name).and_then(|&i| self.nodes.get(i))
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn any_pod_with_affinity(&self) -> bool {
        self.nodes_with_affinity > 0
    }

    pub fn any_pod_with_required_anti_affinity(&self) -> bool {
        self.nodes_with_required_anti_affinity > 0
    }

    /// How many nodes have this (normalised) image.
    pub fn nodes_with_image(&self, name: &str) -> usize {
        self.image_nodes.get(name).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name},
                "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}))
            .unwrap(),
        )
    }

    fn pod(name: &str, node: &str) -> Arc<PodInfo> {
        Arc::new(PodInfo::new(Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name, "namespace": "ns"},
                "spec": {"nodeName": node, "containers": [{"name": "c",
                    "resources": {"requests": {"cpu": "1"}}}]}}))
            .unwrap(),
        )))
    }

    #[test]
    fn assume_forget_and_confirm() {
        let mut c = Cache::default();
        c.add_or_update_node(node("n1"));
        c.assume_pod(pod("a", ""), "n1").unwrap();
        assert!(c.is_assumed("ns/a"));
        assert_eq!(
            c.assume_pod(pod("a", ""), "n1"),
            Err(CacheError::AlreadyPresent("ns/a".into()))
        );
        let mut snap = Snapshot::default();
        c.update_snapshot(&mut snap);
        assert_eq!(snap.get("n1").unwrap().requested.milli_cpu, 1000);

        c.forget_pod("ns/a").unwrap();
        c.update_snapshot(&mut snap);
        assert_eq!(snap.get("n1").unwrap().requested.milli_cpu, 0);
        assert!(c.forget_pod("ns/a").is_err());

        c.assume_pod(pod("b", ""), "n1").unwrap();
        c.add_pod(pod("b", "n1"));
        assert!(
            !c.is_assumed("ns/b"),
            "the informer's copy confirms the assumed pod"
        );
        c.update_snapshot(&mut snap);
        assert_eq!(snap.get("n1").unwrap().pods.len(), 1);
        assert_eq!(snap.get("n1").unwrap().requested.milli_cpu, 1000);
    }

    #[test]
    fn snapshot_copies_changed_nodes_only() {
        let mut c = Cache::default();
        c.add_or_update_node(node("n1"));
        c.add_or_update_node(node("n2"));
        let mut snap = Snapshot::default();
        c.update_snapshot(&mut snap);
        let before = snap.get("n2").unwrap().clone();
        c.add_pod(pod("a", "n1"));
        c.update_snapshot(&mut snap);
        assert!(
            Arc::ptr_eq(&before, snap.get("n2").unwrap()),
            "n2 untouched"
        );
        assert_eq!(snap.get("n1").unwrap().pods.len(), 1);

        c.remove_node("n1");
        c.update_snapshot(&mut snap);
        assert_eq!(snap.len(), 1, "a removed node leaves the snapshot");
        assert!(snap.get("n1").is_none());
        assert_eq!(snap.get("n2").unwrap().name, "n2");
        c.remove_pod("ns/a");
        assert_eq!(c.pod_count(), 0);
    }

    #[test]
    fn pods_on_unknown_nodes_are_not_schedulable_targets() {
        let mut c = Cache::default();
        c.add_pod(pod("a", "ghost"));
        let mut snap = Snapshot::default();
        c.update_snapshot(&mut snap);
        assert!(snap.is_empty());
        c.remove_pod("ns/a");
        assert_eq!(c.node_count(), 0);
    }
}
