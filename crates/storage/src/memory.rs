//! An in-memory [`Backend`] with etcd's revision model, for unit tests and
//! scale benchmarks. Never used where a user would have etcd.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use crate::backend::*;
use crate::error::{Error, Result};

#[derive(Clone)]
struct Version {
    revision: i64,
    /// None: deleted at `revision`.
    value: Option<(Bytes, i64 /* create revision */, i64 /* lease */)>,
}

#[derive(Default)]
struct State {
    revision: i64,
    compacted: i64,
    keys: BTreeMap<String, Vec<Version>>,
    log: Vec<RawEvent>,
    leases: HashMap<i64, Instant>,
    next_lease: i64,
}

/// The in-memory backend.
#[derive(Clone)]
pub struct MemoryBackend {
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<RawEvent>,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBackend {
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(65536);
        Self {
            state: Arc::new(Mutex::new(State {
                revision: 1,
                ..Default::default()
            })),
            events,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self, st: &mut State, key: &str, value: Option<(Bytes, i64)>) -> i64 {
        st.revision += 1;
        let rev = st.revision;
        let prev = latest(st.keys.get(key)).cloned();
        let versions = st.keys.entry(key.to_string()).or_default();
        let event = match value {
            Some((bytes, lease)) => {
                let create = prev.as_ref().map(|p| p.1).unwrap_or(rev);
                versions.push(Version {
                    revision: rev,
                    value: Some((bytes.clone(), create, lease)),
                });
                RawEvent {
                    kind: RawEventKind::Put,
                    key: key.to_string(),
                    value: bytes,
                    prev_value: prev.as_ref().map(|p| p.0.clone()),
                    revision: rev,
                    is_create: prev.is_none(),
                }
            }
            None => {
                versions.push(Version {
                    revision: rev,
                    value: None,
                });
                RawEvent {
                    kind: RawEventKind::Delete,
                    key: key.to_string(),
                    value: Bytes::new(),
                    prev_value: prev.map(|p| p.0),
                    revision: rev,
                    is_create: false,
                }
            }
        };
        st.log.push(event.clone());
        let _ = self.events.send(event);
        rev
    }

    /// Deletes keys whose lease expired (leases expire lazily, on the next call).
    fn expire(&self, st: &mut State) {
        let now = Instant::now();
        let expired: Vec<i64> = st
            .leases
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(id, _)| *id)
            .collect();
        if expired.is_empty() {
            return;
        }
        let doomed: Vec<String> = st
            .keys
            .iter()
            .filter(|(_, v)| matches!(latest(Some(v)), Some((_, _, l)) if expired.contains(l)))
            .map(|(k, _)| k.clone())
            .collect();
        for id in expired {
            st.leases.remove(&id);
        }
        for k in doomed {
            self.write(st, &k, None);
        }
    }
}

fn latest(versions: Option<&Vec<Version>>) -> Option<&(Bytes, i64, i64)> {
    versions?.last()?.value.as_ref()
}

fn at(versions: &[Version], revision: i64) -> Option<(&Bytes, i64, i64)> {
    let v = versions.iter().rev().find(|v| v.revision <= revision)?;
    v.value.as_ref().map(|(b, c, _)| (b, *c, v.revision))
}

