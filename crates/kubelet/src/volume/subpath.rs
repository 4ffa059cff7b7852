//! subPath and subPathExpr (upstream's `kubelet_pods.go` `makeMounts` and
//! `pkg/volume/util/subpath`): the path must be relative without `..`, is
//! created inside the volume when missing, and after resolving every
//! symlink it must still lie inside the volume.
//!
//! Like upstream's `doBindSubPath`, [`prepare_safe`] then opens the resolved
//! path one component at a time without following symlinks and bind-mounts
//! that fd at `<pod>/volume-subpaths/<volume>/<container>/<index>`, so a
//! container swapping a component for a symlink after the check cannot
//! redirect the runtime's mount. Where mounting is not permitted the
//! resolved path is used and the window stays open (logged).

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags};

/// The host path of `sub` inside the volume at `volume`.
pub fn resolve(volume: &Path, sub: &str) -> Result<PathBuf, String> {
    let sub_path = Path::new(sub);
    if sub_path.is_absolute() {
        return Err(format!(
            "error SubPath `{sub}` must not be an absolute path"
        ));
    }
    if sub_path.components().any(|c| c == Component::ParentDir) {
        return Err(format!(
            "unable to provision SubPath `{sub}`: must not contain '..'"
        ));
    }
    let base = volume
        .canonicalize()
        .map_err(|e| format!("volume path {}: {e}", volume.display()))?;
    let perm = std::fs::metadata(&base)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o755);
    let mut cur = base.clone();
    for c in sub_path.components() {
        let Component::Normal(name) = c else { continue };
        let next = cur.join(name);
        match std::fs::symlink_metadata(&next) {
            Ok(_) => {
                let resolved = next
                    .canonicalize()
                    .map_err(|e| format!("subPath {sub}: {e}"))?;
                if !resolved.starts_with(&base) {
                    return Err(format!(
                        "subpath {:?} not within volume path {:?}",
                        next.display().to_string(),
                        base.display().to_string()
                    ));
                }
                cur = resolved;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&next)
                    .and_then(|()| {
                        std::fs::set_permissions(&next, std::fs::Permissions::from_mode(perm))
                    })
                    .map_err(|e| format!("failed to create subPath directory {sub}: {e}"))?;
                cur = next;
            }
            Err(e) => return Err(format!("subPath {sub}: {e}")),
        }
    }
    Ok(cur)
}

/// Opens `path` (inside `base`, both resolved) component by component with
/// `O_PATH|O_NOFOLLOW`, refusing symlinks (upstream's `doSafeOpen`).
fn safe_open(base: &Path, path: &Path) -> Result<OwnedFd, String> {
    let rel = path
        .strip_prefix(base)
        .map_err(|_| format!("{} is not within {}", path.display(), base.display()))?;
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut fd = rustix::fs::open(base, flags | OFlags::DIRECTORY, Mode::empty())
        .map_err(|e| format!("open {}: {e}", base.display()))?;
    for c in rel.components() {
        let Component::Normal(name) = c else { continue };
        let next = rustix::fs::openat(&fd, name, flags, Mode::empty())
            .map_err(|e| format!("open {}: {e}", path.display()))?;
        let st = rustix::fs::fstat(&next).map_err(|e| format!("stat {}: {e}", path.display()))?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
            return Err(format!("{} changed to a symlink", path.display()));
        }
        fd = next;
    }
    Ok(fd)
}

