//! Validation of a custom resource against its structural schema (upstream's
//! kube-openapi `validate` as apiextensions-apiserver turns its results into
//! field errors): types, enums, bounds, lengths, patterns, list types,
//! required properties, and the combinators.

use apimachinery::field::{ErrorType, FieldError};
use serde_json::Value;

use crate::schema::Schema;

/// Validates `v` at `path` (empty for the root) against `s`.
pub fn validate(s: &Schema, v: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    check(s, v, path, &mut errs);
    errs
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn name(path: &str) -> &str {
    if path.is_empty() {
        "body"
    } else {
        path
    }
}

/// The JSON type of a value as the validator names it.
fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n)
            if n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0) =>
        {
            "integer"
        }
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(want: &str, v: &Value) -> bool {
    let got = type_of(v);
    want == got || (want == "number" && got == "integer")
}

fn invalid(path: &str, v: &Value, detail: String) -> FieldError {
    FieldError::invalid(path.to_string(), v, detail)
}

fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

fn check(s: &Schema, v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if v.is_null() {
        if !s.nullable && !s.type_.is_empty() {
            errs.push(FieldError::new(
                ErrorType::Invalid,
                path.to_string(),
                Some("\"null\"".into()),
                format!(
                    "{} in body must be of type {}: \"null\"",
                    name(path),
                    s.type_
                ),
            ));
        }
        return;
    }
    if s.int_or_string {
        if !matches!(type_of(v), "integer" | "string") {
            errs.push(invalid(
                path,
                v,
                format!(
                    "{} in body must be of type integer,string: {:?}",
                    name(path),
                    type_of(v)
                ),
            ));
            return;
        }
    } else if !s.type_.is_empty() && !type_matches(&s.type_, v) {
        errs.push(invalid(
            path,
            v,
            format!(
                "{} in body must be of type {}: {:?}",
                name(path),
                s.type_,
                type_of(v)
            ),
        ));
        return;
    }
    if !s.enum_.is_empty() && !s.enum_.contains(v) {
        let allowed: Vec<String> = s
            .enum_
            .iter()
            .map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_string))
            .collect();
        let refs: Vec<&str> = allowed.iter().map(String::as_str).collect();
        errs.push(FieldError::not_supported(path.to_string(), v, &refs));
    }
    match v {
        Value::Number(n) => numeric(s, v, n.as_f64().unwrap_or(0.0), path, errs),
        Value::String(st) => string(s, v, st, path, errs),
        Value::Array(items) => array(s, v, items, path, errs),
        Value::Object(map) => object(s, v, map, path, errs),
        _ => {}
    }
    combinators(s, v, path, errs);
}

fn numeric(s: &Schema, v: &Value, n: f64, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(max) = s.maximum {
        if s.exclusive_maximum && n >= max {
            errs.push(invalid(
                path,
                v,
                format!("{} in body should be less than {}", name(path), number(max)),
            ));
        } else if n > max {
            errs.push(invalid(
                path,
                v,
                format!(
                    "{} in body should be less than or equal to {}",
                    name(path),
                    number(max)
                ),
            ));
        }
    }
    if let Some(min) = s.minimum {
        if s.exclusive_minimum && n <= min {
            errs.push(invalid(
                path,
                v,
                format!(
                    "{} in body should be greater than {}",
                    name(path),
                    number(min)
                ),
            ));
        } else if n < min {
            errs.push(invalid(
                path,
                v,
                format!(
                    "{} in body should be greater than or equal to {}",
                    name(path),
                    number(min)
                ),
            ));
        }
    }
    if let Some(m) = s.multiple_of.filter(|m| *m > 0.0) {
        let q = n / m;
        if (q - q.round()).abs() > 1e-9 {
            errs.push(invalid(
                path,
                v,
                format!(
                    "{} in body should be a multiple of {}",
                    name(path),
                    number(m)
                ),
            ));
        }
    }
}

fn string(s: &Schema, v: &Value, st: &str, path: &str, errs: &mut Vec<FieldError>) {
    let len = st.chars().count() as u64;
    if let Some(max) = s.max_length.filter(|m| len > *m) {
        errs.push(FieldError::too_long(path.to_string(), max as usize));
    }
    if let Some(min) = s.min_length.filter(|m| len < *m) {
        errs.push(invalid(
            path,
            v,
            format!("{} in body should be at least {min} chars long", name(path)),
        ));
    }
    if let Some((src, re)) = &s.pattern {
        if !re.is_match(st) {
            errs.push(invalid(
                path,
                v,
                format!("{} in body should match '{src}'", name(path)),
            ));
        }
    }
}

