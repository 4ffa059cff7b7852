//! The files around container logs (upstream's `kuberuntime_container.go`
//! `legacyLogSymlink`/`removeContainerLog` and the container GC's
//! `evictPodLogsDirectories`): each started container's log is linked from
//! `/var/log/containers/<pod>_<namespace>_<container>-<id>.log`, where log
//! collectors look; a removed container's logs (rotated ones too) and its
//! link go with it, and a removed pod's log directory with the pod.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Longest file name ext4 allows.
const MAX_FILE_NAME: usize = 255;

/// Where the links live: `containers` beside the pod log directory
/// (`/var/log/containers` for upstream's `/var/log/pods`).
pub fn container_logs_dir(pod_logs_dir: &Path) -> PathBuf {
    pod_logs_dir
        .parent()
        .map(|p| p.join("containers"))
        .unwrap_or_else(|| PathBuf::from("/var/log/containers"))
}

/// The link of one container: `<pod>_<namespace>_<container>-<id>.log`,
/// cut to a legal file name length.
pub fn legacy_symlink(
    dir: &Path,
    pod: &str,
    namespace: &str,
    container: &str,
    container_id: &str,
) -> PathBuf {
    let suffix = ".log";
    let mut name = format!("{pod}_{namespace}_{container}-{container_id}");
    if name.len() > MAX_FILE_NAME - suffix.len() {
        let mut cut = MAX_FILE_NAME - suffix.len();
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name.truncate(cut);
    }
    name.push_str(suffix);
    dir.join(name)
}

/// The link of the container whose log is `log_path`
/// (`<pod logs>/<namespace>_<pod>_<uid>/<container>/<n>.log`).
pub fn legacy_symlink_of(dir: &Path, log_path: &Path, container_id: &str) -> Option<PathBuf> {
    let container_dir = log_path.parent()?;
    let container = container_dir.file_name()?.to_str()?;
    let pod_dir = container_dir.parent()?.file_name()?.to_str()?;
    let mut parts = pod_dir.splitn(3, '_');
    let (namespace, pod) = (parts.next()?, parts.next()?);
    parts.next()?;
    Some(legacy_symlink(dir, pod, namespace, container, container_id))
}

/// Links `link` to `target` when the runtime created the log file.
pub fn create_legacy_symlink(link: &Path, target: &Path) {
    if !target.exists() {
        return;
    }
    if let Some(dir) = link.parent() {
        if let Err(e) = std::fs::create_dir_all(dir) {
            tracing::debug!(dir = %dir.display(), error = %e, "creating the container log link directory");
            return;
        }
    }
    if let Err(e) = std::os::unix::fs::symlink(target, link) {
        if e.kind() != ErrorKind::AlreadyExists {
            tracing::warn!(link = %link.display(), target = %target.display(), error = %e, "linking the container log");
        }
    }
}

fn remove(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "removing a container log"),
    }
}

/// The rotated files of `log` (`<log>.<time>`, `.gz`, `.tmp`), unsorted.
pub fn rotated_files(log: &Path) -> std::io::Result<Vec<PathBuf>> {
    let (Some(dir), Some(name)) = (log.parent(), log.file_name().and_then(|n| n.to_str())) else {
        return Ok(vec![]);
    };
    let prefix = format!("{name}.");
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    Ok(entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .map(|e| e.path())
        .collect())
}

/// Removes a removed container's log, its rotated files and its link
/// (upstream's `removeContainerLog`).
pub fn remove_container_logs(containers_dir: &Path, log_path: &Path, container_id: &str) {
    if log_path.as_os_str().is_empty() {
        return;
    }
    for f in rotated_files(log_path).unwrap_or_default() {
        remove(&f);
    }
    remove(log_path);
    if let Some(link) = legacy_symlink_of(containers_dir, log_path, container_id) {
        remove(&link);
    }
}

/// The pod UID a pod log directory (`<namespace>_<name>_<uid>`) belongs to.
fn pod_uid_of(dir_name: &str) -> Option<&str> {
    let mut parts = dir_name.splitn(3, '_');
    parts.next()?;
    parts.next()?;
    parts.next().filter(|u| !u.is_empty())
}

