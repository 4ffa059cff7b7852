//! Watch fan-out: W watchers, each on its own connection, watch one pod
//! (`fieldSelector=metadata.name=bench-fanout`, from its current
//! resourceVersion); the pod is then updated R times with a merge patch. A
//! watcher's latency for a round is the time from just before the PATCH is
//! sent to the moment its MODIFIED event's last byte arrives.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use crate::client::Api;
use crate::pod::{self, NAMESPACE};
use crate::rest::pods_path;
use crate::stats::{emit, round3, Latencies};

const TARGET: &str = "bench-fanout";

/// What a watcher reports: one MODIFIED event (the n-th it saw) or its end.
enum Seen {
    Modified {
        watcher: usize,
        nth: usize,
        at: Instant,
    },
    Ended {
        watcher: usize,
        why: String,
    },
}

/// VmRSS of `pid` in KiB, from /proc.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS in /proc/{pid}/status"))
}

fn resource_version(body: &[u8]) -> Result<String> {
    let v: Value = serde_json::from_slice(body)?;
    v["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no metadata.resourceVersion in the answer"))
}

pub async fn run(
    api: &Api,
    watchers: usize,
    rounds: usize,
    connect_concurrency: usize,
    server_pid: Option<u32>,
) -> Result<()> {
    let mut ctl = api.connect().await?;
    let item = format!("{}/{TARGET}", pods_path());
    let a = ctl.post_json(&pods_path(), pod::body(TARGET)).await?;
    let rv = match a.status {
        StatusCode::CREATED => resource_version(&a.body)?,
        StatusCode::CONFLICT => resource_version(
            &ctl.get(&item)
                .await?
                .expect(StatusCode::OK, "reading the fan-out pod")?
                .body,
        )?,
        _ => {
            a.expect(StatusCode::CREATED, "creating the fan-out pod")?;
            unreachable!("expect fails on any other status")
        }
    };

    // Open the watches, a few handshakes at a time.
    let watch_path = format!(
        "{}?watch=true&fieldSelector=metadata.name%3D{TARGET}&resourceVersion={rv}&timeoutSeconds=1800",
        pods_path()
    );
    let (tx, mut rx) = mpsc::unbounded_channel::<Seen>();
    let setup_start = Instant::now();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(connect_concurrency.max(1)));
    let mut opening = Vec::with_capacity(watchers);
    for watcher in 0..watchers {
        let (api, path, tx, sem) = (api.clone(), watch_path.clone(), tx.clone(), sem.clone());
        opening.push(tokio::spawn(async move {
            let permit = sem.acquire_owned().await?;
            let mut conn = api.connect().await?;
            let resp = conn.start(Method::GET, &path, None, Bytes::new()).await?;
            drop(permit);
            if resp.status() != StatusCode::OK {
                bail!("watch {watcher}: HTTP {}", resp.status());
            }
            let mut body = resp.into_body();
            tokio::spawn(async move {
                let _conn = conn;
                let mut buf: Vec<u8> = Vec::new();
                let mut nth = 0;
                let why = loop {
                    let frame = match body.frame().await {
                        None => break "stream ended".to_string(),
                        Some(Err(e)) => break format!("stream failed: {e}"),
                        Some(Ok(f)) => f,
                    };
                    let at = Instant::now();
                    let Some(data) = frame.data_ref() else {
                        continue;
                    };
                    buf.extend_from_slice(data);
                    while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=pos).collect();
                        if line.starts_with(b"{\"type\":\"MODIFIED\"") {
                            nth += 1;
                            let _ = tx.send(Seen::Modified { watcher, nth, at });
                        } else if !line.starts_with(b"{\"type\":\"BOOKMARK\"") {
                            let _ = tx.send(Seen::Ended {
                                watcher,
                                why: format!(
                                    "unexpected event: {}",
                                    String::from_utf8_lossy(&line[..line.len().min(200)])
                                ),
                            });
                        }
                    }
                };
                let _ = tx.send(Seen::Ended { watcher, why });
            });
            anyhow::Ok(())
        }));
    }
    drop(tx);
    for o in opening {
        o.await??;
    }
    let setup_secs = setup_start.elapsed().as_secs_f64();
    eprintln!("fanout: {watchers} watches open in {setup_secs:.2}s");
    let rss_watching = server_pid.map(rss_kib).transpose()?;

    let mut all = Vec::with_capacity(watchers * rounds);
    let mut patch_lat = Vec::with_capacity(rounds);
    let mut per_round = Vec::new();
    for round in 1..=rounds {
        // Let the previous round's deliveries and the server settle.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let patch = json!({"metadata": {"annotations": {"bench.k8s.io/round": round.to_string()}}});
        let t0 = Instant::now();
        ctl.call(
            Method::PATCH,
            &item,
            Some("application/merge-patch+json"),
            Bytes::from(patch.to_string()),
        )
        .await?
        .expect(StatusCode::OK, "patching the fan-out pod")?;
        let patched = t0.elapsed();
        patch_lat.push(patched);
        let mut lat = Vec::with_capacity(watchers);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while lat.len() < watchers {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Err(_) => bail!(
                    "round {round}: only {} of {watchers} watchers saw the update within 30s",
                    lat.len()
                ),
                Ok(None) => bail!("round {round}: every watcher ended"),
                Ok(Some(Seen::Ended { watcher, why })) => {
                    bail!("round {round}: watcher {watcher}: {why}")
                }
                Ok(Some(Seen::Modified { watcher, nth, at })) => {
                    if nth != round {
                        bail!("round {round}: watcher {watcher} saw event {nth}");
                    }
                    lat.push(at.saturating_duration_since(t0));
                }
            }
        }
        let l = Latencies::new(lat.clone());
        eprintln!(
            "fanout round {round}: PATCH answered after {:.2} ms; delivered p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            crate::stats::ms(patched),
            l.pct_ms(50.0),
            l.pct_ms(99.0),
            l.max_ms()
        );
        per_round.push(json!({"p50_ms": round3(l.pct_ms(50.0)), "p99_ms": round3(l.pct_ms(99.0)), "max_ms": round3(l.max_ms())}));
        all.extend(lat);
    }

    let mut out = Map::new();
    out.insert("what".into(), json!("fanout"));
    out.insert("watchers".into(), json!(watchers));
    out.insert("rounds".into(), json!(rounds));
    out.insert("namespace".into(), json!(NAMESPACE));
    out.insert("setup_secs".into(), json!(round3(setup_secs)));
    out.insert(
        "patch_p50_ms".into(),
        json!(round3(Latencies::new(patch_lat).pct_ms(50.0))),
    );
    if let Some(kib) = rss_watching {
        out.insert("server_rss_kib_watching".into(), json!(kib));
    }
    out.insert("per_round".into(), Value::Array(per_round));
    Latencies::new(all).add_to(&mut out);
    emit(out);
    Ok(())
}
