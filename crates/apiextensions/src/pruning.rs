//! Pruning (upstream's `apiextensions/pkg/apiserver/schema/pruning`): fields
//! the structural schema does not specify are dropped, except under
//! `x-kubernetes-preserve-unknown-fields`; `apiVersion`, `kind` and
//! `metadata` survive at the root and in embedded resources; nulls of
//! non-nullable fields are dropped (so that defaults apply).

use serde_json::Value;

use crate::schema::Schema;

/// Prunes `v` in place and returns the paths of the dropped fields (for
/// `fieldValidation`).
pub fn prune(s: &Schema, v: &mut Value) -> Vec<String> {
    let mut dropped = Vec::new();
    walk(s, v, "", true, &mut dropped);
    dropped
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn walk(s: &Schema, v: &mut Value, path: &str, resource: bool, dropped: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                if resource && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let p = child(path, &k);
                let sub = s.properties.get(&k).or(s.additional_properties.as_deref());
                match (sub, map.get_mut(&k)) {
                    (Some(sub), Some(val)) => {
                        if val.is_null() && !sub.nullable {
                            map.remove(&k);
                            continue;
                        }
                        walk(sub, val, &p, sub.embedded_resource, dropped);
                    }
                    (None, _) if s.preserve_unknown_fields || s.additional_any => {}
                    (None, _) => {
                        map.remove(&k);
                        dropped.push(p);
                    }
                    (Some(_), None) => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = &s.items {
                for (i, val) in items.iter_mut().enumerate() {
                    walk(
                        item,
                        val,
                        &format!("{path}[{i}]"),
                        item.embedded_resource,
                        dropped,
                    );
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn drops_unknown_fields_and_keeps_preserved_ones() {
        let s = Schema::compile(&json!({
            "type": "object",
            "properties": {
                "spec": {"type": "object", "properties": {
                    "size": {"type": "integer"},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "items": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"}}}},
                    "opt": {"type": "string", "nullable": true},
                    "gone": {"type": "string"},
                    "pod": {"type": "object", "x-kubernetes-embedded-resource": true, "properties": {"spec": {"type": "object"}}}
                }}
            }
        }))
        .unwrap();
        let mut v = json!({
            "apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"},
            "spec": {"size": 1, "bogus": 2, "free": {"anything": {"deep": 1}},
                     "items": [{"a": "x", "b": "y"}], "opt": null, "gone": null,
                     "pod": {"apiVersion": "v1", "kind": "Pod", "metadata": {}, "spec": {}, "extra": 1}},
            "status": {"x": 1}
        });
        let dropped = prune(&s, &mut v);
        assert_eq!(
            dropped,
            ["spec.bogus", "spec.items[0].b", "spec.pod.extra", "status"]
        );
        assert_eq!(
            v,
            json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"},
                   "spec": {"size": 1, "free": {"anything": {"deep": 1}}, "items": [{"a": "x"}], "opt": null,
                            "pod": {"apiVersion": "v1", "kind": "Pod", "metadata": {}, "spec": {}}}})
        );
    }
}
