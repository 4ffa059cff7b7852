//! Writes a volume's files so that readers never see a half-updated set
//! (upstream's `pkg/volume/util/atomic_writer.go`): the files go into a fresh
//! `..<timestamp>` directory, the `..data` symlink is swapped to it with one
//! rename, and each top-level name the user sees is a symlink to
//! `..data/<name>`.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Component, Path, PathBuf};

const DATA_DIR: &str = "..data";
const DATA_DIR_TMP: &str = "..data_tmp";
const MAX_PATH_LENGTH: usize = 4096;
const MAX_FILE_NAME_LENGTH: usize = 255;

/// One file of a volume: its bytes and permission bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProjection {
    pub data: Vec<u8>,
    pub mode: u32,
}

/// Relative path → file.
pub type Payload = BTreeMap<String, FileProjection>;

/// Why a payload could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A path in the payload is not a plain relative path (upstream's
    /// `validatePath` messages).
    #[error("invalid path {path:?}: {why}")]
    InvalidPath { path: String, why: &'static str },
    /// A filesystem operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> WriteError + 'a {
    move |source| WriteError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Upstream's `validatePath`: relative, no `..` element, no leading `..`,
/// within the length limits.
fn validate_path(p: &str) -> Result<(), WriteError> {
    let bad = |why| {
        Err(WriteError::InvalidPath {
            path: p.to_string(),
            why,
        })
    };
    if p.is_empty() {
        return bad("must not be empty");
    }
    if p.len() > MAX_PATH_LENGTH {
        return bad("must be less than or equal to 4096 characters");
    }
    if Path::new(p).is_absolute() {
        return bad("must be relative path");
    }
    if p.split('/').any(|s| s.len() > MAX_FILE_NAME_LENGTH) {
        return bad("must not contain a segment longer than 255 characters");
    }
    if p.split('/').any(|s| s == "..") {
        return bad("must not contain '..'");
    }
    if p.starts_with("..") {
        return bad("must not start with '..'");
    }
    Ok(())
}

/// `filepath.Clean` for a validated relative path.
fn clean(p: &str) -> String {
    Path::new(p)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn top_level(p: &str) -> &str {
    p.split('/').next().unwrap_or(p)
}

/// Writes payloads into `target`, atomically per write.
pub struct AtomicWriter {
    target: PathBuf,
}

impl AtomicWriter {
    pub fn new(target: impl Into<PathBuf>) -> Self {
        Self {
            target: target.into(),
        }
    }

    /// Writes `payload`; whether anything changed (nothing is written when
    /// the current files already are the payload).
    pub fn write(&self, payload: &Payload) -> Result<bool, WriteError> {
        let mut clean_payload = Payload::new();
        for (path, file) in payload {
            validate_path(path)?;
            clean_payload.insert(clean(path), file.clone());
        }
        let payload = clean_payload;
        std::fs::create_dir_all(&self.target).map_err(io_err("creating", &self.target))?;
        let data_link = self.target.join(DATA_DIR);
        let old_dir = std::fs::read_link(&data_link)
            .ok()
            .map(|name| self.target.join(name))
            .filter(|d| d.is_dir());
        let mut to_remove = BTreeSet::new();
        if let Some(old) = &old_dir {
            to_remove = self.paths_to_remove(old, &payload);
            if to_remove.is_empty() && !should_write(old, &payload) {
                // The user-visible links may still be missing (upstream
                // creates them on every write).
                self.create_user_visible_files(&payload)?;
                return Ok(false);
            }
        }
        let ts_dir = self.new_timestamp_dir()?;
        write_payload(&ts_dir, &payload)?;
        self.create_user_visible_files(&payload)?;
        let ts_name = ts_dir
            .file_name()
            .map(PathBuf::from)
            .unwrap_or_else(|| ts_dir.clone());
        let tmp_link = self.target.join(DATA_DIR_TMP);
        match std::fs::remove_file(&tmp_link) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(io_err("removing", &tmp_link)(e))
            }
            _ => {}
        }
        symlink(&ts_name, &tmp_link).map_err(io_err("linking", &tmp_link))?;
        std::fs::rename(&tmp_link, &data_link).map_err(io_err("renaming", &tmp_link))?;
        // Top-level names no longer in the payload lose their links.
        let kept: BTreeSet<&str> = payload.keys().map(|p| top_level(p)).collect();
        for p in &to_remove {
            if !p.contains('/') && !kept.contains(p.as_str()) {
                let link = self.target.join(p);
                if let Err(e) = std::fs::remove_file(&link) {
                    tracing::debug!(path = %link.display(), error = %e, "removing a user-visible path");
                }
            }
        }
        if let Some(old) = old_dir {
            if let Err(e) = std::fs::remove_dir_all(&old) {
                tracing::warn!(dir = %old.display(), error = %e, "removing the previous data directory");
            }
        }
        Ok(true)
    }

    /// Relative paths (files and directories) under the old data directory
    /// that the new payload does not have.
    fn paths_to_remove(&self, old: &Path, payload: &Payload) -> BTreeSet<String> {
        let mut wanted = BTreeSet::new();
        for p in payload.keys() {
            let mut prefix = String::new();
            for seg in p.split('/') {
                if !prefix.is_empty() {
                    prefix.push('/');
                }
                prefix.push_str(seg);
                wanted.insert(prefix.clone());
            }
        }
        let mut found = BTreeSet::new();
        walk(old, "", &mut found);
        found.retain(|p| !wanted.contains(p));
        found
    }

    /// `..YYYY_MM_DD_HH_MM_SS.<random>`, mode 0755 whatever the umask.
    fn new_timestamp_dir(&self) -> Result<PathBuf, WriteError> {
        let stamp = chrono::Utc::now()
            .format("..%Y_%m_%d_%H_%M_%S.")
            .to_string();
        let mut seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
            ^ std::process::id();
        for _ in 0..100 {
            let dir = self.target.join(format!("{stamp}{seed}"));
            match std::fs::create_dir(&dir) {
                Ok(()) => {
                    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
                        .map_err(io_err("chmod", &dir))?;
                    return Ok(dir);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                }
                Err(e) => return Err(io_err("creating", &dir)(e)),
            }
        }
        Err(io_err("creating", &self.target)(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free timestamp directory name",
        )))
    }

    /// `<name>` → `..data/<name>` for every top-level name not yet present.
    fn create_user_visible_files(&self, payload: &Payload) -> Result<(), WriteError> {
        let names: BTreeSet<&str> = payload.keys().map(|p| top_level(p)).collect();
        for name in names {
            let visible = self.target.join(name);
            if std::fs::symlink_metadata(&visible).is_ok() {
                continue;
            }
            symlink(Path::new(DATA_DIR).join(name), &visible)
                .map_err(io_err("linking", &visible))?;
        }
        Ok(())
    }
}

