//! Wakes when a directory's entries change (upstream's file source follows
//! `--pod-manifest-path` with inotify besides its 20 s re-read, and
//! `kubectl logs -f` waits on fsnotify for the log's writes): an
//! inotify watch through rustix, read through tokio's `AsyncFd`. A
//! directory that does not exist (yet) is watched once
//! [`DirWatch::rewatch`] finds it; a removed one stops waking until then.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Events arriving this close together wake once (an editor's save is
/// several).
const SETTLE: Duration = Duration::from_millis(50);

pub struct DirWatch {
    fd: AsyncFd<OwnedFd>,
    dir: PathBuf,
    watching: bool,
}

fn flags() -> WatchFlags {
    WatchFlags::CREATE
        | WatchFlags::DELETE
        | WatchFlags::MODIFY
        | WatchFlags::CLOSE_WRITE
        | WatchFlags::MOVED_TO
        | WatchFlags::MOVED_FROM
        | WatchFlags::DELETE_SELF
        | WatchFlags::MOVE_SELF
}

impl DirWatch {
    /// A watch on `dir`; `None` when inotify is unavailable (the periodic
    /// re-read still works).
    pub fn new(dir: &Path) -> Option<Self> {
        let fd = match inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK) {
            Ok(fd) => fd,
            Err(e) => {
                tracing::info!(dir = %dir.display(), error = %e, "inotify unavailable; the directory is checked periodically only");
                return None;
            }
        };
        // `new` is deprecated for descriptors an AsyncFd does not own; this
        // one owns its OwnedFd, so the descriptor stays open and the same
        // for its whole life (the condition `register` states).
        #[allow(deprecated)]
        let fd = AsyncFd::with_interest(fd, Interest::READABLE).ok()?;
        let mut w = Self {
            fd,
            dir: dir.to_path_buf(),
            watching: false,
        };
        w.rewatch();
        Some(w)
    }

    /// Starts watching again if the directory was missing or replaced.
    pub fn rewatch(&mut self) {
        if self.watching {
            return;
        }
        match inotify::add_watch(self.fd.get_ref(), &self.dir, flags()) {
            Ok(_) => {
                tracing::debug!(dir = %self.dir.display(), "watching a directory");
                self.watching = true;
            }
            Err(e) => {
                tracing::debug!(dir = %self.dir.display(), error = %e, "cannot watch the directory yet");
            }
        }
    }

    fn drain(&self) {
        let mut buf = [0u8; 4096];
        while let Ok(n) = rustix::io::read(self.fd.get_ref(), &mut buf) {
            if n == 0 {
                break;
            }
        }
    }

    /// Resolves after the directory's entries changed; never while it is
    /// not watched.
    pub async fn changed(&mut self) {
        if !self.watching {
            return std::future::pending().await;
        }
        let Ok(mut guard) = self.fd.readable().await else {
            return std::future::pending().await;
        };
        guard.clear_ready();
        drop(guard);
        tokio::time::sleep(SETTLE).await;
        self.drain();
        // Gone or moved away: the kernel dropped the watch.
        if !self.dir.is_dir() {
            self.watching = false;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_on_a_new_file_and_after_the_directory_appears() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("manifests");
        let mut w = DirWatch::new(&dir).unwrap();
        // Missing directory: no wake-ups until it exists and is re-watched.
        let quiet = tokio::time::timeout(Duration::from_millis(200), w.changed()).await;
        assert!(quiet.is_err());
        std::fs::create_dir(&dir).unwrap();
        w.rewatch();
        std::fs::write(dir.join("pod.yaml"), "kind: Pod").unwrap();
        tokio::time::timeout(Duration::from_secs(5), w.changed())
            .await
            .expect("a wake-up for the new file");
        // Nothing more happened: no further wake-up.
        let quiet = tokio::time::timeout(Duration::from_millis(200), w.changed()).await;
        assert!(quiet.is_err());
        std::fs::remove_file(dir.join("pod.yaml")).unwrap();
        tokio::time::timeout(Duration::from_secs(5), w.changed())
            .await
            .expect("a wake-up for the removal");
    }
}
