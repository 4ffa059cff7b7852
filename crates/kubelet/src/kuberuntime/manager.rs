//! Carries out a sync's actions over CRI (upstream's `kuberuntime_manager.go`
//! `SyncPod`/`KillPod`, `kuberuntime_container.go` `startContainer`, and
//! `pkg/kubelet/images/image_manager.go` `EnsureImageExists`). Failures
//! become the waiting reasons the status shows (ErrImagePull,
//! ImagePullBackOff, CrashLoopBackOff, CreateContainerConfigError, …);
//! back-offs tell the pod worker when to look again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::{Container, Pod};

use crate::backoff::Backoff;
use crate::cri::api::ContainerState;
use crate::cri::{CriError, ImageService, RuntimeService};
use crate::logs;

use super::actions::{compute_pod_actions, ToStart};
use super::container::{generate_container_config, ContainerSettings, EnvSources};
use super::labels::{self, pod_desc, pod_name, pod_namespace, pod_uid, ContainerType};
use super::pod_status::{get_pod_status, ContainerStatus, PodRuntimeStatus};
use super::sandbox::{generate_pod_sandbox_config, SandboxSettings};
use crate::volume::PodVolumes;

/// A reason and message shown in a container's `waiting` state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
}

/// An event for the pod (`kubectl describe pod` shows them), published by
/// the worker: upstream's reasons and messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodEvent {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

/// What a sync left for the status and the worker.
#[derive(Debug, Clone, Default)]
pub struct SyncResult {
    /// Events to publish, in order.
    pub events: Vec<PodEvent>,
    /// Containers that could not be started, by name.
    pub waiting: HashMap<String, Waiting>,
    /// When a back-off ends: sync again then.
    pub requeue_after: Option<Duration>,
    /// A sandbox-level failure (the worker retries).
    pub error: Option<String>,
}

impl SyncResult {
    fn event(&mut self, warning: bool, reason: &'static str, message: String) {
        self.events.push(PodEvent {
            warning,
            reason,
            message,
        });
    }

    fn requeue(&mut self, d: Duration) {
        self.requeue_after = Some(self.requeue_after.map_or(d, |r| r.min(d)));
    }
    fn wait(&mut self, name: &str, reason: &str, message: String) {
        self.waiting.insert(
            name.into(),
            Waiting {
                reason: reason.into(),
                message,
            },
        );
    }
}

/// The runtime manager: the CRI services, the settings that shape
/// configurations, and the back-offs.
pub struct RuntimeManager {
    pub runtime: Arc<dyn RuntimeService>,
    pub images: Arc<dyn ImageService>,
    pub sandbox: SandboxSettings,
    pub container: ContainerSettings,
    backoff: Mutex<Backoff>,
}

fn time_of(ns: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns.max(0) as u64)
}

/// Upstream's default pull policy: Always for `:latest` or no tag.
pub fn pull_policy(c: &Container) -> &str {
    if let Some(p) = c.image_pull_policy.as_deref() {
        return p;
    }
    let image = c.image.as_deref().unwrap_or_default();
    let name = image.split('@').next().unwrap_or_default();
    let last = name.rsplit('/').next().unwrap_or_default();
    match last.split_once(':') {
        Some((_, "latest")) | None if !image.contains('@') => "Always",
        _ => "IfNotPresent",
    }
}

impl RuntimeManager {
    pub fn new(
        runtime: Arc<dyn RuntimeService>,
        images: Arc<dyn ImageService>,
        sandbox: SandboxSettings,
        container: ContainerSettings,
    ) -> Self {
        Self {
            runtime,
            images,
            sandbox,
            container,
            backoff: Mutex::new(Backoff::default()),
        }
    }

    fn backoff(&self) -> std::sync::MutexGuard<'_, Backoff> {
        match self.backoff.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The runtime's view of the pod.
    pub async fn pod_status(&self, uid: &str) -> Result<PodRuntimeStatus, CriError> {
        get_pod_status(self.runtime.as_ref(), uid).await
    }

