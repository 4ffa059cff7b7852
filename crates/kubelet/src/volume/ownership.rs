//! A pod's `fsGroup` applied to its volumes' files (upstream's
//! `pkg/volume/volume_linux.go` `SetVolumeOwnership`): every file and
//! directory gets the group, group read (and write unless the volume is
//! read-only), directories also group search and setgid so new files
//! inherit the group. Symlinks get the group but never a chmod (it would
//! change their target). `fsGroupChangePolicy: OnRootMismatch` skips the
//! walk when the volume's root already has the group and those bits.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use k8s_openapi::api::core::v1::Pod;

const RW_MASK: u32 = 0o660;
const RO_MASK: u32 = 0o440;
const EXEC_MASK: u32 = 0o110;
const SETGID: u32 = 0o2000;

/// `fsGroupChangePolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangePolicy {
    Always,
    OnRootMismatch,
}

/// Whether the volume's files are meant to be written through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    ReadOnly,
}

/// The pod's `fsGroup` and change policy, when it has one.
pub fn pod_fs_group(pod: &Pod) -> Option<(u32, ChangePolicy)> {
    let sc = pod.spec.as_ref()?.security_context.as_ref()?;
    let gid = u32::try_from(sc.fs_group?).ok()?;
    let policy = match sc.fs_group_change_policy.as_deref() {
        Some("OnRootMismatch") => ChangePolicy::OnRootMismatch,
        _ => ChangePolicy::Always,
    };
    Some((gid, policy))
}

fn mask(access: Access) -> u32 {
    match access {
        Access::ReadWrite => RW_MASK,
        Access::ReadOnly => RO_MASK,
    }
}

/// Upstream's `requiresPermissionChange`: the root lacks the group, the
/// group bits, search or setgid.
fn root_mismatch(dir: &Path, gid: u32, access: Access) -> io::Result<bool> {
    let md = std::fs::metadata(dir)?;
    if md.gid() != gid || !md.is_dir() {
        return Ok(true);
    }
    let want = mask(access) | EXEC_MASK;
    let mode = md.permissions().mode();
    Ok(mode & want != want || mode & SETGID == 0)
}

fn change(path: &Path, md: &std::fs::Metadata, gid: u32, access: Access) -> io::Result<()> {
    std::os::unix::fs::lchown(path, None, Some(gid))?;
    if md.file_type().is_symlink() {
        return Ok(());
    }
    let mut add = mask(access);
    if md.is_dir() {
        add |= SETGID | EXEC_MASK;
    }
    let mode = md.permissions().mode() & 0o7777;
    if mode | add != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode | add))?;
    }
    Ok(())
}

fn walk(path: &Path, gid: u32, access: Access) -> io::Result<()> {
    let md = std::fs::symlink_metadata(path)?;
    change(path, &md, gid, access)?;
    if md.is_dir() {
        for e in std::fs::read_dir(path)? {
            walk(&e?.path(), gid, access)?;
        }
    }
    Ok(())
}

/// Applies `gid` to everything under `dir` (see the module comment).
pub fn set_volume_ownership(
    dir: &Path,
    gid: u32,
    policy: ChangePolicy,
    access: Access,
) -> io::Result<()> {
    if policy == ChangePolicy::OnRootMismatch && !root_mismatch(dir, gid, access)? {
        tracing::debug!(dir = %dir.display(), "volume root already owned by the fsGroup, skipping");
        return Ok(());
    }
    walk(dir, gid, access)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }
    fn gid(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().gid()
    }

    #[test]
    fn group_bits_setgid_and_symlinks_left_alone() {
        let d = tempfile::tempdir().unwrap();
        let vol = d.path().join("vol");
        std::fs::create_dir_all(vol.join("sub")).unwrap();
        std::fs::set_permissions(&vol, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(vol.join("sub/f"), "x").unwrap();
        std::fs::set_permissions(vol.join("sub/f"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        let outside = d.path().join("outside");
        std::fs::write(&outside, "o").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&outside, vol.join("link")).unwrap();

        set_volume_ownership(&vol, 4321, ChangePolicy::Always, Access::ReadWrite).unwrap();
        assert_eq!(mode(&vol), 0o2770);
        assert_eq!(mode(&vol.join("sub")) & 0o2070, 0o2070);
        assert_eq!(mode(&vol.join("sub/f")), 0o660);
        for p in [
            &vol,
            &vol.join("sub"),
            &vol.join("sub/f"),
            &vol.join("link"),
        ] {
            assert_eq!(gid(p), 4321, "{}", p.display());
        }
        assert_eq!(mode(&outside), 0o600, "a symlink's target is not chmodded");
        assert_ne!(gid(&outside), 4321, "nor chowned");

        // Read-only volumes get group read only.
        let ro = d.path().join("ro");
        std::fs::create_dir_all(&ro).unwrap();
        std::fs::write(ro.join("f"), "x").unwrap();
        std::fs::set_permissions(ro.join("f"), std::fs::Permissions::from_mode(0o400)).unwrap();
        set_volume_ownership(&ro, 4321, ChangePolicy::Always, Access::ReadOnly).unwrap();
        assert_eq!(mode(&ro.join("f")), 0o440);
    }

    #[test]
    fn on_root_mismatch_walks_only_when_the_root_differs() {
        let d = tempfile::tempdir().unwrap();
        let vol = d.path().join("vol");
        std::fs::create_dir_all(&vol).unwrap();
        std::fs::write(vol.join("f"), "x").unwrap();
        set_volume_ownership(&vol, 5000, ChangePolicy::OnRootMismatch, Access::ReadWrite).unwrap();
        assert_eq!(gid(&vol.join("f")), 5000);
        // The root matches: a file with another group stays as it is.
        std::os::unix::fs::lchown(vol.join("f"), None, Some(0)).unwrap();
        set_volume_ownership(&vol, 5000, ChangePolicy::OnRootMismatch, Access::ReadWrite).unwrap();
        assert_eq!(gid(&vol.join("f")), 0);
        // Always walks regardless.
        set_volume_ownership(&vol, 5000, ChangePolicy::Always, Access::ReadWrite).unwrap();
        assert_eq!(gid(&vol.join("f")), 5000);
        // Root lost setgid: a mismatch again.
        std::os::unix::fs::lchown(vol.join("f"), None, Some(0)).unwrap();
        std::fs::set_permissions(&vol, std::fs::Permissions::from_mode(0o770)).unwrap();
        set_volume_ownership(&vol, 5000, ChangePolicy::OnRootMismatch, Access::ReadWrite).unwrap();
        assert_eq!(gid(&vol.join("f")), 5000);
    }
}
