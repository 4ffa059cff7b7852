//! The CRI v1 client over a unix socket (upstream's
//! `pkg/kubelet/cri/remote/remote_runtime.go` and `remote_image.go`): one
//! lazily connected tonic channel shared by both services, each call with
//! upstream's runtime request timeout (2 min; image pulls get none).

use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

use super::api::{
    self, image_service_client::ImageServiceClient, runtime_service_client::RuntimeServiceClient,
    Container, ContainerConfig, ContainerFilter, ContainerStatus, Image, ImageSpec, PodSandbox,
    PodSandboxConfig, PodSandboxFilter, PodSandboxStatus, RuntimeStatus, VersionResponse,
};
use super::{CriError, ImageService, RuntimeService};

/// Upstream's `--runtime-request-timeout` default.
pub const RUNTIME_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A CRI runtime and image service reached over one socket.
#[derive(Clone)]
pub struct RemoteRuntime {
    channel: Channel,
}

impl RemoteRuntime {
    /// A client for `unix:///path` (or a bare path). Connects on first use.
    pub fn new(endpoint: &str) -> Result<Self, CriError> {
        let path = endpoint
            .strip_prefix("unix://")
            .or_else(|| endpoint.starts_with('/').then_some(endpoint))
            .ok_or_else(|| CriError::Endpoint(endpoint.to_string()))?
            .to_string();
        let channel = Endpoint::from_static("http://[::]:50051")
            .connect_timeout(Duration::from_secs(5))
            .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }));
        Ok(Self { channel })
    }

    fn runtime(&self) -> RuntimeServiceClient<Channel> {
        RuntimeServiceClient::new(self.channel.clone()).max_decoding_message_size(16 << 20)
    }

    fn images(&self) -> ImageServiceClient<Channel> {
        ImageServiceClient::new(self.channel.clone()).max_decoding_message_size(16 << 20)
    }
}

fn req<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(RUNTIME_REQUEST_TIMEOUT);
    r
}

fn rpc(op: &'static str) -> impl FnOnce(tonic::Status) -> CriError {
    move |status| CriError::Rpc { op, status }
}

#[async_trait::async_trait]
impl RuntimeService for RemoteRuntime {
    async fn version(&self) -> Result<VersionResponse, CriError> {
        Ok(self
            .runtime()
            .version(req(api::VersionRequest {
                version: "v1".into(),
            }))
            .await
            .map_err(rpc("Version"))?
            .into_inner())
    }

    async fn status(&self) -> Result<RuntimeStatus, CriError> {
        self.runtime()
            .status(req(api::StatusRequest { verbose: false }))
            .await
            .map_err(rpc("Status"))?
            .into_inner()
            .status
            .ok_or(CriError::Missing {
                op: "Status",
                field: "status",
            })
    }

