//! VolumeRestrictions (upstream's `plugins/volumerestrictions`): a node
//! cannot take a pod whose GCE PD, AWS EBS, RBD or iSCSI volume is already
//! mounted there in a conflicting way, and a `ReadWriteOncePod` claim may
//! be used by one pod only.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Volume;
use kube::runtime::reflector::ObjectRef;
use serde_json::Value;

use crate::cache::Snapshot;
use crate::framework::runtime::Handle;
use crate::framework::{
    ActionType, CycleState, EventInterest, EventResource, FilterPlugin, NodeInfo, Plugin, PodInfo,
    PreFilterPlugin, PreFilterResult, Status,
};
use crate::listers::Listers;

pub const NAME: &str = "VolumeRestrictions";
pub const ERR_DISK_CONFLICT: &str = "node(s) had no available disk";
pub const ERR_RWOP_CONFLICT: &str =
    "node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode";

pub struct VolumeRestrictions {
    listers: Option<Listers>,
}

pub fn new(_: Option<&Value>, h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(VolumeRestrictions {
        listers: h.listers.clone(),
    }))
}

fn volumes(pod: &PodInfo) -> &[Volume] {
    pod.pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or(&[])
}

fn has_disk(v: &Volume) -> bool {
    v.gce_persistent_disk.is_some()
        || v.aws_elastic_block_store.is_some()
        || v.rbd.is_some()
        || v.iscsi.is_some()
}

/// Upstream's `isVolumeConflict`.
fn conflicts(a: &Volume, b: &Volume) -> bool {
    if let (Some(x), Some(y)) = (&a.gce_persistent_disk, &b.gce_persistent_disk) {
        return x.pd_name == y.pd_name
            && !(x.read_only.unwrap_or(false) && y.read_only.unwrap_or(false));
    }
    if let (Some(x), Some(y)) = (&a.aws_elastic_block_store, &b.aws_elastic_block_store) {
        return x.volume_id == y.volume_id;
    }
    if let (Some(x), Some(y)) = (&a.iscsi, &b.iscsi) {
        return x.iqn == y.iqn && !(x.read_only.unwrap_or(false) && y.read_only.unwrap_or(false));
    }
    if let (Some(x), Some(y)) = (&a.rbd, &b.rbd) {
        let pool = |p: &Option<String>| p.clone().unwrap_or_else(|| "rbd".into());
        return x.monitors.iter().any(|m| y.monitors.contains(m))
            && pool(&x.pool) == pool(&y.pool)
            && x.image == y.image
            && !(x.read_only.unwrap_or(false) && y.read_only.unwrap_or(false));
    }
    false
}

fn claims(pod: &PodInfo) -> impl Iterator<Item = &str> {
    volumes(pod).iter().filter_map(|v| {
        v.persistent_volume_claim
            .as_ref()
            .map(|c| c.claim_name.as_str())
    })
}

impl Plugin for VolumeRestrictions {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Vec<EventInterest> {
        vec![
            EventInterest {
                resource: EventResource::AssignedPod,
                actions: &[ActionType::Delete],
            },
            EventInterest {
                resource: EventResource::PersistentVolumeClaim,
                actions: &[ActionType::Add, ActionType::Update],
            },
        ]
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl PreFilterPlugin for VolumeRestrictions {
    fn pre_filter(
        &self,
        _: &mut CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        let rwop: Vec<&str> = match &self.listers {
            Some(l) => claims(pod)
                .filter(|name| {
                    l.pvcs
                        .get(&ObjectRef::new(name).within(&pod.namespace))
                        .and_then(|c| c.spec.as_ref().and_then(|s| s.access_modes.clone()))
                        .is_some_and(|m| m.iter().any(|m| m == "ReadWriteOncePod"))
                })
                .collect(),
            None => Vec::new(),
        };
        if rwop.is_empty() && !volumes(pod).iter().any(has_disk) {
            return (None, Status::skip());
        }
        let in_use = snap.nodes().iter().flat_map(|n| n.pods.iter()).any(|p| {
            p.key != pod.key && p.namespace == pod.namespace && claims(p).any(|c| rwop.contains(&c))
        });
        if in_use {
            return (None, Status::unresolvable(ERR_RWOP_CONFLICT));
        }
        (None, Status::success())
    }
}

impl FilterPlugin for VolumeRestrictions {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        for v in volumes(pod).iter().filter(|v| has_disk(v)) {
            if node
                .pods
                .iter()
                .any(|p| volumes(p).iter().any(|e| conflicts(v, e)))
            {
                return Status::unschedulable(ERR_DISK_CONFLICT);
            }
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod, pod_meta};
    use serde_json::json;

    #[test]
    fn disk_conflicts() {
        let gce = |ro: bool| json!({"volumes": [{"name": "d", "gcePersistentDisk": {"pdName": "pd1", "readOnly": ro}}]});
        let ebs =
            json!({"volumes": [{"name": "d", "awsElasticBlockStore": {"volumeID": "vol-1"}}]});
        let cases = [
            ("same PD read-write", gce(false), gce(false), false),
            ("same PD both read-only", gce(true), gce(true), true),
            ("same EBS volume", ebs.clone(), ebs.clone(), false),
            ("different kinds", gce(false), ebs, true),
        ];
        let p = new(None, &Handle::default()).unwrap();
        for (name, existing, incoming, want) in cases {
            let mut n = node("n", json!({}));
            n.add_pod(Arc::new(pod_meta(
                json!({"name": "old", "namespace": "default"}),
                existing,
            )));
            let s = p
                .as_filter()
                .unwrap()
                .filter(&CycleState::default(), &pod(incoming), &n);
            assert_eq!(s.is_success(), want, "{name}");
        }
    }

    #[test]
    fn read_write_once_pod_claims_are_exclusive() {
        let (listers, mut w) = Listers::new();
        w.apply_pvc(
            serde_json::from_value(json!({"metadata": {"name": "solo", "namespace": "default"},
            "spec": {"accessModes": ["ReadWriteOncePod"]}}))
            .unwrap(),
        );
        let p = new(
            None,
            &Handle {
                client: None,
                listers: Some(listers),
            },
        )
        .unwrap();
        let uses =
            json!({"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "solo"}}]});
        let mut n = node("n", json!({}));
        let empty = Snapshot::from_nodes([n.clone()]);
        let (_, s) = p.as_pre_filter().unwrap().pre_filter(
            &mut CycleState::default(),
            &pod(uses.clone()),
            &empty,
        );
        assert!(s.is_success());
        n.add_pod(Arc::new(pod_meta(
            json!({"name": "first", "namespace": "default"}),
            uses.clone(),
        )));
        let snap = Snapshot::from_nodes([n]);
        let (_, s) =
            p.as_pre_filter()
                .unwrap()
                .pre_filter(&mut CycleState::default(), &pod(uses), &snap);
        assert_eq!(s.message(), ERR_RWOP_CONFLICT);
    }
}
