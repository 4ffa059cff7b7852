//! Reading container logs written in the CRI log format (upstream's
//! `pkg/kubelet/kuberuntime/logs/logs.go`): each line is
//! `<RFC3339Nano time> <stdout|stderr> <P|F> <content>`, where `P` marks a
//! partial line whose content continues on the next one. What a client
//! sees is the content alone (with `timestamps`, the time first), from
//! the container's current log file only (rotated files are not read, as
//! upstream's). Following waits on inotify for the log directory's writes
//! and moves to the new file when the log manager rotates it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::io::AsyncReadExt;

use crate::dir_watch::DirWatch;

/// Without an inotify event for this long, a follower checks whether the
/// container still runs (upstream's `logForceCheckPeriod`).
const FORCE_CHECK: Duration = Duration::from_secs(1);

/// How long a follower keeps reading a rotated file after the new one
/// appeared.
const ROTATION_SETTLE: Duration = Duration::from_millis(100);

/// One parsed log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine<'a> {
    pub timestamp: &'a str,
    pub stream: &'a str,
    pub partial: bool,
    pub content: &'a [u8],
}

/// Parses one line (without its `\n`); `None` when it is not CRI format.
pub fn parse_cri_line(line: &[u8]) -> Option<LogLine<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let timestamp = std::str::from_utf8(parts.next()?).ok()?;
    let stream = std::str::from_utf8(parts.next()?).ok()?;
    if stream != "stdout" && stream != "stderr" {
        return None;
    }
    let tag = parts.next()?;
    let content = parts.next().unwrap_or_default();
    Some(LogLine {
        timestamp,
        stream,
        partial: tag.split(|b| *b == b':').next() == Some(b"P"),
        content,
    })
}

/// How to read (upstream's `LogOptions` from the `PodLogOptions` query).
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub tail_lines: Option<usize>,
    pub timestamps: bool,
    pub follow: bool,
    /// Lines written before this are skipped (`sinceSeconds`/`sinceTime`).
    pub since: Option<DateTime<Utc>>,
    /// At most this many bytes are sent (`limitBytes`).
    pub limit_bytes: Option<u64>,
}

/// Upstream's `NewLogOptions`: `sinceSeconds` counts back from `now`, and a
/// `sinceTime` later than that wins.
pub fn since(
    since_seconds: Option<i64>,
    since_time: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let from_seconds = since_seconds.map(|s| now - chrono::Duration::seconds(s));
    match (from_seconds, since_time) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn before(timestamp: &str, since: Option<DateTime<Utc>>) -> bool {
    let Some(since) = since else { return false };
    DateTime::parse_from_rfc3339(timestamp).is_ok_and(|t| t.with_timezone(&Utc) < since)
}

/// Renders complete lines of a CRI log as the client sees them.
pub fn render(data: &[u8], opts: &LogOptions) -> Vec<u8> {
    let mut out_lines: Vec<Vec<u8>> = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    for raw in data.split(|b| *b == b'\n') {
        if raw.is_empty() {
            continue;
        }
        let Some(l) = parse_cri_line(raw) else {
            continue;
        };
        if before(l.timestamp, opts.since) {
            continue;
        }
        if current.is_empty() && opts.timestamps {
            current.extend_from_slice(l.timestamp.as_bytes());
            current.push(b' ');
        }
        current.extend_from_slice(l.content);
        if !l.partial {
            current.push(b'\n');
            out_lines.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out_lines.push(current);
    }
    let skip = opts
        .tail_lines
        .map(|n| out_lines.len().saturating_sub(n))
        .unwrap_or(0);
    out_lines.into_iter().skip(skip).flatten().collect()
}

/// Why logs could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("reading log file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Whether the container still runs (asked when the log is quiet).
pub type Running = Box<dyn Fn() -> futures::future::BoxFuture<'static, bool> + Send + Sync>;

/// The log so far, and (when following) what is appended until `running`
/// says the container ended; at most `limit_bytes` in all.
pub async fn read(
    path: PathBuf,
    opts: LogOptions,
    running: impl Fn() -> futures::future::BoxFuture<'static, bool> + Send + Sync + 'static,
) -> Result<BoxStream<'static, Result<Bytes, std::io::Error>>, LogError> {
    let err = |source| LogError::Read {
        path: path.clone(),
        source,
    };
    let mut file = tokio::fs::File::open(&path).await.map_err(err)?;
    let ino = file.metadata().await.map_err(err)?.ino();
    let mut data = Vec::new();
    file.read_to_end(&mut data).await.map_err(err)?;
    // Only complete lines are rendered; the rest is read again on follow.
    let complete = data
        .iter()
        .rposition(|b| *b == b'\n')
        .map(|i| i + 1)
        .unwrap_or(0);
    let first = Bytes::from(render(&data[..complete], &opts));
    let limit = opts.limit_bytes;
    let stream = if opts.follow {
        let watch = path.parent().and_then(DirWatch::new);
        let follower = Follower {
            opts: LogOptions {
                tail_lines: None,
                ..opts
            },
            path,
            file,
            ino,
            pending: data.split_off(complete),
            watch,
            running: Box::new(running),
            done: false,
        };
        let rest = futures::stream::unfold(follower, |mut f| async move {
            f.next_chunk().await.map(|c| (c, f))
        });
        futures::stream::once(async move { Ok(first) })
            .chain(rest)
            .boxed()
    } else {
        futures::stream::once(async move { Ok(first) }).boxed()
    };
    Ok(match limit {
        Some(n) => limited(stream, n),
        None => stream,
    })
}

/// Ends the stream after `n` bytes, without waiting for more.
fn limited(
    inner: BoxStream<'static, Result<Bytes, std::io::Error>>,
    n: u64,
) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    futures::stream::unfold((inner, n), |(mut inner, left)| async move {
        if left == 0 {
            return None;
        }
        match inner.next().await? {
            Ok(b) => {
                let take = (b.len() as u64).min(left) as usize;
                Some((Ok(b.slice(..take)), (inner, left - take as u64)))
            }
            Err(e) => Some((Err(e), (inner, 0))),
        }
    })
    .boxed()
}

