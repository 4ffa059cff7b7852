//! VolumeBinding (upstream's `plugins/volumebinding`, reduced): a pod's
//! PersistentVolumeClaims must exist; a bound claim's PV node affinity
//! must match the node; an unbound claim of an `Immediate` class waits
//! for the PV controller; an unbound `WaitForFirstConsumer` claim needs an
//! available PV that fits on the node, or a class that provisions
//! dynamically. PreBind records the decision: the chosen PV's `claimRef`,
//! or the claim's `volume.kubernetes.io/selected-node` annotation.
//!
//! Not yet: PreBind does not wait for the PV controller to finish the
//! binding (upstream waits up to `bindTimeoutSeconds`), there is no assume
//! cache across pods, and `allowedTopologies`/CSI capacity are not checked.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::cache::Snapshot;
use crate::framework::nodeselector::Selector;
use crate::framework::resource::parse_quantity;
use crate::framework::runtime::Handle;
use crate::framework::{
    ActionType, CycleState, EventInterest, EventResource, FilterPlugin, NodeInfo, Plugin, PodInfo,
    PreBindPlugin, PreFilterPlugin, PreFilterResult, ReservePlugin, Status,
};
use crate::listers::Listers;

pub const NAME: &str = "VolumeBinding";
pub const ERR_NODE_CONFLICT: &str = "node(s) had volume node affinity conflict";
pub const ERR_NO_PV: &str = "node(s) didn't find available persistent volumes to bind";
pub const ERR_UNBOUND_IMMEDIATE: &str = "pod has unbound immediate PersistentVolumeClaims";
const NO_PROVISIONER: &str = "kubernetes.io/no-provisioner";

/// `VolumeBindingArgs`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Args {
    #[serde(default)]
    pub bind_timeout_seconds: Option<i64>,
    #[serde(default)]
    pub shape: Option<Value>,
}

pub struct VolumeBinding {
    listers: Option<Listers>,
    client: Option<kube::Client>,
}

pub fn new(args: Option<&Value>, h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    let args: Args = super::decode_args(args)?;
    if args.bind_timeout_seconds.is_some_and(|t| t < 0) {
        return Err("bindTimeoutSeconds: Invalid value: must be non-negative".into());
    }
    Ok(Arc::new(VolumeBinding {
        listers: h.listers.clone(),
        client: h.client.clone(),
    }))
}

/// An unbound claim waiting for its first consumer.
#[derive(Debug, Clone)]
struct Delayed {
    pvc: Arc<PersistentVolumeClaim>,
    class: String,
    dynamic: bool,
}

#[derive(Default)]
struct State {
    bound: Vec<Arc<PersistentVolume>>,
    delayed: Vec<Delayed>,
    /// Filter's findings per node: (claim, PV to bind or None to provision).
    per_node: Mutex<std::collections::HashMap<String, Decisions>>,
    /// The chosen node's findings, taken at Reserve.
    decisions: Mutex<Decisions>,
}

type Decisions = Vec<(Arc<PersistentVolumeClaim>, Option<String>)>;

fn claim_names(pod: &PodInfo) -> Vec<String> {
    let Some(spec) = pod.pod.spec.as_ref() else {
        return vec![];
    };
    spec.volumes
        .iter()
        .flatten()
        .filter_map(|v| {
            if let Some(c) = &v.persistent_volume_claim {
                Some(c.claim_name.clone())
            } else {
                v.ephemeral
                    .as_ref()
                    .map(|_| format!("{}-{}", pod.name, v.name))
            }
        })
        .collect()
}

fn pv_fits_node(pv: &PersistentVolume, node: &NodeInfo) -> bool {
    match pv
        .spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
    {
        None => true,
        Some(sel) => Selector::parse(sel).matches(&node.name, node.node_labels()),
    }
}

fn storage(
    list: Option<
        &std::collections::BTreeMap<
            String,
            k8s_openapi::apimachinery::pkg::api::resource::Quantity,
        >,
    >,
) -> i64 {
    list.and_then(|l| l.get("storage"))
        .and_then(|q| parse_quantity(&q.0, 1.0))
        .unwrap_or(0)
}

