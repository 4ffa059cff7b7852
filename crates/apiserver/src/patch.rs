//! Patch application: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and
//! strategic merge patch (upstream's `strategicpatch`), the last with the
//! merge keys of the built-in types' lists and the `$patch` directives.

use apimachinery::ApiError;
use serde_json::{Map, Value};

use crate::negotiation::BodyFormat;

/// Applies a patch of the given format to `target`.
pub fn apply(format: BodyFormat, target: &Value, patch: &[u8]) -> Result<Value, ApiError> {
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
            Ok(strategic_merge(target, &p, ""))
        }
        BodyFormat::ApplyPatch => {
            let p: Value = crate::handlers::decode_yaml(patch)?;
            Ok(strategic_merge(target, &p, ""))
        }
        BodyFormat::Json | BodyFormat::Yaml | BodyFormat::Protobuf => {
            Err(ApiError::unsupported_media_type("application/json"))
        }
    }
}

/// The merge key of a list field, from the built-in types' `patchMergeKey`s.
fn merge_key(path: &str, field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims"
        | "readinessGates" => {
            if field == "readinessGates" {
                "conditionType"
            } else {
                "name"
            }
        }
        "ports" if path.contains("ontainers") => "containerPort",
        "ports" => "port",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "hostAliases" => "ip",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "topologySpreadConstraints" => "topologyKey",
        "taints" => "key",
        "addresses" if path.ends_with("status") => "type",
        _ => return None,
    })
}

fn is_directive(key: &str) -> bool {
    key.starts_with("$setElementOrder/")
        || key.starts_with("$deleteFromPrimitiveList/")
        || key == "$retainKeys"
}

/// Strategic merge of `patch` into `target` at `path` (dotted, for merge-key lookup).
pub fn strategic_merge(target: &Value, patch: &Value, path: &str) -> Value {
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
        let child = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        match pv {
            Value::Null => {
                out.remove(k);
            }
            Value::Object(_) => {
                let cur = out.get(k).cloned().unwrap_or(Value::Object(Map::new()));
                let merged = strategic_merge(&cur, pv, &child);
                out.insert(k.clone(), merged);
            }
            Value::Array(items) => match (merge_key(path, k), out.get(k).and_then(Value::as_array))
            {
                (Some(key), Some(existing)) => {
                    out.insert(
                        k.clone(),
                        Value::Array(merge_list(existing, items, key, &child)),
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

fn merge_list(existing: &[Value], patch: &[Value], key: &str, path: &str) -> Vec<Value> {
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
    for item in patch {
        let id = item.get(key);
        let pos = id.and_then(|id| out.iter().position(|e| e.get(key) == Some(id)));
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                out.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => out[i] = strategic_merge(&out[i], item, path),
            (None, false) => out.push(item.clone()),
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
        let out = strategic_merge(&t, &p, "");
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "a", "image": "z", "ports": [{"containerPort": 80}]}, {"name": "c", "image": "w"}])
        );
        assert!(out.get("$setElementOrder/containers").is_none());
        let r = strategic_merge(
            &json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
            &json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}),
            "",
        );
        assert_eq!(r["metadata"]["labels"], json!({"c": "3"}));
        let n = strategic_merge(&json!({"a": 1, "b": 2}), &json!({"a": null}), "");
        assert_eq!(n, json!({"b": 2}));
    }
}