/// Follows one container's log file across rotations.
struct Follower {
    opts: LogOptions,
    path: PathBuf,
    file: tokio::fs::File,
    ino: u64,
    /// Read but not yet a complete line.
    pending: Vec<u8>,
    watch: Option<DirWatch>,
    running: Running,
    /// The container ended: what is left is sent, then the stream ends.
    done: bool,
}

impl Follower {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        loop {
            if let Err(e) = self.file.read_to_end(&mut self.pending).await {
                return Some(Err(e));
            }
            if let Some(out) = self.complete_lines() {
                return Some(Ok(out));
            }
            if self.done {
                return None;
            }
            if let Some(ino) = replaced(&self.path, self.ino).await {
                // Rotated. The runtime's writer for the old file may still
                // flush a line after the new file appeared: wait a moment
                // and read the old file to its end before moving on.
                tokio::time::sleep(ROTATION_SETTLE).await;
                if let Err(e) = self.file.read_to_end(&mut self.pending).await {
                    return Some(Err(e));
                }
                let old = self.complete_lines();
                match tokio::fs::File::open(&self.path).await {
                    Ok(f) => {
                        tracing::debug!(path = %self.path.display(), "following the rotated log's new file");
                        self.pending.clear();
                        self.file = f;
                        self.ino = ino;
                        if let Some(out) = old {
                            return Some(Ok(out));
                        }
                        continue;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        if let Some(out) = old {
                            return Some(Ok(out));
                        }
                    }
                    Err(e) => return Some(Err(e)),
                }
            }
            let woke = match self.watch.as_mut() {
                Some(w) => tokio::time::timeout(FORCE_CHECK, w.changed()).await.is_ok(),
                None => {
                    tokio::time::sleep(FORCE_CHECK).await;
                    false
                }
            };
            if !woke && !(self.running)().await {
                // One last read for what the container wrote as it ended.
                self.done = true;
            }
        }
    }

    /// The complete lines read so far, rendered; `None` when there are none
    /// to send.
    fn complete_lines(&mut self) -> Option<Bytes> {
        let end = self.pending.iter().rposition(|b| *b == b'\n')?;
        let lines: Vec<u8> = self.pending.drain(..=end).collect();
        let out = render(&lines, &self.opts);
        (!out.is_empty()).then(|| Bytes::from(out))
    }
}