fn array(s: &Schema, v: &Value, items: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    let n = items.len() as u64;
    if let Some(max) = s.max_items.filter(|m| n > *m) {
        errs.push(FieldError::new(
            ErrorType::TooMany,
            path.to_string(),
            None,
            format!("must have at most {max} items"),
        ));
    }
    if let Some(min) = s.min_items.filter(|m| n < *m) {
        errs.push(invalid(
            path,
            v,
            format!("{} in body should have at least {min} items", name(path)),
        ));
    }
    if let Some(item_schema) = &s.items {
        for (i, item) in items.iter().enumerate() {
            check(item_schema, item, &format!("{path}[{i}]"), errs);
        }
    }
    match s.list_type.as_str() {
        "set" => {
            for (i, item) in items.iter().enumerate() {
                if items[..i].contains(item) {
                    errs.push(FieldError::duplicate(format!("{path}[{i}]"), item));
                }
            }
        }
        "map" if !s.list_map_keys.is_empty() => {
            let key = |item: &Value| -> Vec<Value> {
                s.list_map_keys
                    .iter()
                    .map(|k| item.get(k).cloned().unwrap_or(Value::Null))
                    .collect()
            };
            for (i, item) in items.iter().enumerate() {
                let k = key(item);
                if items[..i].iter().any(|o| key(o) == k) {
                    let shown = if k.len() == 1 {
                        k[0].clone()
                    } else {
                        Value::Array(k)
                    };
                    errs.push(FieldError::duplicate(format!("{path}[{i}]"), &shown));
                }
            }
        }
        _ => {}
    }
}

fn object(
    s: &Schema,
    v: &Value,
    map: &serde_json::Map<String, Value>,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    for r in &s.required {
        if !map.contains_key(r) {
            errs.push(FieldError::required(child(path, r), ""));
        }
    }
    let n = map.len() as u64;
    if let Some(max) = s.max_properties.filter(|m| n > *m) {
        errs.push(FieldError::new(
            ErrorType::TooMany,
            path.to_string(),
            None,
            format!("must have at most {max} items"),
        ));
    }
    if let Some(min) = s.min_properties.filter(|m| n < *m) {
        errs.push(invalid(
            path,
            v,
            format!(
                "{} in body should have at least {min} properties",
                name(path)
            ),
        ));
    }
    for (k, val) in map {
        // The root's metadata is ObjectMeta, checked by the generic validation.
        if path.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        if let Some(ps) = s.properties.get(k) {
            check(ps, val, &child(path, k), errs);
        } else if let Some(ap) = &s.additional_properties {
            check(ap, val, &child(path, k), errs);
        }
    }
}

fn combinators(s: &Schema, v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    for sub in &s.all_of {
        check(sub, v, path, errs);
    }
    let passes = |sub: &Schema| validate(sub, v, path).is_empty();
    if !s.any_of.is_empty() && !s.any_of.iter().any(passes) {
        errs.push(invalid(
            path,
            v,
            format!(
                "{} in body must validate at least one schema (anyOf)",
                name(path)
            ),
        ));
    }
    if !s.one_of.is_empty() && s.one_of.iter().filter(|x| passes(x)).count() != 1 {
        errs.push(invalid(
            path,
            v,
            format!(
                "{} in body must validate one and only one schema (oneOf)",
                name(path)
            ),
        ));
    }
    if let Some(not) = &s.not {
        if passes(not) {
            errs.push(invalid(
                path,
                v,
                format!("{} in body must not validate the schema (not)", name(path)),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::compile(&json!({
            "type": "object",
            "properties": {
                "spec": {"type": "object", "required": ["size"], "properties": {
                    "size": {"type": "integer", "minimum": 1, "maximum": 10},
                    "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
                    "color": {"type": "string", "enum": ["red", "blue"]},
                    "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                    "port": {"x-kubernetes-int-or-string": true},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}}
                }}
            }
        }))
        .unwrap()
    }

    fn messages(v: Value) -> Vec<String> {
        validate(&schema(), &v, "")
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn reports_upstreams_field_errors() {
        assert!(messages(json!({"spec": {"size": 3, "name": "abc", "color": "red", "tags": ["a", "b"], "port": "http"}})).is_empty());
        assert_eq!(messages(json!({"spec": {}})), ["spec.size: Required value"]);
        assert_eq!(
            messages(json!({"spec": {"size": "big"}})),
            ["spec.size: Invalid value: \"big\": spec.size in body must be of type integer: \"string\""]
        );
        assert_eq!(
            messages(json!({"spec": {"size": 11}})),
            ["spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10"]
        );
        assert_eq!(
            messages(json!({"spec": {"size": 1, "name": "ABC"}})),
            ["spec.name: Invalid value: \"ABC\": spec.name in body should match '^[a-z]+$'"]
        );
        assert_eq!(
            messages(json!({"spec": {"size": 1, "name": "abcdef"}})),
            ["spec.name: Too long: may not be more than 5 bytes"]
        );
        assert_eq!(
            messages(json!({"spec": {"size": 1, "color": "pink"}})),
            ["spec.color: Unsupported value: \"pink\": supported values: \"red\", \"blue\""]
        );
        assert_eq!(
            messages(json!({"spec": {"size": 1, "tags": ["a", "a"]}})),
            ["spec.tags[1]: Duplicate value: \"a\""]
        );
        assert_eq!(
            messages(json!({"spec": {"size": 1, "port": 8080}})),
            Vec::<String>::new()
        );
        assert_eq!(
            messages(json!({"spec": {"size": 1, "labels": {"a": 1}}})).len(),
            1
        );
        assert_eq!(messages(json!({"spec": {"size": 2.5}})).len(), 1);
    }
}
