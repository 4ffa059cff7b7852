//! Defaulting (upstream's `apiextensions/pkg/apiserver/schema/defaulting`):
//! a missing property with a `default` gets it, recursively through
//! objects, maps and arrays. Runs after pruning, like upstream.

use serde_json::Value;

use crate::schema::Schema;

/// Applies the schema's defaults to `v` in place.
pub fn apply(s: &Schema, v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, ps) in &s.properties {
                if !map.contains_key(k) {
                    if let Some(d) = &ps.default {
                        map.insert(k.clone(), d.clone());
                    }
                }
            }
            for (k, val) in map.iter_mut() {
                if let Some(ps) = s.properties.get(k).or(s.additional_properties.as_deref()) {
                    apply(ps, val);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = &s.items {
                for val in items {
                    apply(item, val);
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
    fn fills_missing_properties_at_every_level() {
        let s = Schema::compile(&json!({
            "type": "object",
            "properties": {"spec": {"type": "object", "default": {}, "properties": {
                "size": {"type": "integer", "default": 3},
                "ports": {"type": "array", "items": {"type": "object", "properties": {
                    "protocol": {"type": "string", "default": "TCP"}}}}
            }}}
        }))
        .unwrap();
        let mut v = json!({});
        apply(&s, &mut v);
        assert_eq!(v, json!({"spec": {"size": 3}}));
        let mut v = json!({"spec": {"size": 5, "ports": [{}, {"protocol": "UDP"}]}});
        apply(&s, &mut v);
        assert_eq!(
            v,
            json!({"spec": {"size": 5, "ports": [{"protocol": "TCP"}, {"protocol": "UDP"}]}})
        );
    }
}