#[async_trait]
impl Backend for MemoryBackend {
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        let mut st = self.lock();
        self.expire(&mut st);
        let revision = if req.revision == 0 {
            st.revision
        } else {
            req.revision
        };
        if revision < st.compacted {
            return Err(Error::Expired {
                message: format!("required revision {revision} has been compacted"),
            });
        }
        if revision > st.revision {
            return Err(Error::Backend(format!(
                "required revision {revision} is a future revision"
            )));
        }
        let mut resp = RangeResponse {
            revision: st.revision,
            ..Default::default()
        };
        let start = req.start.clone().unwrap_or_else(|| req.key.clone());
        let iter: Box<dyn Iterator<Item = (&String, &Vec<Version>)>> = if req.prefix {
            let prefix = req.key.clone();
            Box::new(
                st.keys
                    .range(start..)
                    .take_while(move |(k, _)| k.starts_with(&prefix)),
            )
        } else {
            Box::new(st.keys.get_key_value(&req.key).into_iter())
        };
        for (k, versions) in iter {
            if let Some((value, create, modr)) = at(versions, revision) {
                resp.count += 1;
                if req.count_only {
                    continue;
                }
                if req.limit > 0 && resp.kvs.len() as i64 >= req.limit {
                    resp.more = true;
                    continue;
                }
                resp.kvs.push(KeyValue {
                    key: k.clone(),
                    value: value.clone(),
                    create_revision: create,
                    mod_revision: modr,
                });
            }
        }
        Ok(resp)
    }

    async fn create(&self, key: &str, value: Bytes, lease: i64) -> Result<CasOutcome> {
        let mut st = self.lock();
        self.expire(&mut st);
        if let Some((b, c, _)) = latest(st.keys.get(key)).cloned() {
            let modr = st
                .keys
                .get(key)
                .and_then(|v| v.last())
                .map(|v| v.revision)
                .unwrap_or(0);
            return Ok(CasOutcome::Mismatch(Some(KeyValue {
                key: key.into(),
                value: b,
                create_revision: c,
                mod_revision: modr,
            })));
        }
        Ok(CasOutcome::Done(self.write(
            &mut st,
            key,
            Some((value, lease)),
        )))
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: i64,
        lease: i64,
    ) -> Result<CasOutcome> {
        let mut st = self.lock();
        self.expire(&mut st);
        match current(&st, key) {
            Some(kv) if kv.mod_revision == expected => Ok(CasOutcome::Done(self.write(
                &mut st,
                key,
                Some((value, lease)),
            ))),
            other => Ok(CasOutcome::Mismatch(other)),
        }
    }

    async fn delete(&self, key: &str, expected: i64) -> Result<CasOutcome> {
        let mut st = self.lock();
        self.expire(&mut st);
        match current(&st, key) {
            Some(kv) if kv.mod_revision == expected => {
                Ok(CasOutcome::Done(self.write(&mut st, key, None)))
            }
            other => Ok(CasOutcome::Mismatch(other)),
        }
    }

    async fn watch(
        &self,
        prefix: &str,
        from: i64,
    ) -> Result<BoxStream<'static, Result<WatchItem>>> {
        let st = self.lock();
        if from != 0 && from <= st.compacted {
            return Err(Error::Expired {
                message: format!("required revision {from} has been compacted"),
            });
        }
        let rx = self.events.subscribe();
        let backlog: Vec<RawEvent> = st
            .log
            .iter()
            .filter(|e| e.revision >= from && e.key.starts_with(prefix))
            .cloned()
            .collect();
        let last = st.revision;
        drop(st);
        let prefix = prefix.to_string();
        let live = BroadcastStream::new(rx).filter_map(move |r| {
            let prefix = prefix.clone();
            async move {
                match r {
                    Ok(e) if e.key.starts_with(&prefix) && e.revision > last => {
                        Some(Ok(WatchItem::Event(e)))
                    }
                    Ok(_) => None,
                    Err(_) => Some(Err(Error::Backend("watcher fell behind".into()))),
                }
            }
        });
        Ok(
            futures::stream::iter(backlog.into_iter().map(|e| Ok(WatchItem::Event(e))))
                .chain(live)
                .boxed(),
        )
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        let mut st = self.lock();
        if revision <= st.compacted {
            return Err(Error::Expired {
                message: format!("required revision {revision} has been compacted"),
            });
        }
        st.compacted = revision;
        st.log.retain(|e| e.revision >= revision);
        for versions in st.keys.values_mut() {
            if let Some(keep) = versions.iter().rposition(|v| v.revision <= revision) {
                versions.drain(..keep);
            }
        }
        st.keys
            .retain(|_, v| !(v.len() == 1 && v[0].value.is_none()));
        Ok(())
    }

    async fn grant_lease(&self, ttl_seconds: i64) -> Result<i64> {
        let mut st = self.lock();
        st.next_lease += 1;
        let id = st.next_lease;
        st.leases.insert(
            id,
            Instant::now() + Duration::from_secs(ttl_seconds.max(1) as u64),
        );
        Ok(id)
    }

    async fn current_revision(&self) -> Result<i64> {
        let mut st = self.lock();
        self.expire(&mut st);
        Ok(st.revision)
    }
}

fn current(st: &State, key: &str) -> Option<KeyValue> {
    let versions = st.keys.get(key)?;
    let last = versions.last()?;
    let (b, c, _) = last.value.as_ref()?;
    Some(KeyValue {
        key: key.to_string(),
        value: b.clone(),
        create_revision: *c,
        mod_revision: last.revision,
    })
}
