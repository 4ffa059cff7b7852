//! What the scheduler knows about pods and nodes, computed once when an
//! object enters the cache or the queue (upstream's
//! `pkg/scheduler/framework/types.go`: `PodInfo`, `QueuedPodInfo`,
//! `NodeInfo`). Plugins read these instead of re-parsing the API objects
//! on every cycle.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};

use super::affinity::PodAffinityInfo;
use super::nodeselector::{RequiredNodeAffinity, Selector, Term};
use super::resource::{pod_non_zero_requests, pod_requests, Resource};

/// A container port bound on the node (`hostPort` set).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

impl HostPort {
    /// Upstream's `HostPortInfo` conflict rule: the same protocol and port
    /// conflict when either side is the wildcard address or both are equal.
    pub fn conflicts(&self, o: &HostPort) -> bool {
        let wild = |ip: &str| ip.is_empty() || ip == "0.0.0.0";
        self.port == o.port
            && self.protocol == o.protocol
            && (wild(&self.ip) || wild(&o.ip) || self.ip == o.ip)
    }
}

/// A pod with what the plugins need precomputed.
#[derive(Debug, Clone)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    /// `namespace/name`.
    pub key: String,
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub priority: i32,
    pub scheduler_name: String,
    pub node_name: String,
    pub requests: Resource,
    /// CPU (millicores) and memory with zero requests defaulted, for scoring.
    pub non_zero: (i64, i64),
    pub host_ports: Vec<HostPort>,
    pub required_affinity: RequiredNodeAffinity,
    pub preferred_affinity: Vec<(i32, Term)>,
    pub scheduling_gates: Vec<String>,
    pub has_pod_affinity: bool,
    pub has_required_anti_affinity: bool,
    /// Parsed pod (anti-)affinity terms.
    pub affinity: PodAffinityInfo,
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> Self {
        let meta = &pod.metadata;
        let namespace = meta.namespace.clone().unwrap_or_else(|| "default".into());
        let name = meta.name.clone().unwrap_or_default();
        let spec = pod.spec.as_ref();
        let mut host_ports = Vec::new();
        for c in spec.map(|s| s.containers.as_slice()).unwrap_or(&[]) {
            for p in c.ports.iter().flatten() {
                if let Some(hp) = p.host_port.filter(|p| *p > 0) {
                    host_ports.push(HostPort {
                        ip: p.host_ip.clone().unwrap_or_default(),
                        protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                        port: hp,
                    });
                }
            }
        }
        let affinity = spec.and_then(|s| s.affinity.as_ref());
        let node_aff = affinity.and_then(|a| a.node_affinity.as_ref());
        let required_affinity = RequiredNodeAffinity {
            node_selector: spec
                .and_then(|s| s.node_selector.clone())
                .unwrap_or_default(),
            required: node_aff
                .and_then(|n| {
                    n.required_during_scheduling_ignored_during_execution
                        .as_ref()
                })
                .map(Selector::parse),
        };
        let preferred_affinity = node_aff
            .and_then(|n| {
                n.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|terms| {
                terms
                    .iter()
                    .filter(|t| t.weight != 0)
                    .map(|t| (t.weight, Term::parse(&t.preference)))
                    .collect()
            })
            .unwrap_or_default();
        let pod_affinity = PodAffinityInfo::parse(&pod, &namespace);
        let has_required_anti_affinity = !pod_affinity.required_anti_affinity.is_empty();
        let has_pod_affinity = !pod_affinity.is_empty();
        PodInfo {
            key: format!("{namespace}/{name}"),
            uid: meta.uid.clone().unwrap_or_default(),
            priority: spec.and_then(|s| s.priority).unwrap_or(0),
            scheduler_name: spec
                .and_then(|s| s.scheduler_name.clone())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| crate::DEFAULT_SCHEDULER_NAME.into()),
            node_name: spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
            requests: pod_requests(&pod),
            non_zero: pod_non_zero_requests(&pod),
            host_ports,
            required_affinity,
            preferred_affinity,
            scheduling_gates: spec
                .and_then(|s| s.scheduling_gates.as_ref())
                .map(|g| g.iter().map(|g| g.name.clone()).collect())
                .unwrap_or_default(),
            has_pod_affinity,
            has_required_anti_affinity,
            affinity: pod_affinity,
            namespace,
            name,
            pod,
        }
    }

    pub fn tolerations(&self) -> &[Toleration] {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.as_deref())
            .unwrap_or(&[])
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.pod.metadata.labels.as_ref().unwrap_or(&EMPTY)
    }

    /// Whether the pod has finished (Succeeded or Failed).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        )
    }
}

