//! The raw etcd baseline: N writes of one value size with C writers sharing
//! one etcd client (one gRPC channel, as the API server has), to keys under
//! /bench/ that the API server's watch (over /registry/) never sees.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp};
use serde_json::{json, Map};
use tokio::sync::Barrier;

use crate::stats::{emit, round3, Latencies};
use crate::PutMode;

pub async fn connect(endpoint: &str) -> Result<Client> {
    Client::connect([endpoint], None)
        .await
        .with_context(|| format!("connecting to etcd at {endpoint}"))
}

pub async fn put(
    endpoint: &str,
    n: usize,
    concurrency: usize,
    value_size: usize,
    mode: PutMode,
) -> Result<()> {
    let client = connect(endpoint).await?;
    // Printable filler, like JSON: etcd stores values as they are.
    let value: Vec<u8> = (0..value_size).map(|i| b'a' + (i % 26) as u8).collect();
    let value = Arc::new(value);
    let (prefix, mode_name) = match mode {
        PutMode::Put => ("/bench/put/", "put"),
        PutMode::Txn => ("/bench/txn/", "txn"),
    };
    let next = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(concurrency + 1));
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (mut kv, value, next, barrier) = (
            client.kv_client(),
            value.clone(),
            next.clone(),
            barrier.clone(),
        );
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let key = format!("{prefix}{i:08}");
                let t = Instant::now();
                match mode {
                    PutMode::Put => {
                        kv.put(key, value.as_slice(), None).await?;
                    }
                    PutMode::Txn => {
                        let txn = Txn::new()
                            .when([Compare::version(key.clone(), CompareOp::Equal, 0)])
                            .and_then([TxnOp::put(key, value.as_slice(), None)]);
                        kv.txn(txn).await?;
                    }
                }
                lat.push(t.elapsed());
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
    let mut out = Map::new();
    out.insert("what".into(), json!(format!("etcd-{mode_name}")));
    out.insert("n".into(), json!(n));
    out.insert("concurrency".into(), json!(concurrency));
    out.insert("value_size".into(), json!(value_size));
    out.insert("secs".into(), json!(round3(secs)));
    out.insert("ops_per_sec".into(), json!(round3(n as f64 / secs)));
    Latencies::new(all).add_to(&mut out);
    emit(out);
    Ok(())
}
