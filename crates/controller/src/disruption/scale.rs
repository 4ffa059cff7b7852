//! The expected number of pods behind a budget: the sum of the scale of the
//! selected pods' controllers (upstream's `getExpectedScale` and its
//! finders `getPodReplicationController`, `getPodDeployment`,
//! `getPodReplicaSet`, `getPodStatefulSet`, read from the shared caches,
//! then `getScaleController`: the `scale` subresource of whatever else
//! controls a pod, found through discovery and read live, as upstream does
//! for custom resources).

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DynamicObject, GroupVersionKind};
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

    /// What the caches know: the scale of every distinct controller of the
    /// pods they resolve, and the references they do not (tried on the
    /// scale subresource next). Pods without a controller are left out
    /// (upstream's "unmanaged pods").
    pub fn resolve(&self, pods: &[Arc<Pod>]) -> Resolution {
        let mut out = Resolution::default();
        let mut unmanaged = Vec::new();
        for pod in pods {
            let Some(r) = controller_of(&**pod) else {
                unmanaged.push(pod.name_any());
                continue;
            };
            if out.scales.contains_key(&r.uid) {
                continue;
            }
            let namespace = pod.namespace().unwrap_or_default();
            match self.scale_of(r, &namespace) {
                Some((uid, scale)) => {
                    out.scales.insert(uid, scale);
                }
                None => out.unresolved.push(Unresolved {
                    controller: r.clone(),
                    namespace,
                    pod: pod.name_any(),
                }),
            }
        }
        if !unmanaged.is_empty() {
            tracing::debug!(pods = ?unmanaged, "found unmanaged pods associated with this PDB");
        }
        out
    }

    /// Upstream's `getExpectedScale`: the caches first, then the scale
    /// subresource; a controller found by neither fails the sync with
    /// upstream's message.
    pub async fn expected_scale(
        &self,
        client: &kube::Client,
        pods: &[Arc<Pod>],
    ) -> Result<i32, String> {
        let Resolution {
            mut scales,
            unresolved,
        } = self.resolve(pods);
        for u in unresolved {
            if scales.contains_key(&u.controller.uid) {
                continue;
            }
            let (uid, scale) = scale_subresource(client, &u.controller, &u.namespace)
                .await?
                .ok_or_else(|| format!("found no controllers for pod {:?}", u.pod))?;
            scales.insert(uid, scale);
        }
        Ok(scales.values().sum())
    }
}

/// A pod whose controller the caches do not know.
#[derive(Debug, Clone)]
pub struct Unresolved {
    pub controller: OwnerReference,
    pub namespace: String,
    pub pod: String,
}

/// [`Owners::resolve`]'s answer: scales by controller uid, and the rest.
#[derive(Debug, Default)]
pub struct Resolution {
    pub scales: HashMap<String, i32>,
    pub unresolved: Vec<Unresolved>,
}