/// A pod waiting in the scheduling queue.
#[derive(Debug, Clone)]
pub struct QueuedPodInfo {
    pub pod_info: Arc<PodInfo>,
    /// When the pod was added to the queue (or last moved into it).
    pub timestamp: Instant,
    /// Scheduling attempts so far.
    pub attempts: u32,
    /// When the pod first entered the queue (latency metrics).
    pub initial_attempt: Instant,
    /// Plugins that rejected the pod in its last attempt; only cluster
    /// events these plugins registered for move it back.
    pub unschedulable_plugins: HashSet<&'static str>,
    /// Rejected by a PreEnqueue plugin: waits until the pod itself changes.
    pub gated: bool,
}

impl QueuedPodInfo {
    pub fn new(pod_info: Arc<PodInfo>) -> Self {
        let now = Instant::now();
        QueuedPodInfo {
            pod_info,
            timestamp: now,
            attempts: 0,
            initial_attempt: now,
            unschedulable_plugins: HashSet::new(),
            gated: false,
        }
    }
}

/// One node with the pods assigned (or assumed) on it and their totals.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    pub name: String,
    /// `None` for a node the cache only knows from its pods.
    pub node: Option<Arc<Node>>,
    pub pods: Vec<Arc<PodInfo>>,
    /// Pods with any pod (anti-)affinity, for InterPodAffinity.
    pub pods_with_affinity: usize,
    pub pods_with_required_anti_affinity: usize,
    pub requested: Resource,
    pub non_zero_requested: (i64, i64),
    pub allocatable: Resource,
    pub used_ports: Vec<HostPort>,
    /// Image names (every tag and digest) → size in bytes; shared, so
    /// copying a NodeInfo on write does not copy it.
    pub images: Arc<BTreeMap<String, i64>>,
    /// `spec.unschedulable`, `spec.taints` and the labels, kept here so
    /// the hot filters do not chase into the Node object.
    pub unschedulable: bool,
    pub taints: Vec<Taint>,
    pub labels: Arc<BTreeMap<String, String>>,
    /// Bumped by every change; the snapshot copies changed nodes only.
    pub generation: u64,
}

impl NodeInfo {
    pub fn new(name: impl Into<String>) -> Self {
        NodeInfo {
            name: name.into(),
            ..Default::default()
        }
    }

    pub fn set_node(&mut self, node: Arc<Node>) {
        let status = node.status.as_ref();
        self.allocatable = status
            .and_then(|s| s.allocatable.as_ref())
            .map(Resource::from_list)
            .unwrap_or_default();
        let mut images = BTreeMap::new();
        for img in status.and_then(|s| s.images.as_ref()).into_iter().flatten() {
            let size = img.size_bytes.unwrap_or(0);
            for name in img.names.iter().flatten() {
                images.insert(normalize_image_name(name), size);
            }
        }
        self.images = Arc::new(images);
        let spec = node.spec.as_ref();
        self.unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
        self.taints = spec.and_then(|s| s.taints.clone()).unwrap_or_default();
        self.labels = Arc::new(node.metadata.labels.clone().unwrap_or_default());
        self.node = Some(node);
    }

    pub fn node_labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }

    pub fn taints(&self) -> &[Taint] {
        &self.taints
    }

    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.non_zero_requested.0 += pod.non_zero.0;
        self.non_zero_requested.1 += pod.non_zero.1;
        self.used_ports.extend(pod.host_ports.iter().cloned());
        if pod.has_pod_affinity {
            self.pods_with_affinity += 1;
        }
        if pod.has_required_anti_affinity {
            self.pods_with_required_anti_affinity += 1;
        }
        self.pods.push(pod);
    }

    /// Removes the pod with this key; false when it was not here.
    pub fn remove_pod(&mut self, key: &str) -> bool {
        let Some(i) = self.pods.iter().position(|p| p.key == key) else {
            return false;
        };
        let pod = self.pods.swap_remove(i);
        self.requested.sub(&pod.requests);
        self.non_zero_requested.0 -= pod.non_zero.0;
        self.non_zero_requested.1 -= pod.non_zero.1;
        for hp in &pod.host_ports {
            if let Some(j) = self.used_ports.iter().position(|u| u == hp) {
                self.used_ports.swap_remove(j);
            }
        }
        if pod.has_pod_affinity {
            self.pods_with_affinity -= 1;
        }
        if pod.has_required_anti_affinity {
            self.pods_with_required_anti_affinity -= 1;
        }
        true
    }
}

/// Upstream's image name normalisation: a name without a tag or digest
/// means `:latest`.
pub fn normalize_image_name(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || last.contains('@') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}