/// Whether an available PV can serve the claim on this node.
fn pv_matches(pv: &PersistentVolume, d: &Delayed, node: &NodeInfo) -> bool {
    let Some(spec) = pv.spec.as_ref() else {
        return false;
    };
    let pvc_spec = d.pvc.spec.as_ref();
    let free = match &spec.claim_ref {
        None => true,
        Some(r) => {
            r.name.as_deref() == d.pvc.metadata.name.as_deref()
                && r.namespace.as_deref() == d.pvc.metadata.namespace.as_deref()
        }
    };
    let phase_ok = pv
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_none_or(|p| p == "Available");
    let class_ok = spec.storage_class_name.clone().unwrap_or_default() == d.class;
    let want_modes = pvc_spec
        .and_then(|s| s.access_modes.clone())
        .unwrap_or_default();
    let modes = spec.access_modes.clone().unwrap_or_default();
    let modes_ok = want_modes.iter().all(|m| modes.contains(m));
    let mode = |m: Option<&String>| m.cloned().unwrap_or_else(|| "Filesystem".into());
    let volume_mode_ok =
        mode(spec.volume_mode.as_ref()) == mode(pvc_spec.and_then(|s| s.volume_mode.as_ref()));
    let want = storage(
        pvc_spec
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref()),
    );
    let size_ok = storage(spec.capacity.as_ref()) >= want;
    free && phase_ok && class_ok && modes_ok && volume_mode_ok && size_ok && pv_fits_node(pv, node)
}

impl VolumeBinding {
    /// For each delayed claim, the smallest fitting PV (`None`: provision);
    /// `Err` when a claim can be served neither way on this node.
    fn find(&self, s: &State, node: &NodeInfo) -> Result<Decisions, ()> {
        let Some(l) = &self.listers else {
            return Err(());
        };
        let pvs = l.pvs.state();
        let mut taken = HashSet::new();
        let mut out = Vec::new();
        for d in &s.delayed {
            let best = pvs
                .iter()
                .filter(|pv| !taken.contains(&pv.metadata.name))
                .filter(|pv| pv_matches(pv, d, node))
                .min_by_key(|pv| storage(pv.spec.as_ref().and_then(|s| s.capacity.as_ref())));
            match best {
                Some(pv) => {
                    taken.insert(pv.metadata.name.clone());
                    out.push((d.pvc.clone(), pv.metadata.name.clone()));
                }
                None if d.dynamic => out.push((d.pvc.clone(), None)),
                None => return Err(()),
            }
        }
        Ok(out)
    }
}

impl Plugin for VolumeBinding {
    fn name(&self) -> &'static str {
        NAME
    }
    fn events_to_register(&self) -> Vec<EventInterest> {
        let au: &'static [ActionType] = &[ActionType::Add, ActionType::Update];
        vec![
            EventInterest {
                resource: EventResource::PersistentVolumeClaim,
                actions: au,
            },
            EventInterest {
                resource: EventResource::PersistentVolume,
                actions: au,
            },
            EventInterest {
                resource: EventResource::StorageClass,
                actions: au,
            },
            EventInterest {
                resource: EventResource::CSINode,
                actions: au,
            },
            EventInterest {
                resource: EventResource::Node,
                actions: au,
            },
        ]
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
    fn as_reserve(&self) -> Option<&dyn ReservePlugin> {
        Some(self)
    }
    fn as_pre_bind(&self) -> Option<&dyn PreBindPlugin> {
        Some(self)
    }
}

