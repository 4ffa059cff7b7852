//! Patch application: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and
//! strategic merge patch (upstream's `strategicpatch`), the last with the
//! merge keys of the built-in types' lists and the `$patch` directives.
//!
//! Merge keys come from `api::patch_meta`, the table the OpenAPI documents
//! publish, looked up by the definition at each level (followed from the
//! kind's schema through `api::openapi::FieldTypes`), so the server merges
//! exactly the lists kubectl computes merge patches for.

use apimachinery::ApiError;
use serde_json::{Map, Value};

use crate::negotiation::BodyFormat;

/// Applies a patch of the given format to `target`, an object of definition
/// `ty` (`io.k8s.api.core.v1.Pod`; `None` when untyped: lists are replaced).
pub fn apply(
    format: BodyFormat,
    target: &Value,
    patch: &[u8],
    ty: Option<&str>,
) -> Result<Value, ApiError> {
    match format {
        BodyFormat::JsonPatch => {
            let p: json_patch::Patch = serde_json::from_slice(patch)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            let mut doc = target.clone();
            json_patch::patch(&mut doc, &p).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?;
            Ok(doc)
        }
        BodyFormat::MergePatch => {
            let p: Value = serde_json::from_slice(patch)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            let mut doc = target.clone();
            json_patch::merge(&mut doc, &p);
            Ok(doc)
        }
        BodyFormat::StrategicMergePatch => {
            let p: Value = serde_json::from_slice(patch)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            Ok(strategic_merge(target, &p, ty))
        }
        BodyFormat::ApplyPatch => {
            let p: Value = crate::handlers::decode_yaml(patch)?;
            Ok(strategic_merge(target, &p, ty))
        }
        BodyFormat::Json | BodyFormat::Yaml | BodyFormat::Protobuf => {
            Err(ApiError::unsupported_media_type("application/json"))
        }
    }
}

/// The definition of the kind `def` serves, for `apply`.
pub fn kind_type(group: &str, version: &str, kind: &str) -> Option<&'static str> {
    api::openapi::FieldTypes::get().kind(group, version, kind)
}

fn is_directive(key: &str) -> bool {
    key.starts_with("$setElementOrder/")
        || key.starts_with("$deleteFromPrimitiveList/")
        || key == "$retainKeys"
}

/// Strategic merge of `patch` into `target`, an object of definition `ty`.
pub fn strategic_merge(target: &Value, patch: &Value, ty: Option<&str>) -> Value {
    let (Value::Object(t), Value::Object(p)) = (target, patch) else {
        return patch.clone();
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut m = p.clone();
            m.remove("$patch");
            return Value::Object(m);
        }
        Some("delete") => return Value::Object(Map::new()),
        _ => {}
    }
    let mut out = t.clone();
    for (k, pv) in p {
        if k == "$patch" || is_directive(k) {
            continue;
        }
        let child = ty.and_then(|t| api::openapi::FieldTypes::get().field(t, k));
        match pv {
            Value::Null => {
                out.remove(k);
            }
            Value::Object(_) => {
                let cur = out.get(k).cloned().unwrap_or(Value::Object(Map::new()));
                let merged = strategic_merge(&cur, pv, child);
                out.insert(k.clone(), merged);
            }
            Value::Array(items) => match (
                ty.and_then(|t| api::patch_meta::merge_key(t, k)),
                out.get(k).and_then(Value::as_array),
            ) {
                (Some(key), Some(existing)) => {
                    out.insert(
                        k.clone(),
                        Value::Array(merge_list(existing, items, key, child)),
                    );
                }
                _ => {
                    let cleaned: Vec<Value> = items
                        .iter()
                        .filter(|i| i.get("$patch").is_none())
                        .cloned()
                        .collect();
                    out.insert(k.clone(), Value::Array(cleaned));
                }
            },
            other => {
                out.insert(k.clone(), other.clone());
            }
        }
    }
    Value::Object(out)
}

fn merge_list(existing: &[Value], patch: &[Value], key: &str, item: Option<&str>) -> Vec<Value> {
    if patch
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return patch
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .collect();
    }
    let mut out: Vec<Value> = existing.to_vec();
    for p in patch {
        let id = p.get(key);
        let pos = id.and_then(|id| out.iter().position(|e| e.get(key) == Some(id)));
        let delete = p.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                out.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => out[i] = strategic_merge(&out[i], p, item),
            (None, false) => out.push(p.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merges_containers_by_name_and_honours_directives() {
        let t = json!({"spec": {"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 80}]}, {"name": "b", "image": "y"}]}});
        let p = json!({"$setElementOrder/containers": [{"name": "a"}], "spec": {"containers": [{"name": "a", "image": "z"}, {"name": "b", "$patch": "delete"}, {"name": "c", "image": "w"}]}});
        let out = strategic_merge(&t, &p, Some("io.k8s.api.core.v1.Pod"));
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "a", "image": "z", "ports": [{"containerPort": 80}]}, {"name": "c", "image": "w"}])
        );
        assert!(out.get("$setElementOrder/containers").is_none());
        let r = strategic_merge(
            &json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
            &json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}),
            None,
        );
        assert_eq!(r["metadata"]["labels"], json!({"c": "3"}));
        let n = strategic_merge(&json!({"a": 1, "b": 2}), &json!({"a": null}), None);
        assert_eq!(n, json!({"b": 2}));
        // Same field name, other types: a Service's ports merge by port, a
        // role's resources (strings) are replaced.
        let svc = strategic_merge(
            &json!({"spec": {"ports": [{"port": 80, "name": "a"}]}}),
            &json!({"spec": {"ports": [{"port": 80, "name": "b"}, {"port": 81}]}}),
            Some("io.k8s.api.core.v1.Service"),
        );
        assert_eq!(
            svc["spec"]["ports"],
            json!([{"port": 80, "name": "b"}, {"port": 81}])
        );
        let role = strategic_merge(
            &json!({"rules": [{"resources": ["pods"]}]}),
            &json!({"rules": [{"resources": ["secrets"]}]}),
            Some("io.k8s.api.rbac.v1.Role"),
        );
        assert_eq!(role["rules"], json!([{"resources": ["secrets"]}]));
        assert_eq!(
            kind_type("apps", "v1", "Deployment"),
            Some("io.k8s.api.apps.v1.Deployment")
        );
    }
}
