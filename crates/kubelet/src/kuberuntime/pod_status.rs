//! What the runtime holds for one pod (upstream's `kubecontainer.PodStatus`,
//! built like `kubeGenericRuntimeManager.GetPodStatus`): its sandboxes and
//! every container instance the kubelet created for it, found by the pod
//! UID label, newest first.

use std::collections::HashMap;

use crate::cri::api::{ContainerFilter, ContainerState, PodSandboxFilter, PodSandboxState};
use crate::cri::{CriError, RuntimeService};

use super::labels;

/// One sandbox of the pod.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxStatus {
    pub id: String,
    pub ready: bool,
    pub created_at: i64,
    pub attempt: u32,
    /// The primary IP first.
    pub ips: Vec<String>,
}

/// One container instance.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerStatus {
    pub id: String,
    pub sandbox_id: String,
    pub name: String,
    pub state: ContainerState,
    pub created_at: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub exit_code: i32,
    pub reason: String,
    pub message: String,
    pub image: String,
    pub image_ref: String,
    pub restart_count: i32,
    pub hash: String,
    pub log_path: String,
}

/// The pod as the runtime knows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodRuntimeStatus {
    /// Newest first.
    pub sandboxes: Vec<SandboxStatus>,
    /// Newest first.
    pub containers: Vec<ContainerStatus>,
}

impl PodRuntimeStatus {
    /// The newest instance of the container `name`.
    pub fn latest(&self, name: &str) -> Option<&ContainerStatus> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// The instance before the newest one (for `lastState`).
    pub fn previous(&self, name: &str) -> Option<&ContainerStatus> {
        self.containers.iter().filter(|c| c.name == name).nth(1)
    }

    /// The newest sandbox when it is ready.
    pub fn ready_sandbox(&self) -> Option<&SandboxStatus> {
        self.sandboxes.first().filter(|s| s.ready)
    }
}

fn uid_selector(uid: &str) -> HashMap<String, String> {
    HashMap::from([(labels::POD_UID.to_string(), uid.to_string())])
}

/// Reads the pod's sandboxes and containers from the runtime. A container
/// that vanishes between the list and its status is skipped.
pub async fn get_pod_status(
    runtime: &dyn RuntimeService,
    uid: &str,
) -> Result<PodRuntimeStatus, CriError> {
    let mut sandboxes = Vec::new();
    let items = runtime
        .list_pod_sandbox(Some(PodSandboxFilter {
            label_selector: uid_selector(uid),
            ..Default::default()
        }))
        .await?;
    for sb in items {
        let ready = sb.state == PodSandboxState::SandboxReady as i32;
        let mut ips = Vec::new();
        if ready {
            match runtime.pod_sandbox_status(&sb.id).await {
                Ok(st) => {
                    if let Some(net) = st.network {
                        if !net.ip.is_empty() {
                            ips.push(net.ip);
                        }
                        ips.extend(net.additional_ips.into_iter().map(|i| i.ip));
                    }
                }
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            }
        }
        sandboxes.push(SandboxStatus {
            attempt: sb.metadata.as_ref().map(|m| m.attempt).unwrap_or_default(),
            id: sb.id,
            ready,
            created_at: sb.created_at,
            ips,
        });
    }
    sandboxes.sort_by_key(|s| std::cmp::Reverse(s.created_at));

    let mut containers = Vec::new();
    let items = runtime
        .list_containers(Some(ContainerFilter {
            label_selector: uid_selector(uid),
            ..Default::default()
        }))
        .await?;
    for c in items {
        let st = match runtime.container_status(&c.id).await {
            Ok(st) => st,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        let name = c
            .labels
            .get(labels::CONTAINER_NAME)
            .cloned()
            .or_else(|| c.metadata.as_ref().map(|m| m.name.clone()))
            .unwrap_or_default();
        let mut message = st.message.clone();
        if st.state == ContainerState::ContainerExited as i32 {
            // Upstream appends what the container left to the runtime's word.
            let left = super::termination_message::read(&st);
            if !left.is_empty() {
                if !message.is_empty() {
                    message.push_str(": ");
                }
                message.push_str(&left);
            }
        }
        containers.push(ContainerStatus {
            id: c.id,
            sandbox_id: c.pod_sandbox_id,
            name,
            state: ContainerState::try_from(st.state).unwrap_or(ContainerState::ContainerUnknown),
            created_at: st.created_at,
            started_at: st.started_at,
            finished_at: st.finished_at,
            exit_code: st.exit_code,
            reason: st.reason,
            message,
            image: st.image.map(|i| i.image).unwrap_or_default(),
            image_ref: st.image_ref,
            restart_count: c
                .annotations
                .get(labels::CONTAINER_RESTART_COUNT)
                .and_then(|v| v.parse().ok())
                .unwrap_or_default(),
            hash: c
                .annotations
                .get(labels::CONTAINER_HASH)
                .cloned()
                .unwrap_or_default(),
            log_path: st.log_path,
        });
    }
    containers.sort_by_key(|c| std::cmp::Reverse(c.created_at));
    Ok(PodRuntimeStatus {
        sandboxes,
        containers,
    })
}