impl PreFilterPlugin for VolumeBinding {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        let claims = claim_names(pod);
        if claims.is_empty() {
            return (None, Status::skip());
        }
        let Some(l) = &self.listers else {
            return (None, Status::error("no PersistentVolumeClaim lister"));
        };
        let mut s = State::default();
        for name in claims {
            let Some(pvc) = l.pvcs.get(&ObjectRef::new(&name).within(&pod.namespace)) else {
                return (
                    None,
                    Status::unresolvable(format!("persistentvolumeclaim {name:?} not found")),
                );
            };
            if pvc.metadata.deletion_timestamp.is_some() {
                return (
                    None,
                    Status::unresolvable(format!(
                        "persistentvolumeclaim {name:?} is being deleted"
                    )),
                );
            }
            let spec = pvc.spec.clone().unwrap_or_default();
            if let Some(vol) = spec.volume_name.filter(|v| !v.is_empty()) {
                match l.pvs.get(&ObjectRef::new(&vol)) {
                    Some(pv) => s.bound.push(pv),
                    None => {
                        return (
                            None,
                            Status::unresolvable(format!(
                                "pvc {}/{name} is bound to non-existent pv {vol}",
                                pod.namespace
                            )),
                        )
                    }
                }
                continue;
            }
            let class = spec.storage_class_name.unwrap_or_default();
            let sc = l.storage_classes.get(&ObjectRef::new(&class));
            let wait = sc.as_ref().and_then(|c| c.volume_binding_mode.as_deref())
                == Some("WaitForFirstConsumer");
            if !wait {
                return (None, Status::unresolvable(ERR_UNBOUND_IMMEDIATE));
            }
            let dynamic = sc.as_ref().is_some_and(|c| c.provisioner != NO_PROVISIONER);
            s.delayed.push(Delayed {
                pvc,
                class,
                dynamic,
            });
        }
        state.write(NAME, s);
        (None, Status::success())
    }
}

impl FilterPlugin for VolumeBinding {
    fn filter(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<State>(NAME) else {
            return Status::error("reading VolumeBinding pre-filter state: not found");
        };
        if s.bound.iter().any(|pv| !pv_fits_node(pv, node)) {
            return Status::unresolvable(ERR_NODE_CONFLICT);
        }
        if s.delayed.is_empty() {
            return Status::success();
        }
        match self.find(s, node) {
            Ok(d) => {
                if let Ok(mut m) = s.per_node.lock() {
                    m.insert(node.name.clone(), d);
                }
                Status::success()
            }
            Err(()) => Status::unresolvable(ERR_NO_PV),
        }
    }
}

impl ReservePlugin for VolumeBinding {
    fn reserve(&self, state: &CycleState, _: &PodInfo, node: &str) -> Status {
        let Some(s) = state.read::<State>(NAME) else {
            return Status::success();
        };
        if s.delayed.is_empty() {
            return Status::success();
        }
        let found = s.per_node.lock().ok().and_then(|mut m| m.remove(node));
        match found {
            Some(d) => {
                if let Ok(mut mine) = s.decisions.lock() {
                    *mine = d;
                }
                Status::success()
            }
            None => Status::error(format!("no volume decisions for node {node}")),
        }
    }
    fn unreserve(&self, state: &CycleState, _: &PodInfo, _: &str) {
        if let Some(s) = state.read::<State>(NAME) {
            if let Ok(mut d) = s.decisions.lock() {
                d.clear();
            }
        }
    }
}

#[async_trait::async_trait]
impl PreBindPlugin for VolumeBinding {
    async fn pre_bind(&self, state: &CycleState, _: &PodInfo, node: &str) -> Status {
        let Some(s) = state.read::<State>(NAME) else {
            return Status::skip();
        };
        if s.delayed.is_empty() {
            return Status::skip();
        }
        let Some(client) = &self.client else {
            return Status::error("no API client to bind volumes with");
        };
        let decisions = s.decisions.lock().map(|d| d.clone()).unwrap_or_default();
        for (pvc, pv) in decisions {
            let ns = pvc.metadata.namespace.clone().unwrap_or_default();
            let name = pvc.metadata.name.clone().unwrap_or_default();
            let result = match pv {
                Some(pv) => {
                    let patch = json!({"metadata": {"annotations": {"pv.kubernetes.io/bound-by-controller": "yes"}},
                        "spec": {"claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
                            "namespace": ns, "name": name, "uid": pvc.metadata.uid}}});
                    Api::<PersistentVolume>::all(client.clone())
                        .patch(&pv, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map(|_| ())
                }
                None => {
                    let patch = json!({"metadata": {"annotations": {"volume.kubernetes.io/selected-node": node}}});
                    Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns)
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map(|_| ())
                }
            };
            if let Err(e) = result {
                return Status::error(format!("binding volumes: {e}"));
            }
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod};

