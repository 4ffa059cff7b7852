//! events.k8s.io/v1 Events: the same objects as core/v1 Events, stored once
//! in the core form (upstream keeps one storage for both and converts, see
//! `pkg/apis/events/v1/conversion.go`); these functions convert between the
//! two field namings.

use apimachinery::field::FieldError;
use serde_json::{Map, Value};

/// (events.k8s.io/v1 field, core/v1 field); the rest share names.
const RENAMED: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn rename(
    v: Value,
    api_version: &str,
    pairs: impl Iterator<Item = (&'static str, &'static str)>,
) -> Value {
    let Value::Object(mut m) = v else { return v };
    let mut out = Map::new();
    for (from, to) in pairs {
        if let Some(x) = m.remove(from) {
            out.insert(to.to_string(), x);
        }
    }
    m.extend(out);
    m.insert("apiVersion".into(), Value::String(api_version.into()));
    Value::Object(m)
}

/// events.k8s.io/v1 → the stored core/v1 form.
pub fn to_core(v: Value) -> Value {
    rename(v, "v1", RENAMED.iter().copied())
}

/// The stored core/v1 form → events.k8s.io/v1.
pub fn from_core(v: Value) -> Value {
    rename(v, "events.k8s.io/v1", RENAMED.iter().map(|(a, b)| (*b, *a)))
}

/// What events.k8s.io/v1 requires of a new Event (upstream's
/// ValidateEventCreate for that version), checked on the core form.
pub fn validate_create(core: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (field, core_field) in [
        ("eventTime", "eventTime"),
        ("reportingController", "reportingComponent"),
        ("reportingInstance", "reportingInstance"),
        ("action", "action"),
        ("reason", "reason"),
    ] {
        if core
            .get(core_field)
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            errs.push(FieldError::required(field, ""));
        }
    }
    match core.get("type").and_then(Value::as_str) {
        Some("Normal") | Some("Warning") => {}
        other => errs.push(FieldError::not_supported(
            "type",
            &Value::from(other.unwrap_or("")),
            &["Normal", "Warning"],
        )),
    }
    errs
}

/// events.k8s.io/v1 field labels as the core Event's (upstream's
/// `AddFieldLabelConversionsForEvent` in `pkg/apis/events/v1`).
pub fn field_label(label: &str) -> Option<&'static str> {
    Some(match label {
        "metadata.name" => "metadata.name",
        "metadata.namespace" => "metadata.namespace",
        "reason" => "reason",
        "type" => "type",
        "reportingController" => "reportingComponent",
        "regarding.kind" => "involvedObject.kind",
        "regarding.namespace" => "involvedObject.namespace",
        "regarding.name" => "involvedObject.name",
        "regarding.uid" => "involvedObject.uid",
        "regarding.apiVersion" => "involvedObject.apiVersion",
        "regarding.resourceVersion" => "involvedObject.resourceVersion",
        "regarding.fieldPath" => "involvedObject.fieldPath",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn converts_both_ways() {
        let new = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"kind": "Pod", "name": "p"}, "note": "hello", "reason": "Started",
            "reportingController": "kubelet", "reportingInstance": "n1", "action": "Start",
            "type": "Normal", "eventTime": "2026-01-01T00:00:00.000000Z", "deprecatedCount": 2});
        let core = to_core(new.clone());
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "hello");
        assert_eq!(core["reportingComponent"], "kubelet");
        assert_eq!(core["count"], 2);
        assert!(validate_create(&core).is_empty());
        assert_eq!(from_core(core), new);
        let bad = to_core(json!({"type": "Info"}));
        let fields: Vec<String> = validate_create(&bad)
            .iter()
            .map(|e| e.field.clone())
            .collect();
        assert_eq!(
            fields,
            [
                "eventTime",
                "reportingController",
                "reportingInstance",
                "action",
                "reason",
                "type"
            ]
        );
    }
}
