//! The watch cache (upstream's `storage/cacher`).
//!
//! One reflector lists everything under the root prefix (`/registry/`) at one
//! revision and then follows a single etcd watch from there. Every object is
//! held serialised once, with its resourceVersion, labels and selectable
//! fields; a bounded history of events serves watches that resume from a
//! resourceVersion. Because every write of the cluster lands under the root
//! prefix, the cache's revision is etcd's revision once the watch caught up,
//! so `resourceVersion` semantics (NotOlderThan, watch from N) hold globally.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::{broadcast, watch};

use crate::backend::{RangeRequest, RawEvent, RawEventKind, WatchItem};
use crate::error::{Error, Result};
use crate::store::{set_revision, Store};
use crate::AttrsFunc;

/// A watch event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// An object in the cache: its JSON (with resourceVersion) and what selectors read.
#[derive(Debug)]
pub struct CachedObject {
    pub key: String,
    pub json: Bytes,
    pub revision: i64,
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub fields: Vec<(&'static str, String)>,
}

impl CachedObject {
    /// Builds the cached form of a stored value at a revision.
    pub fn build(key: &str, data: &[u8], revision: i64, attrs: Option<AttrsFunc>) -> Result<Self> {
        let mut value: Value = serde_json::from_slice(data).map_err(|e| Error::InvalidObject {
            key: key.to_string(),
            message: e.to_string(),
        })?;
        // The value is parsed for labels and fields; the bytes served are the
        // stored ones with the resourceVersion spliced in, not re-serialised.
        if let Some(json) = crate::raw::with_resource_version(data, revision) {
            return Ok(Self::with_json(
                key,
                &value,
                Bytes::from(json),
                revision,
                attrs,
            ));
        }
        set_revision(&mut value, revision);
        Ok(Self::from_value(key, &value, revision, attrs))
    }

    pub fn from_value(key: &str, value: &Value, revision: i64, attrs: Option<AttrsFunc>) -> Self {
        let json = Bytes::from(serde_json::to_vec(value).unwrap_or_default());
        Self::with_json(key, value, json, revision, attrs)
    }

