//! Custom resources (and kinds stored in another form, see
//! `ResourceDef::conversion`): the `ResourceDef`s a CustomResourceDefinition serves
//! (one per served version, with its compiled schema, status and scale
//! subresources and printer columns), and the CRD kind's own decoding and
//! validation (upstream's `apiextensions-apiserver/pkg/registry`).

use std::sync::Arc;

use apiextensions::crd;
use apimachinery::field::FieldError;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

use crate::decode::{none, round_trip, Decoded};
use crate::registry::{ResourceDef, ScalePaths, Scope, ALL_VERBS};
use crate::strategy::{StatusPolicy, Strategy};

/// What serving one version of a custom resource needs beyond a built-in's.
#[derive(Debug)]
pub struct CustomResource {
    /// The version's structural schema (validation, pruning, defaulting).
    pub schema: Option<apiextensions::Schema>,
    /// The version objects are stored in (None conversion rewrites apiVersion).
    pub storage_version: String,
    /// Every served version of the CRD.
    pub served: Vec<String>,
}

impl CustomResource {
    /// The apiVersion objects are stored with.
    pub fn storage_api_version(&self, group: &str) -> String {
        format!("{group}/{}", self.storage_version)
    }
}

/// None conversion: an object read or written through `def` carries
/// `def`'s apiVersion, whatever version it is stored in.
pub fn convert(def: &ResourceDef, v: &mut Value) {
    if let Some(c) = def.conversion {
        *v = (c.from_storage)(std::mem::take(v));
        return;
    }
    if def.custom.is_some() {
        let want = def.api_version();
        if v.get("apiVersion").and_then(Value::as_str) != Some(want.as_str()) {
            v["apiVersion"] = Value::String(want);
        }
    }
}

/// [`convert`] on serialised bytes; `None` when they are already right
/// (always for built-ins and single-version CRDs, without parsing).
pub fn convert_bytes(def: &ResourceDef, bytes: &[u8]) -> Option<Vec<u8>> {
    if let Some(c) = def.conversion {
        let v: Value = serde_json::from_slice(bytes).ok()?;
        return serde_json::to_vec(&(c.from_storage)(v)).ok();
    }
    let c = def.custom.as_ref()?;
    if c.served.len() < 2 && c.storage_version == def.version {
        return None;
    }
    let mut v: Value = serde_json::from_slice(bytes).ok()?;
    if v.get("apiVersion").and_then(Value::as_str) == Some(def.api_version().as_str()) {
        return None;
    }
    convert(def, &mut v);
    serde_json::to_vec(&v).ok()
}

/// The resources a CRD serves, one per served version.
pub fn resources_of(crd_obj: &Value) -> Vec<ResourceDef> {
    let names = crd::names(crd_obj);
    let versions = crd::served_versions(crd_obj);
    let storage_version = crd_obj
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .and_then(|vs| vs.iter().find(|v| v["storage"].as_bool() == Some(true)))
        .and_then(|v| v["name"].as_str())
        .unwrap_or_default()
        .to_string();
    let served: Vec<String> = versions.iter().map(|v| v.name.clone()).collect();
    versions
        .into_iter()
        .map(|v| {
            let mut subresources = Vec::new();
            if v.status {
                subresources.push("status".to_string());
            }
            let scale = v.scale.as_ref().map(|(spec, status, selector)| {
                subresources.push("scale".to_string());
                ScalePaths {
                    spec_replicas: spec.clone(),
                    status_replicas: status.clone(),
                    label_selector: selector.clone(),
                }
            });
            let policy = if v.status {
                StatusPolicy::Subresource
            } else {
                StatusPolicy::Whole
            };
            ResourceDef {
                group: names.group.clone(),
                version: v.name.clone(),
                kind: names.kind.clone(),
                list_kind: names.list_kind.clone(),
                plural: names.plural.clone(),
                singular: names.singular.clone(),
                short_names: names.short_names.clone(),
                categories: names.categories.clone(),
                scope: if names.namespaced {
                    Scope::Namespaced
                } else {
                    Scope::Cluster
                },
                storage: format!("{}/{}", names.group, names.plural),
                subresources,
                verbs: ALL_VERBS.to_vec(),
                strategy: Strategy::custom(policy),
                scale,
                printer_columns: v.printer_columns,
                conversion: None,
                custom: Some(Arc::new(CustomResource {
                    schema: v.schema,
                    storage_version: storage_version.clone(),
                    served: served.clone(),
                })),
            }
        })
        .collect()
}

/// Decodes a CRD: upstream's defaults, then the typed round trip.
pub fn crd_decode(mut v: Value) -> Result<Decoded, String> {
    crd::set_defaults(&mut v);
    round_trip::<CustomResourceDefinition>(v, none)
}

pub fn crd_validate(v: &Value) -> Vec<FieldError> {
    crd::validate(v, None)
}

pub fn crd_validate_update(v: &Value, old: &Value) -> Vec<FieldError> {
    crd::validate(v, Some(old))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_crd_serves_one_resource_per_served_version() {
        let c = json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Cluster",
                     "names": {"plural": "widgets", "kind": "Widget", "categories": ["all"]},
                     "versions": [
                        {"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object"}},
                         "subresources": {"status": {}}},
                        {"name": "v2", "served": false, "storage": false, "schema": {"openAPIV3Schema": {"type": "object"}}}]}
        });
        let defs = resources_of(&c);
        assert_eq!(defs.len(), 1);
        let d = &defs[0];
        assert_eq!(
            (d.api_version(), d.storage.as_str(), d.scope),
            (
                "example.com/v1".to_string(),
                "example.com/widgets",
                Scope::Cluster
            )
        );
        assert_eq!(d.list_kind, "WidgetList");
        assert_eq!(d.subresources, ["status"]);
        assert_eq!(d.strategy.status, StatusPolicy::Subresource);
        assert_eq!(d.categories, ["all"]);
        assert!(d.strategy.decode.is_none());
        assert_eq!(
            d.custom.as_ref().unwrap().storage_api_version(&d.group),
            "example.com/v1"
        );
    }

    #[test]
    fn none_conversion_rewrites_only_the_api_version() {
        let c = json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": "widgets", "kind": "Widget"},
                     "versions": [
                        {"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object"}}},
                        {"name": "v1beta1", "served": true, "storage": false, "schema": {"openAPIV3Schema": {"type": "object"}}}]}
        });
        let defs = resources_of(&c);
        let stored = br#"{"apiVersion":"example.com/v1","kind":"Widget","spec":{"a":1}}"#;
        assert_eq!(convert_bytes(&defs[0], stored), None);
        let beta: Value =
            serde_json::from_slice(&convert_bytes(&defs[1], stored).unwrap()).unwrap();
        assert_eq!(
            beta,
            json!({"apiVersion": "example.com/v1beta1", "kind": "Widget", "spec": {"a": 1}})
        );
    }
}
