//! The container runtime as the kubelet sees it: two small traits over CRI
//! v1 (upstream's `k8s.io/cri-api/pkg/apis/services.go`, cut down to what
//! the kubelet calls), the real client over containerd's unix socket
//! ([`remote`], upstream's `pkg/kubelet/cri/remote`) and an in-memory fake
//! ([`fake`], upstream's `cri-api/pkg/apis/testing`) for unit tests and
//! fake nodes.
//!
//! The message types are CRI's own (`k8s_cri::v1`), so nothing is
//! translated twice.

pub mod fake;
pub mod remote;

pub use k8s_cri::v1 as api;

use api::{
    Container, ContainerConfig, ContainerFilter, ContainerStatus, Image, PodSandbox,
    PodSandboxConfig, PodSandboxFilter, PodSandboxStatus, RuntimeStatus, VersionResponse,
};

/// Why a CRI call failed.
#[derive(Debug, thiserror::Error)]
pub enum CriError {
    /// The runtime answered with an error status.
    #[error("{op}: {}", .status.message())]
    Rpc {
        op: &'static str,
        #[source]
        status: tonic::Status,
    },
    /// The runtime's socket could not be reached.
    #[error("connecting to the container runtime at {endpoint}: {source}")]
    Connect {
        endpoint: String,
        #[source]
        source: tonic::transport::Error,
    },
    /// The endpoint is not a `unix://` path.
    #[error("unsupported container runtime endpoint {0:?} (want unix:///path)")]
    Endpoint(String),
    /// The runtime does not offer this call (the fake, for streaming).
    #[error("{0} is not supported by this runtime")]
    Unsupported(&'static str),
    /// The runtime answered without a field CRI requires.
    #[error("{op}: the runtime's answer lacks {field}")]
    Missing {
        op: &'static str,
        field: &'static str,
    },
}

impl CriError {
    /// Whether the runtime said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, CriError::Rpc { status, .. } if status.code() == tonic::Code::NotFound)
    }
}

/// The sandbox and container calls (upstream's `RuntimeService`).
#[async_trait::async_trait]
pub trait RuntimeService: Send + Sync {
    async fn version(&self) -> Result<VersionResponse, CriError>;
    async fn status(&self) -> Result<RuntimeStatus, CriError>;
    /// Returns the new sandbox's id.
    async fn run_pod_sandbox(&self, config: PodSandboxConfig) -> Result<String, CriError>;
    async fn stop_pod_sandbox(&self, id: &str) -> Result<(), CriError>;
    async fn remove_pod_sandbox(&self, id: &str) -> Result<(), CriError>;
    async fn pod_sandbox_status(&self, id: &str) -> Result<PodSandboxStatus, CriError>;
    async fn list_pod_sandbox(
        &self,
        filter: Option<PodSandboxFilter>,
    ) -> Result<Vec<PodSandbox>, CriError>;
    /// Returns the new container's id.
    async fn create_container(
        &self,
        sandbox_id: &str,
        config: ContainerConfig,
        sandbox_config: PodSandboxConfig,
    ) -> Result<String, CriError>;
    async fn start_container(&self, id: &str) -> Result<(), CriError>;
    /// Stops with SIGTERM, then SIGKILL after `timeout` seconds.
    async fn stop_container(&self, id: &str, timeout: i64) -> Result<(), CriError>;
    async fn remove_container(&self, id: &str) -> Result<(), CriError>;
    async fn list_containers(
        &self,
        filter: Option<ContainerFilter>,
    ) -> Result<Vec<Container>, CriError>;
    async fn container_status(&self, id: &str) -> Result<ContainerStatus, CriError>;
    /// Makes the runtime write the container's log to a new file at its
    /// log path (`ReopenContainerLog`), after the old one was renamed.
    async fn reopen_container_log(&self, id: &str) -> Result<(), CriError> {
        let _ = id;
        Err(CriError::Unsupported("ReopenContainerLog"))
    }
    /// Runs `cmd` in the container and waits (`ExecSync`): the exit code
    /// and stdout followed by stderr.
    async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: std::time::Duration,
    ) -> Result<(i32, Vec<u8>), CriError> {
        let _ = (id, cmd, timeout);
        Err(CriError::Unsupported("ExecSync"))
    }
    /// Usage figures of the containers `filter` selects (`ListContainerStats`).
    async fn list_container_stats(
        &self,
        filter: Option<api::ContainerStatsFilter>,
    ) -> Result<Vec<api::ContainerStats>, CriError> {
        let _ = filter;
        Err(CriError::Unsupported("ListContainerStats"))
    }
    /// The streaming-server URL for an exec session (`Exec`).
    async fn exec(&self, req: api::ExecRequest) -> Result<String, CriError> {
        let _ = req;
        Err(CriError::Unsupported("Exec"))
    }
    /// The streaming-server URL for attaching to a container (`Attach`).
    async fn attach(&self, req: api::AttachRequest) -> Result<String, CriError> {
        let _ = req;
        Err(CriError::Unsupported("Attach"))
    }
    /// The streaming-server URL for forwarding ports of a sandbox (`PortForward`).
    async fn port_forward(&self, req: api::PortForwardRequest) -> Result<String, CriError> {
        let _ = req;
        Err(CriError::Unsupported("PortForward"))
    }
}

/// The image calls (upstream's `ImageManagerService`).
#[async_trait::async_trait]
pub trait ImageService: Send + Sync {
    /// The image when present, `None` when not.
    async fn image_status(&self, image: &str) -> Result<Option<Image>, CriError>;
    /// Pulls and returns the image reference (its id or digest).
    async fn pull_image(
        &self,
        image: &str,
        sandbox_config: Option<PodSandboxConfig>,
    ) -> Result<String, CriError>;
    /// Usage of the filesystems holding images (`ImageFsInfo`).
    async fn image_fs_info(&self) -> Result<Vec<api::FilesystemUsage>, CriError> {
        Err(CriError::Unsupported("ImageFsInfo"))
    }
    /// Every image the runtime holds (`ListImages`).
    async fn list_images(&self) -> Result<Vec<Image>, CriError> {
        Err(CriError::Unsupported("ListImages"))
    }
    /// Removes an image by its id (`RemoveImage`); a missing image is no error.
    async fn remove_image(&self, id: &str) -> Result<(), CriError> {
        let _ = id;
        Err(CriError::Unsupported("RemoveImage"))
    }
}

/// The condition types every runtime reports (upstream's
/// `RuntimeReady`/`NetworkReady`).
pub const RUNTIME_READY: &str = "RuntimeReady";
pub const NETWORK_READY: &str = "NetworkReady";

/// Why the runtime is not ready, `None` when both conditions hold.
pub fn runtime_not_ready(status: &RuntimeStatus) -> Option<String> {
    let mut problems = Vec::new();
    for wanted in [RUNTIME_READY, NETWORK_READY] {
        match status.conditions.iter().find(|c| c.r#type == wanted) {
            Some(c) if c.status => {}
            Some(c) => problems.push(format!(
                "{wanted}=false reason:{} message:{}",
                c.reason, c.message
            )),
            None => problems.push(format!("{wanted} missing")),
        }
    }
    (!problems.is_empty()).then(|| format!("container runtime not ready: {}", problems.join(", ")))
}
