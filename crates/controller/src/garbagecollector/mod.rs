//! The garbage collector (upstream's pkg/controller/garbagecollector:
//! garbagecollector.go, graph_builder.go, operations.go): watches every
//! deletable resource, keeps the ownerReferences [`graph`], and
//!
//! - deletes dependents whose owners are all gone (Background propagation),
//! - for an owner deleted with `propagationPolicy=Foreground` (the API
//!   server's `foregroundDeletion` finalizer) deletes its dependents and
//!   removes the finalizer once no `blockOwnerDeletion` dependent remains,
//! - for `propagationPolicy=Orphan` (the `orphan` finalizer) removes the
//!   owner from its dependents' ownerReferences, then the finalizer.
//!
//! Owners are always checked live (by uid) before anything is deleted, as
//! upstream does, so a stale cache never deletes a wanted object. New
//! resource types (CRDs) are found by rediscovery every 30 s (upstream's
//! GC resync of its monitors).

pub mod graph;
mod operations;

use std::collections::HashMap;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use tokio::sync::mpsc;

use crate::descriptors::ControllerFuture;
use crate::discovery::{discover, Gvr};
use crate::workqueue::{self, Queue};
use crate::{ControllerContext, StartError};
use graph::{Graph, Identity, ObjectMeta, Work};

const NAME: &str = "garbage-collector-controller";
const RESYNC: Duration = Duration::from_secs(30);
const SYNC_TIMEOUT: Duration = Duration::from_secs(60);

/// (group, kind) → resource, from discovery (upstream's RESTMapper).
pub(crate) type Mapper = HashMap<(String, String), Gvr>;

/// What the workers share.
pub(crate) struct Gc {
    pub client: kube::Client,
    pub graph: Mutex<Graph>,
    pub mapper: Mutex<Mapper>,
    pub delete_queue: Queue<String>,
    pub orphan_queue: Queue<String>,
}

impl Gc {
    pub(crate) fn graph(&self) -> std::sync::MutexGuard<'_, Graph> {
        self.graph.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn gvr_for(&self, api_version: &str, kind: &str) -> Option<Gvr> {
        let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        let version = api_version.rsplit_once('/').map_or(api_version, |(_, v)| v);
        let m = self.mapper.lock().unwrap_or_else(|p| p.into_inner());
        m.get(&(group.to_string(), kind.to_string())).map(|g| Gvr {
            version: version.to_string(),
            ..g.clone()
        })
    }

    pub(crate) fn schedule(&self, work: Work) {
        for uid in work.attempt_to_delete {
            self.delete_queue.add(uid);
        }
        for uid in work.attempt_to_orphan {
            self.orphan_queue.add(uid);
        }
    }
}

/// Upstream's `startGarbageCollectorController`.
pub fn start(ctx: &ControllerContext) -> Result<ControllerFuture, StartError> {
    let (delete_queue, delete_rx) = workqueue::new();
    let (orphan_queue, orphan_rx) = workqueue::new();
    let gc = Arc::new(Gc {
        client: ctx.client.clone(),
        graph: Mutex::default(),
        mapper: Mutex::default(),
        delete_queue: delete_queue.clone(),
        orphan_queue: orphan_queue.clone(),
    });
    let workers = usize::from(ctx.config.concurrent_gc_syncs);
    Ok(Box::pin(async move {
        let (synced_tx, mut synced_rx) = mpsc::unbounded_channel::<()>();
        let initial = monitor_new_resources(&gc, &mut HashMap::new(), &synced_tx).await;
        let mut watched = initial.1;
        // Workers start once every initial monitor has listed (upstream
        // waits for the graph to sync), so no decision is made on a partial graph.
        let wait_all = async {
            for _ in 0..initial.0 {
                if synced_rx.recv().await.is_none() {
                    break;
                }
            }
        };
        if tokio::time::timeout(SYNC_TIMEOUT, wait_all).await.is_err() {
            tracing::warn!(
                controller = NAME,
                "timed out waiting for the graph to sync; starting anyway"
            );
        }
        tracing::info!(
            controller = NAME,
            resources = watched.len(),
            nodes = gc.graph().len(),
            "graph synced"
        );
        let g = gc.clone();
        let deleter = workqueue::run_workers(NAME, delete_queue, delete_rx, workers, move |uid| {
            operations::attempt_to_delete(g.clone(), uid)
        });
        let g = gc.clone();
        let orphaner = workqueue::run_workers(NAME, orphan_queue, orphan_rx, workers, move |uid| {
            operations::attempt_to_orphan(g.clone(), uid)
        });
        let g = gc.clone();
        let resync = async move {
            loop {
                tokio::time::sleep(RESYNC).await;
                let (_, w) = monitor_new_resources(&g, &mut watched, &synced_tx).await;
                watched = w;
            }
        };
        tokio::join!(deleter, orphaner, resync);
    }))
}

