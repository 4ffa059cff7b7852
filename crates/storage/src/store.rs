//! Upstream's `storage.Interface` (`storage/etcd3/store.go`) over a [`Backend`].
//!
//! Objects are JSON. The stored bytes never carry `metadata.resourceVersion`:
//! it is the key's mod revision, set on every read, as upstream's versioner does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::backend::{Backend, CasOutcome, KeyValue, RangeRequest};
use crate::continue_token;
use crate::error::{Error, Result};

/// An object read from storage, with `metadata.resourceVersion` set.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObject {
    pub value: Value,
    pub revision: i64,
}

/// Conditions a write must meet (upstream's `storage.Preconditions`).
#[derive(Debug, Clone, Default)]
pub struct Preconditions {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

impl Preconditions {
    fn check(&self, key: &str, obj: &StoredObject) -> Result<()> {
        let meta = obj.value.get("metadata");
        let get = |f: &str| {
            meta.and_then(|m| m.get(f))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        if let Some(uid) = &self.uid {
            let actual = get("uid");
            if *uid != actual {
                return Err(Error::Conflict {
                    key: key.to_string(),
                    message: format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"),
                });
            }
        }
        if let Some(rv) = &self.resource_version {
            let actual = obj.revision.to_string();
            if *rv != actual {
                return Err(Error::Conflict {
                    key: key.to_string(),
                    message: format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"),
                });
            }
        }
        Ok(())
    }
}

/// How to list.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Read at exactly this revision (resourceVersionMatch=Exact); None for the latest.
    pub revision: Option<i64>,
    /// At most this many matching items; 0 means all.
    pub limit: i64,
    /// Resume a paginated list.
    pub continue_token: Option<String>,
}

/// One page of a list.
#[derive(Debug, Clone, Default)]
pub struct ListResult<T = StoredObject> {
    pub items: Vec<T>,
    /// The revision the list is consistent at.
    pub revision: i64,
    pub continue_token: Option<String>,
    /// Items left after this page (when known), as `remainingItemCount`.
    pub remaining: Option<i64>,
}

/// A filter applied to items while listing.
pub type Filter<'a> = &'a (dyn Fn(&Value) -> bool + Send + Sync);

struct LeaseCache {
    id: i64,
    granted: Instant,
    ttl: i64,
}

/// How long a granted lease is reused for other keys with a similar TTL
/// (upstream's lease manager reuses leases for a minute).
const LEASE_REUSE: Duration = Duration::from_secs(60);

/// The storage interface on a backend.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    lease: Arc<Mutex<Option<LeaseCache>>>,
}

/// Decodes a stored value and sets its resourceVersion.
pub fn decode(kv: &KeyValue) -> Result<StoredObject> {
    decode_bytes(&kv.key, &kv.value, kv.mod_revision)
}

pub fn decode_bytes(key: &str, data: &[u8], revision: i64) -> Result<StoredObject> {
    let mut value: Value = serde_json::from_slice(data).map_err(|e| Error::InvalidObject {
        key: key.to_string(),
        message: e.to_string(),
    })?;
    set_revision(&mut value, revision);
    Ok(StoredObject { value, revision })
}

/// A stored value as the JSON a client is sent: with its resourceVersion,
/// spliced into the bytes where possible.
pub fn served_bytes(kv: &KeyValue) -> Result<Bytes> {
    if let Some(b) = crate::raw::with_resource_version(&kv.value, kv.mod_revision) {
        return Ok(Bytes::from(b));
    }
    let obj = decode(kv)?;
    serde_json::to_vec(&obj.value)
        .map(Bytes::from)
        .map_err(|e| Error::Backend(format!("encoding object: {e}")))
}

/// Sets `metadata.resourceVersion` of a JSON object.
pub fn set_revision(value: &mut Value, revision: i64) {
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert(
            "resourceVersion".into(),
            Value::String(revision.to_string()),
        );
    }
}

/// Encodes an object for storage, without its resourceVersion (removed in
/// place: the caller sets the new one after the write, so nothing is copied).
pub fn encode(value: &mut Value) -> Result<Bytes> {
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| Error::Backend(format!("encoding object: {e}")))
}

impl Store {
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Self {
            backend,
            lease: Arc::new(Mutex::new(None)),
        }
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    async fn lease_for(&self, ttl: Option<i64>) -> Result<i64> {
        let Some(ttl) = ttl.filter(|t| *t > 0) else {
            return Ok(0);
        };
        let mut cache = self.lease.lock().await;
        if let Some(c) = cache.as_ref() {
            // Reuse while the lease outlives the wanted TTL by no more than the reuse window.
            let left = c.ttl - c.granted.elapsed().as_secs() as i64;
            if c.granted.elapsed() < LEASE_REUSE && left >= ttl {
                return Ok(c.id);
            }
        }
        let granted_ttl = ttl + LEASE_REUSE.as_secs() as i64;
        let id = self.backend.grant_lease(granted_ttl).await?;
        *cache = Some(LeaseCache {
            id,
            granted: Instant::now(),
            ttl: granted_ttl,
        });
        Ok(id)
    }

