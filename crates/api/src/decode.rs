//! Typed round trips: JSON → k8s-openapi type → JSON. A round trip checks the
//! shape of every field, drops unknown ones and reports their paths (for
//! `fieldValidation`), as upstream's decoder does for built-in kinds.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// The result of decoding a built-in object.
pub struct Decoded {
    pub value: Value,
    /// Paths of fields the type does not know (`spec.foo`), in input order.
    pub unknown: Vec<String>,
}

/// Decodes `input` as `T`, applies `default`, and re-encodes it.
pub fn round_trip<T: DeserializeOwned + Serialize>(
    input: Value,
    default: fn(&mut T),
) -> Result<Decoded, String> {
    // From a reference: no copy of the input tree.
    let mut typed = T::deserialize(&input).map_err(|e| e.to_string())?;
    // Defaults only add fields, so what the input has and the defaulted
    // object lacks is what the type does not know: one encoding, not two.
    default(&mut typed);
    let value = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    let mut unknown = Vec::new();
    unknown_fields(&input, &value, "", &mut unknown);
    Ok(Decoded { value, unknown })
}

/// No defaults for this kind.
pub fn none<T>(_: &mut T) {}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Collects the paths present in `input` but absent from `known` (nulls excepted).
pub fn unknown_fields(input: &Value, known: &Value, path: &str, out: &mut Vec<String>) {
    match (input, known) {
        (Value::Object(i), Value::Object(k)) => {
            for (key, v) in i {
                if v.is_null() {
                    continue;
                }
                match k.get(key) {
                    Some(kv) => unknown_fields(v, kv, &join(path, key), out),
                    None => out.push(join(path, key)),
                }
            }
        }
        (Value::Array(i), Value::Array(k)) => {
            for (n, (iv, kv)) in i.iter().zip(k.iter()).enumerate() {
                unknown_fields(iv, kv, &format!("{path}[{n}]"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use serde_json::json;

    #[test]
    fn reports_unknown_fields_and_keeps_known_ones() {
        let input = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "bogus": 1}, "data": {"a": "b"}, "extra": true});
        let d = round_trip::<ConfigMap>(input, none).unwrap();
        assert_eq!(d.unknown, vec!["extra", "metadata.bogus"]);
        assert_eq!(d.value["data"]["a"], "b");
        assert!(d.value.get("extra").is_none());
        assert!(round_trip::<ConfigMap>(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "data": "no"}),
            none
        )
        .is_err());
    }
}
