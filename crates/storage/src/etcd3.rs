//! The etcd v3 [`Backend`] (upstream's `storage/etcd3`), over `etcd-client`.

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Client, Compare, CompareOp, EventType, GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse,
    WatchOptions,
};
use futures::stream::BoxStream;
use futures::StreamExt;

use crate::backend::*;
use crate::error::{Error, Result};

/// A backend on a real etcd cluster.
#[derive(Clone)]
pub struct EtcdBackend {
    client: Client,
    /// The KV and watch clients with the response size limit raised: a
    /// LIST or a watch-cache sync page can exceed gRPC's 4 MiB default
    /// (upstream's client sets the limit to the maximum too).
    kv: etcd_client::KvClient,
    watch: etcd_client::WatchClient,
}

/// The largest etcd response accepted (upstream: math.MaxInt32).
const MAX_RESPONSE_BYTES: usize = i32::MAX as usize;

fn backend_err(e: etcd_client::Error) -> Error {
    let msg = e.to_string();
    if msg.contains("compacted") {
        Error::Expired { message: msg }
    } else {
        Error::Backend(msg)
    }
}

fn kv(k: &etcd_client::KeyValue) -> KeyValue {
    KeyValue {
        key: String::from_utf8_lossy(k.key()).into_owned(),
        value: Bytes::copy_from_slice(k.value()),
        create_revision: k.create_revision(),
        mod_revision: k.mod_revision(),
    }
}

/// The smallest key greater than every key with this prefix (etcd's range end).
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

impl EtcdBackend {
    /// Connects to the given endpoints (`http://127.0.0.1:2379`).
    pub async fn connect(endpoints: &[String]) -> Result<Self> {
        let client = Client::connect(endpoints, None)
            .await
            .map_err(backend_err)?;
        let kv = client
            .kv_client()
            .max_decoding_message_size(MAX_RESPONSE_BYTES);
        let watch = client
            .watch_client()
            .max_decoding_message_size(MAX_RESPONSE_BYTES);
        Ok(Self { client, kv, watch })
    }

    async fn cas(&self, key: &str, expected: i64, op: TxnOp) -> Result<CasOutcome> {
        let cmp = if expected == 0 {
            Compare::create_revision(key, CompareOp::Equal, 0)
        } else {
            Compare::mod_revision(key, CompareOp::Equal, expected)
        };
        let txn = Txn::new()
            .when(vec![cmp])
            .and_then(vec![op])
            .or_else(vec![TxnOp::get(key, None)]);
        let resp = self.kv.clone().txn(txn).await.map_err(backend_err)?;
        let revision = resp.header().map(|h| h.revision()).unwrap_or(0);
        if resp.succeeded() {
            return Ok(CasOutcome::Done(revision));
        }
        let current = resp.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Get(g) => g.kvs().first().map(kv),
            _ => None,
        });
        Ok(CasOutcome::Mismatch(current))
    }
}

#[async_trait]
impl Backend for EtcdBackend {
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        let mut opts = GetOptions::new();
        let key: Vec<u8> = if req.prefix {
            opts = opts.with_range(prefix_end(&req.key));
            req.start
                .clone()
                .unwrap_or_else(|| req.key.clone())
                .into_bytes()
        } else {
            req.key.clone().into_bytes()
        };
        if req.limit > 0 {
            opts = opts.with_limit(req.limit);
        }
        if req.revision > 0 {
            opts = opts.with_revision(req.revision);
        }
        if req.count_only {
            opts = opts.with_count_only();
        }
        let resp = self
            .kv
            .clone()
            .get(key, Some(opts))
            .await
            .map_err(backend_err)?;
        Ok(RangeResponse {
            kvs: resp.kvs().iter().map(kv).collect(),
            more: resp.more(),
            count: resp.count(),
            revision: resp.header().map(|h| h.revision()).unwrap_or(0),
        })
    }

    async fn create(&self, key: &str, value: Bytes, lease: i64) -> Result<CasOutcome> {
        let opts = (lease != 0).then(|| PutOptions::new().with_lease(lease));
        self.cas(key, 0, TxnOp::put(key, value.to_vec(), opts))
            .await
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: i64,
        lease: i64,
    ) -> Result<CasOutcome> {
        let opts = (lease != 0).then(|| PutOptions::new().with_lease(lease));
        self.cas(key, expected.max(1), TxnOp::put(key, value.to_vec(), opts))
            .await
    }

    async fn delete(&self, key: &str, expected: i64) -> Result<CasOutcome> {
        self.cas(key, expected.max(1), TxnOp::delete(key, None))
            .await
    }

    async fn watch(
        &self,
        prefix: &str,
        from: i64,
    ) -> Result<BoxStream<'static, Result<WatchItem>>> {
        let mut opts = WatchOptions::new()
            .with_prefix()
            .with_prev_key()
            .with_progress_notify();
        if from > 0 {
            opts = opts.with_start_revision(from);
        }
        let stream = self
            .watch
            .clone()
            .watch(prefix, Some(opts))
            .await
            .map_err(backend_err)?;
        let items = stream.flat_map(move |r| {
            let out: Vec<Result<WatchItem>> = match r {
                Err(e) => vec![Err(backend_err(e))],
                Ok(resp) if resp.compact_revision() > 0 => vec![Err(Error::Expired {
                    message: format!(
                        "required revision has been compacted (compact revision {})",
                        resp.compact_revision()
                    ),
                })],
                Ok(resp) if resp.canceled() => vec![Err(Error::Backend(format!(
                    "watch canceled: {}",
                    resp.cancel_reason()
                )))],
                Ok(resp) if resp.events().is_empty() => {
                    vec![Ok(WatchItem::Progress(
                        resp.header().map(|h| h.revision()).unwrap_or(0),
                    ))]
                }
                Ok(resp) => resp
                    .events()
                    .iter()
                    .filter_map(|e| {
                        let k = e.kv()?;
                        let kind = match e.event_type() {
                            EventType::Put => RawEventKind::Put,
                            EventType::Delete => RawEventKind::Delete,
                        };
                        Some(Ok(WatchItem::Event(RawEvent {
                            kind,
                            key: String::from_utf8_lossy(k.key()).into_owned(),
                            value: Bytes::copy_from_slice(k.value()),
                            prev_value: e.prev_kv().map(|p| Bytes::copy_from_slice(p.value())),
                            revision: k.mod_revision(),
                            is_create: kind == RawEventKind::Put
                                && k.create_revision() == k.mod_revision(),
                        })))
                    })
                    .collect(),
            };
            futures::stream::iter(out)
        });
        Ok(items.boxed())
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        self.kv
            .clone()
            .compact(revision, None)
            .await
            .map_err(backend_err)?;
        Ok(())
    }

    async fn grant_lease(&self, ttl_seconds: i64) -> Result<i64> {
        let resp = self
            .client
            .lease_client()
            .grant(ttl_seconds, None)
            .await
            .map_err(backend_err)?;
        Ok(resp.id())
    }

    async fn current_revision(&self) -> Result<i64> {
        let resp = self
            .kv
            .clone()
            .get("/", Some(GetOptions::new().with_count_only().with_limit(1)))
            .await
            .map_err(backend_err)?;
        Ok(resp.header().map(|h| h.revision()).unwrap_or(0))
    }
}