fn walk(dir: &Path, prefix: &str, out: &mut BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&e.path(), &rel, out);
        }
        out.insert(rel);
    }
}

/// Whether any file differs from the payload in bytes or mode.
fn should_write(old: &Path, payload: &Payload) -> bool {
    payload.iter().any(|(p, f)| {
        let path = old.join(p);
        let same_mode = std::fs::symlink_metadata(&path)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o7777 == f.mode);
        !same_mode || std::fs::read(&path).map_or(true, |d| d != f.data)
    })
}

fn write_payload(dir: &Path, payload: &Payload) -> Result<(), WriteError> {
    for (p, f) in payload {
        let path = dir.join(p);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_err("creating", parent))?;
            std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755))
                .map_err(io_err("chmod", parent))?;
        }
        std::fs::write(&path, &f.data).map_err(io_err("writing", &path))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(f.mode & 0o7777))
            .map_err(io_err("chmod", &path))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn file(data: &str, mode: u32) -> FileProjection {
        FileProjection {
            data: data.as_bytes().to_vec(),
            mode,
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn layout_update_and_removal() {
        let dir = tempfile::tempdir().unwrap();
        let w = AtomicWriter::new(dir.path());
        let p: Payload = [
            ("a".to_string(), file("1", 0o644)),
            ("sub/b".to_string(), file("2", 0o600)),
        ]
        .into();
        assert!(w.write(&p).unwrap());
        let data = std::fs::read_link(dir.path().join("..data")).unwrap();
        let ts = data.to_string_lossy().into_owned();
        assert!(ts.starts_with("..20"), "{ts}");
        assert_eq!(
            std::fs::read_link(dir.path().join("a")).unwrap(),
            Path::new("..data/a")
        );
        assert_eq!(
            std::fs::read_link(dir.path().join("sub")).unwrap(),
            Path::new("..data/sub")
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("sub/b")).unwrap(),
            "2"
        );
        let mode = |p: &str| {
            std::fs::metadata(dir.path().join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("a"), 0o644);
        assert_eq!(mode("sub/b"), 0o600);
        assert_eq!(mode(&ts), 0o755);

        // The same payload writes nothing.
        assert!(!w.write(&p).unwrap());
        assert_eq!(std::fs::read_link(dir.path().join("..data")).unwrap(), data);

        // A change swaps the data directory; a vanished name loses its link.
        let p2: Payload = [("a".to_string(), file("new", 0o644))].into();
        assert!(w.write(&p2).unwrap());
        assert_ne!(std::fs::read_link(dir.path().join("..data")).unwrap(), data);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a")).unwrap(),
            "new"
        );
        let left = names(dir.path());
        assert_eq!(left.len(), 3, "{left:?}");
        assert!(left.contains(&"..data".to_string()) && left.contains(&"a".to_string()));
        assert!(!dir.path().join(&ts).exists(), "old data directory removed");

        // A mode change alone is a change.
        let p3: Payload = [("a".to_string(), file("new", 0o400))].into();
        assert!(w.write(&p3).unwrap());
        assert_eq!(mode("a"), 0o400);
    }

    #[test]
    fn invalid_paths_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let w = AtomicWriter::new(dir.path());
        for bad in ["", "/etc/x", "../x", "a/../../x", "..x"] {
            let p: Payload = [(bad.to_string(), file("x", 0o644))].into();
            assert!(
                matches!(w.write(&p), Err(WriteError::InvalidPath { .. })),
                "{bad:?}"
            );
        }
        assert!(names(dir.path()).is_empty());
    }
}
