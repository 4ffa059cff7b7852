//! The Node authorizer (upstream's `plugin/pkg/auth/authorizer/node`):
//! a kubelet (`system:node:<name>` in `system:nodes`) reads only the
//! secrets, configmaps, claims and volumes of the pods bound to its node,
//! asks tokens only for their service accounts, and touches only its own
//! Lease and CSINode; everything else it may do is the fixed set of node
//! rules (upstream's `NodeRules`).
//!
//! Upstream keeps a graph of pods, volumes and attachments updated by
//! informers; here the relationship is looked up in the watch cache when
//! asked: the node's pods of the namespace (selected by their cached
//! `spec.nodeName` field, so only those are decoded) and the claims' bound
//! volumes.

use std::sync::OnceLock;

use serde_json::Value;

use super::rules::Rule;
use super::{Attributes, Decision};
use crate::state::ApiState;

pub const NODES_GROUP: &str = "system:nodes";
const NODE_PREFIX: &str = "system:node:";

/// The node a user is, if it is one (upstream's `NodeIdentity`):
/// `Some("")` for a node user without a name.
pub fn node_identity(user: &component_base::authn::User) -> Option<&str> {
    let name = user.name.strip_prefix(NODE_PREFIX)?;
    user.groups.iter().any(|g| g == NODES_GROUP).then_some(name)
}

fn no(why: impl Into<String>) -> Decision {
    Decision::NoOpinion(why.into())
}

pub fn authorize(state: &ApiState, a: &Attributes) -> Decision {
    let Some(node) = node_identity(a.user) else {
        return no("");
    };
    if node.is_empty() {
        return no(format!("unknown node for user {:?}", a.user.name));
    }
    if a.resource_request {
        match (a.api_group, a.resource) {
            ("", "secrets") => return read_namespaced(state, node, Ref::Secret, a),
            ("", "configmaps") => return read_namespaced(state, node, Ref::ConfigMap, a),
            ("", "persistentvolumeclaims") if a.subresource == "status" => {
                if !matches!(a.verb, "update" | "patch") {
                    return no("can only update or patch the status of resources of this type");
                }
                return related(state, node, Ref::Claim, a);
            }
            ("", "persistentvolumeclaims") => return get_one(state, node, Ref::Claim, a),
            ("", "persistentvolumes") => return get_one(state, node, Ref::Volume, a),
            ("storage.k8s.io", "volumeattachments") => {
                return get_one(state, node, Ref::Attachment, a)
            }
            ("", "serviceaccounts") => {
                if a.verb != "create" || a.name.is_empty() || a.subresource != "token" {
                    return no("can only create tokens for individual service accounts");
                }
                return related(state, node, Ref::ServiceAccount, a);
            }
            ("coordination.k8s.io", "leases") => return own_lease(node, a),
            ("storage.k8s.io", "csinodes") => return own_csinode(node, a),
            _ => {}
        }
    }
    if node_rules().iter().any(|r| r.allows(a)) {
        Decision::Allow(String::new())
    } else {
        no("")
    }
}

/// What a request reads, as a pod refers to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ref {
    Secret,
    ConfigMap,
    Claim,
    Volume,
    Attachment,
    ServiceAccount,
}

fn read_namespaced(state: &ApiState, node: &str, what: Ref, a: &Attributes) -> Decision {
    if !matches!(a.verb, "get" | "list" | "watch") {
        return no("can only read resources of this type");
    }
    if !a.subresource.is_empty() {
        return no("cannot read subresource");
    }
    if a.namespace.is_empty() {
        return no("can only read namespaced object of this type");
    }
    related(state, node, what, a)
}

fn get_one(state: &ApiState, node: &str, what: Ref, a: &Attributes) -> Decision {
    if a.verb != "get" {
        return no("can only get individual resources of this type");
    }
    if !a.subresource.is_empty() {
        return no("cannot get subresource");
    }
    related(state, node, what, a)
}

fn related(state: &ApiState, node: &str, what: Ref, a: &Attributes) -> Decision {
    if a.name.is_empty() {
        return no("No Object name found");
    }
    if has_path(state, node, what, a.namespace, a.name) {
        Decision::Allow(String::new())
    } else {
        no(format!(
            "no relationship found between node '{node}' and this object"
        ))
    }
}

