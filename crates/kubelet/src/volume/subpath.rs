//! subPath and subPathExpr (upstream's `kubelet_pods.go` `makeMounts` and
//! `pkg/volume/util/subpath`): the path must be relative without `..`, is
//! created inside the volume when missing, and after resolving every
//! symlink it must still lie inside the volume.
//!
//! Upstream additionally bind-mounts the checked path into
//! `volume-subpaths/` through an fd opened without following symlinks, so a
//! container cannot swap a component for a symlink between the check and
//! the runtime's mount; here the resolved path is handed to the runtime
//! directly, which leaves that window open.

use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

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
}
