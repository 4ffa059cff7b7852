//! The schema server-side apply walks for the built-in kinds: field types
//! from the OpenAPI model (`openapi::FieldTypes`), list types and keys from
//! `patch_meta` (upstream's `+listType`/`+listMapKey` markers), and the
//! structs upstream marks `+structType=atomic`. Custom resources walk their
//! CRD's structural schema (`x-kubernetes-list-type`, `-list-map-keys`,
//! `-map-type`; lists atomic and maps granular by default) with
//! `metadata` typed as ObjectMeta; [`KindSchema`] picks one per resource.

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
            Some(m) if m.list_type == ListType::Map => {
                ListKind::Map(m.keys.iter().map(|k| k.to_string()).collect())
            }
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

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// The schema of one served resource: a built-in kind or a custom resource.
#[derive(Debug, Clone, Copy, Default)]
pub struct KindSchema<'a> {
    _nodes: std::marker::PhantomData<&'a ()>,
}

/// A node of a [`KindSchema`].
#[derive(Debug, Clone, Copy)]
pub enum KindNode<'a> {
    Builtin(Node),
    /// The custom resource's root object.
    CustomRoot(Option<&'a apiextensions::Schema>),
    Custom(Option<&'a apiextensions::Schema>),
}

impl KindSchema<'_> {
    /// The schema and root node for `def`.
    pub fn of(def: &crate::ResourceDef) -> (KindSchema<'_>, KindNode<'_>) {
        let root = match &def.custom {
            Some(c) => KindNode::CustomRoot(c.schema.as_ref()),
            None => KindNode::Builtin(BuiltinSchema::root(&def.group, &def.version, &def.kind)),
        };
        (KindSchema::default(), root)
    }
}

fn custom_field<'a>(
    s: Option<&'a apiextensions::Schema>,
    name: &str,
) -> Option<&'a apiextensions::Schema> {
    let s = s?;
    s.properties
        .get(name)
        .or(s.additional_properties.as_deref())
}

impl<'a> Schema for KindSchema<'a> {
    type Node = KindNode<'a>;

    fn field(&self, parent: &KindNode<'a>, name: &str) -> KindNode<'a> {
        match parent {
            KindNode::Builtin(n) => KindNode::Builtin(BuiltinSchema.field(n, name)),
            KindNode::CustomRoot(_) if name == "metadata" => KindNode::Builtin(Node {
                def: Some(OBJECT_META),
                list: None,
            }),
            KindNode::CustomRoot(s) | KindNode::Custom(s) => {
                KindNode::Custom(custom_field(*s, name))
            }
        }
    }

    fn item(&self, list: &KindNode<'a>) -> KindNode<'a> {
        match list {
            KindNode::Builtin(n) => KindNode::Builtin(BuiltinSchema.item(n)),
            KindNode::CustomRoot(s) | KindNode::Custom(s) => {
                KindNode::Custom(s.and_then(|s| s.items.as_deref()))
            }
        }
    }

    fn list_kind(&self, list: &KindNode<'a>) -> ListKind {
        match list {
            KindNode::Builtin(n) => BuiltinSchema.list_kind(n),
            KindNode::CustomRoot(s) | KindNode::Custom(s) => {
                match s.map(|s| s.list_type.as_str()) {
                    Some("map") => {
                        ListKind::Map(s.map(|s| s.list_map_keys.clone()).unwrap_or_default())
                    }
                    Some("set") => ListKind::Set,
                    _ => ListKind::Atomic,
                }
            }
        }
    }

    fn atomic_map(&self, node: &KindNode<'a>) -> bool {
        match node {
            KindNode::Builtin(n) => BuiltinSchema.atomic_map(n),
            KindNode::CustomRoot(_) => false,
            KindNode::Custom(s) => s.is_some_and(|s| s.map_type == "atomic"),
        }
    }

    fn is_struct(&self, node: &KindNode<'a>) -> bool {
        match node {
            KindNode::Builtin(n) => BuiltinSchema.is_struct(n),
            // Unstructured objects have no zero-valued structs.
            KindNode::CustomRoot(_) | KindNode::Custom(_) => false,
        }
    }

    fn key_default(&self, list: &KindNode<'a>, key: &str) -> Option<Value> {
        match list {
            KindNode::Builtin(n) => BuiltinSchema.key_default(n, key),
            KindNode::CustomRoot(s) | KindNode::Custom(s) => s
                .and_then(|s| s.items.as_deref())
                .and_then(|i| i.properties.get(key))
                .and_then(|k| k.default.clone()),
        }
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

    #[test]
    fn custom_resources_follow_their_list_and_map_types() {
        let schema = apiextensions::Schema::compile(&json!({
            "type": "object",
            "properties": {"spec": {"type": "object", "properties": {
                "items": {"type": "array", "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["id"],
                    "items": {"type": "object", "properties": {"id": {"type": "string"}, "v": {"type": "integer"}}}},
                "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                "plain": {"type": "array", "items": {"type": "string"}},
                "sel": {"type": "object", "x-kubernetes-map-type": "atomic",
                    "additionalProperties": {"type": "string"}}}}}
        }))
        .unwrap();
        let root = KindNode::CustomRoot(Some(&schema));
        let obj = json!({"metadata": {"finalizers": ["f"]}, "spec": {
            "items": [{"id": "a", "v": 1}], "tags": ["x"], "plain": ["p"], "sel": {"k": "v"}}});
        let s = to_field_set(&KindSchema::default(), &root, &obj).to_fields_v1();
        assert_eq!(s["f:spec"]["f:items"]["k:{\"id\":\"a\"}"]["f:v"], json!({}));
        assert_eq!(s["f:spec"]["f:tags"]["v:\"x\""], json!({}));
        assert_eq!(s["f:spec"]["f:plain"], json!({}));
        assert_eq!(s["f:spec"]["f:sel"], json!({}));
        // metadata is ObjectMeta: finalizers are a set.
        assert_eq!(s["f:metadata"]["f:finalizers"]["v:\"f\""], json!({}));
    }
}