/// [`resolve`], then the result bind-mounted through a safely opened fd at
/// `target` (a directory or file created to match); the path to give the
/// runtime.
pub fn prepare_safe(volume: &Path, sub: &str, target: &Path) -> Result<PathBuf, String> {
    let resolved = resolve(volume, sub)?;
    let base = volume
        .canonicalize()
        .map_err(|e| format!("volume path {}: {e}", volume.display()))?;
    let fd = safe_open(&base, &resolved)?;
    let st = rustix::fs::fstat(&fd).map_err(|e| format!("stat {}: {e}", resolved.display()))?;
    let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
    let same_file = |md: &std::fs::Metadata| md.dev() == st.st_dev && md.ino() == st.st_ino;
    // Upstream's prepareSubpathTarget: a bind of the same file from an
    // earlier instance of the container is kept, anything else there is
    // unmounted first.
    if super::mount::is_mount_point(target) {
        if std::fs::metadata(target).is_ok_and(|m| same_file(&m)) {
            return Ok(target.to_path_buf());
        }
        rustix::mount::unmount(target, rustix::mount::UnmountFlags::DETACH)
            .map_err(|e| format!("unmounting {}: {e}", target.display()))?;
    }
    let parent = target.parent().unwrap_or(target);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(parent)
        .map_err(|e| format!("creating {}: {e}", parent.display()))?;
    let made = if is_dir {
        std::fs::DirBuilder::new()
            .mode(0o750)
            .create(target)
            .or_else(|e| if target.is_dir() { Ok(()) } else { Err(e) })
    } else {
        // A file is a mount point for any non-directory (upstream's touch).
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(target)
            .map(|_| ())
    };
    made.map_err(|e| format!("creating {}: {e}", target.display()))?;
    let source = format!("/proc/self/fd/{}", fd.as_raw_fd());
    if let Err(e) = rustix::mount::mount_bind(source.as_str(), target) {
        tracing::warn!(subpath = %resolved.display(), error = %e, "bind-mounting a subPath failed, handing the resolved path to the runtime");
        return Ok(resolved);
    }
    // What got mounted is what was opened (a check upstream does not make;
    // the fd already pins the file, this catches a wrong mount source).
    let mounted =
        std::fs::metadata(target).map_err(|e| format!("stat {}: {e}", target.display()))?;
    if !same_file(&mounted) {
        let _ = rustix::mount::unmount(target, rustix::mount::UnmountFlags::DETACH);
        return Err(format!("subpath {sub:?} changed while it was mounted"));
    }
    Ok(target.to_path_buf())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn subpaths_stay_inside_the_volume() {
        let dir = tempfile::tempdir().unwrap();
        let vol = dir.path().join("vol");
        std::fs::create_dir(&vol).unwrap();
        std::fs::write(vol.join("file"), "x").unwrap();
        let outside = dir.path().join("secret");
        std::fs::create_dir(&outside).unwrap();
        symlink(&outside, vol.join("escape")).unwrap();
        symlink("../..", vol.join("up")).unwrap();
        symlink("file", vol.join("inner")).unwrap();
        let canon = vol.canonicalize().unwrap();

        assert_eq!(resolve(&vol, "file").unwrap(), canon.join("file"));
        assert_eq!(resolve(&vol, "inner").unwrap(), canon.join("file"));
        assert_eq!(resolve(&vol, "new/deep").unwrap(), canon.join("new/deep"));
        assert!(vol.join("new/deep").is_dir());
        assert!(resolve(&vol, "escape")
            .unwrap_err()
            .contains("not within volume path"));
        assert!(resolve(&vol, "escape/x")
            .unwrap_err()
            .contains("not within volume path"));
        assert!(!outside.join("x").exists(), "nothing created outside");
        assert!(resolve(&vol, "up")
            .unwrap_err()
            .contains("not within volume path"));
        assert!(resolve(&vol, "../x")
            .unwrap_err()
            .contains("must not contain '..'"));
        assert!(resolve(&vol, "/etc").unwrap_err().contains("absolute"));
    }

    #[test]
    fn safe_open_refuses_symlinks_and_bind_mounts_the_checked_path() {
        let dir = tempfile::tempdir().unwrap();
        let vol = dir.path().join("vol");
        std::fs::create_dir_all(vol.join("d")).unwrap();
        std::fs::write(vol.join("d/f"), "x").unwrap();
        symlink("d", vol.join("l")).unwrap();
        let base = vol.canonicalize().unwrap();
        assert!(safe_open(&base, &base.join("d/f")).is_ok());
        assert!(safe_open(&base, &base.join("l/f")).is_err());

        let target = dir.path().join("subpaths/v/c/0");
        let got = prepare_safe(&vol, "d", &target).unwrap();
        if got == target {
            // Mounting is allowed here (root): the target shows the volume's files.
            assert_eq!(std::fs::read_to_string(target.join("f")).unwrap(), "x");
            // Again for a restarted container: the bind is kept, not stacked.
            let canon = target.canonicalize().unwrap();
            let count = || {
                super::super::mount::mount_points()
                    .iter()
                    .filter(|m| **m == canon)
                    .count()
            };
            assert_eq!(count(), 1);
            assert_eq!(prepare_safe(&vol, "d", &target).unwrap(), target);
            assert_eq!(count(), 1);
            // A different subPath at the same target replaces the bind.
            std::fs::create_dir_all(vol.join("e")).unwrap();
            std::fs::write(vol.join("e/g"), "y").unwrap();
            assert_eq!(prepare_safe(&vol, "e", &target).unwrap(), target);
            assert_eq!(std::fs::read_to_string(target.join("g")).unwrap(), "y");
            assert_eq!(count(), 1);
            rustix::mount::unmount(&target, rustix::mount::UnmountFlags::DETACH).unwrap();
        } else {
            assert_eq!(got, base.join("d"));
        }
        let file_target = dir.path().join("subpaths/v/c/1");
        let got = prepare_safe(&vol, "d/f", &file_target).unwrap();
        if got == file_target {
            assert_eq!(std::fs::read_to_string(&file_target).unwrap(), "x");
            rustix::mount::unmount(&file_target, rustix::mount::UnmountFlags::DETACH).unwrap();
        }
    }
}
