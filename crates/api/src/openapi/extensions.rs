//! The `x-kubernetes-*` extensions k8s-openapi's schemas lack: kinds
//! (`x-kubernetes-group-version-kind`, upstream's `builder.go`
//! `addGroupVersionKindExtension`/ `common.GetOpenAPIDefinitions`) and list
//! strategies (`x-kubernetes-list-type`, `-list-map-keys`, `-patch-strategy`,
//! `-patch-merge-key`, from the Go markers openapi-gen reads).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{json, Map, Value};

use super::names;
use crate::patch_meta::{self, ListType};
use crate::registry::ResourceDef;

pub const GVK: &str = "x-kubernetes-group-version-kind";

pub fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

/// Adds the extensions to `definitions` in place, and drops the
/// `required: ["metadata"]` that k8s-openapi writes for its non-optional
/// `metadata` fields (upstream's objects do not require it).
pub fn apply(
    definitions: &mut Map<String, Value>,
    resources: &[ResourceDef],
    kinds: &HashMap<(String, String, String), String>,
) {
    for schema in definitions.values_mut().filter_map(Value::as_object_mut) {
        let Some(Value::Array(required)) = schema.get_mut("required") else {
            continue;
        };
        required.retain(|f| f != "metadata");
        if required.is_empty() {
            schema.remove("required");
        }
    }
    let mut by_def: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for ((g, v, k), name) in kinds {
        by_def.entry(name).or_default().push(gvk(g, v, k));
    }
    let gvs: BTreeSet<(&str, &str)> = resources
        .iter()
        .map(|d| (d.group.as_str(), d.version.as_str()))
        .collect();
    for meta_kind in [names::DELETE_OPTIONS, names::WATCH_EVENT] {
        let kind = meta_kind.rsplit('.').next().unwrap_or_default();
        let list = by_def.entry(meta_kind).or_default();
        list.extend(gvs.iter().map(|(g, v)| gvk(g, v, kind)));
    }
    by_def
        .entry(names::STATUS)
        .or_default()
        .push(gvk("", "v1", "Status"));
    by_def
        .entry(names::SCALE)
        .or_default()
        .push(gvk("autoscaling", "v1", "Scale"));
    for (name, mut list) in by_def {
        list.sort_by_key(|v| v.to_string());
        list.dedup();
        if let Some(Value::Object(schema)) = definitions.get_mut(name) {
            schema.insert(GVK.into(), Value::Array(list));
        }
    }
    for l in patch_meta::LISTS {
        let Some(prop) = definitions
            .get_mut(l.ty)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(l.field))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        match l.list_type {
            ListType::Map => {
                prop.insert("x-kubernetes-list-type".into(), "map".into());
                prop.insert("x-kubernetes-list-map-keys".into(), json!(l.keys));
            }
            ListType::Set => {
                prop.insert("x-kubernetes-list-type".into(), "set".into());
            }
        }
        if let (true, Some(key)) = (l.patch_merge, l.keys.first()) {
            prop.insert("x-kubernetes-patch-strategy".into(), "merge".into());
            prop.insert("x-kubernetes-patch-merge-key".into(), (*key).into());
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::openapi::Model;
    use crate::patch_meta::LISTS;
    use crate::registry::builtin_resources;

    #[test]
    fn kinds_and_list_strategies_are_marked() {
        let m = Model::build(&builtin_resources());
        let pod = &m.definitions["io.k8s.api.core.v1.Pod"];
        assert_eq!(
            pod[super::GVK],
            serde_json::json!([{"group": "", "kind": "Pod", "version": "v1"}])
        );
        assert!(pod.get("required").is_none());
        let c = &m.definitions["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(c["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(c["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(c["x-kubernetes-list-type"], "map");
        // Every table entry names a field that exists, when its type is served.
        for l in LISTS {
            if let Some(d) = m.definitions.get(l.ty) {
                assert!(
                    d["properties"].get(l.field).is_some(),
                    "{}.{}",
                    l.ty,
                    l.field
                );
            }
        }
    }
}
