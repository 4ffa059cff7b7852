//! NodeRestriction (upstream's `plugin/pkg/admission/noderestriction`): a
//! kubelet — a user `system:node:<name>` in the group `system:nodes` — may
//! only write what concerns its own node: its Node (not its taints, nor
//! labels outside the kubelet's set, never `node-restriction.kubernetes.io/`
//! ones), its Lease in `kube-node-lease`, its CSINode, the status of pods
//! bound to it (not their labels), mirror pods bound to it that reference no
//! other object, deletions and evictions of pods bound to it, tokens for
//! pods bound to it, and the resize fields of claims' status. Other users
//! pass untouched.

use apimachinery::ApiError;
use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{Attributes, Operation, Plugin};
use crate::state::ApiState;

const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";
const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// The node a user is, upstream's `NodeIdentifier`: None for non-nodes,
/// Some("") for a node user without a name.
pub fn node_identity(user: &component_base::authn::User) -> Option<&str> {
    let name = user.name.strip_prefix("system:node:")?;
    user.groups
        .iter()
        .any(|g| g == "system:nodes")
        .then_some(name)
}

/// Labels a kubelet may set on its Node (upstream's `kubeletapis.IsKubeletLabel`).
fn is_kubelet_label(key: &str) -> bool {
    const LABELS: &[&str] = &[
        "kubernetes.io/hostname",
        "kubernetes.io/os",
        "kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/arch",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "failure-domain.beta.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "topology.kubernetes.io/zone",
    ];
    if LABELS.contains(&key) {
        return true;
    }
    let ns = namespace(key);
    ["kubelet.kubernetes.io", "node.kubernetes.io"]
        .iter()
        .any(|allowed| in_namespace(ns, allowed))
}

fn namespace(key: &str) -> &str {
    key.split_once('/').map(|(ns, _)| ns).unwrap_or("")
}

fn in_namespace(ns: &str, domain: &str) -> bool {
    ns == domain || ns.ends_with(&format!(".{domain}"))
}

fn is_kubernetes_label(key: &str) -> bool {
    let ns = namespace(key);
    in_namespace(ns, "kubernetes.io") || in_namespace(ns, "k8s.io")
}

/// Label keys `node-restriction.kubernetes.io/` or outside the kubelet's
/// set of kubernetes.io/k8s.io labels, among those changed.
fn forbidden_labels(new: Option<&Value>, old: Option<&Value>) -> Vec<String> {
    let empty = Map::new();
    let labels = |o: Option<&Value>| {
        o.and_then(|o| o.pointer("/metadata/labels"))
            .and_then(Value::as_object)
            .unwrap_or(&empty)
            .clone()
    };
    let (new, old) = (labels(new), labels(old));
    let mut changed: Vec<&String> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .chain(old.keys().filter(|k| !new.contains_key(*k)))
        .collect();
    changed.sort();
    changed.dedup();
    changed
        .into_iter()
        .filter(|k| {
            in_namespace(namespace(k), "node-restriction.kubernetes.io")
                || (is_kubernetes_label(k) && !is_kubelet_label(k))
        })
        .cloned()
        .collect()
}

fn node_of(pod: &Value) -> &str {
    pod.pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn cached(state: &ApiState, key: String) -> Option<Value> {
    state.cacher.get(&key).0.and_then(|o| o.value().ok())
}

/// The pod `ns/name` from the watch cache, or upstream's 404.
fn existing_pod(state: &ApiState, ns: &str, name: &str) -> Result<Value, ApiError> {
    cached(state, format!("{}pods/{ns}/{name}", state.prefix))
        .ok_or_else(|| ApiError::not_found(&apimachinery::GroupResource::new("", "pods"), name))
}

/// Whether a pod spec names a secret, configmap, claim or service account.
fn references(pod: &Value) -> Option<&'static str> {
    let spec = pod.get("spec")?;
    let sa = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !sa.is_empty() {
        return Some("a service account");
    }
    let text = spec.to_string();
    let has = |needle: &str| text.contains(needle);
    if has("\"imagePullSecrets\"")
        || has("\"secretRef\"")
        || has("\"secretKeyRef\"")
        || has("\"secret\":")
        || has("\"secretName\"")
    {
        return Some("secrets");
    }
    if has("\"configMapRef\"") || has("\"configMapKeyRef\"") || has("\"configMap\":") {
        return Some("configmaps");
    }
    if has("\"persistentVolumeClaim\"") {
        return Some("persistentvolumeclaims");
    }
    None
}

