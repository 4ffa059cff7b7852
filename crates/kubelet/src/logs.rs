//! Reading container logs written in the CRI log format (upstream's
//! `pkg/kubelet/kuberuntime/logs/logs.go`): each line is
//! `<RFC3339Nano time> <stdout|stderr> <P|F> <content>`, where `P` marks a
//! partial line whose content continues on the next one. What a client
//! sees is the content alone (with `timestamps`, the time first).

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

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

/// How to read.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub tail_lines: Option<usize>,
    pub timestamps: bool,
    pub follow: bool,
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

/// The log so far, and (when following) a stream of what is appended until
/// `running` says the container ended. Following checks the file every
/// 200 ms (upstream waits on fsnotify).
pub async fn read(
    path: PathBuf,
    opts: LogOptions,
    running: impl Fn() -> futures::future::BoxFuture<'static, bool> + Send + 'static,
) -> Result<futures::stream::BoxStream<'static, Result<Bytes, std::io::Error>>, LogError> {
    use futures::StreamExt;
    let data = tokio::fs::read(&path)
        .await
        .map_err(|source| LogError::Read {
            path: path.clone(),
            source,
        })?;
    // Only complete lines are rendered; the rest is read again on follow.
    let complete = data
        .iter()
        .rposition(|b| *b == b'\n')
        .map(|i| i + 1)
        .unwrap_or(0);
    let first = Bytes::from(render(&data[..complete], &opts));
    if !opts.follow {
        return Ok(futures::stream::once(async move { Ok(first) }).boxed());
    }
    let state = (
        path,
        complete as u64,
        opts,
        Vec::<u8>::new(),
        running,
        false,
    );
    let rest = futures::stream::unfold(
        state,
        |(path, mut offset, opts, mut pending, running, done)| async move {
            if done {
                return None;
            }
            let mut idle = 0u32;
            loop {
                let mut f = match tokio::fs::File::open(&path).await {
                    Ok(f) => f,
                    Err(e) => return Some((Err(e), (path, offset, opts, pending, running, true))),
                };
                let mut buf = Vec::new();
                if let Err(e) = f.seek(std::io::SeekFrom::Start(offset)).await {
                    return Some((Err(e), (path, offset, opts, pending, running, true)));
                }
                if let Err(e) = f.read_to_end(&mut buf).await {
                    return Some((Err(e), (path, offset, opts, pending, running, true)));
                }
                offset += buf.len() as u64;
                pending.extend_from_slice(&buf);
                if let Some(end) = pending.iter().rposition(|b| *b == b'\n') {
                    let lines: Vec<u8> = pending.drain(..=end).collect();
                    let out = render(
                        &lines,
                        &LogOptions {
                            tail_lines: None,
                            ..opts.clone()
                        },
                    );
                    if !out.is_empty() {
                        return Some((
                            Ok(Bytes::from(out)),
                            (path, offset, opts, pending, running, false),
                        ));
                    }
                }
                idle += 1;
                if idle.is_multiple_of(5) && !running().await {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        },
    );
    Ok(futures::stream::once(async move { Ok(first) })
        .chain(rest)
        .boxed())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const LOG: &[u8] = b"2026-01-01T00:00:00.000000001Z stdout F hello\n\
2026-01-01T00:00:00.000000002Z stderr P par\n\
2026-01-01T00:00:00.000000003Z stderr F tial\n\
2026-01-01T00:00:00.000000004Z stdout F bye\n";

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
            follow: false,
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
    fn non_cri_lines_are_skipped() {
        assert_eq!(parse_cri_line(b"garbage"), None);
        assert_eq!(render(b"not a log line\n", &LogOptions::default()), b"");
    }

    #[tokio::test]
    async fn follow_streams_appended_lines_until_the_container_ends() {
        use futures::StreamExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, &LOG[..46]).unwrap();
        let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let r = running.clone();
        let mut s = read(
            path.clone(),
            LogOptions {
                follow: true,
                ..Default::default()
            },
            move || {
                let r = r.clone();
                Box::pin(async move { r.load(std::sync::atomic::Ordering::SeqCst) })
            },
        )
        .await
        .unwrap();
        assert_eq!(
            s.next().await.unwrap().unwrap(),
            Bytes::from_static(b"hello\n")
        );
        std::fs::write(&path, LOG).unwrap();
        assert_eq!(
            s.next().await.unwrap().unwrap(),
            Bytes::from_static(b"partial\nbye\n")
        );
        running.store(false, std::sync::atomic::Ordering::SeqCst);
        assert!(s.next().await.is_none());
    }
}