    /// Creates the object at `key`; fails with `AlreadyExists`.
    pub async fn create(&self, key: &str, value: Value, ttl: Option<i64>) -> Result<StoredObject> {
        Ok(self.create_encoded(key, value, ttl).await?.0)
    }

    /// Like [`Self::create`], also returning the JSON a client is sent (the
    /// stored bytes with the new resourceVersion spliced in), so a create
    /// response needs no second serialisation.
    pub async fn create_served(
        &self,
        key: &str,
        value: Value,
        ttl: Option<i64>,
    ) -> Result<(StoredObject, Bytes)> {
        let (stored, data) = self.create_encoded(key, value, ttl).await?;
        let served = match crate::raw::with_resource_version(&data, stored.revision) {
            Some(b) => Bytes::from(b),
            None => Bytes::from(
                serde_json::to_vec(&stored.value)
                    .map_err(|e| Error::Backend(format!("encoding object: {e}")))?,
            ),
        };
        Ok((stored, served))
    }

    async fn create_encoded(
        &self,
        key: &str,
        mut value: Value,
        ttl: Option<i64>,
    ) -> Result<(StoredObject, Bytes)> {
        let data = encode(&mut value)?;
        let lease = self.lease_for(ttl).await?;
        match self.backend.create(key, data.clone(), lease).await? {
            CasOutcome::Done(rev) => {
                let mut value = value;
                set_revision(&mut value, rev);
                Ok((
                    StoredObject {
                        value,
                        revision: rev,
                    },
                    data,
                ))
            }
            CasOutcome::Mismatch(_) => Err(Error::AlreadyExists {
                key: key.to_string(),
            }),
        }
    }

    async fn get_kv(&self, key: &str) -> Result<Option<KeyValue>> {
        let resp = self
            .backend
            .range(RangeRequest {
                key: key.to_string(),
                ..Default::default()
            })
            .await?;
        Ok(resp.kvs.into_iter().next())
    }

    /// Reads the object at `key` (a quorum read).
    pub async fn get(&self, key: &str) -> Result<StoredObject> {
        match self.get_kv(key).await? {
            Some(kv) => decode(&kv),
            None => Err(Error::NotFound {
                key: key.to_string(),
            }),
        }
    }

    /// One object as the JSON a client is sent (see [`served_bytes`]).
    pub async fn get_bytes(&self, key: &str) -> Result<Bytes> {
        match self.get_kv(key).await? {
            Some(kv) => served_bytes(&kv),
            None => Err(Error::NotFound {
                key: key.to_string(),
            }),
        }
    }

    /// Lists the objects under `prefix` (which ends in `/`), filtered, paginated.
    pub async fn list(
        &self,
        prefix: &str,
        opts: &ListOptions,
        filter: Filter<'_>,
    ) -> Result<ListResult> {
        self.list_with(prefix, opts, |kv| {
            let obj = decode(kv)?;
            Ok(filter(&obj.value).then_some(obj))
        })
        .await
    }

    /// Like [`Store::list`], with each item as the JSON a client is sent
    /// (resourceVersion spliced into the stored bytes). Objects are parsed
    /// only when a `filter` needs them or the bytes are unusual.
    pub async fn list_bytes(
        &self,
        prefix: &str,
        opts: &ListOptions,
        filter: Option<Filter<'_>>,
    ) -> Result<ListResult<Bytes>> {
        self.list_with(prefix, opts, |kv| {
            if let Some(f) = filter {
                if !f(&decode(kv)?.value) {
                    return Ok(None);
                }
            }
            Ok(Some(served_bytes(kv)?))
        })
        .await
    }

