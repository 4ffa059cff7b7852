//! An in-memory runtime (upstream's `cri-api/pkg/apis/testing`
//! `FakeRuntimeService`/`FakeImageService`): sandboxes and containers are
//! records whose state changes only by the calls and by [`FakeRuntime::exit`],
//! which tests use to make a container end. Every call is logged in order.
//! Also fit for fake nodes in benchmarks: nothing runs, nothing sleeps.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use super::api::{
    Container, ContainerConfig, ContainerFilter, ContainerMetadata, ContainerState,
    ContainerStatus, Image, ImageSpec, PodSandbox, PodSandboxConfig, PodSandboxFilter,
    PodSandboxNetworkStatus, PodSandboxState, PodSandboxStatus, RuntimeCondition, RuntimeStatus,
    VersionResponse,
};
use super::{api, CriError, ImageService, RuntimeService, NETWORK_READY, RUNTIME_READY};

#[derive(Debug, Clone)]
struct FakeSandbox {
    config: PodSandboxConfig,
    state: PodSandboxState,
    created_at: i64,
    ip: String,
}

#[derive(Debug, Clone)]
struct FakeContainer {
    sandbox_id: String,
    config: ContainerConfig,
    image_ref: String,
    state: ContainerState,
    created_at: i64,
    started_at: i64,
    finished_at: i64,
    exit_code: i32,
    reason: String,
}

#[derive(Default)]
struct State {
    next_id: u64,
    sandboxes: BTreeMap<String, FakeSandbox>,
    containers: BTreeMap<String, FakeContainer>,
    images: HashSet<String>,
    pull_errors: HashMap<String, String>,
    calls: Vec<String>,
    clock: i64,
    /// Per container: (timestamp ns, cumulative CPU ns, working set bytes).
    usage: HashMap<String, (i64, u64, u64)>,
}

/// The fake runtime; clones share state.
#[derive(Clone, Default)]
pub struct FakeRuntime {
    state: Arc<Mutex<State>>,
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or_default()
}

fn not_found(op: &'static str, what: &str) -> CriError {
    CriError::Rpc {
        op,
        status: tonic::Status::not_found(format!("{what} not found")),
    }
}

fn labels_match(labels: &HashMap<String, String>, selector: &HashMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

impl FakeRuntime {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Makes `image` present without a pull.
    pub fn add_image(&self, image: &str) {
        self.lock().images.insert(image.to_string());
    }

    /// Makes pulls of `image` fail with `message` (until cleared with `None`).
    pub fn set_pull_error(&self, image: &str, message: Option<&str>) {
        let mut s = self.lock();
        match message {
            Some(m) => s.pull_errors.insert(image.to_string(), m.to_string()),
            None => s.pull_errors.remove(image),
        };
    }

    /// Ends a running container with `exit_code`, as if its process exited.
    pub fn exit(&self, container_id: &str, exit_code: i32) {
        let mut s = self.lock();
        let t = s.tick();
        if let Some(c) = s.containers.get_mut(container_id) {
            c.state = ContainerState::ContainerExited;
            c.exit_code = exit_code;
            c.finished_at = t;
            c.reason = if exit_code == 0 { "Completed" } else { "Error" }.into();
        }
    }

    /// The calls made so far, like `RunPodSandbox`, `CreateContainer app`.
    /// Sets what `ListContainerStats` reports for a container.
    pub fn set_container_stats(&self, id: &str, timestamp_ns: i64, cpu_ns: u64, working_set: u64) {
        self.lock()
            .usage
            .insert(id.to_string(), (timestamp_ns, cpu_ns, working_set));
    }

    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// Ids of containers named `name`, oldest first.
    pub fn containers_named(&self, name: &str) -> Vec<String> {
        let s = self.lock();
        let mut v: Vec<(i64, String)> = s
            .containers
            .iter()
            .filter(|(_, c)| c.config.metadata.as_ref().map(|m| m.name.as_str()) == Some(name))
            .map(|(id, c)| (c.created_at, id.clone()))
            .collect();
        v.sort();
        v.into_iter().map(|(_, id)| id).collect()
    }

    /// How many sandboxes and containers exist.
    pub fn counts(&self) -> (usize, usize) {
        let s = self.lock();
        (s.sandboxes.len(), s.containers.len())
    }

    /// The configuration a container was created with.
    pub fn container_config(&self, id: &str) -> Option<ContainerConfig> {
        self.lock().containers.get(id).map(|c| c.config.clone())
    }

    /// The configuration of the only (or newest) sandbox.
    pub fn last_sandbox_config(&self) -> Option<PodSandboxConfig> {
        let s = self.lock();
        s.sandboxes
            .values()
            .max_by_key(|sb| sb.created_at)
            .map(|sb| sb.config.clone())
    }
}

impl State {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:012}", self.next_id)
    }

    /// Strictly increasing wall-clock nanoseconds, so orders are stable.
    fn tick(&mut self) -> i64 {
        self.clock = now_ns().max(self.clock + 1);
        self.clock
    }

    fn call(&mut self, c: String) {
        self.calls.push(c);
    }
}