    fn with_json(
        key: &str,
        value: &Value,
        json: Bytes,
        revision: i64,
        attrs: Option<AttrsFunc>,
    ) -> Self {
        let meta = value.get("metadata");
        let s = |f: &str| {
            meta.and_then(|m| m.get(f))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let labels = meta
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object)
            .map(|l| {
                l.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        CachedObject {
            key: key.to_string(),
            json,
            revision,
            name: s("name"),
            namespace: s("namespace"),
            labels,
            fields: attrs.map(|f| f(value)).unwrap_or_default(),
        }
    }

    /// The object parsed (for conversions such as Table printing).
    pub fn value(&self) -> Result<Value> {
        serde_json::from_slice(&self.json).map_err(|e| Error::InvalidObject {
            key: self.key.clone(),
            message: e.to_string(),
        })
    }

    /// A selectable field: metadata.name, metadata.namespace, or one from the kind's attrs.
    pub fn field(&self, name: &str) -> Option<String> {
        match name {
            "metadata.name" => Some(self.name.clone()),
            "metadata.namespace" => Some(self.namespace.clone()),
            other => self
                .fields
                .iter()
                .find(|(k, _)| *k == other)
                .map(|(_, v)| v.clone()),
        }
    }

    /// The same object with another resourceVersion (a deleted object carries the deletion's).
    fn at_revision(&self, revision: i64) -> Result<CachedObject> {
        let mut value = self.value()?;
        set_revision(&mut value, revision);
        Ok(CachedObject {
            key: self.key.clone(),
            json: Bytes::from(serde_json::to_vec(&value).unwrap_or_default()),
            revision,
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            labels: self.labels.clone(),
            fields: self.fields.clone(),
        })
    }
}

/// A change in the cache.
#[derive(Debug)]
pub struct CacheEvent {
    pub kind: EventType,
    pub object: Arc<CachedObject>,
    /// The object before this change (for selector transitions).
    pub prev: Option<Arc<CachedObject>>,
    pub revision: i64,
}

impl CacheEvent {
    /// The event as a watcher with this predicate sees it: a change that makes
    /// an object stop matching is a DELETED of its previous state, one that
    /// makes it start matching is an ADDED (upstream's cacheWatcher).
    pub fn filtered(
        &self,
        pred: &dyn Fn(&CachedObject) -> bool,
    ) -> Option<(EventType, Arc<CachedObject>)> {
        let cur = pred(&self.object);
        let prev = self.prev.as_ref().map(|p| pred(p)).unwrap_or(false);
        match (self.kind, cur, prev) {
            (EventType::Deleted, true, _) => Some((EventType::Deleted, self.object.clone())),
            (EventType::Deleted, false, _) => None,
            (_, true, true) => Some((self.kind, self.object.clone())),
            (_, true, false) => Some((EventType::Added, self.object.clone())),
            (_, false, true) => {
                let prev = self.prev.as_ref()?;
                let moved = prev.at_revision(self.revision).ok()?;
                Some((EventType::Deleted, Arc::new(moved)))
            }
            (_, false, false) => None,
        }
    }
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy)]
pub enum WatchStart {
    /// Synthetic ADDED events for the current state, then changes.
    Now,
    /// Changes after this revision only (from the history).
    After(i64),
    /// Changes after now, without initial events.
    Future,
}

/// A subscription: the events to send first, then the live stream.
pub struct CacheWatch {
    pub initial: Vec<Arc<CacheEvent>>,
    pub live: broadcast::Receiver<Arc<CacheEvent>>,
    /// Live events at or below this revision were already covered.
    pub after: i64,
}

struct Registration {
    prefix: String,
    attrs: Option<AttrsFunc>,
    events: broadcast::Sender<Arc<CacheEvent>>,
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Arc<CachedObject>>,
    revision: i64,
    history: VecDeque<Arc<CacheEvent>>,
    /// The cache has every event after this revision.
    history_start: i64,
    ready: bool,
}

struct Inner {
    store: Store,
    root: String,
    state: RwLock<State>,
    registrations: RwLock<Vec<Registration>>,
    revision: watch::Sender<i64>,
    history_capacity: usize,
}

/// The watch cache. Cheap to clone.
#[derive(Clone)]
pub struct Cacher {
    inner: Arc<Inner>,
}

/// Buffered events per resource before a slow watcher is dropped.
const WATCHER_BUFFER: usize = 4096;
/// How long a read waits for the cache to reach a requested revision.
const FRESHNESS_WAIT: Duration = Duration::from_secs(3);

impl Cacher {
    /// Creates the cache over `root` (e.g. `/registry/`); call [`Cacher::run`] to fill it.
    pub fn new(store: Store, root: &str, history_capacity: usize) -> Self {
        let (revision, _) = watch::channel(0);
        Cacher {
            inner: Arc::new(Inner {
                store,
                root: root.to_string(),
                state: RwLock::new(State::default()),
                registrations: RwLock::new(Vec::new()),
                revision,
                history_capacity,
            }),
        }
    }

    fn state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.inner.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn state_mut(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.inner.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a resource prefix (ending in `/`) with its selectable-fields function.
    pub fn register(&self, prefix: &str, attrs: Option<AttrsFunc>) {
        let mut regs = self
            .inner
            .registrations
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if regs.iter().any(|r| r.prefix == prefix) {
            return;
        }
        let (events, _) = broadcast::channel(WATCHER_BUFFER);
        regs.push(Registration {
            prefix: prefix.to_string(),
            attrs,
            events,
        });
        // Longest prefixes first, so `services/specs/` wins over a shorter one.
        regs.sort_by(|a, b| b.prefix.len().cmp(&a.prefix.len()));
        drop(regs);
        if attrs.is_some() {
            let mut st = self.state_mut();
            let keys: Vec<String> = st
                .objects
                .range(prefix.to_string()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, _)| k.clone())
                .collect();
            for k in keys {
                if let Some(o) = st.objects.get(&k).cloned() {
                    if let Ok(v) = o.value() {
                        st.objects.insert(
                            k.clone(),
                            Arc::new(CachedObject::from_value(&k, &v, o.revision, attrs)),
                        );
                    }
                }
            }
        }
    }

