//! Node registration and status (upstream's `pkg/kubelet/kubelet_node_status.go`
//! and the setters in `pkg/kubelet/nodestatus/setters.go`): capacity and
//! allocatable from the machine (`cadvisor` in upstream), addresses, node
//! info from the runtime, and the pressure and Ready conditions. The loop
//! checks every 10 s and writes when something changed or 5 min passed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus,
    NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;

use crate::cri::{runtime_not_ready, RuntimeService};
use crate::eviction::{ThresholdValue, DISK_PRESSURE, MEMORY_PRESSURE, PID_PRESSURE};

/// The kubelet version this node reports.
pub const KUBELET_VERSION: &str = "v1.33.0";

/// What the machine has (upstream reads it from cAdvisor).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MachineInfo {
    pub num_cores: u64,
    pub memory_bytes: u64,
    pub ephemeral_storage_bytes: u64,
    pub machine_id: String,
    pub system_uuid: String,
    pub boot_id: String,
    pub kernel_version: String,
    pub os_image: String,
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

impl MachineInfo {
    /// Reads `/proc` and `/sys`, and the file system holding `root_dir`.
    pub fn read(root_dir: &Path) -> Self {
        let num_cores = std::thread::available_parallelism()
            .map(|n| n.get() as u64)
            .unwrap_or(1);
        let memory_bytes = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
            .map(|kb| kb * 1024)
            .unwrap_or_default();
        let mut dir = root_dir.to_path_buf();
        while !dir.exists() {
            if !dir.pop() {
                break;
            }
        }
        let ephemeral_storage_bytes = rustix::fs::statvfs(&dir)
            .map(|s| s.f_blocks * s.f_frsize)
            .unwrap_or_default();
        let os_image = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_string())
            })
            .unwrap_or_else(|| "Linux".into());
        Self {
            num_cores,
            memory_bytes,
            ephemeral_storage_bytes,
            machine_id: read_trim("/etc/machine-id"),
            system_uuid: read_trim("/sys/class/dmi/id/product_uuid"),
            boot_id: read_trim("/proc/sys/kernel/random/boot_id"),
            kernel_version: read_trim("/proc/sys/kernel/osrelease"),
            os_image,
        }
    }
}

/// What the node object is made of.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    pub node_name: String,
    pub hostname: String,
    pub node_ips: Vec<String>,
    pub pod_cidr: Option<String>,
    pub max_pods: u32,
    pub kubelet_port: i32,
    pub labels: BTreeMap<String, String>,
    /// The hard `memory.available` and `nodefs.available` thresholds, taken
    /// off allocatable (upstream's node allocatable less hard eviction).
    pub eviction_hard_memory: Option<ThresholdValue>,
    pub eviction_hard_nodefs: Option<ThresholdValue>,
}

/// The share of `capacity` a threshold holds back.
fn held_back(t: Option<ThresholdValue>, capacity: u64) -> u64 {
    t.map_or(0, |t| {
        u64::try_from(t.quantity(i64::try_from(capacity).unwrap_or(i64::MAX))).unwrap_or(0)
    })
}

/// A pressure condition: True with upstream's reason and message while
/// the eviction manager reports it.
fn pressure_condition(
    old: Option<&NodeStatus>,
    ty: &str,
    on: bool,
    now: Timestamp,
) -> NodeCondition {
    let (yes, no) = match ty {
        MEMORY_PRESSURE => (
            (
                "KubeletHasInsufficientMemory",
                "kubelet has insufficient memory available",
            ),
            (
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
        ),
        DISK_PRESSURE => (
            ("KubeletHasDiskPressure", "kubelet has disk pressure"),
            ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ),
        _ => (
            (
                "KubeletHasInsufficientPID",
                "kubelet has insufficient PID available",
            ),
            (
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
        ),
    };
    let (reason, message) = if on { yes } else { no };
    condition(old, ty, on, reason, message, now)
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The node object to register (upstream's `initialNode`).
pub fn initial_node(s: &NodeSettings) -> Node {
    let mut labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), s.hostname.clone()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        ("kubernetes.io/arch".to_string(), arch().to_string()),
        ("beta.kubernetes.io/os".to_string(), "linux".to_string()),
        ("beta.kubernetes.io/arch".to_string(), arch().to_string()),
    ]);
    labels.extend(s.labels.clone());
    Node {
        metadata: ObjectMeta {
            name: Some(s.node_name.clone()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                "volumes.kubernetes.io/controller-managed-attach-detach".to_string(),
                "true".to_string(),
            )])),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: s.pod_cidr.clone(),
            pod_cidrs: s.pod_cidr.clone().map(|c| vec![c]),
            ..Default::default()
        }),
        status: None,
    }
}

