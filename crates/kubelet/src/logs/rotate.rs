//! Container log rotation (upstream's `pkg/kubelet/logs`
//! `container_log_manager.go`): every `containerLogMonitorInterval` the
//! log of each running container is measured; one at or over
//! `containerLogMaxSize` is renamed to `<log>.<YYYYmmdd-HHMMSS>` and the
//! runtime reopens a new file (CRI `ReopenContainerLog`). Older rotated
//! files are gzip-compressed, and only `containerLogMaxFiles` files are
//! kept per container, counting the current one.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use crate::cri::api::ContainerState;
use crate::cri::{CriError, RuntimeService};

const COMPRESS_SUFFIX: &str = ".gz";
const TMP_SUFFIX: &str = ".tmp";

/// When and how logs rotate (upstream's `LogRotatePolicy` and the workers
/// and interval around it).
#[derive(Debug, Clone, PartialEq)]
pub struct LogRotatePolicy {
    /// Bytes at which a log rotates; negative turns rotation off.
    pub max_size: i64,
    /// Files kept per container, the current one included.
    pub max_files: usize,
    /// Containers handled at once.
    pub max_workers: usize,
    /// How often logs are measured.
    pub monitor_interval: Duration,
}

impl Default for LogRotatePolicy {
    fn default() -> Self {
        Self {
            max_size: 10 * 1024 * 1024,
            max_files: 5,
            max_workers: 1,
            monitor_interval: Duration::from_secs(10),
        }
    }
}

impl LogRotatePolicy {
    /// Upstream's checks of the configuration, with its messages.
    pub fn validate(&self) -> Result<(), String> {
        let mut errs = vec![];
        if self.max_workers < 1 {
            errs.push(
                "invalid configuration: containerLogMaxWorkers must be greater than or equal to 1",
            );
        }
        if self.monitor_interval < Duration::from_secs(3) {
            errs.push("invalid configuration: containerLogMonitorInterval must be a positive time duration greater than or equal to 3s");
        }
        if self.max_files <= 1 {
            errs.push("invalid configuration: containerLogMaxFiles must be greater than 1");
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.join(", "))
        }
    }
}

/// `containerLogMaxSize` in bytes (upstream's `parseMaxSize`: a quantity
/// with a whole number of bytes).
pub fn parse_max_size(v: &str) -> Result<i64, String> {
    apimachinery::quantity::parse_f64(v)
        .filter(|b| b.fract() == 0.0 && b.abs() < i64::MAX as f64)
        .map(|b| b as i64)
        .ok_or_else(|| format!("failed to parse container log max size {v:?}"))
}

/// Rotates the logs of the runtime's running containers.
pub struct ContainerLogManager {
    runtime: Arc<dyn RuntimeService>,
    policy: LogRotatePolicy,
    /// One pass at a time.
    pass: tokio::sync::Mutex<()>,
}

impl ContainerLogManager {
    pub fn new(runtime: Arc<dyn RuntimeService>, policy: LogRotatePolicy) -> Self {
        Self {
            runtime,
            policy,
            pass: tokio::sync::Mutex::new(()),
        }
    }

    /// Rotates every `monitor_interval`; never returns (nothing to do when
    /// rotation is off).
    pub async fn run(self: Arc<Self>) {
        if self.policy.max_size < 0 {
            tracing::info!("container log rotation is off (containerLogMaxSize is negative)");
            return std::future::pending().await;
        }
        tracing::info!(workers = self.policy.max_workers, period = ?self.policy.monitor_interval, "initializing container log rotate workers");
        let mut tick = tokio::time::interval(self.policy.monitor_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.rotate_logs().await {
                tracing::error!(error = %e, "failed to rotate container logs");
            }
        }
    }

    /// One pass over the running containers; how many logs were rotated.
    pub async fn rotate_logs(&self) -> Result<usize, CriError> {
        let _pass = self.pass.lock().await;
        tracing::trace!("starting container log rotation sequence");
        let containers = self.runtime.list_containers(None).await?;
        let ids: Vec<String> = containers
            .into_iter()
            .filter(|c| c.state == ContainerState::ContainerRunning as i32)
            .map(|c| c.id)
            .collect();
        let rotated = futures::stream::iter(ids)
            .map(|id| async move {
                match self.process(&id).await {
                    Ok(rotated) => rotated,
                    Err(e) => {
                        tracing::error!(container_id = %id, error = %e, "failed to rotate log for container");
                        false
                    }
                }
            })
            .buffer_unordered(self.policy.max_workers.max(1))
            .filter(|r| futures::future::ready(*r))
            .count()
            .await;
        Ok(rotated)
    }