    async fn run_pod_sandbox(&self, config: PodSandboxConfig) -> Result<String, CriError> {
        Ok(self
            .runtime()
            .run_pod_sandbox(req(api::RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: String::new(),
            }))
            .await
            .map_err(rpc("RunPodSandbox"))?
            .into_inner()
            .pod_sandbox_id)
    }

    async fn stop_pod_sandbox(&self, id: &str) -> Result<(), CriError> {
        self.runtime()
            .stop_pod_sandbox(req(api::StopPodSandboxRequest {
                pod_sandbox_id: id.into(),
            }))
            .await
            .map_err(rpc("StopPodSandbox"))?;
        Ok(())
    }

    async fn remove_pod_sandbox(&self, id: &str) -> Result<(), CriError> {
        self.runtime()
            .remove_pod_sandbox(req(api::RemovePodSandboxRequest {
                pod_sandbox_id: id.into(),
            }))
            .await
            .map_err(rpc("RemovePodSandbox"))?;
        Ok(())
    }

    async fn pod_sandbox_status(&self, id: &str) -> Result<PodSandboxStatus, CriError> {
        self.runtime()
            .pod_sandbox_status(req(api::PodSandboxStatusRequest {
                pod_sandbox_id: id.into(),
                verbose: false,
            }))
            .await
            .map_err(rpc("PodSandboxStatus"))?
            .into_inner()
            .status
            .ok_or(CriError::Missing {
                op: "PodSandboxStatus",
                field: "status",
            })
    }

    async fn list_pod_sandbox(
        &self,
        filter: Option<PodSandboxFilter>,
    ) -> Result<Vec<PodSandbox>, CriError> {
        Ok(self
            .runtime()
            .list_pod_sandbox(req(api::ListPodSandboxRequest { filter }))
            .await
            .map_err(rpc("ListPodSandbox"))?
            .into_inner()
            .items)
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        config: ContainerConfig,
        sandbox_config: PodSandboxConfig,
    ) -> Result<String, CriError> {
        Ok(self
            .runtime()
            .create_container(req(api::CreateContainerRequest {
                pod_sandbox_id: sandbox_id.into(),
                config: Some(config),
                sandbox_config: Some(sandbox_config),
            }))
            .await
            .map_err(rpc("CreateContainer"))?
            .into_inner()
            .container_id)
    }

    async fn start_container(&self, id: &str) -> Result<(), CriError> {
        self.runtime()
            .start_container(req(api::StartContainerRequest {
                container_id: id.into(),
            }))
            .await
            .map_err(rpc("StartContainer"))?;
        Ok(())
    }

    async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: Duration,
    ) -> Result<(i32, Vec<u8>), CriError> {
        let mut r = tonic::Request::new(api::ExecSyncRequest {
            container_id: id.into(),
            cmd,
            timeout: timeout.as_secs().max(1) as i64,
        });
        r.set_timeout(timeout + Duration::from_secs(2));
        let out = self
            .runtime()
            .exec_sync(r)
            .await
            .map_err(rpc("ExecSync"))?
            .into_inner();
        let mut bytes = out.stdout;
        bytes.extend(out.stderr);
        Ok((out.exit_code, bytes))
    }

    async fn exec(&self, req: api::ExecRequest) -> Result<String, CriError> {
        let r = self
            .runtime()
            .exec(tonic::Request::new(req))
            .await
            .map_err(rpc("Exec"))?;
        Ok(r.into_inner().url)
    }

    async fn attach(&self, req: api::AttachRequest) -> Result<String, CriError> {
        let r = self
            .runtime()
            .attach(tonic::Request::new(req))
            .await
            .map_err(rpc("Attach"))?;
        Ok(r.into_inner().url)
    }

    async fn port_forward(&self, req: api::PortForwardRequest) -> Result<String, CriError> {
        let r = self
            .runtime()
            .port_forward(tonic::Request::new(req))
            .await
            .map_err(rpc("PortForward"))?;
        Ok(r.into_inner().url)
    }

    async fn stop_container(&self, id: &str, timeout: i64) -> Result<(), CriError> {
        // The call lasts up to the grace period; give it that on top.
        let mut r = tonic::Request::new(api::StopContainerRequest {
            container_id: id.into(),
            timeout,
        });
        r.set_timeout(RUNTIME_REQUEST_TIMEOUT + Duration::from_secs(timeout.max(0) as u64));
        self.runtime()
            .stop_container(r)
            .await
            .map_err(rpc("StopContainer"))?;
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<(), CriError> {
        self.runtime()
            .remove_container(req(api::RemoveContainerRequest {
                container_id: id.into(),
            }))
            .await
            .map_err(rpc("RemoveContainer"))?;
        Ok(())
    }

    async fn reopen_container_log(&self, id: &str) -> Result<(), CriError> {
        self.runtime()
            .reopen_container_log(req(api::ReopenContainerLogRequest {
                container_id: id.into(),
            }))
            .await
            .map_err(rpc("ReopenContainerLog"))?;
        Ok(())
    }

    async fn list_container_stats(
        &self,
        filter: Option<api::ContainerStatsFilter>,
    ) -> Result<Vec<api::ContainerStats>, CriError> {
        Ok(self
            .runtime()
            .list_container_stats(req(api::ListContainerStatsRequest { filter }))
            .await
            .map_err(rpc("ListContainerStats"))?
            .into_inner()
            .stats)
    }

    async fn list_containers(
        &self,
        filter: Option<ContainerFilter>,
    ) -> Result<Vec<Container>, CriError> {
        Ok(self
            .runtime()
            .list_containers(req(api::ListContainersRequest { filter }))
            .await
            .map_err(rpc("ListContainers"))?
            .into_inner()
            .containers)
    }

    async fn container_status(&self, id: &str) -> Result<ContainerStatus, CriError> {
        self.runtime()
            .container_status(req(api::ContainerStatusRequest {
                container_id: id.into(),
                verbose: false,
            }))
            .await
            .map_err(rpc("ContainerStatus"))?
            .into_inner()
            .status
            .ok_or(CriError::Missing {
                op: "ContainerStatus",
                field: "status",
            })
    }
}

fn spec(image: &str) -> ImageSpec {
    ImageSpec {
        image: image.into(),
        ..Default::default()
    }
}

#[async_trait::async_trait]
impl ImageService for RemoteRuntime {
    async fn image_fs_info(&self) -> Result<Vec<api::FilesystemUsage>, CriError> {
        Ok(self
            .images()
            .image_fs_info(req(api::ImageFsInfoRequest {}))
            .await
            .map_err(rpc("ImageFsInfo"))?
            .into_inner()
            .image_filesystems)
    }

    async fn list_images(&self) -> Result<Vec<Image>, CriError> {
        Ok(self
            .images()
            .list_images(req(api::ListImagesRequest { filter: None }))
            .await
            .map_err(rpc("ListImages"))?
            .into_inner()
            .images)
    }

    async fn remove_image(&self, id: &str) -> Result<(), CriError> {
        self.images()
            .remove_image(req(api::RemoveImageRequest {
                image: Some(spec(id)),
            }))
            .await
            .map_err(rpc("RemoveImage"))?;
        Ok(())
    }

    async fn image_status(&self, image: &str) -> Result<Option<Image>, CriError> {
        Ok(self
            .images()
            .image_status(req(api::ImageStatusRequest {
                image: Some(spec(image)),
                verbose: false,
            }))
            .await
            .map_err(rpc("ImageStatus"))?
            .into_inner()
            .image)
    }

    async fn pull_image(
        &self,
        image: &str,
        sandbox_config: Option<PodSandboxConfig>,
    ) -> Result<String, CriError> {
        Ok(self
            .images()
            .pull_image(tonic::Request::new(api::PullImageRequest {
                image: Some(spec(image)),
                auth: None,
                sandbox_config,
            }))
            .await
            .map_err(rpc("PullImage"))?
            .into_inner()
            .image_ref)
    }
}