    fn obj<T: serde::de::DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).unwrap()
    }

    fn plugin(setup: impl FnOnce(&mut crate::listers::Writers)) -> Arc<dyn Plugin> {
        let (listers, mut w) = Listers::new();
        setup(&mut w);
        new(
            None,
            &Handle {
                client: None,
                listers: Some(listers),
            },
        )
        .unwrap()
    }

    fn pvc(name: &str, class: &str, volume: Option<&str>) -> PersistentVolumeClaim {
        obj(
            json!({"metadata": {"name": name, "namespace": "default"}, "spec": {"storageClassName": class,
            "accessModes": ["ReadWriteOnce"], "volumeName": volume, "resources": {"requests": {"storage": "1Gi"}}}}),
        )
    }

    fn local_pv(name: &str, class: &str, host: &str, size: &str) -> PersistentVolume {
        obj(
            json!({"metadata": {"name": name}, "spec": {"storageClassName": class, "accessModes": ["ReadWriteOnce"],
            "capacity": {"storage": size}, "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions":
            [{"key": "kubernetes.io/hostname", "operator": "In", "values": [host]}]}]}}}}),
        )
    }

    fn class(name: &str, provisioner: &str) -> k8s_openapi::api::storage::v1::StorageClass {
        obj(
            json!({"metadata": {"name": name}, "provisioner": provisioner, "volumeBindingMode": "WaitForFirstConsumer"}),
        )
    }

    fn host(name: &str) -> NodeInfo {
        node(
            name,
            json!({"metadata": {"labels": {"kubernetes.io/hostname": name}}}),
        )
    }

    fn run(p: &Arc<dyn Plugin>, claim: &str) -> Result<Vec<String>, Status> {
        let pi = pod(
            json!({"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}),
        );
        let mut state = CycleState::default();
        let (_, s) = p
            .as_pre_filter()
            .unwrap()
            .pre_filter(&mut state, &pi, &Snapshot::default());
        if !s.is_success() {
            return Err(s);
        }
        Ok([host("a"), host("b")]
            .iter()
            .map(|n| p.as_filter().unwrap().filter(&state, &pi, n).message())
            .collect())
    }

    #[test]
    fn claims_must_exist_and_immediate_ones_be_bound() {
        let p = plugin(|w| w.apply_pvc(pvc("imm", "standard", None)));
        assert_eq!(
            run(&p, "missing").unwrap_err().message(),
            "persistentvolumeclaim \"missing\" not found"
        );
        assert_eq!(run(&p, "imm").unwrap_err().message(), ERR_UNBOUND_IMMEDIATE);
        let (_, s) = p.as_pre_filter().unwrap().pre_filter(
            &mut CycleState::default(),
            &pod(json!({})),
            &Snapshot::default(),
        );
        assert!(s.is_skip());
    }

    #[test]
    fn bound_volumes_pin_the_node() {
        let p = plugin(|w| {
            w.apply_pvc(pvc("data", "local", Some("pv-a")));
            w.apply_pv(local_pv("pv-a", "local", "a", "1Gi"));
        });
        assert_eq!(
            run(&p, "data").unwrap(),
            vec![String::new(), ERR_NODE_CONFLICT.to_string()]
        );
    }

    #[test]
    fn delayed_claims_find_a_local_volume_or_provision() {
        let p = plugin(|w| {
            w.apply_storage_class(class("local", NO_PROVISIONER));
            w.apply_pvc(pvc("data", "local", None));
            w.apply_pv(local_pv("small-b", "local", "b", "500Mi"));
            w.apply_pv(local_pv("big-b", "local", "b", "2Gi"));
        });
        assert_eq!(
            run(&p, "data").unwrap(),
            vec![ERR_NO_PV.to_string(), String::new()]
        );
        let p = plugin(|w| {
            w.apply_storage_class(class("fast", "csi.example.com"));
            w.apply_pvc(pvc("data", "fast", None));
        });
        assert_eq!(
            run(&p, "data").unwrap(),
            vec![String::new(), String::new()],
            "dynamic provisioning fits anywhere"
        );
    }
}
