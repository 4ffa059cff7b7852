//! OpenAPI documents of the built-in API, generated from the types: v2
//! (`/openapi/v2`, also as gnostic protobuf) and v3 (`/openapi/v3/<gv>`).
//! Upstream's counterparts: `k8s.io/kube-openapi/pkg/builder` (v2),
//! `pkg/builder3` (v3) and the apiserver's route-to-path wiring in
//! `k8s.io/apiserver/pkg/endpoints/installer.go`.
//!
//! The schemas come from k8s-openapi's `JsonSchema` impls, which carry
//! upstream's definition names; `extensions.rs` adds what they lack (kinds,
//! list and patch strategies). `paths.rs` lists one operation per resource
//! and verb in a neutral form that `v2.rs` and `v3.rs` render.
//! Everything is sorted (serde_json's map is a BTreeMap), so the output is
//! byte-for-byte reproducible; `api/openapi-spec/` holds a copy that a test
//! compares with.

pub mod extensions;
pub mod gnostic;
pub mod paths;
pub mod types;
pub mod v2;
pub mod v3;

use std::collections::HashMap;
use std::sync::LazyLock;

use k8s_openapi::schemars::generate::SchemaSettings;
use k8s_openapi::schemars::SchemaGenerator;
use serde_json::{json, Map, Value};

use crate::registry::ResourceDef;

/// Where v2 keeps schemas; v3's documents rewrite it.
pub const V2_REF_PREFIX: &str = "#/definitions/";

/// The schemas of every served kind and what they refer to, with
/// extensions, keyed by upstream's definition names.
pub struct Model {
    pub definitions: Map<String, Value>,
    /// `(group, version, kind)` → definition name, for every served kind.
    pub kinds: HashMap<(String, String, String), String>,
}

fn generator() -> SchemaGenerator {
    SchemaSettings::draft07()
        .with(|s| {
            s.transforms.clear();
            s.meta_schema = None;
        })
        .into_generator()
}

fn ref_name(schema: &Value) -> Option<String> {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix(V2_REF_PREFIX))
        .map(str::to_string)
}

/// The `$ref` schema of a definition.
pub fn reference(name: &str) -> Value {
    json!({ "$ref": format!("{V2_REF_PREFIX}{name}") })
}

/// The definition names of the meta types the paths use.
pub mod names {
    pub const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
    pub const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
    pub const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
    pub const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
    pub const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
    pub const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";
}

impl Model {
    /// Builds the schemas for `resources` (kinds without a Rust type are
    /// left out of the documents).
    pub fn build(resources: &[ResourceDef]) -> Model {
        let mut g = generator();
        let mut kinds = HashMap::new();
        for def in resources {
            let Some(t) = types::find(&def.group, &def.version, &def.kind) else {
                continue;
            };
            if let Some(name) = ref_name((t.object)(&mut g).as_value()) {
                kinds.insert(
                    (def.group.clone(), def.version.clone(), def.kind.clone()),
                    name,
                );
            }
        }
        for f in [
            types::SCALE,
            types::DELETE_OPTIONS,
            types::STATUS,
            types::WATCH_EVENT,
            types::PATCH,
            types::API_RESOURCE_LIST,
        ] {
            f(&mut g);
        }
        let mut definitions = g.take_definitions(false);
        for def in resources.iter().filter(|d| d.verbs.contains(&"list")) {
            let key = (def.group.clone(), def.version.clone(), def.kind.clone());
            if let Some(name) = kinds.get(&key).cloned() {
                let list = format!("{name}List");
                definitions.insert(list.clone(), list_schema(def, &name));
                kinds.insert((key.0, key.1, def.list_kind.clone()), list);
            }
        }
        extensions::apply(&mut definitions, resources, &kinds);
        Model { definitions, kinds }
    }

    pub fn kind(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.kinds
            .get(&(group.to_string(), version.to_string(), kind.to_string()))
            .map(String::as_str)
    }
}

/// `<Kind>List`, as upstream's generator writes it for every list type.
fn list_schema(def: &ResourceDef, item: &str) -> Value {
    json!({
        "description": format!("{} is a list of {}.", def.list_kind, def.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources",
                "type": "string",
            },
            "items": {
                "description": format!("List of {}.", def.plural),
                "type": "array",
                "items": reference(item),
            },
            "kind": {
                "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
                "type": "string",
            },
            "metadata": {
                "$ref": format!("{V2_REF_PREFIX}{}", names::LIST_META),
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
            },
        },
    })
}

