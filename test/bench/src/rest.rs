//! Writes through the API server: the bench namespace, the stored-size probe,
//! and the pod create throughput run (N POSTs from C connections, each like
//! one client sending its requests one after the other).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{json, Map};
use tokio::sync::{Barrier, Mutex};

use crate::client::Api;
use crate::pod::{self, NAMESPACE};
use crate::stats::{emit, round3, Latencies};

pub fn pods_path() -> String {
    format!("/api/v1/namespaces/{NAMESPACE}/pods")
}

/// Creates the namespace (an existing one is fine) and measures what one pod
/// costs in etcd: the manifest's bytes and the stored value's bytes.
pub async fn setup(api: &Api, etcd_endpoint: &str, etcd_prefix: &str) -> Result<()> {
    let mut conn = api.connect().await?;
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}});
    let a = conn
        .post_json("/api/v1/namespaces", Bytes::from(ns.to_string()))
        .await?;
    if a.status != StatusCode::CREATED && a.status != StatusCode::CONFLICT {
        a.expect(StatusCode::CREATED, "creating the bench namespace")?;
    }

    let probe = "bench-probe";
    let body = pod::body(probe);
    conn.post_json(&pods_path(), body.clone())
        .await?
        .expect(StatusCode::CREATED, "creating the probe pod")?;
    let key = format!(
        "{}/pods/{NAMESPACE}/{probe}",
        etcd_prefix.trim_end_matches('/')
    );
    let mut etcd = crate::etcd::connect(etcd_endpoint).await?;
    let got = etcd.get(key.as_str(), None).await?;
    let stored = match got.kvs().first() {
        Some(kv) => kv.value().len(),
        None => bail!("the probe pod is not at {key} in etcd (wrong --etcd-prefix?)"),
    };
    let a = conn
        .call(
            Method::DELETE,
            &format!("{}/{probe}?gracePeriodSeconds=0", pods_path()),
            None,
            Bytes::new(),
        )
        .await?;
    if !a.status.is_success() {
        a.expect(StatusCode::OK, "deleting the probe pod")?;
    }

    let mut out = Map::new();
    out.insert("what".into(), json!("setup"));
    out.insert("manifest_bytes".into(), json!(body.len()));
    out.insert("stored_bytes".into(), json!(stored));
    emit(out);
    Ok(())
}

pub async fn create_pods(api: &Api, n: usize, concurrency: usize) -> Result<()> {
    // Bodies are made before the clock starts: the server's cost is measured,
    // not the client's serialisation.
    let bodies: Arc<Vec<Bytes>> =
        Arc::new((0..n).map(|i| pod::body(&format!("bench-{i}"))).collect());
    let path = Arc::new(pods_path());
    let next = Arc::new(AtomicUsize::new(0));
    let first_error: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let errors = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(concurrency + 1));
    let mut tasks = Vec::with_capacity(concurrency);
    for w in 0..concurrency {
        let mut conn = api
            .connect()
            .await
            .with_context(|| format!("opening connection {w}"))?;
        let (bodies, path, next, barrier, first_error, errors) = (
            bodies.clone(),
            path.clone(),
            next.clone(),
            barrier.clone(),
            first_error.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let t = Instant::now();
                let a = conn.post_json(&path, bodies[i].clone()).await?;
                lat.push(t.elapsed());
                if a.status != StatusCode::CREATED {
                    errors.fetch_add(1, Ordering::Relaxed);
                    let mut first = first_error.lock().await;
                    if first.is_none() {
                        *first = Some(format!(
                            "HTTP {}: {}",
                            a.status,
                            String::from_utf8_lossy(&a.body[..a.body.len().min(300)])
                        ));
                    }
                }
            }
            anyhow::Ok(lat)
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    let mut all: Vec<Duration> = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await??);
    }
    let secs = start.elapsed().as_secs_f64();
    let errors = errors.load(Ordering::Relaxed);
    if let Some(e) = first_error.lock().await.as_ref() {
        eprintln!("create-pods: {errors} of {n} creates failed; first: {e}");
    }
    let mut out = Map::new();
    out.insert("what".into(), json!("create-pods"));
    out.insert("n".into(), json!(n));
    out.insert("concurrency".into(), json!(concurrency));
    out.insert("errors".into(), json!(errors));
    out.insert("secs".into(), json!(round3(secs)));
    out.insert(
        "ops_per_sec".into(),
        json!(round3((n - errors) as f64 / secs)),
    );
    Latencies::new(all).add_to(&mut out);
    emit(out);
    if errors > 0 {
        bail!("{errors} of {n} creates failed");
    }
    Ok(())
}
