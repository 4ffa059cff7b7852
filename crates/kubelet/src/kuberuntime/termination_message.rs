//! Termination messages (upstream's `kuberuntime_container.go`
//! `makeMounts`, `getTerminationMessage`, `readLastStringFromContainerLogs`):
//! each container instance gets an empty file at
//! `<root>/pods/<uid>/containers/<name>/<random>` mounted at its
//! `terminationMessagePath`; once it exited, the last 4 KiB of that file
//! become its terminated state's message, and with
//! `FallbackToLogsOnError` a failed container without one gets the last
//! 80 lines (at most 2 KiB) of its log.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::cri::api::ContainerStatus as CriStatus;
use crate::logs::{render, LogOptions};

use super::labels;

/// Upstream's `MaxContainerTerminationMessageLength`.
const MAX_MESSAGE: u64 = 4 * 1024;
/// Upstream's `MaxContainerTerminationMessageLogLines` and `…LogLength`.
const MAX_LOG_LINES: usize = 80;
const MAX_LOG_BYTES: usize = 2 * 1024;

/// Creates the empty file for one instance of `container` (mode 0666 like
/// upstream's, whatever the umask); its host path.
pub fn create_file(root_dir: &Path, pod_uid: &str, container: &str) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let dir = root_dir
        .join("pods")
        .join(pod_uid)
        .join("containers")
        .join(container);
    std::fs::create_dir_all(&dir)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    // Unique per instance: the clock and the process, hashed short.
    let id = format!(
        "{:08x}",
        (nanos as u64 ^ u64::from(std::process::id()).rotate_left(32)) as u32
    );
    let file = dir.join(id);
    std::fs::File::create(&file)?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666))?;
    Ok(file)
}

/// The last `max` bytes of `path`.
fn read_at_most(path: &Path, max: u64) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len > max {
        f.seek(SeekFrom::Start(len - max))?;
    }
    let mut buf = Vec::new();
    f.take(max).read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The last lines of the container's log, as upstream's fallback.
fn from_logs(log_path: &str) -> String {
    let Ok(data) = std::fs::read(log_path) else {
        return String::new();
    };
    let out = render(
        &data,
        &LogOptions {
            tail_lines: Some(MAX_LOG_LINES),
            ..Default::default()
        },
    );
    let start = out.len().saturating_sub(MAX_LOG_BYTES);
    String::from_utf8_lossy(&out[start..]).into_owned()
}

/// The message an exited container leaves (empty when none).
pub fn read(st: &CriStatus) -> String {
    let annotation = |k: &str| st.annotations.get(k).map(String::as_str).unwrap_or("");
    let path = annotation(labels::TERMINATION_MESSAGE_PATH);
    let fallback = annotation(labels::TERMINATION_MESSAGE_POLICY) == "FallbackToLogsOnError"
        && st.exit_code != 0
        && st.reason != "ContainerCannotRun";
    let mut check_logs = fallback;
    let mut message = String::new();
    if !path.is_empty() {
        if let Some(m) = st.mounts.iter().find(|m| m.container_path == path) {
            match read_at_most(Path::new(&m.host_path), MAX_MESSAGE) {
                Ok(data) => {
                    check_logs = fallback && data.is_empty();
                    message = data;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return format!("Error on reading termination log {}: {e}", m.host_path);
                }
            }
        }
    }
    if check_logs {
        message = from_logs(&st.log_path);
    }
    message
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cri::api::Mount;
    use std::collections::HashMap;

    fn status(dir: &Path, policy: &str, exit_code: i32, message: Option<&str>) -> CriStatus {
        let file = create_file(dir, "uid-1", "app").unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(&file).unwrap().permissions()
            ) & 0o777,
            0o666
        );
        if let Some(m) = message {
            std::fs::write(&file, m).unwrap();
        }
        let log = dir.join("0.log");
        let lines: String = (1..=100)
            .map(|i| format!("2026-01-01T00:00:00Z stdout F line {i}\n"))
            .collect();
        std::fs::write(&log, lines).unwrap();
        CriStatus {
            exit_code,
            annotations: HashMap::from([
                (
                    labels::TERMINATION_MESSAGE_PATH.to_string(),
                    "/dev/termination-log".to_string(),
                ),
                (
                    labels::TERMINATION_MESSAGE_POLICY.to_string(),
                    policy.to_string(),
                ),
            ]),
            mounts: vec![Mount {
                container_path: "/dev/termination-log".into(),
                host_path: file.to_string_lossy().into_owned(),
                ..Default::default()
            }],
            log_path: log.to_string_lossy().into_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn the_file_then_the_logs_on_error() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(read(&status(tmp.path(), "File", 1, Some("bye\n"))), "bye\n");
        // File policy: nothing written, nothing said.
        assert_eq!(read(&status(tmp.path(), "File", 1, None)), "");
        // Fallback only for a failure without a message.
        let fb = read(&status(tmp.path(), "FallbackToLogsOnError", 2, None));
        assert!(
            fb.starts_with("line 21\n") && fb.ends_with("line 100\n"),
            "{fb}"
        );
        assert_eq!(
            read(&status(tmp.path(), "FallbackToLogsOnError", 0, None)),
            ""
        );
        assert_eq!(
            read(&status(tmp.path(), "FallbackToLogsOnError", 2, Some("own"))),
            "own"
        );
        // Only the last 4 KiB.
        let long = "x".repeat(5000) + "END";
        let m = read(&status(tmp.path(), "File", 1, Some(&long)));
        assert_eq!(m.len(), 4096);
        assert!(m.ends_with("END"));
    }
}