/// The served documents of the built-in API.
pub struct Documents {
    /// The swagger 2.0 document.
    pub v2: Value,
    /// One v3 document per group-version, keyed `api/v1`, `apis/apps/v1`, ….
    pub v3: std::collections::BTreeMap<String, Value>,
}

/// Generates every document for `resources`.
pub fn documents(resources: &[ResourceDef]) -> Documents {
    let model = Model::build(resources);
    Documents {
        v2: v2::document(&model, resources),
        v3: v3::documents(&model, resources),
    }
}

/// Calls `f` on every `$ref` string under `v`.
pub fn for_each_ref(v: &Value, f: &mut impl FnMut(&str)) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(s)) => f(s),
                    _ => for_each_ref(x, f),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| for_each_ref(x, f)),
        _ => {}
    }
}

/// Definition name → the definition each field refers to (directly, as
/// array items or as map values): how strategic merge patch finds the type
/// of a nested object. Built once, from the same schemas as the documents.
pub struct FieldTypes {
    /// Definition → field → definition; looked up by `&str` without allocating.
    fields: HashMap<String, HashMap<String, String>>,
    kinds: HashMap<(String, String, String), String>,
}

impl FieldTypes {
    fn build() -> FieldTypes {
        let model = Model::build(&crate::registry::builtin_resources());
        let mut fields = HashMap::new();
        for (name, schema) in &model.definitions {
            let Some(props) = schema.get("properties").and_then(Value::as_object) else {
                continue;
            };
            for (field, p) in props {
                let target = [p, &p["items"], &p["additionalProperties"]]
                    .into_iter()
                    .find_map(ref_name);
                if let Some(t) = target {
                    fields
                        .entry(name.clone())
                        .or_insert_with(HashMap::new)
                        .insert(field.clone(), t);
                }
            }
        }
        let mut kinds = model.kinds;
        kinds.insert(
            ("autoscaling".into(), "v1".into(), "Scale".into()),
            names::SCALE.into(),
        );
        FieldTypes { fields, kinds }
    }

    /// The shared instance (built on first use).
    pub fn get() -> &'static FieldTypes {
        static T: LazyLock<FieldTypes> = LazyLock::new(FieldTypes::build);
        &T
    }

    /// The definition of `ty.field`'s objects.
    pub fn field(&self, ty: &str, field: &str) -> Option<&str> {
        self.fields.get(ty)?.get(field).map(String::as_str)
    }

    /// The definition of a served kind.
    pub fn kind(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.kinds
            .get(&(group.to_string(), version.to_string(), kind.to_string()))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::builtin_resources;

    #[test]
    fn every_served_kind_has_a_schema() {
        let all = builtin_resources();
        let model = Model::build(&all);
        for d in &all {
            let name = model.kind(&d.group, &d.version, &d.kind);
            assert!(
                name.is_some(),
                "no schema for {}/{} {}",
                d.group,
                d.version,
                d.kind
            );
            if d.verbs.contains(&"list") {
                assert!(model.kind(&d.group, &d.version, &d.list_kind).is_some());
            }
        }
        assert_eq!(model.kind("", "v1", "Pod"), Some("io.k8s.api.core.v1.Pod"));
        assert_eq!(
            model.kind("apps", "v1", "DeploymentList"),
            Some("io.k8s.api.apps.v1.DeploymentList")
        );
        // Every reference resolves.
        for schema in model.definitions.values() {
            for_each_ref(schema, &mut |r| {
                let n = r.strip_prefix(V2_REF_PREFIX).unwrap_or(r);
                assert!(model.definitions.contains_key(n), "dangling {r}");
            });
        }
    }

    #[test]
    fn field_types_follow_refs() {
        let t = FieldTypes::get();
        assert_eq!(t.kind("", "v1", "Pod"), Some("io.k8s.api.core.v1.Pod"));
        assert_eq!(
            t.field("io.k8s.api.core.v1.Pod", "spec"),
            Some("io.k8s.api.core.v1.PodSpec")
        );
        assert_eq!(
            t.field("io.k8s.api.core.v1.PodSpec", "containers"),
            Some("io.k8s.api.core.v1.Container")
        );
    }
}