    fn attrs_for(
        &self,
        key: &str,
    ) -> (
        Option<AttrsFunc>,
        Option<broadcast::Sender<Arc<CacheEvent>>>,
    ) {
        let regs = self
            .inner
            .registrations
            .read()
            .unwrap_or_else(|p| p.into_inner());
        match regs.iter().find(|r| key.starts_with(&r.prefix)) {
            Some(r) => (r.attrs, Some(r.events.clone())),
            None => (None, None),
        }
    }

    /// Whether the initial list has completed.
    pub fn ready(&self) -> bool {
        self.state().ready
    }

    /// The cache's current revision.
    pub fn revision(&self) -> i64 {
        self.state().revision
    }

    /// Fills and follows the store until the task is dropped; restarts on errors.
    pub async fn run(self) {
        loop {
            if let Err(e) = self.sync().await {
                tracing::warn!(error = %e, "watch cache lost its watch; relisting");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn sync(&self) -> Result<()> {
        let backend = self.inner.store.backend().clone();
        let root = &self.inner.root;
        let mut objects = BTreeMap::new();
        let (mut start, mut revision) = (None, 0);
        loop {
            let resp = backend
                .range(RangeRequest {
                    key: root.clone(),
                    prefix: true,
                    start: start.clone(),
                    limit: 5000,
                    revision,
                    count_only: false,
                })
                .await?;
            if revision == 0 {
                revision = resp.revision;
            }
            for kv in &resp.kvs {
                let (attrs, _) = self.attrs_for(&kv.key);
                match CachedObject::build(&kv.key, &kv.value, kv.mod_revision, attrs) {
                    Ok(o) => {
                        objects.insert(kv.key.clone(), Arc::new(o));
                    }
                    Err(e) => {
                        tracing::warn!(key = %kv.key, error = %e, "skipping undecodable object")
                    }
                }
            }
            match resp.kvs.last() {
                Some(last) if resp.more => start = Some(format!("{}\u{0}", last.key)),
                _ => break,
            }
        }
        {
            let mut st = self.state_mut();
            st.objects = objects;
            st.revision = revision;
            st.history.clear();
            st.history_start = revision;
            st.ready = true;
        }
        // Watchers of the previous generation may have missed events: end them.
        self.reset_subscribers();
        self.inner.revision.send_replace(revision);
        tracing::info!(revision, "watch cache initialized");
        let mut stream = backend.watch(root, revision + 1).await?;
        while let Some(item) = stream.next().await {
            match item? {
                WatchItem::Event(e) => self.apply(e),
                WatchItem::Progress(rev) => {
                    let mut st = self.state_mut();
                    if rev > st.revision {
                        st.revision = rev;
                        drop(st);
                        self.inner.revision.send_replace(rev);
                    }
                }
            }
        }
        Err(Error::Backend("watch stream ended".into()))
    }

    fn reset_subscribers(&self) {
        let mut regs = self
            .inner
            .registrations
            .write()
            .unwrap_or_else(|p| p.into_inner());
        for r in regs.iter_mut() {
            let (events, _) = broadcast::channel(WATCHER_BUFFER);
            r.events = events;
        }
    }

    fn apply(&self, e: RawEvent) {
        let (attrs, sender) = self.attrs_for(&e.key);
        let built = match e.kind {
            RawEventKind::Put => CachedObject::build(&e.key, &e.value, e.revision, attrs).map(Some),
            RawEventKind::Delete => Ok(None),
        };
        let mut st = self.state_mut();
        let event = match built {
            Ok(Some(obj)) => {
                let obj = Arc::new(obj);
                let prev = st.objects.insert(e.key.clone(), obj.clone());
                let kind = if prev.is_some() {
                    EventType::Modified
                } else {
                    EventType::Added
                };
                Some(CacheEvent {
                    kind,
                    object: obj,
                    prev,
                    revision: e.revision,
                })
            }
            Ok(None) => st.objects.remove(&e.key).and_then(|prev| {
                let gone = prev.at_revision(e.revision).ok()?;
                Some(CacheEvent {
                    kind: EventType::Deleted,
                    object: Arc::new(gone),
                    prev: Some(prev),
                    revision: e.revision,
                })
            }),
            Err(err) => {
                tracing::warn!(key = %e.key, error = %err, "skipping undecodable object");
                None
            }
        };
        st.revision = st.revision.max(e.revision);
        if let Some(ev) = event {
            let ev = Arc::new(ev);
            st.history.push_back(ev.clone());
            while st.history.len() > self.inner.history_capacity {
                if let Some(old) = st.history.pop_front() {
                    st.history_start = old.revision;
                }
            }
            if let Some(s) = sender {
                let _ = s.send(ev);
            }
        }
        let rev = st.revision;
        drop(st);
        self.inner.revision.send_replace(rev);
    }

    /// Waits until the cache reached `revision` (NotOlderThan semantics).
    pub async fn wait_until_fresh(&self, revision: i64) -> Result<()> {
        let mut rx = self.inner.revision.subscribe();
        let reached = tokio::time::timeout(
            FRESHNESS_WAIT,
            rx.wait_for(|r| *r >= revision && self.ready()),
        )
        .await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            _ => Err(Error::TooLargeResourceVersion {
                requested: revision as u64,
                current: self.revision() as u64,
            }),
        }
    }

    /// Waits until the initial list completed.
    pub async fn wait_ready(&self) {
        let mut rx = self.inner.revision.subscribe();
        let _ = rx.wait_for(|_| self.ready()).await;
    }

    /// The objects under `prefix` that match, and the revision they are current at.
    pub fn list(
        &self,
        prefix: &str,
        pred: &dyn Fn(&CachedObject) -> bool,
    ) -> (Vec<Arc<CachedObject>>, i64) {
        let st = self.state();
        let items = st
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, o)| pred(o))
            .map(|(_, o)| o.clone())
            .collect();
        (items, st.revision)
    }