fn condition(
    old: Option<&NodeStatus>,
    ty: &str,
    ok: bool,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> NodeCondition {
    let status = if ok { "True" } else { "False" };
    let prev = old
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == ty));
    let last_transition_time = match prev {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => Some(Time(now)),
    };
    NodeCondition {
        type_: ty.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(Time(now)),
        last_transition_time,
    }
}

/// The node's status (upstream's `defaultNodeStatusFuncs`). `not_ready`
/// is why the runtime is not ready, if it is not.
pub fn node_status(
    s: &NodeSettings,
    m: &MachineInfo,
    runtime_version: &str,
    not_ready: Option<&str>,
    pressure: &BTreeSet<&str>,
    old: Option<&NodeStatus>,
    now: Timestamp,
) -> NodeStatus {
    let q = |v: String| Quantity(v);
    let capacity = BTreeMap::from([
        ("cpu".to_string(), q(m.num_cores.to_string())),
        (
            "memory".to_string(),
            q(format!("{}Ki", m.memory_bytes / 1024)),
        ),
        (
            "ephemeral-storage".to_string(),
            q(format!("{}Ki", m.ephemeral_storage_bytes / 1024)),
        ),
        ("pods".to_string(), q(s.max_pods.to_string())),
        ("hugepages-2Mi".to_string(), q("0".into())),
        ("hugepages-1Gi".to_string(), q("0".into())),
    ]);
    let mut allocatable = capacity.clone();
    allocatable.insert(
        "memory".into(),
        q(format!(
            "{}Ki",
            m.memory_bytes
                .saturating_sub(held_back(s.eviction_hard_memory, m.memory_bytes))
                / 1024
        )),
    );
    allocatable.insert(
        "ephemeral-storage".into(),
        q(m.ephemeral_storage_bytes
            .saturating_sub(held_back(s.eviction_hard_nodefs, m.ephemeral_storage_bytes))
            .to_string()),
    );
    let mut addresses: Vec<NodeAddress> = s
        .node_ips
        .iter()
        .map(|ip| NodeAddress {
            type_: "InternalIP".into(),
            address: ip.clone(),
        })
        .collect();
    addresses.push(NodeAddress {
        type_: "Hostname".into(),
        address: s.hostname.clone(),
    });
    let (ready, ready_reason, ready_message) = match not_ready {
        None => (
            true,
            "KubeletReady",
            "kubelet is posting ready status".to_string(),
        ),
        Some(why) => (false, "KubeletNotReady", why.to_string()),
    };
    NodeStatus {
        capacity: Some(capacity),
        allocatable: Some(allocatable),
        conditions: Some(vec![
            pressure_condition(
                old,
                MEMORY_PRESSURE,
                pressure.contains(MEMORY_PRESSURE),
                now,
            ),
            pressure_condition(old, DISK_PRESSURE, pressure.contains(DISK_PRESSURE), now),
            pressure_condition(old, PID_PRESSURE, pressure.contains(PID_PRESSURE), now),
            condition(old, "Ready", ready, ready_reason, &ready_message, now),
        ]),
        addresses: Some(addresses),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: s.kubelet_port,
            }),
        }),
        node_info: Some(NodeSystemInfo {
            machine_id: m.machine_id.clone(),
            system_uuid: m.system_uuid.clone(),
            boot_id: m.boot_id.clone(),
            kernel_version: m.kernel_version.clone(),
            os_image: m.os_image.clone(),
            container_runtime_version: runtime_version.into(),
            kubelet_version: KUBELET_VERSION.into(),
            kube_proxy_version: String::new(),
            operating_system: "linux".into(),
            architecture: arch().into(),
            swap: None,
        }),
        ..Default::default()
    }
}