    /// One sync of a pod that should run (upstream's `SyncPod`).
    pub async fn sync_pod(
        &self,
        pod: &Pod,
        rs: &PodRuntimeStatus,
        sources: &EnvSources,
        volumes: &PodVolumes,
        now: SystemTime,
    ) -> SyncResult {
        let mut result = SyncResult::default();
        let actions = compute_pod_actions(pod, rs);
        tracing::debug!(pod = %pod_desc(pod), ?actions, "sync");
        if actions.kill_pod {
            if let Err(e) = self.kill_pod(rs, 2).await {
                result.error = Some(format!("killing pod: {e}"));
                return result;
            }
        }
        let Some(spec) = &pod.spec else {
            return result;
        };
        let (sandbox_id, sandbox_config, pod_ips) = match actions.create_sandbox {
            Some(attempt) => {
                let config = generate_pod_sandbox_config(pod, attempt, &self.sandbox);
                if let Err(e) = std::fs::create_dir_all(&config.log_directory) {
                    tracing::warn!(pod = %pod_desc(pod), dir = %config.log_directory, error = %e, "creating the pod log directory");
                }
                let id = match self.runtime.run_pod_sandbox(config.clone()).await {
                    Ok(id) => id,
                    Err(e) => {
                        let msg = format!("Failed to create pod sandbox: {e}");
                        result.event(true, "FailedCreatePodSandBox", msg.clone());
                        result.error = Some(msg);
                        return result;
                    }
                };
                let ips = match self.runtime.pod_sandbox_status(&id).await {
                    Ok(st) => st
                        .network
                        .map(|n| {
                            let mut v: Vec<String> =
                                Some(n.ip).into_iter().filter(|i| !i.is_empty()).collect();
                            v.extend(n.additional_ips.into_iter().map(|i| i.ip));
                            v
                        })
                        .unwrap_or_default(),
                    Err(e) => {
                        result.error = Some(format!("sandbox status: {e}"));
                        return result;
                    }
                };
                (id, config, ips)
            }
            None => match rs.ready_sandbox() {
                Some(sb) => (
                    sb.id.clone(),
                    generate_pod_sandbox_config(pod, sb.attempt, &self.sandbox),
                    sb.ips.clone(),
                ),
                None => return result,
            },
        };
        for (id, name) in &actions.containers_to_kill {
            tracing::info!(pod = %pod_desc(pod), container = %name, "container spec changed, restarting it");
            if let Err(e) = self
                .runtime
                .stop_container(id, labels::termination_grace_period(pod))
                .await
            {
                result.error = Some(format!("stopping container {name}: {e}"));
                return result;
            }
        }
        let mut settings = self.container.clone();
        settings.pod_ips = pod_ips;
        // With a new sandbox nothing of the old one counts (upstream starts over).
        let fresh = actions.create_sandbox.is_some();
        for what in &actions.containers_to_start {
            let (c, ty) = match *what {
                ToStart::Init(i) => match spec.init_containers.as_ref().and_then(|v| v.get(i)) {
                    Some(c) => (c, ContainerType::Init),
                    None => continue,
                },
                ToStart::Regular(i) => match spec.containers.get(i) {
                    Some(c) => (c, ContainerType::Regular),
                    None => continue,
                },
            };
            let started = self
                .start_container(
                    pod,
                    c,
                    ty,
                    rs,
                    fresh,
                    (&sandbox_id, &sandbox_config),
                    (sources, volumes),
                    &settings,
                    now,
                    &mut result,
                )
                .await;
            // Init containers run one at a time; a failure stops the rest.
            if ty == ContainerType::Init && !started {
                break;
            }
        }
        result
    }