/// Removes the log directories of pods `keep` does not want kept.
pub fn remove_pod_log_dirs(pod_logs_dir: &Path, keep: impl Fn(&str) -> bool) -> usize {
    let Ok(entries) = std::fs::read_dir(pod_logs_dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.filter_map(Result::ok) {
        let name = e.file_name();
        let Some(uid) = name.to_str().and_then(pod_uid_of) else {
            continue;
        };
        if keep(uid) {
            continue;
        }
        match std::fs::remove_dir_all(e.path()) {
            Ok(()) => {
                tracing::debug!(dir = %e.path().display(), "removed the log directory of a removed pod");
                removed += 1;
            }
            Err(err) => {
                tracing::warn!(dir = %e.path().display(), error = %err, "removing a pod's log directory")
            }
        }
    }
    removed
}

/// Removes links whose log file is gone.
pub fn remove_dangling_symlinks(containers_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(containers_dir) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let path = e.path();
        let is_link = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
        if is_link && !path.exists() {
            remove(&path);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn link_names_follow_upstream() {
        let dir = Path::new("/var/log/containers");
        assert_eq!(
            container_logs_dir(Path::new("/var/log/pods")),
            PathBuf::from("/var/log/containers")
        );
        assert_eq!(
            legacy_symlink(dir, "web", "default", "main", "abc"),
            PathBuf::from("/var/log/containers/web_default_main-abc.log")
        );
        assert_eq!(
            legacy_symlink_of(
                dir,
                Path::new("/var/log/pods/default_web_uid-1/main/0.log"),
                "abc"
            ),
            Some(PathBuf::from(
                "/var/log/containers/web_default_main-abc.log"
            ))
        );
        let long = "x".repeat(300);
        let l = legacy_symlink(dir, &long, "default", "main", "abc");
        assert_eq!(l.file_name().unwrap().len(), 255);
        assert!(l.to_str().unwrap().ends_with("xx.log"));
    }

    #[test]
    fn a_removed_container_takes_its_logs_and_link() {
        let tmp = tempfile::tempdir().unwrap();
        let pods = tmp.path().join("pods");
        let links = container_logs_dir(&pods);
        let cdir = pods.join("default_web_uid-1/main");
        std::fs::create_dir_all(&cdir).unwrap();
        let log = cdir.join("0.log");
        for f in [
            "0.log",
            "0.log.20260101-000000.gz",
            "0.log.20260101-000100",
            "1.log",
        ] {
            std::fs::write(cdir.join(f), "x").unwrap();
        }
        let link = legacy_symlink(&links, "web", "default", "main", "abc");
        create_legacy_symlink(&link, &log);
        assert_eq!(std::fs::read_link(&link).unwrap(), log);
        remove_container_logs(&links, &log, "abc");
        let left: Vec<String> = std::fs::read_dir(&cdir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, vec!["1.log".to_string()]);
        assert!(std::fs::symlink_metadata(&link).is_err());
    }

    #[test]
    fn pod_dirs_and_dangling_links_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let pods = tmp.path().join("pods");
        for d in [
            "default_web_uid-1/main",
            "kube-system_dns_uid-2/dns",
            "stray",
        ] {
            std::fs::create_dir_all(pods.join(d)).unwrap();
        }
        assert_eq!(remove_pod_log_dirs(&pods, |uid| uid == "uid-2"), 1);
        assert!(!pods.join("default_web_uid-1").exists());
        assert!(pods.join("kube-system_dns_uid-2").exists());
        assert!(pods.join("stray").exists());

        let links = container_logs_dir(&pods);
        std::fs::create_dir_all(&links).unwrap();
        let live = pods.join("kube-system_dns_uid-2/dns/0.log");
        std::fs::write(&live, "x").unwrap();
        std::os::unix::fs::symlink(&live, links.join("dns_kube-system_dns-b.log")).unwrap();
        std::os::unix::fs::symlink(
            pods.join("default_web_uid-1/main/0.log"),
            links.join("web_default_main-a.log"),
        )
        .unwrap();
        remove_dangling_symlinks(&links);
        assert!(links.join("dns_kube-system_dns-b.log").exists());
        assert!(std::fs::symlink_metadata(links.join("web_default_main-a.log")).is_err());
    }
}