pub struct NodeRestriction;

impl NodeRestriction {
    fn pod_create(node: &str, state: &ApiState, pod: &Value) -> Result<(), String> {
        let mirror = pod
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .is_some_and(|m| m.contains_key(MIRROR_POD_ANNOTATION));
        if !mirror {
            return Err(format!(
                "pod does not have {MIRROR_POD_ANNOTATION:?} annotation, node {node:?} can only create mirror pods"
            ));
        }
        if node_of(pod) != node {
            return Err(format!(
                "node {node:?} can only create pods with spec.nodeName set to itself"
            ));
        }
        let owners = pod
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if owners.len() > 1 {
            return Err(format!(
                "node {node:?} can only create pods with a single owner reference set to itself"
            ));
        }
        if let Some(owner) = owners.first() {
            let s = |k: &str| owner.get(k).and_then(Value::as_str).unwrap_or("");
            if s("apiVersion") != "v1" || s("kind") != "Node" || s("name") != node {
                return Err(format!(
                    "node {node:?} can only create pods with an owner reference set to itself"
                ));
            }
            if owner.get("controller").and_then(Value::as_bool) != Some(true) {
                return Err(format!(
                    "node {node:?} can only create pods with a controller owner reference set to itself"
                ));
            }
            if owner.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true) {
                return Err(format!(
                    "node {node:?} must not set blockOwnerDeletion on an owner reference"
                ));
            }
            let uid = cached(state, format!("{}minions/{node}", state.prefix))
                .and_then(|n| {
                    n.pointer("/metadata/uid")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .unwrap_or_default();
            if s("uid") != uid {
                return Err(format!(
                    "node {node} UID mismatch: expected {} got {uid}",
                    s("uid")
                ));
            }
        }
        if let Some(what) = references(pod) {
            return Err(format!(
                "node {node:?} can not create pods that reference {what}"
            ));
        }
        Ok(())
    }

    fn pods(node: &str, state: &ApiState, a: &Attributes<'_>, obj: &Value) -> Result<(), ApiError> {
        let deny = |why: String| Err(a.forbidden(why));
        match (a.subresource, a.operation) {
            ("", Operation::Create) => Self::pod_create(node, state, obj).or_else(deny),
            ("", Operation::Delete) => {
                let pod = existing_pod(state, a.namespace, a.name)?;
                if node_of(&pod) != node {
                    return deny(format!(
                        "node {node:?} can only delete pods with spec.nodeName set to itself"
                    ));
                }
                Ok(())
            }
            ("", op) => deny(format!(
                "unexpected operation {:?}, node {node:?} can only create and delete mirror pods",
                super::webhook::hook::operation_name(op)
            )),
            ("status", Operation::Update) => {
                let old = a.old.unwrap_or(&Value::Null);
                if node_of(old) != node {
                    return deny(format!(
                        "node {node:?} can only update pod status for pods with spec.nodeName set to itself"
                    ));
                }
                if old.pointer("/metadata/labels") != obj.pointer("/metadata/labels") {
                    return deny(format!(
                        "node {node:?} cannot update labels through pod status"
                    ));
                }
                Ok(())
            }
            ("eviction", Operation::Create) => {
                let pod = existing_pod(state, a.namespace, a.name)?;
                if node_of(&pod) != node {
                    return deny(format!(
                        "node {node} can only evict pods with spec.nodeName set to itself"
                    ));
                }
                Ok(())
            }
            ("status" | "eviction", op) => deny(format!(
                "unexpected operation {}",
                super::webhook::hook::operation_name(op)
            )),
            (sub, _) => deny(format!(
                "unexpected pod subresource {sub:?}, only 'status' and 'eviction' are allowed"
            )),
        }
    }

    fn nodes(node: &str, a: &Attributes<'_>, obj: &Value) -> Result<(), ApiError> {
        let deny = |why: String| Err(a.forbidden(why));
        let requested = match a.operation {
            Operation::Create => apimachinery::meta::name(obj),
            _ => a.name,
        };
        if a.operation == Operation::Create {
            let bad = forbidden_labels(Some(obj), None);
            if !bad.is_empty() {
                return deny(format!(
                    "node {node:?} is not allowed to set the following labels: {}",
                    bad.join(", ")
                ));
            }
        }
        if requested != node {
            return deny(format!(
                "node {node:?} is not allowed to modify node {requested:?}"
            ));
        }
        if a.operation == Operation::Update {
            let old = a.old.unwrap_or(&Value::Null);
            let taints = |o: &Value| {
                o.pointer("/spec/taints")
                    .cloned()
                    .filter(|t| t.as_array().is_some_and(|a| !a.is_empty()))
            };
            if taints(obj) != taints(old) {
                return deny(format!("node {node:?} is not allowed to modify taints"));
            }
            let bad = forbidden_labels(Some(obj), Some(old));
            if !bad.is_empty() {
                return deny(format!(
                    "is not allowed to modify labels: {}",
                    bad.join(", ")
                ));
            }
        }
        Ok(())
    }

    fn pvcs(node: &str, a: &Attributes<'_>, obj: &Value) -> Result<(), ApiError> {
        if a.subresource != "status" {
            return Err(a.forbidden("may only update PVC status"));
        }
        if a.operation != Operation::Update {
            return Err(a.forbidden(format!(
                "unexpected operation {:?}",
                super::webhook::hook::operation_name(a.operation)
            )));
        }
        let strip = |o: &Value| {
            let mut o = o.clone();
            if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
                m.remove("managedFields");
            }
            if let Some(s) = o.get_mut("status").and_then(Value::as_object_mut) {
                for f in [
                    "capacity",
                    "conditions",
                    "allocatedResources",
                    "allocatedResourceStatuses",
                ] {
                    s.remove(f);
                }
            }
            o
        };
        if strip(obj) != strip(a.old.unwrap_or(&Value::Null)) {
            return Err(a.forbidden(format!(
                "node {node:?} is not allowed to update fields other than status.capacity and status.conditions"
            )));
        }
        Ok(())
    }