/// Upstream's `getScaleController`: the controller's resource from
/// discovery (an unknown kind is an error), its `scale` subresource read
/// live (a resource without one is an error); `None` when the object is
/// missing or is another object of that name (uid).
pub async fn scale_subresource(
    client: &kube::Client,
    r: &OwnerReference,
    namespace: &str,
) -> Result<Option<(String, i32)>, String> {
    let (group, version) = match r.api_version.rsplit_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), r.api_version.clone()),
    };
    let gvk = GroupVersionKind::gvk(&group, &version, &r.kind);
    let (resource, caps) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .map_err(|e| format!("no mapping for {}.{group}: {e}", r.kind))?;
    if !caps.subresources.iter().any(|(s, _)| s.plural == "scale") {
        let gr = if group.is_empty() {
            resource.plural.clone()
        } else {
            format!("{}.{group}", resource.plural)
        };
        return Err(format!("{gr} does not implement the scale subresource"));
    }
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    match api.get_scale(&r.name).await {
        Ok(scale) if scale.metadata.uid.as_deref() == Some(r.uid.as_str()) => Ok(Some((
            r.uid.clone(),
            scale.spec.and_then(|s| s.replicas).unwrap_or(0),
        ))),
        Ok(_) => Ok(None),
        Err(e) if crate::is_not_found(&e) => Ok(None),
        Err(e) => Err(format!(
            "getting the scale of {} {namespace}/{}: {e}",
            r.kind, r.name
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector::store;
    use kube::runtime::watcher::Event;
    use serde_json::{json, Value};

    fn from<T: serde::de::DeserializeOwned + Default>(v: Value) -> T {
        serde_json::from_value(v).unwrap_or_default()
    }

    fn cache<K>(objs: Vec<K>) -> Store<K>
    where
        K: Resource<DynamicType = ()> + Clone + 'static,
    {
        let (s, mut w) = store::<K>();
        for o in objs {
            w.apply_watcher_event(&Event::Apply(o));
        }
        s
    }

    fn owner_ref(api_version: &str, kind: &str, name: &str, uid: &str) -> Value {
        json!({"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": true})
    }

    fn workload<K: serde::de::DeserializeOwned + Default>(
        name: &str,
        uid: &str,
        replicas: i32,
        owner: Option<Value>,
    ) -> K {
        from(json!({
            "metadata": {"name": name, "namespace": "n", "uid": uid, "ownerReferences": owner.into_iter().collect::<Vec<_>>()},
            "spec": {"replicas": replicas, "selector": {}, "template": {}, "serviceName": "s"},
        }))
    }

    fn pod(name: &str, owner: Option<Value>) -> Arc<Pod> {
        Arc::new(from(json!({"metadata": {"name": name, "namespace": "n",
            "ownerReferences": owner.into_iter().collect::<Vec<_>>()}})))
    }

    fn owners() -> Owners {
        let dep = owner_ref("apps/v1", "Deployment", "d", "d-uid");
        Owners {
            replication_controllers: cache(vec![workload::<ReplicationController>(
                "rc", "rc-uid", 2, None,
            )]),
            replica_sets: cache(vec![
                workload::<ReplicaSet>("rs", "rs-uid", 3, None),
                workload::<ReplicaSet>("d-1", "d1-uid", 1, Some(dep.clone())),
                workload::<ReplicaSet>("d-2", "d2-uid", 4, Some(dep)),
                workload::<ReplicaSet>(
                    "lost",
                    "lost-uid",
                    4,
                    Some(owner_ref("apps/v1", "Deployment", "gone", "gone-uid")),
                ),
            ]),
            deployments: cache(vec![workload::<Deployment>("d", "d-uid", 5, None)]),
            stateful_sets: cache(vec![workload::<StatefulSet>("ss", "ss-uid", 7, None)]),
        }
    }

    fn sum(r: &Resolution) -> i32 {
        r.scales.values().sum()
    }

    fn unresolved(r: &Resolution) -> Vec<&str> {
        r.unresolved.iter().map(|u| u.pod.as_str()).collect()
    }

    #[test]
    fn each_controller_counts_once_with_its_own_scale() {
        let o = owners();
        let pods = vec![
            pod(
                "a",
                Some(owner_ref("v1", "ReplicationController", "rc", "rc-uid")),
            ),
            pod(
                "b",
                Some(owner_ref("apps/v1", "ReplicaSet", "rs", "rs-uid")),
            ),
            pod(
                "c",
                Some(owner_ref("apps/v1", "ReplicaSet", "rs", "rs-uid")),
            ),
            pod(
                "d",
                Some(owner_ref("apps/v1", "StatefulSet", "ss", "ss-uid")),
            ),
            // Two ReplicaSets of one Deployment: the Deployment's 5, once.
            pod(
                "e",
                Some(owner_ref("apps/v1", "ReplicaSet", "d-1", "d1-uid")),
            ),
            pod(
                "f",
                Some(owner_ref("apps/v1", "ReplicaSet", "d-2", "d2-uid")),
            ),
            // Unmanaged pods are left out.
            pod("g", None),
        ];
        let r = o.resolve(&pods);
        assert_eq!(sum(&r), 2 + 3 + 7 + 5);
        assert!(r.unresolved.is_empty());
        assert_eq!(sum(&o.resolve(&[])), 0);
    }

    #[test]
    fn what_the_caches_do_not_know_goes_to_the_scale_subresource() {
        let o = owners();
        let r = o.resolve(&[
            // Same name, another uid (recreated).
            pod(
                "uid",
                Some(owner_ref("apps/v1", "ReplicaSet", "rs", "other")),
            ),
            // A ReplicaSet whose Deployment is gone (upstream then reads
            // the ReplicaSet's own scale subresource).
            pod(
                "lost",
                Some(owner_ref("apps/v1", "ReplicaSet", "lost", "lost-uid")),
            ),
            // Wrong group for the kind; a kind without a cache here.
            pod(
                "group",
                Some(owner_ref(
                    "apps/v1",
                    "ReplicationController",
                    "rc",
                    "rc-uid",
                )),
            ),
            pod(
                "custom",
                Some(owner_ref("example.com/v1", "Widget", "w", "w-uid")),
            ),
            // The legacy extensions group still finds a ReplicaSet.
            pod(
                "ext",
                Some(owner_ref(
                    "extensions/v1beta1",
                    "ReplicaSet",
                    "rs",
                    "rs-uid",
                )),
            ),
        ]);
        assert_eq!(unresolved(&r), ["uid", "lost", "group", "custom"]);
        assert_eq!(sum(&r), 3);
    }
}
