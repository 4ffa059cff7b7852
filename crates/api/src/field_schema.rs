//! The schema server-side apply walks for the built-in kinds: field types
//! from the OpenAPI model (`openapi::FieldTypes`), list types and keys from
//! `patch_meta` (upstream's `+listType`/`+listMapKey` markers), and the
//! structs upstream marks `+structType=atomic`. Custom resources without a
//! known type walk untyped: maps granular, lists atomic (the CRD defaults).

use apimachinery::managedfields::{ListKind, Schema};
use serde_json::Value;

use crate::openapi::FieldTypes;
use crate::patch_meta::{self, ListType};

/// Structs upstream replaces whole (`+structType=atomic`).
const ATOMIC_STRUCTS: &[&str] = &[
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.NodeSelectorTerm",
    "io.k8s.api.core.v1.TopologySelectorTerm",
    "io.k8s.api.core.v1.ObjectReference",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.TypedLocalObjectReference",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.ObjectFieldSelector",
    "io.k8s.api.core.v1.ResourceFieldSelector",
];

/// The type of the value at one path.
#[derive(Debug, Clone, Copy, Default)]
pub struct Node {
    /// The OpenAPI definition of an object (a list's items for a list).
    def: Option<&'static str>,
    list: Option<&'static patch_meta::ListMeta>,
}

/// The built-in types (and untyped values).
pub struct BuiltinSchema;

impl BuiltinSchema {
    /// The root node of a served kind; untyped when unknown.
    pub fn root(group: &str, version: &str, kind: &str) -> Node {
        Node {
            def: FieldTypes::get().kind(group, version, kind),
            list: None,
        }
    }
}

impl Schema for BuiltinSchema {
    type Node = Node;

    fn field(&self, parent: &Node, name: &str) -> Node {
        let Some(def) = parent.def else {
            return Node::default();
        };
        Node {
            def: FieldTypes::get().field(def, name),
            list: patch_meta::list_meta(def, name),
        }
    }

    fn item(&self, list: &Node) -> Node {
        Node {
            def: list.def,
            list: None,
        }
    }

    fn list_kind(&self, list: &Node) -> ListKind {
        match list.list {
            Some(m) if m.list_type == ListType::Map => ListKind::Map(m.keys.to_vec()),
            Some(_) => ListKind::Set,
            None => ListKind::Atomic,
        }
    }

    fn atomic_map(&self, node: &Node) -> bool {
        node.def.is_some_and(|d| ATOMIC_STRUCTS.contains(&d))
    }

    fn is_struct(&self, node: &Node) -> bool {
        node.def.is_some()
    }

    fn key_default(&self, _list: &Node, key: &str) -> Option<Value> {
        // The only defaulted list-map key of the built-in types (ports).
        (key == "protocol").then(|| Value::String("TCP".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apimachinery::managedfields::to_field_set;
    use serde_json::json;

    #[test]
    fn deployment_fields_like_upstream() {
        let root = BuiltinSchema::root("apps", "v1", "Deployment");
        let d = json!({"spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                {"name": "web", "image": "nginx", "ports": [{"containerPort": 80}], "args": ["a"]}]}}}});
        let s = to_field_set(&BuiltinSchema, &root, &d).to_fields_v1();
        assert_eq!(
            s["f:spec"]["f:selector"],
            json!({}),
            "LabelSelector is atomic"
        );
        let c = &s["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"];
        assert_eq!(c["f:args"], json!({}), "args is an atomic list");
        assert!(c["f:ports"]
            .get("k:{\"containerPort\":80,\"protocol\":\"TCP\"}")
            .is_some());
    }
}