    /// Pulls the image as the policy says (upstream's `EnsureImageExists`);
    /// `Err` carries the waiting reason.
    async fn ensure_image(
        &self,
        pod: &Pod,
        c: &Container,
        sandbox_config: &crate::cri::api::PodSandboxConfig,
        now: SystemTime,
        result: &mut SyncResult,
    ) -> Option<String> {
        let image = c.image.clone().unwrap_or_default();
        let policy = pull_policy(c);
        if policy != "Always" {
            match self.images.image_status(&image).await {
                Ok(Some(img)) => {
                    result.event(
                        false,
                        "Pulled",
                        format!("Container image \"{image}\" already present on machine"),
                    );
                    return Some(img.id);
                }
                Ok(None) if policy == "Never" => {
                    result.wait(
                        &c.name,
                        "ErrImageNeverPull",
                        format!(
                            "Container image \"{image}\" is not present with pull policy of Never"
                        ),
                    );
                    return None;
                }
                Ok(None) => {}
                Err(e) => {
                    result.wait(
                        &c.name,
                        "ImageInspectError",
                        format!("Failed to inspect image \"{image}\": {e}"),
                    );
                    return None;
                }
            }
        }
        let key = format!("pull/{}/{image}", pod_uid(pod));
        let left = self.backoff().in_backoff_since_update(&key, now);
        if let Some(left) = left {
            result.wait(
                &c.name,
                "ImagePullBackOff",
                format!("Back-off pulling image \"{image}\""),
            );
            result.event(
                false,
                "BackOff",
                format!("Back-off pulling image \"{image}\""),
            );
            result.requeue(left);
            return None;
        }
        result.event(false, "Pulling", format!("Pulling image \"{image}\""));
        let started = std::time::Instant::now();
        match self
            .images
            .pull_image(&image, Some(sandbox_config.clone()))
            .await
        {
            Ok(r) => {
                self.backoff().reset(&key);
                result.event(
                    false,
                    "Pulled",
                    format!(
                        "Successfully pulled image \"{image}\" in {:.3}s",
                        started.elapsed().as_secs_f64()
                    ),
                );
                Some(r)
            }
            Err(e) => {
                let mut b = self.backoff();
                b.next(&key, now);
                result.requeue(b.get(&key));
                drop(b);
                tracing::info!(pod = %pod_desc(pod), %image, error = %e, "pulling image failed");
                result.event(
                    true,
                    "Failed",
                    format!("Failed to pull image \"{image}\": {e}"),
                );
                result.event(true, "Failed", "Error: ErrImagePull".into());
                result.wait(
                    &c.name,
                    "ErrImagePull",
                    format!("failed to pull and unpack image \"{image}\": {e}"),
                );
                None
            }
        }
    }

    /// Starts one container (upstream's `startContainer`), honouring the
    /// crash-loop back-off; whether it started.
    #[allow(clippy::too_many_arguments)]
    async fn start_container(
        &self,
        pod: &Pod,
        c: &Container,
        ty: ContainerType,
        rs: &PodRuntimeStatus,
        fresh_sandbox: bool,
        (sandbox_id, sandbox_config): (&str, &crate::cri::api::PodSandboxConfig),
        (sources, volumes): (&EnvSources, &PodVolumes),
        settings: &ContainerSettings,
        now: SystemTime,
        result: &mut SyncResult,
    ) -> bool {
        let latest = rs.latest(&c.name);
        let key = format!("{}/{}", pod_uid(pod), c.name);
        if let Some(last) = latest.filter(|l| l.state == ContainerState::ContainerExited) {
            if !fresh_sandbox || last.finished_at > 0 {
                let mut b = self.backoff();
                if let Some(left) = b.in_backoff_since(&key, time_of(last.finished_at), now) {
                    let d = b.get(&key);
                    drop(b);
                    result.wait(
                        &c.name,
                        "CrashLoopBackOff",
                        format!(
                            "back-off {} restarting failed container={} pod={}",
                            format_duration(d),
                            c.name,
                            pod_desc(pod)
                        ),
                    );
                    result.requeue(left);
                    result.event(
                        true,
                        "BackOff",
                        format!(
                            "Back-off restarting failed container {} in pod {}",
                            c.name,
                            pod_desc(pod)
                        ),
                    );
                    return false;
                }
                b.next(&key, now);
            }
        }
        let Some(image_ref) = self.ensure_image(pod, c, sandbox_config, now, result).await else {
            return false;
        };
        let restart_count = latest.map(|l| l.restart_count + 1).unwrap_or(0);
        let config = match generate_container_config(
            pod,
            c,
            ty,
            restart_count,
            &image_ref,
            sources,
            volumes,
            settings,
        ) {
            Ok(cfg) => cfg,
            Err(e) => {
                result.wait(&c.name, "CreateContainerConfigError", e.to_string());
                result.event(true, "Failed", format!("Error: {e}"));
                return false;
            }
        };
        let log_path = Path::new(&sandbox_config.log_directory).join(&config.log_path);
        let id = match self
            .runtime
            .create_container(sandbox_id, config, sandbox_config.clone())
            .await
        {
            Ok(id) => id,
            Err(e) => {
                result.wait(&c.name, "CreateContainerError", e.to_string());
                result.event(true, "Failed", format!("Error: {e}"));
                return false;
            }
        };
        result.event(false, "Created", format!("Created container: {}", c.name));
        if let Err(e) = self.runtime.start_container(&id).await {
            result.wait(&c.name, "RunContainerError", e.to_string());
            result.event(true, "Failed", format!("Error: {e}"));
            return false;
        }
        result.event(false, "Started", format!("Started container {}", c.name));
        let link = logs::files::legacy_symlink(
            &self.container_logs_dir(),
            pod_name(pod),
            pod_namespace(pod),
            &c.name,
            &id,
        );
        logs::files::create_legacy_symlink(&link, &log_path);
        // Keep the instance before this one for lastState; older ones go
        // (upstream's container GC keeps one dead instance per container).
        for old in rs.containers.iter().filter(|o| o.name == c.name).skip(1) {
            if let Err(e) = self.remove_container(old).await {
                tracing::debug!(container = %old.id, error = %e, "removing an old container");
            }
        }
        true
    }

