//! CertificateSigningRequests (upstream's
//! `pkg/registry/certificates/certificates/strategy.go` and
//! `pkg/apis/certificates/validation`): the requester is recorded at
//! create; the main resource never changes the status; `/approval` changes
//! only the conditions and `/status` never the Approved/Denied ones; a
//! condition without timestamps gets the time of the write; Approved and
//! Denied exclude each other, neither is removed once set, and an issued
//! certificate is never replaced.

use apimachinery::field::FieldError;
use serde_json::{json, Value};

const APPROVAL: [&str; 2] = ["Approved", "Denied"];

/// `spec.username`, `uid`, `groups`, `extra` from the requester
/// (upstream's PrepareForCreate; whatever the client sent is replaced), and
/// no status.
pub fn record_requester(obj: &mut Value, user: &Value) {
    if let Some(m) = obj.as_object_mut() {
        m.remove("status");
    }
    let spec = &mut obj["spec"];
    if !spec.is_object() {
        *spec = json!({});
    }
    for (k, from) in [
        ("username", "username"),
        ("uid", "uid"),
        ("groups", "groups"),
        ("extra", "extra"),
    ] {
        let v = user.get(from).cloned().unwrap_or(Value::Null);
        let empty = v.is_null()
            || v.as_str() == Some("")
            || v.as_array().is_some_and(Vec::is_empty)
            || v.as_object().is_some_and(serde_json::Map::is_empty);
        if let Some(s) = spec.as_object_mut() {
            if empty {
                s.remove(k);
            } else {
                s.insert(k.into(), v);
            }
        }
    }
}

fn conditions(obj: &Value) -> Vec<Value> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn is_approval(c: &Value) -> bool {
    c.get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| APPROVAL.contains(&t))
}

/// Upstream's `populateConditionTimestamps`.
fn stamp(conditions: &mut [Value]) {
    let now = apimachinery::meta::now_rfc3339();
    for c in conditions {
        for f in ["lastUpdateTime", "lastTransitionTime"] {
            if c.get(f).is_none_or(Value::is_null) {
                c[f] = json!(now);
            }
        }
    }
}

/// `new` is the old object with what `subresource` may change applied.
pub fn prepare_subresource_update(subresource: &str, new: &mut Value, old: &Value) {
    match subresource {
        // Only the conditions: the certificate stays (the generic rules
        // kept the spec and metadata, as for /status).
        "approval" => {
            let mut cs = conditions(new);
            stamp(&mut cs);
            let certificate = old.pointer("/status/certificate").cloned();
            let mut status = json!({});
            if !cs.is_empty() {
                status["conditions"] = Value::Array(cs);
            }
            if let Some(c) = certificate {
                status["certificate"] = c;
            }
            new["status"] = status;
        }
        // The approval conditions are the old ones.
        "status" => {
            let mut cs: Vec<Value> = conditions(old).into_iter().filter(is_approval).collect();
            cs.extend(conditions(new).into_iter().filter(|c| !is_approval(c)));
            stamp(&mut cs);
            match new.get_mut("status").and_then(Value::as_object_mut) {
                Some(s) if !cs.is_empty() => {
                    s.insert("conditions".into(), Value::Array(cs));
                }
                Some(s) => {
                    s.remove("conditions");
                }
                None if !cs.is_empty() => new["status"] = json!({"conditions": cs}),
                None => {}
            }
        }
        _ => {}
    }
}

fn decoded_request(obj: &Value) -> Option<String> {
    let b64 = obj.pointer("/spec/request")?.as_str()?;
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).ok()?;
    String::from_utf8(bytes).ok()
}

/// Create and update checks of the request and the conditions.
pub fn validate(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match decoded_request(obj) {
        Some(pem) if pem.contains("-----BEGIN CERTIFICATE REQUEST-----") => {}
        Some(_) => errs.push(FieldError::invalid_str(
            "spec.request",
            "<request>",
            "PEM block type must be CERTIFICATE REQUEST",
        )),
        None => errs.push(FieldError::invalid_str(
            "spec.request",
            "<request>",
            "unable to decode PEM block",
        )),
    }
    let signer = obj
        .pointer("/spec/signerName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if signer.is_empty() {
        errs.push(FieldError::required("spec.signerName", ""));
    } else if !signer.contains('/') {
        errs.push(FieldError::invalid_str(
            "spec.signerName",
            signer,
            "must be a fully qualified domain and path of the form 'example.com/signer-name'",
        ));
    }
    let cs = conditions(obj);
    let has = |t: &str| {
        cs.iter()
            .any(|c| c["type"] == t && c["status"].as_str().unwrap_or("True") == "True")
    };
    if has("Approved") && has("Denied") {
        let i = cs.iter().position(|c| c["type"] == "Denied").unwrap_or(0);
        errs.push(FieldError::invalid_str(
            format!("status.conditions[{i}].type"),
            "Denied",
            "Approved and Denied conditions are mutually exclusive",
        ));
    }
    errs
}

