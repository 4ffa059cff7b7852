//! A structural schema (upstream's `apiextensions/pkg/apiserver/schema`
//! `Structural`), compiled once from a CRD version's `openAPIV3Schema`:
//! types, properties, the value constraints, patterns as compiled regexes,
//! and the `x-kubernetes-*` extensions that change pruning and validation.

use std::collections::BTreeMap;

use serde_json::Value;

/// One node of a structural schema.
#[derive(Debug, Default, Clone)]
pub struct Schema {
    /// `object`, `array`, `string`, `integer`, `number`, `boolean`, or empty.
    pub type_: String,
    pub format: String,
    pub properties: BTreeMap<String, Schema>,
    /// A map's value schema (`additionalProperties: {…}`).
    pub additional_properties: Option<Box<Schema>>,
    /// `additionalProperties: true`: any value, kept.
    pub additional_any: bool,
    pub items: Option<Box<Schema>>,
    pub required: Vec<String>,
    pub enum_: Vec<Value>,
    pub default: Option<Value>,
    pub nullable: bool,
    pub maximum: Option<f64>,
    pub exclusive_maximum: bool,
    pub minimum: Option<f64>,
    pub exclusive_minimum: bool,
    pub multiple_of: Option<f64>,
    pub max_length: Option<u64>,
    pub min_length: Option<u64>,
    pub pattern: Option<(String, regex::Regex)>,
    pub max_items: Option<u64>,
    pub min_items: Option<u64>,
    pub max_properties: Option<u64>,
    pub min_properties: Option<u64>,
    pub all_of: Vec<Schema>,
    pub any_of: Vec<Schema>,
    pub one_of: Vec<Schema>,
    pub not: Option<Box<Schema>>,
    /// `x-kubernetes-preserve-unknown-fields`.
    pub preserve_unknown_fields: bool,
    /// `x-kubernetes-embedded-resource`: apiVersion, kind and metadata are kept.
    pub embedded_resource: bool,
    /// `x-kubernetes-int-or-string`.
    pub int_or_string: bool,
    /// `x-kubernetes-list-type`: `atomic`, `set` or `map`.
    pub list_type: String,
    pub list_map_keys: Vec<String>,
    /// `x-kubernetes-map-type`: `granular` (default) or `atomic`.
    pub map_type: String,
}

fn num(v: &Value, k: &str) -> Option<f64> {
    v.get(k).and_then(Value::as_f64)
}
fn uint(v: &Value, k: &str) -> Option<u64> {
    v.get(k).and_then(Value::as_u64)
}
fn flag(v: &Value, k: &str) -> bool {
    v.get(k).and_then(Value::as_bool).unwrap_or(false)
}
fn string(v: &Value, k: &str) -> String {
    v.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl Schema {
    /// Compiles a JSONSchemaProps document; an error names the bad part.
    pub fn compile(v: &Value) -> Result<Schema, String> {
        Self::compile_at(v, "openAPIV3Schema", 0)
    }

    fn compile_at(v: &Value, path: &str, depth: usize) -> Result<Schema, String> {
        if depth > 64 {
            return Err(format!("{path}: schema nested too deeply"));
        }
        if !v.is_object() {
            return Err(format!("{path}: must be an object"));
        }
        let sub = |v: &Value, p: &str| Self::compile_at(v, p, depth + 1);
        let mut s = Schema {
            type_: string(v, "type"),
            format: string(v, "format"),
            default: v.get("default").cloned(),
            nullable: flag(v, "nullable"),
            maximum: num(v, "maximum"),
            exclusive_maximum: flag(v, "exclusiveMaximum"),
            minimum: num(v, "minimum"),
            exclusive_minimum: flag(v, "exclusiveMinimum"),
            multiple_of: num(v, "multipleOf"),
            max_length: uint(v, "maxLength"),
            min_length: uint(v, "minLength"),
            max_items: uint(v, "maxItems"),
            min_items: uint(v, "minItems"),
            max_properties: uint(v, "maxProperties"),
            min_properties: uint(v, "minProperties"),
            preserve_unknown_fields: flag(v, "x-kubernetes-preserve-unknown-fields"),
            embedded_resource: flag(v, "x-kubernetes-embedded-resource"),
            int_or_string: flag(v, "x-kubernetes-int-or-string"),
            list_type: string(v, "x-kubernetes-list-type"),
            map_type: string(v, "x-kubernetes-map-type"),
            ..Schema::default()
        };
        if let Some(p) = v.get("pattern").and_then(Value::as_str) {
            let re = regex::Regex::new(p).map_err(|e| format!("{path}.pattern: {e}"))?;
            s.pattern = Some((p.to_string(), re));
        }
        if let Some(props) = v.get("properties").and_then(Value::as_object) {
            for (k, pv) in props {
                s.properties
                    .insert(k.clone(), sub(pv, &format!("{path}.properties[{k}]"))?);
            }
        }
        match v.get("additionalProperties") {
            Some(Value::Bool(b)) => s.additional_any = *b,
            Some(ap @ Value::Object(_)) => {
                s.additional_properties =
                    Some(Box::new(sub(ap, &format!("{path}.additionalProperties"))?))
            }
            _ => {}
        }
        if let Some(items) = v.get("items") {
            let items = match items {
                Value::Array(a) => a
                    .first()
                    .cloned()
                    .unwrap_or(Value::Object(Default::default())),
                other => other.clone(),
            };
            s.items = Some(Box::new(sub(&items, &format!("{path}.items"))?));
        }
        let strings = |k: &str| -> Vec<String> {
            v.get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        s.required = strings("required");
        s.list_map_keys = strings("x-kubernetes-list-map-keys");
        s.enum_ = v
            .get("enum")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (k, out) in [
            ("allOf", &mut s.all_of),
            ("anyOf", &mut s.any_of),
            ("oneOf", &mut s.one_of),
        ] {
            if let Some(list) = v.get(k).and_then(Value::as_array) {
                for (i, x) in list.iter().enumerate() {
                    out.push(sub(x, &format!("{path}.{k}[{i}]"))?);
                }
            }
        }
        if let Some(n) = v.get("not") {
            s.not = Some(Box::new(sub(n, &format!("{path}.not"))?));
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compiles_properties_maps_lists_and_extensions() {
        let s = Schema::compile(&json!({
            "type": "object",
            "properties": {
                "spec": {"type": "object", "required": ["size"], "properties": {
                    "size": {"type": "integer", "minimum": 1, "maximum": 10, "default": 3},
                    "name": {"type": "string", "pattern": "^[a-z]+$"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port"],
                              "items": {"type": "object", "properties": {"port": {"type": "integer"}}}},
                    "any": {"x-kubernetes-preserve-unknown-fields": true}
                }}
            }
        }))
        .unwrap();
        let spec = &s.properties["spec"];
        assert_eq!(spec.required, ["size"]);
        assert_eq!(spec.properties["size"].maximum, Some(10.0));
        assert!(spec.properties["name"]
            .pattern
            .as_ref()
            .unwrap()
            .1
            .is_match("abc"));
        assert_eq!(
            spec.properties["labels"]
                .additional_properties
                .as_ref()
                .unwrap()
                .type_,
            "string"
        );
        assert_eq!(spec.properties["ports"].list_map_keys, ["port"]);
        assert!(spec.properties["any"].preserve_unknown_fields);
        assert!(Schema::compile(&json!({"type": "string", "pattern": "("})).is_err());
        assert!(Schema::compile(&json!("nope")).is_err());
    }
}