/// The fake's record of `image`: id `sha256:<name>`, 1 MiB.
fn fake_image(image: &str) -> Image {
    Image {
        id: format!("sha256:{image}"),
        repo_tags: vec![image.into()],
        size: 1 << 20,
        spec: Some(ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container_name(c: &ContainerConfig) -> String {
    c.metadata
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_default()
}

#[async_trait::async_trait]
impl RuntimeService for FakeRuntime {
    async fn version(&self) -> Result<VersionResponse, CriError> {
        Ok(VersionResponse {
            version: "0.1.0".into(),
            runtime_name: "fake".into(),
            runtime_version: "0.1.0".into(),
            runtime_api_version: "v1".into(),
        })
    }

    async fn status(&self) -> Result<RuntimeStatus, CriError> {
        let cond = |t: &str| RuntimeCondition {
            r#type: t.into(),
            status: true,
            reason: String::new(),
            message: String::new(),
        };
        Ok(RuntimeStatus {
            conditions: vec![cond(RUNTIME_READY), cond(NETWORK_READY)],
        })
    }

    async fn run_pod_sandbox(&self, config: PodSandboxConfig) -> Result<String, CriError> {
        let mut s = self.lock();
        let id = s.id("sb");
        let n = s.next_id;
        let created_at = s.tick();
        s.call("RunPodSandbox".into());
        s.sandboxes.insert(
            id.clone(),
            FakeSandbox {
                config,
                state: PodSandboxState::SandboxReady,
                created_at,
                ip: format!("10.88.{}.{}", (n / 250) % 250, n % 250 + 2),
            },
        );
        Ok(id)
    }

    async fn stop_pod_sandbox(&self, id: &str) -> Result<(), CriError> {
        let mut s = self.lock();
        s.call("StopPodSandbox".into());
        let t = s.tick();
        let Some(sb) = s.sandboxes.get_mut(id) else {
            return Err(not_found("StopPodSandbox", id));
        };
        sb.state = PodSandboxState::SandboxNotready;
        for c in s.containers.values_mut().filter(|c| c.sandbox_id == id) {
            if c.state == ContainerState::ContainerRunning {
                c.state = ContainerState::ContainerExited;
                c.exit_code = 137;
                c.finished_at = t;
                c.reason = "Error".into();
            }
        }
        Ok(())
    }

    async fn remove_pod_sandbox(&self, id: &str) -> Result<(), CriError> {
        let mut s = self.lock();
        s.call("RemovePodSandbox".into());
        s.sandboxes.remove(id);
        s.containers.retain(|_, c| c.sandbox_id != id);
        Ok(())
    }

    async fn pod_sandbox_status(&self, id: &str) -> Result<PodSandboxStatus, CriError> {
        let s = self.lock();
        let Some(sb) = s.sandboxes.get(id) else {
            return Err(not_found("PodSandboxStatus", id));
        };
        Ok(PodSandboxStatus {
            id: id.into(),
            metadata: sb.config.metadata.clone(),
            state: sb.state as i32,
            created_at: sb.created_at,
            network: Some(PodSandboxNetworkStatus {
                ip: sb.ip.clone(),
                additional_ips: vec![],
            }),
            labels: sb.config.labels.clone(),
            annotations: sb.config.annotations.clone(),
            ..Default::default()
        })
    }

    async fn list_pod_sandbox(
        &self,
        filter: Option<PodSandboxFilter>,
    ) -> Result<Vec<PodSandbox>, CriError> {
        let s = self.lock();
        let f = filter.unwrap_or_default();
        Ok(s.sandboxes
            .iter()
            .filter(|(id, sb)| {
                (f.id.is_empty() || **id == f.id)
                    && f.state.as_ref().is_none_or(|v| v.state == sb.state as i32)
                    && labels_match(&sb.config.labels, &f.label_selector)
            })
            .map(|(id, sb)| PodSandbox {
                id: id.clone(),
                metadata: sb.config.metadata.clone(),
                state: sb.state as i32,
                created_at: sb.created_at,
                labels: sb.config.labels.clone(),
                annotations: sb.config.annotations.clone(),
                runtime_handler: String::new(),
            })
            .collect())
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        config: ContainerConfig,
        _sandbox_config: PodSandboxConfig,
    ) -> Result<String, CriError> {
        let mut s = self.lock();
        s.call(format!("CreateContainer {}", container_name(&config)));
        if !s.sandboxes.contains_key(sandbox_id) {
            return Err(not_found("CreateContainer", sandbox_id));
        }
        let id = s.id("c");
        let created_at = s.tick();
        let image = config
            .image
            .as_ref()
            .map(|i| i.image.clone())
            .unwrap_or_default();
        s.containers.insert(
            id.clone(),
            FakeContainer {
                sandbox_id: sandbox_id.into(),
                image_ref: if image.starts_with("sha256:") {
                    image.clone()
                } else {
                    format!("sha256:{image}")
                },
                config,
                state: ContainerState::ContainerCreated,
                created_at,
                started_at: 0,
                finished_at: 0,
                exit_code: 0,
                reason: String::new(),
            },
        );
        // As containerd, the (empty) log file exists from the creation on.
        if let Some(c) = s.containers.get(&id) {
            let path = full_log_path(&s, c);
            let p = std::path::Path::new(&path);
            if p.is_absolute() {
                if let Some(dir) = p.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                let _ = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p);
            }
        }
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<(), CriError> {
        let mut s = self.lock();
        let t = s.tick();
        let Some(c) = s.containers.get_mut(id) else {
            return Err(not_found("StartContainer", id));
        };
        c.state = ContainerState::ContainerRunning;
        c.started_at = t;
        let name = container_name(&c.config);
        s.call(format!("StartContainer {name}"));
        Ok(())
    }

    async fn stop_container(&self, id: &str, timeout: i64) -> Result<(), CriError> {
        let mut s = self.lock();
        let t = s.tick();
        let Some(c) = s.containers.get_mut(id) else {
            return Err(not_found("StopContainer", id));
        };
        if c.state == ContainerState::ContainerRunning {
            c.state = ContainerState::ContainerExited;
            c.exit_code = 137;
            c.finished_at = t;
            c.reason = "Error".into();
        }
        let name = container_name(&c.config);
        s.call(format!("StopContainer {name} {timeout}"));
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<(), CriError> {
        let mut s = self.lock();
        if let Some(c) = s.containers.remove(id) {
            s.call(format!("RemoveContainer {}", container_name(&c.config)));
        }
        Ok(())
    }

    async fn list_containers(
        &self,
        filter: Option<ContainerFilter>,
    ) -> Result<Vec<Container>, CriError> {
        let s = self.lock();
        let f = filter.unwrap_or_default();
        Ok(s.containers
            .iter()
            .filter(|(id, c)| {
                (f.id.is_empty() || **id == f.id)
                    && (f.pod_sandbox_id.is_empty() || c.sandbox_id == f.pod_sandbox_id)
                    && f.state.as_ref().is_none_or(|v| v.state == c.state as i32)
                    && labels_match(&c.config.labels, &f.label_selector)
            })
            .map(|(id, c)| Container {
                id: id.clone(),
                pod_sandbox_id: c.sandbox_id.clone(),
                metadata: c.config.metadata.clone(),
                image: c.config.image.clone(),
                image_ref: c.image_ref.clone(),
                state: c.state as i32,
                created_at: c.created_at,
                labels: c.config.labels.clone(),
                annotations: c.config.annotations.clone(),
                ..Default::default()
            })
            .collect())
    }

    async fn list_container_stats(
        &self,
        filter: Option<api::ContainerStatsFilter>,
    ) -> Result<Vec<api::ContainerStats>, CriError> {
        let s = self.lock();
        let filter = filter.unwrap_or_default();
        let v = |value| Some(api::UInt64Value { value });
        Ok(s.containers
            .iter()
            .filter(|(id, c)| {
                c.state != ContainerState::ContainerExited
                    && (filter.id.is_empty() || filter.id == **id)
                    && (filter.pod_sandbox_id.is_empty() || filter.pod_sandbox_id == c.sandbox_id)
                    && labels_match(&c.config.labels, &filter.label_selector)
            })
            .map(|(id, c)| {
                let (ts, cpu, ws) = s.usage.get(id).copied().unwrap_or((now_ns(), 0, 0));
                api::ContainerStats {
                    attributes: Some(api::ContainerAttributes {
                        id: id.clone(),
                        metadata: c.config.metadata.clone(),
                        labels: c.config.labels.clone(),
                        annotations: c.config.annotations.clone(),
                    }),
                    cpu: Some(api::CpuUsage {
                        timestamp: ts,
                        usage_core_nano_seconds: v(cpu),
                        usage_nano_cores: None,
                    }),
                    memory: Some(api::MemoryUsage {
                        timestamp: ts,
                        working_set_bytes: v(ws),
                        usage_bytes: v(ws),
                        ..Default::default()
                    }),
                    writable_layer: Some(api::FilesystemUsage {
                        timestamp: ts,
                        used_bytes: v(0),
                        inodes_used: v(0),
                        ..Default::default()
                    }),
                    swap: None,
                }
            })
            .collect())
    }

    async fn container_status(&self, id: &str) -> Result<ContainerStatus, CriError> {
        let s = self.lock();
        let Some(c) = s.containers.get(id) else {
            return Err(not_found("ContainerStatus", id));
        };
        Ok(ContainerStatus {
            id: id.into(),
            metadata: c
                .config
                .metadata
                .clone()
                .or(Some(ContainerMetadata::default())),
            state: c.state as i32,
            created_at: c.created_at,
            started_at: c.started_at,
            finished_at: c.finished_at,
            exit_code: c.exit_code,
            image: c.config.image.clone(),
            image_ref: c.image_ref.clone(),
            reason: c.reason.clone(),
            labels: c.config.labels.clone(),
            annotations: c.config.annotations.clone(),
            log_path: full_log_path(&s, c),
            mounts: c.config.mounts.clone(),
            ..Default::default()
        })
    }

    /// Creates the log file anew when the container runs (what containerd
    /// does after the kubelet renamed the old one).
    async fn reopen_container_log(&self, id: &str) -> Result<(), CriError> {
        let mut s = self.lock();
        let Some(c) = s.containers.get(id).cloned() else {
            return Err(not_found("ReopenContainerLog", id));
        };
        s.call(format!("ReopenContainerLog {}", container_name(&c.config)));
        if c.state != ContainerState::ContainerRunning {
            return Err(CriError::Rpc {
                op: "ReopenContainerLog",
                status: tonic::Status::failed_precondition("container is not running"),
            });
        }
        let path = full_log_path(&s, &c);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| CriError::Rpc {
                op: "ReopenContainerLog",
                status: tonic::Status::internal(format!("opening {path}: {e}")),
            })?;
        Ok(())
    }
}

/// The log path as containerd reports it: under the sandbox's log
/// directory when it has one.
fn full_log_path(s: &State, c: &FakeContainer) -> String {
    match s.sandboxes.get(&c.sandbox_id) {
        Some(sb) if !sb.config.log_directory.is_empty() && !c.config.log_path.is_empty() => {
            std::path::Path::new(&sb.config.log_directory)
                .join(&c.config.log_path)
                .to_string_lossy()
                .into_owned()
        }
        _ => c.config.log_path.clone(),
    }
}

#[async_trait::async_trait]
impl ImageService for FakeRuntime {
    /// One image filesystem at `/`, holding 1 MiB per image.
    async fn image_fs_info(&self) -> Result<Vec<api::FilesystemUsage>, CriError> {
        let s = self.lock();
        let n = s.images.len() as u64;
        Ok(vec![api::FilesystemUsage {
            timestamp: now_ns(),
            fs_id: Some(api::FilesystemIdentifier {
                mountpoint: "/".into(),
            }),
            used_bytes: Some(api::UInt64Value { value: n << 20 }),
            inodes_used: Some(api::UInt64Value { value: n }),
        }])
    }

    async fn image_status(&self, image: &str) -> Result<Option<Image>, CriError> {
        let s = self.lock();
        Ok(s.images.contains(image).then(|| fake_image(image)))
    }

    async fn list_images(&self) -> Result<Vec<Image>, CriError> {
        let s = self.lock();
        let mut out: Vec<Image> = s.images.iter().map(|i| fake_image(i)).collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    async fn remove_image(&self, id: &str) -> Result<(), CriError> {
        let mut s = self.lock();
        let name = id.strip_prefix("sha256:").unwrap_or(id).to_string();
        s.call(format!("RemoveImage {name}"));
        s.images.remove(&name);
        Ok(())
    }

    async fn pull_image(
        &self,
        image: &str,
        _sandbox_config: Option<PodSandboxConfig>,
    ) -> Result<String, CriError> {
        let mut s = self.lock();
        s.call(format!("PullImage {image}"));
        if let Some(m) = s.pull_errors.get(image) {
            return Err(CriError::Rpc {
                op: "PullImage",
                status: tonic::Status::unknown(m.clone()),
            });
        }
        s.images.insert(image.to_string());
        Ok(format!("sha256:{image}"))
    }
}
