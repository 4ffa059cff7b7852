//! The expected number of pods behind a budget: the sum of the scale of the
//! selected pods' controllers (upstream's `getExpectedScale` and its
//! finders `getPodReplicationController`, `getPodDeployment`,
//! `getPodReplicaSet`, `getPodStatefulSet`), read from the shared caches.
//!
//! Differences: upstream's last finder reads the `scale` subresource of any
//! other controller kind (custom resources); here a pod controlled by
//! anything but a ReplicationController, ReplicaSet, Deployment (through
//! its ReplicaSet) or StatefulSet has "no controllers", which fails the
//! sync as upstream does when no finder succeeds.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};

/// The caches of the controllers a budget's pods may belong to.
#[derive(Clone)]
pub struct Owners {
    pub replication_controllers: Store<ReplicationController>,
    pub replica_sets: Store<ReplicaSet>,
    pub deployments: Store<Deployment>,
    pub stateful_sets: Store<StatefulSet>,
}

fn controller_of<K: Resource>(obj: &K) -> Option<&OwnerReference> {
    obj.meta()
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// Upstream's `verifyGroupKind`: the reference's kind, and the group of
/// its apiVersion among `groups`.
fn is_kind(r: &OwnerReference, kind: &str, groups: &[&str]) -> bool {
    let group = r.api_version.rsplit_once('/').map_or("", |(g, _)| g);
    r.kind == kind && groups.contains(&group)
}

/// The cached object the reference names, if it is that very object (uid).
fn cached<K>(store: &Store<K>, r: &OwnerReference, namespace: &str) -> Option<Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone,
{
    store
        .get(&ObjectRef::new(&r.name).within(namespace))
        .filter(|o| o.meta().uid.as_deref() == Some(r.uid.as_str()))
}

/// Upstream's `*spec.replicas` (always defaulted by the API server; 1 if not).
fn replicas(r: Option<i32>) -> i32 {
    r.unwrap_or(1)
}

impl Owners {
    /// The controller behind `r` and its scale, by upstream's finders in
    /// upstream's order; `None` when none of them knows it.
    fn scale_of(&self, r: &OwnerReference, namespace: &str) -> Option<(String, i32)> {
        if is_kind(r, "ReplicationController", &[""]) {
            let rc = cached(&self.replication_controllers, r, namespace)?;
            return Some((r.uid.clone(), replicas(rc.spec.as_ref()?.replicas)));
        }
        if is_kind(r, "ReplicaSet", &["apps", "extensions"]) {
            let rs = cached(&self.replica_sets, r, namespace)?;
            return match controller_of(&*rs) {
                // A Deployment's ReplicaSet counts as its Deployment; one
                // whose Deployment is missing counts as nothing.
                Some(d) if d.kind == "Deployment" => {
                    if !is_kind(d, "Deployment", &["apps", "extensions"]) {
                        return None;
                    }
                    let dep = cached(&self.deployments, d, namespace)?;
                    Some((d.uid.clone(), replicas(dep.spec.as_ref()?.replicas)))
                }
                _ => Some((r.uid.clone(), replicas(rs.spec.as_ref()?.replicas))),
            };
        }
        if is_kind(r, "StatefulSet", &["apps"]) {
            let ss = cached(&self.stateful_sets, r, namespace)?;
            return Some((r.uid.clone(), replicas(ss.spec.as_ref()?.replicas)));
        }
        None
    }

    /// Upstream's `getExpectedScale`: the scale of every distinct
    /// controller of the pods, summed. Pods without a controller are left
    /// out (upstream's "unmanaged pods", logged); a controller that cannot
    /// be found fails the sync with upstream's message.
    pub fn expected_scale(&self, pods: &[Arc<Pod>]) -> Result<i32, String> {
        let mut scales: HashMap<String, i32> = HashMap::new();
        let mut unmanaged = Vec::new();
        for pod in pods {
            let Some(r) = controller_of(&**pod) else {
                unmanaged.push(pod.name_any());
                continue;
            };
            if scales.contains_key(&r.uid) {
                continue;
            }
            let namespace = pod.namespace().unwrap_or_default();
            let (uid, scale) = self
                .scale_of(r, &namespace)
                .ok_or_else(|| format!("found no controllers for pod {:?}", pod.name_any()))?;
            scales.insert(uid, scale);
        }
        if !unmanaged.is_empty() {
            tracing::debug!(pods = ?unmanaged, "found unmanaged pods associated with this PDB");
        }
        Ok(scales.values().sum())
    }
}