/// The inode now at `path` when it is not `ino` (the file was rotated).
async fn replaced(path: &Path, ino: u64) -> Option<u64> {
    let now = tokio::fs::metadata(path).await.ok()?.ino();
    (now != ino).then_some(now)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const LOG: &[u8] = b"2026-01-01T00:00:00.000000001Z stdout F hello\n\
2026-01-01T00:00:00.000000002Z stderr P par\n\
2026-01-01T00:00:00.000000003Z stderr F tial\n\
2026-01-01T00:00:00.000000004Z stdout F bye\n";

    fn running_while(
        flag: &std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> impl Fn() -> futures::future::BoxFuture<'static, bool> + Send + Sync + 'static {
        let r = flag.clone();
        move || {
            let r = r.clone();
            Box::pin(async move { r.load(std::sync::atomic::Ordering::SeqCst) })
        }
    }

    async fn next(s: &mut BoxStream<'static, Result<Bytes, std::io::Error>>) -> String {
        let b = tokio::time::timeout(Duration::from_secs(10), s.next())
            .await
            .expect("a chunk within 10 s")
            .unwrap()
            .unwrap();
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[test]
    fn strips_the_format_and_joins_partial_lines() {
        assert_eq!(
            render(LOG, &LogOptions::default()),
            b"hello\npartial\nbye\n"
        );
    }

    #[test]
    fn tail_and_timestamps() {
        let o = LogOptions {
            tail_lines: Some(2),
            timestamps: true,
            ..Default::default()
        };
        assert_eq!(
            String::from_utf8(render(LOG, &o)).unwrap(),
            "2026-01-01T00:00:00.000000002Z partial\n2026-01-01T00:00:00.000000004Z bye\n"
        );
        let none = LogOptions {
            tail_lines: Some(0),
            ..Default::default()
        };
        assert!(render(LOG, &none).is_empty());
    }

    #[test]
    fn since_skips_older_lines() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let o = LogOptions {
            since: Some(t("2026-01-01T00:00:00.000000003Z")),
            ..Default::default()
        };
        assert_eq!(render(LOG, &o), b"tial\nbye\n");
        let now = t("2026-01-01T00:01:00Z");
        assert_eq!(since(Some(10), None, now), Some(t("2026-01-01T00:00:50Z")));
        // The later of the two wins.
        assert_eq!(
            since(Some(10), Some(t("2026-01-01T00:00:55Z")), now),
            Some(t("2026-01-01T00:00:55Z"))
        );
        assert_eq!(
            since(Some(10), Some(t("2026-01-01T00:00:05Z")), now),
            Some(t("2026-01-01T00:00:50Z"))
        );
        assert_eq!(since(None, None, now), None);
    }

    #[test]
    fn non_cri_lines_are_skipped() {
        assert_eq!(parse_cri_line(b"garbage"), None);
        assert_eq!(render(b"not a log line\n", &LogOptions::default()), b"");
    }

    #[tokio::test]
    async fn limit_bytes_cuts_the_output_and_ends_a_follow() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, LOG).unwrap();
        let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let opts = LogOptions {
            follow: true,
            limit_bytes: Some(8),
            ..Default::default()
        };
        let mut s = read(path, opts, running_while(&running)).await.unwrap();
        assert_eq!(next(&mut s).await, "hello\npa");
        // Ends at once although the container runs and follow is on.
        let end = tokio::time::timeout(Duration::from_secs(5), s.next()).await;
        assert!(matches!(end, Ok(None)), "{end:?}");
    }

    #[tokio::test]
    async fn follow_streams_appended_lines_until_the_container_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, &LOG[..46]).unwrap();
        let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let opts = LogOptions {
            follow: true,
            ..Default::default()
        };
        let mut s = read(path.clone(), opts, running_while(&running))
            .await
            .unwrap();
        assert_eq!(next(&mut s).await, "hello\n");
        std::fs::write(&path, LOG).unwrap();
        assert_eq!(next(&mut s).await, "partial\nbye\n");
        running.store(false, std::sync::atomic::Ordering::SeqCst);
        let end = tokio::time::timeout(Duration::from_secs(10), s.next()).await;
        assert!(matches!(end, Ok(None)), "{end:?}");
    }

    #[tokio::test]
    async fn follow_moves_to_the_new_file_after_a_rotation() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, &LOG[..46]).unwrap();
        let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let opts = LogOptions {
            follow: true,
            ..Default::default()
        };
        let mut s = read(path.clone(), opts, running_while(&running))
            .await
            .unwrap();
        assert_eq!(next(&mut s).await, "hello\n");
        // The runtime still writes to the renamed file until it reopens.
        let mut old = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::fs::rename(&path, dir.path().join("0.log.20260101-000000")).unwrap();
        old.write_all(&LOG[46..]).unwrap();
        drop(old);
        assert_eq!(next(&mut s).await, "partial\nbye\n");
        std::fs::write(&path, b"2026-01-01T00:00:01Z stdout F after\n").unwrap();
        assert_eq!(next(&mut s).await, "after\n");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"2026-01-01T00:00:02Z stdout F more\n")
            .unwrap();
        assert_eq!(next(&mut s).await, "more\n");
        running.store(false, std::sync::atomic::Ordering::SeqCst);
        let end = tokio::time::timeout(Duration::from_secs(10), s.next()).await;
        assert!(matches!(end, Ok(None)), "{end:?}");
    }
}
