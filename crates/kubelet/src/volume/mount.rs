//! The few mount operations the volume plugins need (upstream's
//! `k8s.io/mount-utils`): tmpfs for memory-backed volumes, the mount table,
//! and unmounting what is left under a pod's directory.

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};

use rustix::mount::{MountFlags, UnmountFlags};

/// A mountinfo path with its octal escapes (`\040` for a space) decoded.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = oct
                    .iter()
                    .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every mount point of this mount namespace.
pub fn mount_points() -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return vec![];
    };
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .collect()
}

pub fn is_mount_point(dir: &Path) -> bool {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    mount_points().contains(&dir)
}

/// Mounts a tmpfs on `dir` (`size=<bytes>` when given), unless one is
/// there already.
pub fn mount_tmpfs(dir: &Path, size: Option<u64>) -> io::Result<()> {
    if is_mount_point(dir) {
        return Ok(());
    }
    let data = match size {
        Some(s) => Some(CString::new(format!("size={s}")).map_err(io::Error::other)?),
        None => None,
    };
    rustix::mount::mount("tmpfs", dir, "tmpfs", MountFlags::empty(), data.as_deref())
        .map_err(io::Error::from)
}

/// Unmounts (lazily) every mount at or below `dir`, deepest first.
pub fn unmount_all_under(dir: &Path) {
    let Ok(dir) = dir.canonicalize() else {
        return;
    };
    // A path can carry stacked mounts (a subPath bound again over an old
    // bind); each pass takes the top one off, so repeat while any is left.
    for _ in 0..8 {
        let mut under: Vec<PathBuf> = mount_points()
            .into_iter()
            .filter(|m| m.starts_with(&dir))
            .collect();
        if under.is_empty() {
            return;
        }
        under.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
        under.dedup();
        for m in under {
            if let Err(e) = rustix::mount::unmount(&m, UnmountFlags::DETACH) {
                tracing::warn!(path = %m.display(), error = %e, "unmounting a volume");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/x\\"), "/x\\");
        assert!(mount_points().iter().any(|m| m == Path::new("/")));
    }
}
