//! Accessors for `metadata` on objects held as JSON (upstream's `meta.Accessor`).
//!
//! The server handles every kind, built-in or custom, as a `serde_json::Value`;
//! these helpers read and write the common fields without a typed round trip.

use serde_json::{Map, Value};

/// The object's `metadata` map, if it has one.
pub fn metadata(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata")?.as_object()
}

/// The object's `metadata` map, created when absent or not an object.
pub fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let map = obj.as_object_mut().expect("object ensured above");
    let entry = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    entry.as_object_mut().expect("object ensured above")
}

fn str_field<'a>(obj: &'a Value, field: &str) -> &'a str {
    metadata(obj)
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn name(obj: &Value) -> &str {
    str_field(obj, "name")
}
pub fn namespace(obj: &Value) -> &str {
    str_field(obj, "namespace")
}
pub fn generate_name(obj: &Value) -> &str {
    str_field(obj, "generateName")
}
pub fn uid(obj: &Value) -> &str {
    str_field(obj, "uid")
}
pub fn resource_version(obj: &Value) -> &str {
    str_field(obj, "resourceVersion")
}
pub fn deletion_timestamp(obj: &Value) -> Option<&str> {
    metadata(obj)?.get("deletionTimestamp")?.as_str()
}
pub fn generation(obj: &Value) -> i64 {
    metadata(obj)
        .and_then(|m| m.get("generation"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// `metadata.labels` as a JSON map (empty when absent).
pub fn labels(obj: &Value) -> Option<&Map<String, Value>> {
    metadata(obj)?.get("labels")?.as_object()
}

/// `metadata.finalizers` as strings.
pub fn finalizers(obj: &Value) -> Vec<String> {
    metadata(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub fn set_finalizers(obj: &mut Value, finalizers: &[String]) {
    let m = metadata_mut(obj);
    if finalizers.is_empty() {
        m.remove("finalizers");
    } else {
        m.insert("finalizers".into(), Value::from(finalizers.to_vec()));
    }
}

pub fn set_str(obj: &mut Value, field: &str, value: &str) {
    metadata_mut(obj).insert(field.to_string(), Value::String(value.to_string()));
}

pub fn remove(obj: &mut Value, field: &str) {
    metadata_mut(obj).remove(field);
}

pub fn set_resource_version(obj: &mut Value, rv: u64) {
    set_str(obj, "resourceVersion", &rv.to_string());
}

/// `apiVersion` and `kind` of an object.
pub fn type_meta(obj: &Value) -> (&str, &str) {
    (
        obj.get("apiVersion").and_then(Value::as_str).unwrap_or(""),
        obj.get("kind").and_then(Value::as_str).unwrap_or(""),
    )
}

/// The current time formatted as upstream's `metav1.Time` (RFC 3339, seconds).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The current time as upstream's `metav1.MicroTime`.
pub fn now_rfc3339_micros() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_and_writes_metadata() {
        let mut o = json!({"metadata": {"name": "a", "finalizers": ["x"]}});
        assert_eq!(name(&o), "a");
        assert_eq!(namespace(&o), "");
        set_resource_version(&mut o, 7);
        assert_eq!(resource_version(&o), "7");
        set_finalizers(&mut o, &[]);
        assert!(finalizers(&o).is_empty());
        let mut bad = json!("x");
        set_str(&mut bad, "name", "b");
        assert_eq!(name(&bad), "b");
    }
}