    /// Where the `/var/log/containers` links live.
    pub fn container_logs_dir(&self) -> PathBuf {
        logs::files::container_logs_dir(&self.sandbox.pod_logs_dir)
    }

    /// Removes a container with its logs and log link.
    async fn remove_container(&self, c: &ContainerStatus) -> Result<(), CriError> {
        self.runtime.remove_container(&c.id).await?;
        logs::files::remove_container_logs(
            &self.container_logs_dir(),
            Path::new(&c.log_path),
            &c.id,
        );
        Ok(())
    }

    /// Stops every container (with `grace` seconds) and every sandbox of
    /// the pod (upstream's `KillPod`); nothing is removed.
    pub async fn kill_pod(&self, rs: &PodRuntimeStatus, grace: i64) -> Result<(), CriError> {
        let stops = rs
            .containers
            .iter()
            .filter(|c| c.state == ContainerState::ContainerRunning)
            .map(|c| self.runtime.stop_container(&c.id, grace));
        for r in futures::future::join_all(stops).await {
            match r {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            }
        }
        for sb in &rs.sandboxes {
            match self.runtime.stop_pod_sandbox(&sb.id).await {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Removes the pod's containers and sandboxes (after [`Self::kill_pod`]),
    /// and its log directory.
    pub async fn remove_pod(&self, uid: &str, rs: &PodRuntimeStatus) -> Result<(), CriError> {
        for c in &rs.containers {
            match self.remove_container(c).await {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            }
        }
        for sb in &rs.sandboxes {
            match self.runtime.remove_pod_sandbox(&sb.id).await {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            }
        }
        logs::files::remove_pod_log_dirs(&self.sandbox.pod_logs_dir, |u| u != uid);
        Ok(())
    }

    /// Forgets the pod's back-offs.
    pub fn forget(&self, uid: &str) {
        let mut b = self.backoff();
        b.reset_prefix(&format!("{uid}/"));
        b.reset_prefix(&format!("pull/{uid}/"));
    }
}

/// Go's duration format for whole seconds and minutes (`10s`, `5m0s`).
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn default_pull_policy_follows_the_tag() {
        let c = |image: &str| Container {
            name: "a".into(),
            image: Some(image.into()),
            ..Default::default()
        };
        assert_eq!(pull_policy(&c("busybox")), "Always");
        assert_eq!(pull_policy(&c("busybox:latest")), "Always");
        assert_eq!(pull_policy(&c("busybox:1.35")), "IfNotPresent");
        assert_eq!(pull_policy(&c("127.0.0.1:5000/busybox")), "Always");
        assert_eq!(pull_policy(&c("busybox@sha256:abc")), "IfNotPresent");
        assert_eq!(format_duration(Duration::from_secs(300)), "5m0s");
        assert_eq!(format_duration(Duration::from_secs(20)), "20s");
    }
}