/// The node events a status change calls for (upstream's
/// `recordNodeStatusEvent` from the condition setters): for each of Ready
/// and the pressure conditions that is new or changed, `NodeReady` /
/// `NodeNotReady`, `NodeHasSufficientMemory` / `NodeHasInsufficientMemory`,
/// `NodeHasNoDiskPressure` / `NodeHasDiskPressure`, `NodeHasSufficientPID` /
/// `NodeHasInsufficientPID`.
pub fn condition_events(old: Option<&NodeStatus>, new: &NodeStatus) -> Vec<&'static str> {
    let status_of = |s: Option<&NodeStatus>, ty: &str| {
        s.and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == ty))
            .map(|c| c.status.clone())
    };
    let mut out = Vec::new();
    for (ty, yes, no) in [
        (
            MEMORY_PRESSURE,
            "NodeHasInsufficientMemory",
            "NodeHasSufficientMemory",
        ),
        (
            DISK_PRESSURE,
            "NodeHasDiskPressure",
            "NodeHasNoDiskPressure",
        ),
        (
            PID_PRESSURE,
            "NodeHasInsufficientPID",
            "NodeHasSufficientPID",
        ),
        ("Ready", "NodeReady", "NodeNotReady"),
    ] {
        let now = status_of(Some(new), ty);
        if now.is_none() || now == status_of(old, ty) {
            continue;
        }
        out.push(if now.as_deref() == Some("True") {
            yes
        } else {
            no
        });
    }
    out
}

/// The status without heartbeat times, to tell a real change.
fn without_heartbeats(s: &NodeStatus) -> NodeStatus {
    let mut s = s.clone();
    for c in s.conditions.iter_mut().flatten() {
        c.last_heartbeat_time = None;
    }
    s
}

/// Upstream's `nodeStatusUpdateFrequency` and `nodeStatusReportFrequency`.
pub const UPDATE_FREQUENCY: Duration = Duration::from_secs(10);
pub const REPORT_FREQUENCY: Duration = Duration::from_secs(300);

/// Registers the node and keeps its status current.
pub struct NodeStatusManager {
    pub client: kube::Client,
    pub runtime: Arc<dyn RuntimeService>,
    pub settings: NodeSettings,
    pub machine: MachineInfo,
    /// The eviction manager, whose conditions the status reports.
    pub eviction: Option<Arc<crate::eviction::manager::EvictionManager>>,
    /// Where the node's condition events go, and the node's reference.
    pub recorder: Option<(
        kube::runtime::events::Recorder,
        k8s_openapi::api::core::v1::ObjectReference,
    )>,
}

impl NodeStatusManager {
    /// `<name>://<version>` from the runtime's Version.
    async fn runtime_version(&self) -> String {
        match self.runtime.version().await {
            Ok(v) => format!("{}://{}", v.runtime_name, v.runtime_version),
            Err(_) => String::new(),
        }
    }

    async fn not_ready(&self) -> Option<String> {
        match self.runtime.status().await {
            Ok(st) => runtime_not_ready(&st),
            Err(e) => Some(format!("container runtime is down: {e}")),
        }
    }