fn own_lease(node: &str, a: &Attributes) -> Decision {
    if !matches!(a.verb, "get" | "create" | "update" | "patch" | "delete") {
        return no("can only get, create, update, patch, or delete a node lease");
    }
    if a.namespace != "kube-node-lease" {
        return no("can only access leases in the \"kube-node-lease\" system namespace");
    }
    if a.verb != "create" && a.name != node {
        return no("can only access node lease with the same name as the requesting node");
    }
    Decision::Allow(String::new())
}

fn own_csinode(node: &str, a: &Attributes) -> Decision {
    if !matches!(a.verb, "get" | "create" | "update" | "patch" | "delete") {
        return no("can only get, create, update, patch, or delete a CSINode");
    }
    if !a.subresource.is_empty() {
        return no("cannot authorize CSINode subresources");
    }
    if a.verb != "create" && a.name != node {
        return no("can only access CSINode with the same name as the requesting node");
    }
    Decision::Allow(String::new())
}

/// The pods bound to `node`, of `namespace` (all when empty), decoded.
fn node_pods(state: &ApiState, node: &str, namespace: &str) -> Vec<Value> {
    let Some(def) = state.resource("", "v1", "pods") else {
        return Vec::new();
    };
    let prefix = state.collection_key(&def, namespace);
    let (items, _) = state.cacher.list(&prefix, &|o| {
        o.fields
            .iter()
            .any(|(k, v)| *k == "spec.nodeName" && v == node)
    });
    items.iter().filter_map(|o| o.value().ok()).collect()
}

fn has_path(state: &ApiState, node: &str, what: Ref, namespace: &str, name: &str) -> bool {
    match what {
        Ref::Secret | Ref::ConfigMap | Ref::Claim | Ref::ServiceAccount => {
            node_pods(state, node, namespace)
                .iter()
                .any(|p| pod_refers(p, what, name))
        }
        Ref::Volume => {
            // node ← pod → claim → this volume.
            node_pods(state, node, "").iter().any(|p| {
                let ns = apimachinery::meta::namespace(p);
                claim_names(p)
                    .iter()
                    .any(|c| claim_volume(state, ns, c).as_deref() == Some(name))
            })
        }
        Ref::Attachment => {
            let Some(def) = state.resource("storage.k8s.io", "v1", "volumeattachments") else {
                return false;
            };
            let (obj, _) = state.cacher.get(&state.object_key(&def, "", name));
            obj.and_then(|o| o.value().ok())
                .and_then(|v| {
                    v.pointer("/spec/nodeName")
                        .and_then(Value::as_str)
                        .map(|n| n == node)
                })
                .unwrap_or(false)
        }
    }
}

fn claim_volume(state: &ApiState, namespace: &str, claim: &str) -> Option<String> {
    let def = state.resource("", "v1", "persistentvolumeclaims")?;
    let (obj, _) = state.cacher.get(&state.object_key(&def, namespace, claim));
    let v = obj?.value().ok()?;
    v.pointer("/spec/volumeName")
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn str_at<'a>(v: &'a Value, p: &str) -> Option<&'a str> {
    v.pointer(p).and_then(Value::as_str)
}

fn array<'a>(v: &'a Value, p: &str) -> impl Iterator<Item = &'a Value> {
    v.pointer(p).and_then(Value::as_array).into_iter().flatten()
}

/// The claims a pod mounts, with the generated claims of its ephemeral
/// volumes (`<pod>-<volume>`).
fn claim_names(pod: &Value) -> Vec<String> {
    let pod_name = apimachinery::meta::name(pod);
    array(pod, "/spec/volumes")
        .filter_map(|v| {
            if let Some(c) = str_at(v, "/persistentVolumeClaim/claimName") {
                Some(c.to_string())
            } else if v.get("ephemeral").is_some() {
                Some(format!("{pod_name}-{}", str_at(v, "/name").unwrap_or("")))
            } else {
                None
            }
        })
        .collect()
}

fn containers(pod: &Value) -> impl Iterator<Item = &Value> {
    array(pod, "/spec/containers")
        .chain(array(pod, "/spec/initContainers"))
        .chain(array(pod, "/spec/ephemeralContainers"))
}