    async fn list_with<T>(
        &self,
        prefix: &str,
        opts: &ListOptions,
        mut take: impl FnMut(&KeyValue) -> Result<Option<T>>,
    ) -> Result<ListResult<T>> {
        let (mut start, mut revision) = match &opts.continue_token {
            Some(t) => {
                let (k, rev) = continue_token::decode(prefix, t)?;
                (Some(k), rev)
            }
            None => (None, opts.revision.unwrap_or(0)),
        };
        let mut items = Vec::new();
        // Fetch in pages until `limit` items matched, growing the page like upstream.
        let mut page = if opts.limit > 0 { opts.limit } else { 0 };
        loop {
            let resp = self
                .backend
                .range(RangeRequest { key: prefix.to_string(), prefix: true, start: start.clone(), limit: page, revision, count_only: false })
                .await
                .map_err(|e| match e {
                    Error::Expired { .. } if opts.continue_token.is_some() => Error::Expired {
                        message: "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.".into(),
                    },
                    Error::Expired { .. } => Error::Expired { message: "The resourceVersion for the provided list is too old.".into() },
                    other => other,
                })?;
            if revision == 0 {
                revision = resp.revision;
            }
            let fetched = resp.kvs.len() as i64;
            let mut last_key = None;
            for kv in &resp.kvs {
                last_key = Some(kv.key.clone());
                if let Some(item) = take(kv)? {
                    items.push(item);
                    if opts.limit > 0 && items.len() as i64 == opts.limit {
                        break;
                    }
                }
            }
            let full = opts.limit > 0 && items.len() as i64 >= opts.limit;
            let consumed_all_fetched =
                last_key.as_deref() == resp.kvs.last().map(|k| k.key.as_str());
            let more = resp.more || !consumed_all_fetched;
            if full {
                let token = if more {
                    last_key.map(|k| continue_token::encode(prefix, &format!("{k}\u{0}"), revision))
                } else {
                    None
                };
                return Ok(ListResult {
                    items,
                    revision,
                    continue_token: token,
                    remaining: None,
                });
            }
            if !resp.more || fetched == 0 {
                return Ok(ListResult {
                    items,
                    revision,
                    continue_token: None,
                    remaining: None,
                });
            }
            start = last_key.map(|k| format!("{k}\u{0}"));
            page = (page * 2).min(10_000);
        }
    }

    /// Counts the objects under `prefix`.
    pub async fn count(&self, prefix: &str) -> Result<i64> {
        let resp = self
            .backend
            .range(RangeRequest {
                key: prefix.to_string(),
                prefix: true,
                count_only: true,
                ..Default::default()
            })
            .await?;
        Ok(resp.count)
    }

    /// Reads, changes and writes the object at `key`, retrying on conflicts
    /// (upstream's `GuaranteedUpdate`). `try_update` gets the current object
    /// (None when absent and `ignore_not_found`) and returns the new one, or an
    /// error that aborts. An unchanged result is not written.
    pub async fn guaranteed_update<F>(
        &self,
        key: &str,
        ignore_not_found: bool,
        preconditions: &Preconditions,
        ttl: Option<i64>,
        mut try_update: F,
    ) -> Result<StoredObject>
    where
        F: FnMut(Option<&StoredObject>) -> Result<Value> + Send,
    {
        loop {
            let kv = self.get_kv(key).await?;
            let current = match &kv {
                Some(kv) => Some(decode(kv)?),
                None if ignore_not_found => None,
                None => {
                    return Err(Error::NotFound {
                        key: key.to_string(),
                    })
                }
            };
            if let Some(cur) = &current {
                preconditions.check(key, cur)?;
            }
            let mut new = try_update(current.as_ref())?;
            let data = encode(&mut new)?;
            let outcome = match (&kv, current) {
                (Some(kv), Some(cur)) => {
                    if kv.value == data {
                        return Ok(cur);
                    }
                    let lease = self.lease_for(ttl).await?;
                    self.backend
                        .update(key, data, kv.mod_revision, lease)
                        .await?
                }
                _ => {
                    let lease = self.lease_for(ttl).await?;
                    self.backend.create(key, data, lease).await?
                }
            };
            match outcome {
                CasOutcome::Done(rev) => {
                    let mut value = new;
                    set_revision(&mut value, rev);
                    return Ok(StoredObject {
                        value,
                        revision: rev,
                    });
                }
                CasOutcome::Mismatch(_) => continue,
            }
        }
    }

    /// Deletes the object at `key` if the preconditions and `validate` accept
    /// its current state, retrying on conflicts. Returns the last state.
    pub async fn delete<F>(
        &self,
        key: &str,
        preconditions: &Preconditions,
        mut validate: F,
    ) -> Result<StoredObject>
    where
        F: FnMut(&StoredObject) -> Result<()> + Send,
    {
        loop {
            let kv = self.get_kv(key).await?.ok_or_else(|| Error::NotFound {
                key: key.to_string(),
            })?;
            let current = decode(&kv)?;
            preconditions.check(key, &current)?;
            validate(&current)?;
            match self.backend.delete(key, kv.mod_revision).await? {
                CasOutcome::Done(_) => return Ok(current),
                CasOutcome::Mismatch(None) => {
                    return Err(Error::NotFound {
                        key: key.to_string(),
                    })
                }
                CasOutcome::Mismatch(Some(_)) => continue,
            }
        }
    }
}