/// Upstream's `ignoredResources`: events are never owners worth watching.
fn ignored(g: &Gvr) -> bool {
    g.resource == "events" && (g.group.is_empty() || g.group == "events.k8s.io")
}

/// Discovers resources, refreshes the mapper and starts a monitor for each
/// new deletable one. Answers how many monitors were started.
async fn monitor_new_resources(
    gc: &Arc<Gc>,
    watched: &mut HashMap<(String, String), Gvr>,
    synced: &mpsc::UnboundedSender<()>,
) -> (usize, HashMap<(String, String), Gvr>) {
    let mut w = std::mem::take(watched);
    let gvrs = match discover(&gc.client).await {
        Ok((gvrs, failures)) => {
            if !failures.is_empty() {
                tracing::warn!(
                    controller = NAME,
                    ?failures,
                    "discovery failed for some groups"
                );
            }
            gvrs
        }
        Err(e) => {
            tracing::warn!(controller = NAME, error = %e, "discovery failed");
            return (0, w);
        }
    };
    {
        let mut m = gc.mapper.lock().unwrap_or_else(|p| p.into_inner());
        for g in &gvrs {
            m.insert((g.group.clone(), g.kind.clone()), g.clone());
        }
    }
    let mut started = 0;
    for g in gvrs {
        if ignored(&g) || !(g.supports("list") && g.supports("watch") && g.supports("delete")) {
            continue;
        }
        let key = (g.group.clone(), g.resource.clone());
        if w.contains_key(&key) {
            continue;
        }
        w.insert(key, g.clone());
        tokio::spawn(monitor(gc.clone(), g, synced.clone()));
        started += 1;
    }
    (started, w)
}

fn object_meta(g: &Gvr, o: &DynamicObject) -> Option<ObjectMeta> {
    let m = &o.metadata;
    Some(ObjectMeta {
        identity: Identity {
            api_version: g.api_resource().api_version,
            kind: g.kind.clone(),
            namespace: m.namespace.clone(),
            name: m.name.clone()?,
            uid: m.uid.clone()?,
        },
        owners: m.owner_references.clone().unwrap_or_default(),
        deleting: m.deletion_timestamp.is_some(),
        finalizers: m.finalizers.clone().unwrap_or_default(),
    })
}

/// One resource's watch feeding the graph (upstream's monitor).
async fn monitor(gc: Arc<Gc>, g: Gvr, synced: mpsc::UnboundedSender<()>) {
    let ar = g.api_resource();
    let api: Api<DynamicObject> = Api::all_with(gc.client.clone(), &ar);
    let events = watcher::watcher(api, watcher::Config::default().any_semantic()).default_backoff();
    let mut events = pin!(events);
    let mut listed: Vec<String> = Vec::new();
    let mut first = true;
    while let Some(ev) = events.next().await {
        match ev {
            Ok(Event::Apply(o)) | Ok(Event::InitApply(o)) => {
                let Some(meta) = object_meta(&g, &o) else {
                    continue;
                };
                listed.push(meta.identity.uid.clone());
                let work = gc.graph().upsert(meta);
                gc.schedule(work);
            }
            Ok(Event::Delete(o)) => {
                let Some(meta) = object_meta(&g, &o) else {
                    continue;
                };
                let work = gc.graph().remove(&meta.identity.uid);
                gc.schedule(work);
            }
            Ok(Event::Init) => listed.clear(),
            Ok(Event::InitDone) => {
                // Objects the relist no longer has were deleted meanwhile.
                let mut graph = gc.graph();
                let seen: std::collections::HashSet<&String> = listed.iter().collect();
                let gone: Vec<String> = graph
                    .uids_of(&ar.api_version, &g.kind)
                    .into_iter()
                    .filter(|u| !seen.contains(u))
                    .collect();
                let mut all = Work::default();
                for uid in gone {
                    let w = graph.remove(&uid);
                    all.attempt_to_delete.extend(w.attempt_to_delete);
                    all.attempt_to_orphan.extend(w.attempt_to_orphan);
                }
                drop(graph);
                gc.schedule(all);
                listed.clear();
                if first {
                    first = false;
                    let _ = synced.send(());
                }
            }
            Err(e) => {
                tracing::debug!(controller = NAME, resource = %g.group_resource(), error = %e, "watch failed; retrying")
            }
        }
    }
}
