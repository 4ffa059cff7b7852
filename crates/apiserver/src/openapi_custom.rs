//! OpenAPI v3 documents for custom resources (upstream's apiextensions
//! `openapi/builder`): one document per group/version served by CRDs, with
//! each kind's `openAPIV3Schema` as a definition named after the reversed
//! group (`com.example.stable.v1.CronTab`), `metadata` referring to
//! ObjectMeta, the list kind, and `x-kubernetes-group-version-kind`, so that
//! `kubectl explain` works for them. Kept up to date by the CRD controller;
//! listed in `/openapi/v3` next to the built-in documents.

use std::collections::BTreeMap;
use std::sync::{LazyLock, RwLock};

use serde_json::{json, Map, Value};

use crate::openapi::Doc;

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.";

/// ObjectMeta, ListMeta and what they refer to, from an embedded built-in
/// document (they are the same in all of them).
static META_SCHEMAS: LazyLock<Map<String, Value>> = LazyLock::new(|| {
    let doc: Value = crate::openapi::embedded_v3("apis/coordination.k8s.io/v1")
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or(Value::Null);
    doc.pointer("/components/schemas")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(k, _)| {
                    k.starts_with(META) || k.starts_with("io.k8s.apimachinery.pkg.runtime.")
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
});

/// The definition name upstream gives a custom kind.
pub fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

fn meta_ref(name: &str, description: &str) -> Value {
    json!({"allOf": [{"$ref": format!("#/components/schemas/{META}{name}")}], "default": {}, "description": description})
}

/// The kind's and its list's definitions for one served version.
fn definitions(
    group: &str,
    version: &str,
    kind: &str,
    list_kind: &str,
    schema: Option<&Value>,
) -> Vec<(String, Value)> {
    let gvk = |k: &str| json!([{"group": group, "version": version, "kind": k}]);
    let mut obj = schema.cloned().unwrap_or_else(|| json!({"type": "object"}));
    if let Some(props) = obj
        .as_object_mut()
        .map(|o| o.entry("properties").or_insert_with(|| json!({})))
    {
        if let Some(p) = props.as_object_mut() {
            p.insert("apiVersion".into(), json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."}));
            p.insert("kind".into(), json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."}));
            p.insert(
                "metadata".into(),
                meta_ref("ObjectMeta", "Standard object's metadata."),
            );
        }
    }
    obj["x-kubernetes-group-version-kind"] = gvk(kind);
    let name = definition_name(group, version, kind);
    let list = json!({
        "description": format!("{list_kind} is a list of {kind}"),
        "type": "object", "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string"}, "kind": {"type": "string"},
            "items": {"type": "array", "items": {"allOf": [{"$ref": format!("#/components/schemas/{name}")}]}},
            "metadata": meta_ref("ListMeta", "Standard list metadata."),
        },
        "x-kubernetes-group-version-kind": gvk(list_kind),
    });
    vec![
        (definition_name(group, version, list_kind), list),
        (name, obj),
    ]
}

/// What one CRD contributes to one group/version's document.
struct Entry {
    definitions: Vec<(String, Value)>,
    paths: Vec<(String, Value)>,
}

/// The rendered paths of the resource `def` (kind definition `schema`).
fn paths_of(def: &api::ResourceDef, schema: &str) -> Vec<(String, Value)> {
    api::openapi::paths::resource_paths(def, schema)
        .iter()
        .filter(|item| !item.operations.is_empty())
        .map(|item| (item.path.clone(), api::openapi::v3::render(item)))
        .collect()
}

/// The documents of the custom group/versions.
#[derive(Default)]
pub struct CustomDocs {
    /// `apis/<group>/<version>` → CRD name → its definitions and paths there.
    defs: RwLock<BTreeMap<String, BTreeMap<String, Entry>>>,
    docs: RwLock<BTreeMap<String, std::sync::Arc<Doc>>>,
}

impl CustomDocs {
    /// Records (or replaces) a CRD's definitions and rebuilds the documents it touches.
    pub fn set_crd(&self, crd: &Value) {
        let name = apimachinery::meta::name(crd).to_string();
        let spec = crd.get("spec").cloned().unwrap_or(Value::Null);
        let s = |p: &str| {
            spec.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let (group, kind) = (s("/group"), s("/names/kind"));
        let list_kind = spec
            .pointer("/names/listKind")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("{kind}List"));
        let mut touched = self.remove_crd_entries(&name);
        let resources = api::custom::resources_of(crd);
        let mut defs = self.defs.write().unwrap_or_else(|p| p.into_inner());
        for v in spec
            .get("versions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if v.get("served").and_then(Value::as_bool) != Some(true) {
                continue;
            }
            let version = v.get("name").and_then(Value::as_str).unwrap_or("");
            let key = format!("apis/{group}/{version}");
            let schema = v.pointer("/schema/openAPIV3Schema");
            let kind_schema = definition_name(&group, version, &kind);
            let paths = resources
                .iter()
                .filter(|d| d.version == version)
                .flat_map(|d| paths_of(d, &kind_schema))
                .collect();
            let entry = Entry {
                definitions: definitions(&group, version, &kind, &list_kind, schema),
                paths,
            };
            defs.entry(key.clone())
                .or_default()
                .insert(name.clone(), entry);
            touched.push(key);
        }
        drop(defs);
        self.rebuild(&touched);
    }

    /// Forgets a CRD (deleted or no longer served).
    pub fn remove_crd(&self, name: &str) {
        let touched = self.remove_crd_entries(name);
        self.rebuild(&touched);
    }

    fn remove_crd_entries(&self, name: &str) -> Vec<String> {
        let mut defs = self.defs.write().unwrap_or_else(|p| p.into_inner());
        let touched: Vec<String> = defs
            .iter_mut()
            .filter_map(|(k, m)| m.remove(name).map(|_| k.clone()))
            .collect();
        defs.retain(|_, m| !m.is_empty());
        touched
    }

    fn rebuild(&self, keys: &[String]) {
        let defs = self.defs.read().unwrap_or_else(|p| p.into_inner());
        let mut docs = self.docs.write().unwrap_or_else(|p| p.into_inner());
        for key in keys {
            let Some(by_crd) = defs.get(key) else {
                docs.remove(key);
                continue;
            };
            let mut schemas: Map<String, Value> = META_SCHEMAS.clone();
            let mut paths = Map::new();
            for e in by_crd.values() {
                for (n, d) in &e.definitions {
                    schemas.insert(n.clone(), d.clone());
                }
                for (p, v) in &e.paths {
                    paths.insert(p.clone(), v.clone());
                }
            }
            let doc = json!({
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
                "paths": paths,
                "components": {"schemas": schemas},
            });
            docs.insert(key.clone(), std::sync::Arc::new(Doc::json(&doc)));
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<std::sync::Arc<Doc>> {
        self.docs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    /// `(key, etag)` of every custom document, for `/openapi/v3`.
    pub fn index(&self) -> Vec<(String, String)> {
        self.docs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, d)| (k.clone(), d.etag.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_follow_crds_with_upstreams_names() {
        let docs = CustomDocs::default();
        let crd = json!({"metadata": {"name": "crontabs.stable.example.com"}, "spec": {
            "group": "stable.example.com", "scope": "Namespaced", "names": {"kind": "CronTab", "plural": "crontabs"},
            "versions": [{"name": "v1", "served": true, "schema": {"openAPIV3Schema": {"type": "object",
                "properties": {"spec": {"type": "object", "properties": {"cronSpec": {"type": "string"}}}}}}},
                {"name": "v0", "served": false}]}});
        docs.set_crd(&crd);
        assert_eq!(docs.index().len(), 1);
        let d = docs.get("apis/stable.example.com/v1").unwrap();
        let v: Value = serde_json::from_slice(&d.bytes).unwrap();
        let s = &v["components"]["schemas"]["com.example.stable.v1.CronTab"];
        assert_eq!(
            s["properties"]["spec"]["properties"]["cronSpec"]["type"],
            "string"
        );
        assert_eq!(s["x-kubernetes-group-version-kind"][0]["kind"], "CronTab");
        assert!(v["components"]["schemas"]["com.example.stable.v1.CronTabList"].is_object());
        assert!(
            v["components"]["schemas"]["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]
                .is_object()
        );
        let item =
            &v["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"];
        let keys: Vec<&String> = v["paths"].as_object().unwrap().keys().collect();
        assert_eq!(
            item["get"]["x-kubernetes-group-version-kind"]["kind"], "CronTab",
            "{keys:?}"
        );
        docs.remove_crd("crontabs.stable.example.com");
        assert!(docs.get("apis/stable.example.com/v1").is_none());
    }
}