    /// One object, and the revision the answer is current at.
    pub fn get(&self, key: &str) -> (Option<Arc<CachedObject>>, i64) {
        let st = self.state();
        (st.objects.get(key).cloned(), st.revision)
    }

    /// Subscribes to the changes of the resource registered at `resource_prefix`,
    /// for keys under `key_prefix`.
    pub fn watch(
        &self,
        resource_prefix: &str,
        key_prefix: &str,
        start: WatchStart,
    ) -> Result<CacheWatch> {
        let sender = {
            let regs = self
                .inner
                .registrations
                .read()
                .unwrap_or_else(|p| p.into_inner());
            regs.iter()
                .find(|r| r.prefix == resource_prefix)
                .map(|r| r.events.clone())
        }
        .ok_or_else(|| Error::Backend(format!("no watch cache for {resource_prefix}")))?;
        // Subscribe under the read lock so that no event falls between snapshot and stream.
        let st = self.state();
        let live = sender.subscribe();
        let (initial, after) = match start {
            WatchStart::Now => {
                let initial = st
                    .objects
                    .range(key_prefix.to_string()..)
                    .take_while(|(k, _)| k.starts_with(key_prefix))
                    .map(|(_, o)| {
                        Arc::new(CacheEvent {
                            kind: EventType::Added,
                            object: o.clone(),
                            prev: None,
                            revision: o.revision,
                        })
                    })
                    .collect();
                (initial, st.revision)
            }
            WatchStart::Future => (Vec::new(), st.revision),
            WatchStart::After(rev) => {
                if rev < st.history_start {
                    return Err(Error::Expired {
                        message: format!(
                            "too old resource version: {rev} ({})",
                            st.history_start + 1
                        ),
                    });
                }
                let initial = st
                    .history
                    .iter()
                    .filter(|e| e.revision > rev && e.object.key.starts_with(key_prefix))
                    .cloned()
                    .collect();
                (initial, st.revision.max(rev))
            }
        };
        Ok(CacheWatch {
            initial,
            live,
            after,
        })
    }
}
