//! The objects plugins look up besides pods and nodes (upstream's shared
//! informers in `pkg/scheduler/scheduler.go`): kube-rs reflector stores
//! for PersistentVolumeClaims, PersistentVolumes, StorageClasses,
//! CSINodes and Namespaces (pods carry their resolved priority, so no
//! PriorityClasses, as upstream). A change to one of them is a
//! cluster event that may move unschedulable pods (a PVC appearing, a PV
//! being released, a StorageClass created).

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::{CSINode, StorageClass};
use kube::runtime::reflector::{self, store::Writer, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;

use crate::framework::{ActionType, ClusterEvent, EventResource};
use crate::queue::SchedulingQueue;

/// Read access to the watched objects.
#[derive(Clone)]
pub struct Listers {
    pub pvcs: Store<PersistentVolumeClaim>,
    pub pvs: Store<PersistentVolume>,
    pub storage_classes: Store<StorageClass>,
    pub csi_nodes: Store<CSINode>,
    pub namespaces: Store<Namespace>,
}

/// The write halves, consumed by [`Writers::spawn`].
pub struct Writers {
    pvcs: Writer<PersistentVolumeClaim>,
    pvs: Writer<PersistentVolume>,
    storage_classes: Writer<StorageClass>,
    csi_nodes: Writer<CSINode>,
    namespaces: Writer<Namespace>,
}

impl Listers {
    pub fn new() -> (Listers, Writers) {
        let (pvcs_r, pvcs) = reflector::store();
        let (pvs_r, pvs) = reflector::store();
        let (sc_r, storage_classes) = reflector::store();
        let (csi_r, csi_nodes) = reflector::store();
        let (ns_r, namespaces) = reflector::store();
        (
            Listers {
                pvcs: pvcs_r,
                pvs: pvs_r,
                storage_classes: sc_r,
                csi_nodes: csi_r,
                namespaces: ns_r,
            },
            Writers {
                pvcs,
                pvs,
                storage_classes,
                csi_nodes,
                namespaces,
            },
        )
    }
}

fn follow<K>(
    writer: Writer<K>,
    api: Api<K>,
    queue: Option<(Arc<SchedulingQueue>, EventResource, &'static str)>,
) where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    tokio::spawn(async move {
        let mut stream =
            reflector::reflector(writer, watcher::watcher(api, watcher::Config::default()))
                .default_backoff()
                .touched_objects()
                .boxed();
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(_) => {
                    if let Some((q, resource, label)) = &queue {
                        // A touched object is an add or an update; plugins
                        // interested in storage objects register both.
                        q.move_all_to_active_or_backoff(ClusterEvent::new(
                            *resource,
                            ActionType::Update,
                            label,
                        ));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "watching for the scheduler's listers"),
            }
        }
    });
}

impl Writers {
    /// Puts objects straight into the stores (tests, benchmarks).
    pub fn apply_pvc(&mut self, o: PersistentVolumeClaim) {
        self.pvcs.apply_watcher_event(&watcher::Event::Apply(o));
    }

    pub fn apply_pv(&mut self, o: PersistentVolume) {
        self.pvs.apply_watcher_event(&watcher::Event::Apply(o));
    }

    pub fn apply_storage_class(&mut self, o: StorageClass) {
        self.storage_classes
            .apply_watcher_event(&watcher::Event::Apply(o));
    }

    /// Starts one reflector per kind; changes to storage objects are
    /// offered to the queue as cluster events.
    pub fn spawn(self, client: kube::Client, queue: Arc<SchedulingQueue>) {
        let q = |r, l| Some((queue.clone(), r, l));
        follow(
            self.pvcs,
            Api::all(client.clone()),
            q(EventResource::PersistentVolumeClaim, "PvcChange"),
        );
        follow(
            self.pvs,
            Api::all(client.clone()),
            q(EventResource::PersistentVolume, "PvChange"),
        );
        follow(
            self.storage_classes,
            Api::all(client.clone()),
            q(EventResource::StorageClass, "StorageClassChange"),
        );
        follow(
            self.csi_nodes,
            Api::all(client.clone()),
            q(EventResource::CSINode, "CSINodeChange"),
        );
        follow(self.namespaces, Api::all(client), None);
    }
}
