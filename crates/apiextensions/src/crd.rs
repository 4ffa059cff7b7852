//! CustomResourceDefinitions themselves (upstream's
//! `apiextensions/validation` and `apiextensions/v1/defaults.go`, and the
//! naming and establishing controllers' status): defaults, validation, the
//! versions a CRD serves, and the status that says it is established.

use apimachinery::field::FieldError;
use apimachinery::validation::{is_dns1035_label, is_dns1123_subdomain};
use serde_json::{json, Value};

use crate::schema::Schema;

/// The finalizer that makes deleting a CRD delete its custom resources first.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// One served version of a CRD, with what serving it needs.
#[derive(Debug, Clone)]
pub struct ServedVersion {
    pub name: String,
    pub storage: bool,
    pub schema: Option<Schema>,
    pub status: bool,
    /// specReplicasPath, statusReplicasPath, labelSelectorPath.
    pub scale: Option<(String, String, Option<String>)>,
    pub printer_columns: Vec<Value>,
}

/// The names a CRD asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub group: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub namespaced: bool,
}

fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

fn strings(v: &Value, p: &str) -> Vec<String> {
    v.pointer(p)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The CRD's names, with upstream's defaults for singular and listKind.
pub fn names(crd: &Value) -> Names {
    let kind = s(crd, "/spec/names/kind").to_string();
    let singular = match s(crd, "/spec/names/singular") {
        "" => kind.to_lowercase(),
        x => x.to_string(),
    };
    let list_kind = match s(crd, "/spec/names/listKind") {
        "" => format!("{kind}List"),
        x => x.to_string(),
    };
    Names {
        group: s(crd, "/spec/group").to_string(),
        plural: s(crd, "/spec/names/plural").to_string(),
        singular,
        kind,
        list_kind,
        short_names: strings(crd, "/spec/names/shortNames"),
        categories: strings(crd, "/spec/names/categories"),
        namespaced: s(crd, "/spec/scope") == "Namespaced",
    }
}

/// Upstream's defaults: singular, listKind, conversion strategy None.
pub fn set_defaults(crd: &mut Value) {
    let n = names(crd);
    if let Some(spec) = crd.get_mut("spec").and_then(Value::as_object_mut) {
        if let Some(names) = spec.get_mut("names").and_then(Value::as_object_mut) {
            names.entry("singular").or_insert(json!(n.singular));
            names.entry("listKind").or_insert(json!(n.list_kind));
        }
        spec.entry("conversion")
            .or_insert(json!({"strategy": "None"}));
    }
}

fn lower_dns_label(field: &str, v: &str, errs: &mut Vec<FieldError>) {
    if v.is_empty() {
        errs.push(FieldError::required(field, ""));
    } else {
        for msg in is_dns1035_label(v) {
            errs.push(FieldError::invalid_str(field, v, msg));
        }
    }
}

/// Validates a CRD on create (and, with `old`, on update).
pub fn validate(crd: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let n = names(crd);
    if n.group.is_empty() {
        errs.push(FieldError::required("spec.group", ""));
    } else {
        for msg in is_dns1123_subdomain(&n.group) {
            errs.push(FieldError::invalid_str("spec.group", &n.group, msg));
        }
        if n.group.split('.').count() < 2 {
            errs.push(FieldError::invalid_str(
                "spec.group",
                &n.group,
                "should be a domain with at least one dot",
            ));
        }
    }
    let name = s(crd, "/metadata/name");
    let want = format!("{}.{}", n.plural, n.group);
    if name != want {
        errs.push(FieldError::invalid_str(
            "metadata.name",
            name,
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    lower_dns_label("spec.names.plural", &n.plural, &mut errs);
    lower_dns_label("spec.names.singular", &n.singular, &mut errs);
    if n.kind.is_empty() {
        errs.push(FieldError::required("spec.names.kind", ""));
    }
    if n.list_kind == n.kind && !n.kind.is_empty() {
        errs.push(FieldError::invalid_str(
            "spec.names.listKind",
            &n.list_kind,
            "kind and listKind may not be the same",
        ));
    }
    for (i, sn) in n.short_names.iter().enumerate() {
        lower_dns_label(&format!("spec.names.shortNames[{i}]"), sn, &mut errs);
    }
    match s(crd, "/spec/scope") {
        "Namespaced" | "Cluster" => {}
        "" => errs.push(FieldError::required("spec.scope", "")),
        other => errs.push(FieldError::not_supported(
            "spec.scope",
            &json!(other),
            &["Cluster", "Namespaced"],
        )),
    }
    if let Some(old) = old {
        let (a, b) = (s(crd, "/spec/scope"), s(old, "/spec/scope"));
        if a != b {
            errs.push(FieldError::invalid_str(
                "spec.scope",
                a,
                "field is immutable",
            ));
        }
    }
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        errs.push(FieldError::invalid(
            "spec.versions",
            &json!([]),
            "must have exactly one version marked as storage version",
        ));
    }
    let storage = versions
        .iter()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .count();
    if !versions.is_empty() && storage != 1 {
        errs.push(FieldError::invalid(
            "spec.versions",
            &Value::Array(versions.clone()),
            "must have exactly one version marked as storage version",
        ));
    }
    let mut seen = Vec::new();
    for (i, v) in versions.iter().enumerate() {
        let vn = v["name"].as_str().unwrap_or("");
        let field = format!("spec.versions[{i}]");
        lower_dns_label(&format!("{field}.name"), vn, &mut errs);
        if seen.contains(&vn) {
            errs.push(FieldError::duplicate(format!("{field}.name"), &json!(vn)));
        }
        seen.push(vn);
        match v.pointer("/schema/openAPIV3Schema") {
            None => errs.push(FieldError::required(
                format!("{field}.schema.openAPIV3Schema"),
                "schemas are required",
            )),
            Some(schema) => {
                if let Err(e) = Schema::compile(schema) {
                    errs.push(FieldError::invalid(
                        format!("{field}.schema.openAPIV3Schema"),
                        &json!(""),
                        e,
                    ));
                } else if schema["type"] != "object" {
                    errs.push(FieldError::invalid(
                        format!("{field}.schema.openAPIV3Schema.type"),
                        &schema["type"],
                        "must be object at the root",
                    ));
                }
            }
        }
    }
    if !versions.iter().any(|v| v["served"].as_bool() == Some(true)) && !versions.is_empty() {
        errs.push(FieldError::invalid(
            "spec.versions",
            &Value::Array(versions),
            "must have at least one version marked as served",
        ));
    }
    errs
}

/// The versions the CRD serves, schemas compiled.
pub fn served_versions(crd: &Value) -> Vec<ServedVersion> {
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    versions
        .iter()
        .filter(|v| v["served"].as_bool() == Some(true))
        .map(|v| {
            let scale = v
                .pointer("/subresources/scale")
                .filter(|s| s.is_object())
                .map(|sc| {
                    (
                        s(sc, "/specReplicasPath").to_string(),
                        s(sc, "/statusReplicasPath").to_string(),
                        sc.get("labelSelectorPath")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                    )
                });
            ServedVersion {
                name: v["name"].as_str().unwrap_or("").to_string(),
                storage: v["storage"].as_bool() == Some(true),
                schema: v
                    .pointer("/schema/openAPIV3Schema")
                    .and_then(|s| Schema::compile(s).ok()),
                status: v
                    .pointer("/subresources/status")
                    .is_some_and(Value::is_object),
                scale,
                printer_columns: v["additionalPrinterColumns"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// Whether the CRD's status already says it is established with its names.
pub fn is_established(crd: &Value) -> bool {
    let established = crd
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        });
    established && crd.pointer("/status/acceptedNames/plural") == crd.pointer("/spec/names/plural")
}

/// The status of an established CRD: accepted names, NamesAccepted and
/// Established conditions, and the storage version among storedVersions.
/// A name of `crd` that another CRD of its group already uses (upstream's
/// naming controller compares with the others' accepted names): the
/// message of a NamesAccepted=False/NameConflict condition.
pub fn name_conflict(crd: &Value, others: &[Value]) -> Option<String> {
    let me = names(crd);
    let mut resource_names: Vec<String> = Vec::new();
    let mut kinds: Vec<String> = Vec::new();
    for o in others {
        if o.pointer("/metadata/name") == crd.pointer("/metadata/name")
            || names(o).group != me.group
        {
            continue;
        }
        let accepted = |f: &str| {
            o.pointer(&format!("/status/acceptedNames/{f}"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        resource_names.extend([accepted("plural"), accepted("singular")]);
        resource_names.extend(strings(o, "/status/acceptedNames/shortNames"));
        kinds.extend([accepted("kind"), accepted("listKind")]);
    }
    let taken = |n: &str, pool: &[String]| !n.is_empty() && pool.iter().any(|p| p == n);
    let in_use = |n: &str| format!("{n:?} is already in use");
    if taken(&me.plural, &resource_names) {
        return Some(in_use(&me.plural));
    }
    if taken(&me.singular, &resource_names) {
        return Some(in_use(&me.singular));
    }
    if let Some(s) = me.short_names.iter().find(|s| taken(s, &resource_names)) {
        return Some(in_use(s));
    }
    if taken(&me.kind, &kinds) {
        return Some(in_use(&me.kind));
    }
    if taken(&me.list_kind, &kinds) {
        return Some(in_use(&me.list_kind));
    }
    None
}

/// The status of a CRD whose names conflict: not accepted, not established.
pub fn conflict_status(crd: &Value, message: &str, now: &str) -> Value {
    let stored = strings(crd, "/status/storedVersions");
    json!({
        "acceptedNames": {"plural": "", "kind": ""},
        "conditions": [
            {"type": "NamesAccepted", "status": "False", "reason": "NameConflict", "message": message, "lastTransitionTime": now},
            {"type": "Established", "status": "False", "reason": "NotAccepted", "message": "not all names are accepted", "lastTransitionTime": now},
        ],
        "storedVersions": stored,
    })
}

pub fn established_status(crd: &Value, now: &str) -> Value {
    let n = names(crd);
    let mut accepted = json!({"plural": n.plural, "singular": n.singular, "kind": n.kind, "listKind": n.list_kind});
    if !n.short_names.is_empty() {
        accepted["shortNames"] = json!(n.short_names);
    }
    if !n.categories.is_empty() {
        accepted["categories"] = json!(n.categories);
    }
    let mut stored = strings(crd, "/status/storedVersions");
    if let Some(v) = served_versions(crd).into_iter().find(|v| v.storage) {
        if !stored.contains(&v.name) {
            stored.push(v.name);
        }
    }
    json!({
        "acceptedNames": accepted,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
        "storedVersions": stored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                     "versions": [
                        {"name": "v1", "served": true, "storage": true,
                         "schema": {"openAPIV3Schema": {"type": "object"}},
                         "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                         "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}]},
                        {"name": "v1beta1", "served": true, "storage": false, "schema": {"openAPIV3Schema": {"type": "object"}}}]}
        })
    }

    #[test]
    fn defaults_and_validates() {
        let mut c = crd();
        set_defaults(&mut c);
        assert_eq!(c["spec"]["names"]["listKind"], "WidgetList");
        assert_eq!(c["spec"]["names"]["singular"], "widget");
        assert!(validate(&c, None).is_empty(), "{:?}", validate(&c, None));

        let mut bad = c.clone();
        bad["metadata"]["name"] = json!("widgets");
        bad["spec"]["versions"][1]["storage"] = json!(true);
        bad["spec"]["scope"] = json!("Global");
        let fields: Vec<String> = validate(&bad, Some(&c))
            .iter()
            .map(|e| e.field.clone())
            .collect();
        assert_eq!(
            fields,
            ["metadata.name", "spec.scope", "spec.scope", "spec.versions"]
        );
    }

    #[test]
    fn describes_served_versions_and_the_established_status() {
        let c = crd();
        let v = served_versions(&c);
        assert_eq!(v.len(), 2);
        assert!(v[0].storage && v[0].status);
        assert_eq!(v[0].scale.as_ref().unwrap().0, ".spec.replicas");
        assert_eq!(v[0].printer_columns.len(), 1);
        assert!(!is_established(&c));
        let mut c2 = c.clone();
        c2["status"] = established_status(&c, "2026-01-01T00:00:00Z");
        assert!(is_established(&c2));
        assert_eq!(c2["status"]["storedVersions"], json!(["v1"]));
        assert_eq!(c2["status"]["acceptedNames"]["shortNames"], json!(["wd"]));
    }

    #[test]
    fn names_taken_by_another_crd_of_the_group_conflict() {
        let mut other = crd();
        other["metadata"]["name"] = json!("gadgets.example.com");
        other["spec"]["names"] =
            json!({"plural": "gadgets", "kind": "Gadget", "shortNames": ["wd"]});
        other["status"] = established_status(&other, "now");
        assert_eq!(
            name_conflict(&crd(), &[other.clone()]),
            Some("\"wd\" is already in use".into())
        );
        let mut elsewhere = other.clone();
        elsewhere["spec"]["group"] = json!("other.com");
        assert_eq!(name_conflict(&crd(), &[elsewhere]), None);
        let mut kind_clash = crd();
        kind_clash["spec"]["names"] = json!({"plural": "things", "kind": "Gadget"});
        assert_eq!(
            name_conflict(&kind_clash, &[other]),
            Some("\"gadget\" is already in use".into())
        );
    }
}
