//! LIST latency and throughput: the bench namespace's pods as JSON (no
//! Accept-Encoding, so no compression), from the watch cache
//! (resourceVersion=0) or as a quorum read from etcd (no resourceVersion,
//! what kubectl sends), in one response or in pages of `limit` with continue
//! tokens. One warm connection; a first untimed request checks the count.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{json, Map};

use crate::client::{Api, Conn};
use crate::rest::pods_path;
use crate::stats::{emit, round3, Latencies};
use crate::ReadMode;

/// What a client must read from each page: the continue token (and, to
/// check the count, how many items); the items are skipped, not built.
#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    metadata: PageMeta,
    #[serde(default)]
    items: Vec<IgnoredAny>,
}

#[derive(Default, Deserialize)]
struct PageMeta {
    #[serde(default, rename = "continue")]
    cont: Option<String>,
}

/// One full LIST: every page fetched; returns items, bytes, time to the first
/// response head and the total time.
struct Fetched {
    items: usize,
    bytes: usize,
    first_byte: Duration,
    total: Duration,
}

async fn fetch(conn: &mut Conn, rv: ReadMode, limit: usize) -> Result<Fetched> {
    let start = Instant::now();
    let mut first_byte = None;
    let (mut items, mut bytes) = (0, 0);
    let mut cont: Option<String> = None;
    loop {
        let mut q: Vec<String> = Vec::new();
        if rv == ReadMode::Cache && cont.is_none() {
            q.push("resourceVersion=0".into());
        }
        if limit > 0 {
            q.push(format!("limit={limit}"));
        }
        if let Some(c) = &cont {
            let c = percent_encoding::utf8_percent_encode(c, percent_encoding::NON_ALPHANUMERIC);
            q.push(format!("continue={c}"));
        }
        let path = if q.is_empty() {
            pods_path()
        } else {
            format!("{}?{}", pods_path(), q.join("&"))
        };
        let resp = conn
            .start(Method::GET, &path, None, bytes::Bytes::new())
            .await?;
        first_byte.get_or_insert_with(|| start.elapsed());
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        if status != StatusCode::OK {
            bail!(
                "GET {path}: HTTP {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            );
        }
        bytes += body.len();
        // Every client reads the continue token; skipping the items costs
        // about 1 ms per MiB here.
        let page: Page = serde_json::from_slice(&body).context("parsing the list")?;
        items += page.items.len();
        cont = page.metadata.cont.filter(|c| !c.is_empty());
        if limit == 0 || cont.is_none() {
            break;
        }
    }
    Ok(Fetched {
        items,
        bytes,
        first_byte: first_byte.unwrap_or_default(),
        total: start.elapsed(),
    })
}

pub async fn run(
    api: &Api,
    rv: ReadMode,
    limit: usize,
    repeat: usize,
    expect: Option<usize>,
) -> Result<()> {
    let mut conn = api.connect().await?;
    let warm = fetch(&mut conn, rv, limit).await?;
    if let Some(want) = expect {
        if warm.items != want {
            bail!("the list has {} items, expected {want}", warm.items);
        }
    }
    let (mut totals, mut firsts) = (Vec::new(), Vec::new());
    let mut bytes = warm.bytes;
    for _ in 0..repeat {
        let f = fetch(&mut conn, rv, limit).await?;
        totals.push(f.total);
        firsts.push(f.first_byte);
        bytes = f.bytes;
    }
    let totals = Latencies::new(totals);
    let firsts = Latencies::new(firsts);
    let p50 = totals.pct_ms(50.0);
    let mut out = Map::new();
    out.insert(
        "what".into(),
        json!(match rv {
            ReadMode::Cache => "list-rv0",
            ReadMode::Quorum => "list-quorum",
        }),
    );
    out.insert("limit".into(), json!(limit));
    out.insert("items".into(), json!(warm.items));
    out.insert("bytes".into(), json!(bytes));
    out.insert(
        "first_byte_p50_ms".into(),
        json!(round3(firsts.pct_ms(50.0))),
    );
    out.insert(
        "mib_per_sec".into(),
        json!(round3(if p50 > 0.0 {
            bytes as f64 / 1048576.0 / (p50 / 1000.0)
        } else {
            0.0
        })),
    );
    totals.add_to(&mut out);
    emit(out);
    Ok(())
}
