//! Shared informers (upstream's client-go `SharedInformerFactory`): one
//! watch per resource type (and field selector), kept in a kube-rs
//! reflector [`Store`], with every event fanned out to each controller that
//! subscribed.
//!
//! Why not kube-rs's own `reflect_shared`/`ReflectHandle`: its dispatcher
//! only forwards applied objects, never deletions, and a controller must
//! react to a deleted child (a ReplicaSet's pod, a namespace's
//! `default` ServiceAccount). So the fan-out here forwards the object's last
//! state on deletion too; the watcher, the reflector store, the Controller
//! and its queue remain kube-rs's.
//!
//! Lifecycle, as upstream's factory: controllers subscribe while they are
//! built, [`SharedInformers::start`] starts every watch, and
//! [`SharedInformers::wait_for_sync`] returns once every store holds a full
//! list, so no controller decides on a partial cache.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt::Debug;
use std::pin::pin;
use std::sync::{Arc, Mutex};

use futures::channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

/// What a shared informer can hold.
pub trait Watched:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}
impl<K> Watched for K where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}

type Subscribers<K> = Arc<Mutex<Vec<UnboundedSender<Arc<K>>>>>;

/// One shared watch: its store and its subscribers.
pub struct Informer<K: Watched> {
    store: Store<K>,
    subscribers: Subscribers<K>,
}

impl<K: Watched> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            subscribers: self.subscribers.clone(),
        }
    }
}

impl<K: Watched> Informer<K> {
    /// The cache (upstream's lister).
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Every object added, changed or deleted from now on (deleted ones in
    /// their last state); after the initial list, every listed object.
    pub fn subscribe(&self) -> UnboundedReceiver<Arc<K>> {
        let (tx, rx) = unbounded();
        lock(&self.subscribers).push(tx);
        rx
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Default)]
struct Inner {
    informers: HashMap<(TypeId, String), Box<dyn Any + Send + Sync>>,
    pending: Vec<BoxFuture<'static, ()>>,
    ready: Vec<BoxFuture<'static, ()>>,
}

/// The factory: informers by type and field selector.
pub struct SharedInformers {
    client: kube::Client,
    inner: Mutex<Inner>,
}

impl SharedInformers {
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            inner: Mutex::default(),
        }
    }

    /// The informer for every `K` in every namespace.
    pub fn informer<K: Watched>(&self) -> Informer<K> {
        self.informer_with::<K>(None)
    }

    /// The informer for the `K`s matching a field selector (upstream's
    /// filtered informers, e.g. `metadata.name=kube-root-ca.crt`).
    pub fn informer_with<K: Watched>(&self, fields: Option<&str>) -> Informer<K> {
        let key = (TypeId::of::<K>(), fields.unwrap_or_default().to_string());
        let mut inner = lock(&self.inner);
        if let Some(i) = inner
            .informers
            .get(&key)
            .and_then(|b| b.downcast_ref::<Informer<K>>())
        {
            return i.clone();
        }
        let (store, writer) = reflector::store::<K>();
        let informer = Informer {
            store: store.clone(),
            subscribers: Arc::default(),
        };
        let mut config = watcher::Config::default().any_semantic();
        if let Some(f) = fields {
            config = config.fields(f);
        }
        let api: Api<K> = Api::all(self.client.clone());
        inner.pending.push(
            reflect(
                api,
                config,
                writer,
                store.clone(),
                informer.subscribers.clone(),
            )
            .boxed(),
        );
        let ready_store = store;
        inner.ready.push(
            async move {
                let _ = ready_store.wait_until_ready().await;
            }
            .boxed(),
        );
        inner.informers.insert(key, Box::new(informer.clone()));
        informer
    }

    /// Starts every watch requested so far (later requests start on the next call).
    pub fn start(&self) {
        let pending = std::mem::take(&mut lock(&self.inner).pending);
        for watch in pending {
            tokio::spawn(watch);
        }
    }

    /// Waits until every started store has its initial list.
    pub async fn wait_for_sync(&self) {
        let ready = std::mem::take(&mut lock(&self.inner).ready);
        futures::future::join_all(ready).await;
    }
}

/// Keeps the store current and fans events out. The initial list is
/// announced once it is complete (the store swaps it in at `InitDone`), so
/// a subscriber finds every announced object in the store.
async fn reflect<K: Watched>(
    api: Api<K>,
    config: watcher::Config,
    writer: reflector::store::Writer<K>,
    store: Store<K>,
    subscribers: Subscribers<K>,
) {
    let events = watcher(api, config).default_backoff().reflect(writer);
    let mut events = pin!(events);
    let mut listed: Vec<ObjectRef<K>> = Vec::new();
    let send = |obj: Arc<K>| {
        lock(&subscribers).retain(|tx| tx.unbounded_send(obj.clone()).is_ok());
    };
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Apply(o)) => {
                let r = ObjectRef::from_obj(&o);
                send(store.get(&r).unwrap_or_else(|| Arc::new(o)));
            }
            Ok(Event::Delete(o)) => send(Arc::new(o)),
            Ok(Event::Init) => listed.clear(),
            Ok(Event::InitApply(o)) => listed.push(ObjectRef::from_obj(&o)),
            Ok(Event::InitDone) => {
                for r in listed.drain(..) {
                    if let Some(o) = store.get(&r) {
                        send(o);
                    }
                }
            }
            Err(e) => tracing::warn!(kind = %K::kind(&()), error = %e, "watch failed; retrying"),
        }
    }
}

fn watcher<K: Watched>(
    api: Api<K>,
    config: watcher::Config,
) -> impl futures::Stream<Item = watcher::Result<Event<K>>> + Send {
    watcher::watcher(api, config)
}