    /// Rotates one container's log when it is too big.
    async fn process(&self, id: &str) -> Result<bool, String> {
        let status = self
            .runtime
            .container_status(id)
            .await
            .map_err(|e| format!("failed to get container status: {e}"))?;
        if status.log_path.is_empty() {
            return Ok(false);
        }
        let path = PathBuf::from(&status.log_path);
        let size = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                // Lost (a rotation interrupted by a restart): a new file.
                self.runtime.reopen_container_log(id).await.map_err(|e| {
                    format!("container log doesn't exist, reopen container log failed: {e}")
                })?;
                std::fs::metadata(&path)
                    .map_err(|e| format!("failed to stat container log after reopen: {e}"))?
                    .len()
            }
            Err(e) => {
                return Err(format!(
                    "failed to stat container log {}: {e}",
                    path.display()
                ))
            }
        };
        if (size as i64) < self.policy.max_size {
            tracing::trace!(container_id = %id, size, "log file doesn't need to be rotated");
            return Ok(false);
        }
        let max_files = self.policy.max_files;
        let log = path.clone();
        tokio::task::spawn_blocking(move || prepare(&log, max_files))
            .await
            .map_err(|e| e.to_string())??;
        self.rotate_latest(id, &path).await?;
        tracing::debug!(container_id = %id, path = %path.display(), size, "rotated the container log");
        Ok(true)
    }

    /// Renames the current log and has the runtime open a new one; renames
    /// it back when the runtime cannot.
    async fn rotate_latest(&self, id: &str, log: &Path) -> Result<(), String> {
        let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
        let rotated = PathBuf::from(format!("{}.{stamp}", log.display()));
        std::fs::rename(log, &rotated).map_err(|e| {
            format!(
                "failed to rotate log {:?} to {:?}: {e}",
                log.display(),
                rotated.display()
            )
        })?;
        if let Err(e) = self.runtime.reopen_container_log(id).await {
            if let Err(back) = std::fs::rename(&rotated, log) {
                tracing::error!(rotated = %rotated.display(), log = %log.display(), error = %back, "failed to rename rotated log");
            }
            return Err(format!("failed to reopen container log {id:?}: {e}"));
        }
        Ok(())
    }
}

/// Before a rotation: removes leftovers of failed ones, the oldest rotated
/// files beyond `max_files - 2` (the current file and the one about to be
/// rotated are the other two), and compresses the rest.
fn prepare(log: &Path, max_files: usize) -> Result<(), String> {
    let all = super::files::rotated_files(log)
        .map_err(|e| format!("failed to list the rotated logs of {}: {e}", log.display()))?;
    let (mut in_use, unused) = split_unused(&all);
    for f in unused {
        remove(&f)?;
    }
    in_use.sort();
    let keep = max_files.saturating_sub(2);
    let excess = in_use.len().saturating_sub(keep);
    for f in in_use.drain(..excess) {
        remove(&f)?;
    }
    for f in in_use {
        if !name_of(&f).ends_with(COMPRESS_SUFFIX) {
            compress(&f)?;
        }
    }
    Ok(())
}

fn name_of(p: &Path) -> &str {
    p.file_name().and_then(|n| n.to_str()).unwrap_or_default()
}

/// Temporary files, and rotated files whose compressed copy exists, are
/// leftovers of an interrupted rotation.
fn split_unused(files: &[PathBuf]) -> (Vec<PathBuf>, Vec<PathBuf>) {
    files.iter().cloned().partition(|f| {
        let name = name_of(f);
        if name.ends_with(TMP_SUFFIX) {
            return false;
        }
        if name.ends_with(COMPRESS_SUFFIX) {
            return true;
        }
        let compressed = format!("{name}{COMPRESS_SUFFIX}");
        !files.iter().any(|o| name_of(o) == compressed)
    })
}

fn remove(f: &Path) -> Result<(), String> {
    match std::fs::remove_file(f) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("failed to remove log {}: {e}", f.display())),
    }
}

/// `log` to `log.gz` through `log.gz.tmp`, keeping the file mode.
fn compress(log: &Path) -> Result<(), String> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let err = |what: &str, e: std::io::Error| {
        format!("failed to compress log {}: {what}: {e}", log.display())
    };
    let mode = std::fs::metadata(log)
        .map_err(|e| err("stat", e))?
        .permissions()
        .mode();
    let mut input = std::fs::File::open(log).map_err(|e| err("open", e))?;
    let tmp = PathBuf::from(format!("{}{TMP_SUFFIX}", log.display()));
    let result = (|| {
        let out = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode & 0o7777)
            .open(&tmp)
            .map_err(|e| err("create", e))?;
        let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
        std::io::copy(&mut input, &mut gz).map_err(|e| err("copy", e))?;
        gz.finish().map_err(|e| err("finish", e))?;
        let compressed = PathBuf::from(format!("{}{COMPRESS_SUFFIX}", log.display()));
        std::fs::rename(&tmp, &compressed).map_err(|e| err("rename", e))?;
        std::fs::remove_file(log).map_err(|e| err("remove", e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