    fn token(node: &str, state: &ApiState, a: &Attributes<'_>, tr: &Value) -> Result<(), ApiError> {
        if a.operation != Operation::Create || a.subresource != "token" {
            return Ok(());
        }
        let deny = |why: String| Err(a.forbidden(why));
        let r = tr
            .pointer("/spec/boundObjectRef")
            .cloned()
            .unwrap_or(Value::Null);
        let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
        if s("apiVersion") != "v1" || s("kind") != "Pod" || s("name").is_empty() {
            return deny("node requested token not bound to a pod".into());
        }
        if s("uid").is_empty() {
            return deny("node requested token with a pod binding without a uid".into());
        }
        let pod = existing_pod(state, a.namespace, s("name"))?;
        let uid = pod
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("");
        if s("uid") != uid {
            return deny(format!(
                "the UID in the bound object reference ({}) does not match the UID in record ({uid}). The object might have been deleted and then recreated",
                s("uid")
            ));
        }
        if node_of(&pod) != node {
            return deny(
                "node requested token bound to a pod scheduled on a different node".into(),
            );
        }
        Ok(())
    }

    /// Leases and CSINodes: only the object named after the node.
    fn own_object(node: &str, a: &Attributes<'_>, obj: &Value, what: &str) -> Result<(), ApiError> {
        let name = match a.operation {
            Operation::Create => apimachinery::meta::name(obj),
            _ => a.name,
        };
        if name != node {
            return Err(a.forbidden(format!(
                "can only access {what} with the same name as the requesting node"
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl Plugin for NodeRestriction {
    fn name(&self) -> &'static str {
        "NodeRestriction"
    }

    async fn validate(
        &self,
        state: &ApiState,
        a: &Attributes<'_>,
        obj: &Value,
    ) -> Result<(), ApiError> {
        let Some(node) = node_identity(a.user) else {
            return Ok(());
        };
        if node.is_empty() {
            return Err(a.forbidden(format!(
                "could not determine node from user {:?}",
                a.user.name
            )));
        }
        match (a.group, a.resource) {
            ("", "pods") => Self::pods(node, state, a, obj),
            ("", "nodes") => Self::nodes(node, a, obj),
            ("", "persistentvolumeclaims") => Self::pvcs(node, a, obj),
            ("", "serviceaccounts") => Self::token(node, state, a, obj),
            ("coordination.k8s.io", "leases") => {
                if a.namespace != NODE_LEASE_NAMESPACE {
                    return Err(a.forbidden(format!(
                        "can only access leases in the {NODE_LEASE_NAMESPACE:?} system namespace"
                    )));
                }
                Self::own_object(node, a, obj, "node lease")
            }
            ("storage.k8s.io", "csinodes") => Self::own_object(node, a, obj, "CSINode"),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use component_base::authn::User;

    #[test]
    fn nodes_are_known_by_name_and_group() {
        let u = |name: &str, groups: &[&str]| User {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..User::default()
        };
        assert_eq!(
            node_identity(&u("system:node:n1", &["system:nodes"])),
            Some("n1")
        );
        assert_eq!(node_identity(&u("system:node:n1", &[])), None);
        assert_eq!(node_identity(&u("alice", &["system:nodes"])), None);
        assert_eq!(
            node_identity(&u("system:node:", &["system:nodes"])),
            Some("")
        );
    }

    #[test]
    fn labels_a_kubelet_may_not_set() {
        let node = |labels: Value| serde_json::json!({"metadata": {"labels": labels}});
        let new = node(serde_json::json!({
            "kubernetes.io/hostname": "n1", "topology.kubernetes.io/zone": "a",
            "node.kubernetes.io/exclude-from-external-load-balancers": "",
            "node-restriction.kubernetes.io/pci": "yes", "node-role.kubernetes.io/control-plane": "",
            "example.com/team": "a", "foo.k8s.io/x": "1"
        }));
        assert_eq!(
            forbidden_labels(Some(&new), None),
            [
                "foo.k8s.io/x",
                "node-restriction.kubernetes.io/pci",
                "node-role.kubernetes.io/control-plane"
            ]
        );
        // Only changes count: a label that stays is not reported again.
        assert!(forbidden_labels(Some(&new), Some(&new)).is_empty());
        let old = node(serde_json::json!({"node-role.kubernetes.io/worker": ""}));
        assert_eq!(
            forbidden_labels(Some(&node(serde_json::json!({}))), Some(&old)),
            ["node-role.kubernetes.io/worker"]
        );
    }

    #[test]
    fn mirror_pods_may_not_reference_other_objects() {
        let pod = |spec: Value| serde_json::json!({"spec": spec});
        assert_eq!(
            references(&pod(
                serde_json::json!({"containers": [{"name": "c", "image": "i"}]})
            )),
            None
        );
        assert_eq!(
            references(&pod(serde_json::json!({"serviceAccountName": "x"}))),
            Some("a service account")
        );
        assert_eq!(
            references(&pod(
                serde_json::json!({"volumes": [{"name": "v", "secret": {"secretName": "s"}}]})
            )),
            Some("secrets")
        );
        assert_eq!(
            references(&pod(
                serde_json::json!({"containers": [{"envFrom": [{"configMapRef": {"name": "c"}}]}]})
            )),
            Some("configmaps")
        );
        assert_eq!(
            references(&pod(
                serde_json::json!({"volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "c"}}]})
            )),
            Some("persistentvolumeclaims")
        );
    }
}
