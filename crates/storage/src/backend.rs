//! The revisioned key-value interface every storage backend implements.
//!
//! It is the part of etcd's v3 API the API server uses: ranges at a revision,
//! transactions comparing a key's mod revision, watches from a revision with
//! the previous value, compaction and leases. Revisions are etcd's: one global
//! counter, bumped by every write.

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

use crate::error::Result;

/// A key with its value and revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    pub create_revision: i64,
    pub mod_revision: i64,
}

/// What to read: one key, or every key under a prefix.
#[derive(Debug, Clone, Default)]
pub struct RangeRequest {
    /// The key, or the prefix when `prefix` is set.
    pub key: String,
    pub prefix: bool,
    /// With `prefix`: start at this key (inclusive) instead of the prefix.
    pub start: Option<String>,
    /// At most this many keys; 0 means no limit.
    pub limit: i64,
    /// Read at this revision; 0 means the latest.
    pub revision: i64,
    /// Only count the keys.
    pub count_only: bool,
}

/// The answer to a [`RangeRequest`].
#[derive(Debug, Clone, Default)]
pub struct RangeResponse {
    pub kvs: Vec<KeyValue>,
    /// More keys remain past the limit.
    pub more: bool,
    /// Keys in the whole range (from `start`), including those returned.
    pub count: i64,
    /// The store's revision the read was served at.
    pub revision: i64,
}

/// The outcome of a compare-and-swap on a key's mod revision.
#[derive(Debug, Clone)]
pub enum CasOutcome {
    /// Written (or deleted) at this revision.
    Done(i64),
    /// The key's mod revision was not the expected one; here is the current value.
    Mismatch(Option<KeyValue>),
}

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawEventKind {
    Put,
    Delete,
}

/// One change seen by a watch.
#[derive(Debug, Clone)]
pub struct RawEvent {
    pub kind: RawEventKind,
    pub key: String,
    /// The new value (empty for a delete).
    pub value: Bytes,
    /// The value before this change, when there was one.
    pub prev_value: Option<Bytes>,
    /// The revision of this change.
    pub revision: i64,
    /// The key did not exist before this put.
    pub is_create: bool,
}

/// An item of a watch stream: a change, or word that the store reached a revision.
#[derive(Debug, Clone)]
pub enum WatchItem {
    Event(RawEvent),
    Progress(i64),
}

/// A revisioned key-value store (etcd v3's model).
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Reads one key or a prefix, linearizably.
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse>;
    /// Creates a key that must not exist; `lease` 0 means none. Returns the revision.
    async fn create(&self, key: &str, value: Bytes, lease: i64) -> Result<CasOutcome>;
    /// Replaces a key whose mod revision is `expected`.
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: i64,
        lease: i64,
    ) -> Result<CasOutcome>;
    /// Deletes a key whose mod revision is `expected`.
    async fn delete(&self, key: &str, expected: i64) -> Result<CasOutcome>;
    /// Watches every key under `prefix` from revision `from` (inclusive).
    /// Fails with `Error::Expired` when `from` was compacted.
    async fn watch(&self, prefix: &str, from: i64)
        -> Result<BoxStream<'static, Result<WatchItem>>>;
    /// Discards history before `revision`.
    async fn compact(&self, revision: i64) -> Result<()>;
    /// Grants a lease of `ttl_seconds`; keys attached to it vanish when it expires.
    async fn grant_lease(&self, ttl_seconds: i64) -> Result<i64>;
    /// The store's current revision.
    async fn current_revision(&self) -> Result<i64>;
}