/// What an update may not do.
pub fn validate_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = validate(new);
    let new_cs = conditions(new);
    for t in APPROVAL {
        let had = conditions(old).iter().any(|c| c["type"] == t);
        if had && !new_cs.iter().any(|c| c["type"] == t) {
            errs.push(FieldError::forbidden(
                "status.conditions",
                format!("updates may not remove a condition of type {t:?}"),
            ));
        }
    }
    let cert = |o: &Value| {
        o.pointer("/status/certificate")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let (was, is) = (cert(old), cert(new));
    if !was.is_empty() && was != is {
        errs.push(FieldError::forbidden(
            "status.certificate",
            "updates may not modify existing certificate content",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s)
    }

    fn csr(conditions: Value) -> Value {
        json!({"spec": {"request": b64("-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"),
                        "signerName": "kubernetes.io/kube-apiserver-client", "usages": ["client auth"]},
               "status": {"conditions": conditions}})
    }

    #[test]
    fn the_requester_is_recorded_and_status_dropped() {
        let mut o = csr(json!([{"type": "Approved", "status": "True"}]));
        o["spec"]["username"] = json!("forged");
        record_requester(
            &mut o,
            &json!({"username": "alice", "groups": ["devs", "system:authenticated"], "uid": ""}),
        );
        assert_eq!(o["spec"]["username"], "alice");
        assert_eq!(o["spec"]["groups"], json!(["devs", "system:authenticated"]));
        assert!(o["spec"].get("uid").is_none());
        assert!(o.get("status").is_none(), "no pre-approved requests");
    }

    #[test]
    fn approval_changes_conditions_only_and_status_not_the_approval() {
        let mut old = csr(json!([]));
        old["status"]["certificate"] = json!("Q0VSVA==");
        let mut new = old.clone();
        new["status"] = json!({"conditions": [{"type": "Approved", "status": "True", "reason": "KubectlApprove"}]});
        prepare_subresource_update("approval", &mut new, &old);
        assert_eq!(new["status"]["certificate"], "Q0VSVA==");
        assert_eq!(new["status"]["conditions"][0]["reason"], "KubectlApprove");
        assert!(new["status"]["conditions"][0]["lastUpdateTime"].is_string());
        // Through /status an Approved condition cannot be added.
        let mut via_status = csr(
            json!([{"type": "Approved", "status": "True"}, {"type": "Failed", "status": "True"}]),
        );
        prepare_subresource_update("status", &mut via_status, &csr(json!([])));
        let types: Vec<&str> = via_status["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["Failed"]);
    }

    #[test]
    fn validation_like_upstream() {
        assert!(validate(&csr(json!([]))).is_empty());
        let both = csr(
            json!([{"type": "Approved", "status": "True"}, {"type": "Denied", "status": "True"}]),
        );
        assert!(validate(&both)[0].body().contains("mutually exclusive"));
        let mut bad = csr(json!([]));
        bad["spec"]["request"] = json!(b64("hello"));
        bad["spec"]["signerName"] = json!("");
        let errs = validate(&bad);
        assert_eq!(errs.len(), 2);
        let approved = csr(json!([{"type": "Approved", "status": "True"}]));
        let errs = validate_update(&csr(json!([])), &approved);
        assert!(errs[0]
            .body()
            .contains("may not remove a condition of type \"Approved\""));
        let mut issued = approved.clone();
        issued["status"]["certificate"] = json!("QQ==");
        let mut changed = issued.clone();
        changed["status"]["certificate"] = json!("Qg==");
        assert!(validate_update(&changed, &issued)[0]
            .body()
            .contains("may not modify existing certificate"));
        assert!(validate_update(&issued, &approved).is_empty());
    }
}