    /// Creates the node unless it exists (upstream's `registerWithAPIServer`);
    /// retried by the caller until it succeeds.
    pub async fn register(&self) -> Result<Node, kube::Error> {
        let api: Api<Node> = Api::all(self.client.clone());
        let node = initial_node(&self.settings);
        match api.create(&PostParams::default(), &node).await {
            Ok(n) => {
                tracing::info!(node = %self.settings.node_name, "successfully registered node");
                Ok(n)
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {
                let existing = api.get(&self.settings.node_name).await?;
                tracing::info!(node = %self.settings.node_name, "node was previously registered");
                Ok(existing)
            }
            Err(e) => Err(e),
        }
    }

    /// Publishes upstream's `Node <name> status is now: <event>` events.
    fn publish(&self, events: Vec<&'static str>) {
        let Some((recorder, node)) = &self.recorder else {
            return;
        };
        for reason in events {
            let ev = kube::runtime::events::Event {
                type_: kube::runtime::events::EventType::Normal,
                reason: reason.into(),
                note: Some(format!(
                    "Node {} status is now: {reason}",
                    self.settings.node_name
                )),
                action: reason.into(),
                secondary: None,
            };
            let (recorder, node) = (recorder.clone(), node.clone());
            tokio::spawn(async move {
                if let Err(e) = recorder.publish(&ev, &node).await {
                    tracing::debug!(error = %e, "publishing a node event failed");
                }
            });
        }
    }

    /// Writes the status when it changed or the report interval passed.
    pub async fn run(self, registered: tokio::sync::watch::Sender<Option<Node>>) {
        let api: Api<Node> = Api::all(self.client.clone());
        let mut node = loop {
            match self.register().await {
                Ok(n) => break n,
                Err(e) => {
                    tracing::warn!(error = %e, "unable to register node, retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        };
        let _ = registered.send(Some(node.clone()));
        let mut last_report: Option<Instant> = None;
        let mut tick = tokio::time::interval(UPDATE_FREQUENCY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let version = self.runtime_version().await;
            let not_ready = self.not_ready().await;
            let pressure = self
                .eviction
                .as_ref()
                .map(|e| e.conditions())
                .unwrap_or_default();
            let status = node_status(
                &self.settings,
                &self.machine,
                &version,
                not_ready.as_deref(),
                &pressure,
                node.status.as_ref(),
                Timestamp::now(),
            );
            let changed = node
                .status
                .as_ref()
                .map(|old| without_heartbeats(old) != without_heartbeats(&status))
                .unwrap_or(true);
            self.publish(condition_events(node.status.as_ref(), &status));
            let due = last_report.is_none_or(|t| t.elapsed() >= REPORT_FREQUENCY);
            if !changed && !due {
                continue;
            }
            let patch = serde_json::json!({ "status": status });
            match api
                .patch_status(
                    &self.settings.node_name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(n) => {
                    tracing::debug!(node = %self.settings.node_name, "node status updated");
                    node = n;
                    last_report = Some(Instant::now());
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {
                    tracing::warn!(node = %self.settings.node_name, "node object is gone, registering again");
                    if let Ok(n) = self.register().await {
                        node = n;
                        let _ = registered.send(Some(node.clone()));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "error updating node status, will retry"),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn settings() -> NodeSettings {
        NodeSettings {
            node_name: "n1".into(),
            hostname: "host1".into(),
            node_ips: vec!["192.168.1.5".into()],
            pod_cidr: Some("10.88.0.0/16".into()),
            max_pods: 110,
            kubelet_port: 10250,
            labels: BTreeMap::new(),
            eviction_hard_memory: Some(ThresholdValue::Quantity(100 << 20)),
            eviction_hard_nodefs: Some(ThresholdValue::Percentage(0.1)),
        }
    }

    fn machine() -> MachineInfo {
        MachineInfo {
            num_cores: 2,
            memory_bytes: 4 * 1024 * 1024 * 1024,
            ephemeral_storage_bytes: 100 * 1024 * 1024 * 1024,
            ..Default::default()
        }
    }

    #[test]
    fn capacity_allocatable_addresses_and_ready() {
        let now = Timestamp::now();
        let s = node_status(
            &settings(),
            &machine(),
            "containerd://1.6.20",
            None,
            &BTreeSet::new(),
            None,
            now,
        );
        let cap = s.capacity.as_ref().unwrap();
        assert_eq!(cap["cpu"].0, "2");
        assert_eq!(cap["memory"].0, "4194304Ki");
        assert_eq!(cap["pods"].0, "110");
        assert_eq!(s.allocatable.as_ref().unwrap()["memory"].0, "4091904Ki");
        let addrs: Vec<(&str, &str)> = s
            .addresses
            .as_ref()
            .unwrap()
            .iter()
            .map(|a| (a.type_.as_str(), a.address.as_str()))
            .collect();
        assert_eq!(
            addrs,
            vec![("InternalIP", "192.168.1.5"), ("Hostname", "host1")]
        );
        let ready = s
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("True", Some("KubeletReady"))
        );
        assert_eq!(
            s.node_info.as_ref().unwrap().container_runtime_version,
            "containerd://1.6.20"
        );
    }

    #[test]
    fn not_ready_runtime_and_transition_times_kept_while_unchanged() {
        let t0 = Timestamp::from_second(1_000_000).unwrap();
        let t1 = Timestamp::from_second(1_000_010).unwrap();
        let a = node_status(
            &settings(),
            &machine(),
            "",
            Some("container runtime is down"),
            &BTreeSet::new(),
            None,
            t0,
        );
        let b = node_status(
            &settings(),
            &machine(),
            "",
            Some("container runtime is down"),
            &BTreeSet::new(),
            Some(&a),
            t1,
        );
        let ready = |s: &NodeStatus| {
            s.conditions
                .clone()
                .unwrap()
                .into_iter()
                .find(|c| c.type_ == "Ready")
                .unwrap()
        };
        assert_eq!(ready(&b).status, "False");
        assert_eq!(ready(&b).reason.as_deref(), Some("KubeletNotReady"));
        assert_eq!(ready(&b).last_transition_time, Some(Time(t0)));
        assert_eq!(ready(&b).last_heartbeat_time, Some(Time(t1)));
        assert_eq!(without_heartbeats(&a), without_heartbeats(&b));
        let c = node_status(
            &settings(),
            &machine(),
            "",
            None,
            &BTreeSet::from([DISK_PRESSURE]),
            Some(&b),
            t1,
        );
        assert_eq!(ready(&c).last_transition_time, Some(Time(t1)));
        // Disk pressure from the eviction manager: True with upstream's
        // reason, the other pressures stay False.
        let cond = |s: &NodeStatus, ty: &str| {
            s.conditions
                .as_ref()
                .unwrap()
                .iter()
                .find(|x| x.type_ == ty)
                .cloned()
                .unwrap()
        };
        let disk = cond(&c, "DiskPressure");
        assert_eq!(
            (disk.status.as_str(), disk.reason.as_deref()),
            ("True", Some("KubeletHasDiskPressure"))
        );
        assert_eq!(disk.last_transition_time, Some(Time(t1)));
        assert_eq!(cond(&c, "MemoryPressure").status, "False");
    }

    #[test]
    fn condition_changes_are_upstreams_node_events() {
        let t = Timestamp::UNIX_EPOCH;
        let none = BTreeSet::new();
        let a = node_status(&settings(), &machine(), "", None, &none, None, t);
        assert_eq!(
            condition_events(None, &a),
            [
                "NodeHasSufficientMemory",
                "NodeHasNoDiskPressure",
                "NodeHasSufficientPID",
                "NodeReady"
            ]
        );
        assert!(condition_events(Some(&a), &a).is_empty());
        let b = node_status(
            &settings(),
            &machine(),
            "",
            Some("runtime down"),
            &BTreeSet::from([DISK_PRESSURE]),
            Some(&a),
            t,
        );
        assert_eq!(
            condition_events(Some(&a), &b),
            ["NodeHasDiskPressure", "NodeNotReady"]
        );
    }

    #[test]
    fn initial_node_has_well_known_labels_and_pod_cidr() {
        let n = initial_node(&settings());
        let l = n.metadata.labels.unwrap();
        assert_eq!(l["kubernetes.io/hostname"], "host1");
        assert_eq!(l["kubernetes.io/os"], "linux");
        assert_eq!(n.spec.unwrap().pod_cidr.as_deref(), Some("10.88.0.0/16"));
    }
}