/// Whether the pod refers to the named object of this kind (upstream's
/// `VisitPodSecretNames`/`VisitPodConfigmapNames` and the pod's claims and
/// service account).
fn pod_refers(pod: &Value, what: Ref, name: &str) -> bool {
    let is = |s: Option<&str>| s == Some(name);
    match what {
        Ref::ServiceAccount => {
            let sa = str_at(pod, "/spec/serviceAccountName").unwrap_or("default");
            sa == name
        }
        Ref::Claim => claim_names(pod).iter().any(|c| c == name),
        Ref::Secret => {
            array(pod, "/spec/imagePullSecrets").any(|s| is(str_at(s, "/name")))
                || array(pod, "/spec/volumes").any(|v| {
                    is(str_at(v, "/secret/secretName"))
                        || array(v, "/projected/sources").any(|s| is(str_at(s, "/secret/name")))
                        || [
                            "/csi/nodePublishSecretRef/name",
                            "/cephfs/secretRef/name",
                            "/rbd/secretRef/name",
                            "/iscsi/secretRef/name",
                            "/flexVolume/secretRef/name",
                            "/azureFile/secretName",
                            "/scaleIO/secretRef/name",
                            "/storageos/secretRef/name",
                            "/cinder/secretRef/name",
                        ]
                        .iter()
                        .any(|p| is(str_at(v, p)))
                })
                || containers(pod).any(|c| {
                    array(c, "/envFrom").any(|e| is(str_at(e, "/secretRef/name")))
                        || array(c, "/env").any(|e| is(str_at(e, "/valueFrom/secretKeyRef/name")))
                })
        }
        Ref::ConfigMap => {
            array(pod, "/spec/volumes").any(|v| {
                is(str_at(v, "/configMap/name"))
                    || array(v, "/projected/sources").any(|s| is(str_at(s, "/configMap/name")))
            }) || containers(pod).any(|c| {
                array(c, "/envFrom").any(|e| is(str_at(e, "/configMapRef/name")))
                    || array(c, "/env").any(|e| is(str_at(e, "/valueFrom/configMapKeyRef/name")))
            })
        }
        Ref::Volume | Ref::Attachment => false,
    }
}

/// What every node may do (upstream's `NodeRules`, the `system:node`
/// role's rules), for what is not subdivided above.
fn node_rules() -> &'static [Rule] {
    static RULES: OnceLock<Vec<Rule>> = OnceLock::new();
    RULES.get_or_init(|| {
        super::policy::node_rules()
            .iter()
            .map(Rule::parse)
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use component_base::authn::User;
    use serde_json::json;

    #[test]
    fn pods_refer_to_what_they_mount_and_read() {
        let pod = json!({"metadata": {"name": "web"}, "spec": {
            "serviceAccountName": "app",
            "imagePullSecrets": [{"name": "pull"}],
            "volumes": [
                {"name": "s", "secret": {"secretName": "vol"}},
                {"name": "p", "projected": {"sources": [{"configMap": {"name": "proj"}}, {"secret": {"name": "projs"}}]}},
                {"name": "c", "persistentVolumeClaim": {"claimName": "data"}},
                {"name": "e", "ephemeral": {"volumeClaimTemplate": {}}}
            ],
            "initContainers": [{"envFrom": [{"secretRef": {"name": "init-env"}}]}],
            "containers": [{"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "envcm", "key": "k"}}}]}]
        }});
        for s in ["pull", "vol", "projs", "init-env"] {
            assert!(pod_refers(&pod, Ref::Secret, s), "{s}");
        }
        assert!(!pod_refers(&pod, Ref::Secret, "proj"));
        for c in ["proj", "envcm"] {
            assert!(pod_refers(&pod, Ref::ConfigMap, c), "{c}");
        }
        assert!(pod_refers(&pod, Ref::Claim, "data"));
        assert!(pod_refers(&pod, Ref::Claim, "web-e"));
        assert!(pod_refers(&pod, Ref::ServiceAccount, "app"));
        assert!(!pod_refers(&pod, Ref::ServiceAccount, "default"));
    }

    #[test]
    fn node_identity_needs_the_group_and_the_prefix() {
        let u = |n: &str, g: &[&str]| User {
            name: n.into(),
            groups: g.iter().map(|s| s.to_string()).collect(),
            ..User::default()
        };
        assert_eq!(
            node_identity(&u("system:node:a", &[NODES_GROUP])),
            Some("a")
        );
        assert_eq!(node_identity(&u("system:node:a", &[])), None);
        assert_eq!(node_identity(&u("bob", &[NODES_GROUP])), None);
        assert_eq!(node_identity(&u("system:node:", &[NODES_GROUP])), Some(""));
    }
}
