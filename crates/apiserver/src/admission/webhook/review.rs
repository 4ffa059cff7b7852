//! AdmissionReview objects (upstream's `webhook/request`): the request
//! sent to a webhook in the version it asked for, and the checks on its
//! answer — the same version, the request's uid, patches only from a
//! mutating webhook and only as a JSONPatch.

use apimachinery::status::StatusDetails;
use apimachinery::ApiError;
use base64::Engine;
use serde_json::{json, Value};

use super::hook::{operation_name, Hook};
use crate::admission::{Attributes, Operation};

/// What a webhook answered, checked.
#[derive(Debug, Default)]
pub struct Answer {
    pub allowed: bool,
    /// The JSONPatch a mutating webhook returned, decoded.
    pub patch: Option<json_patch::Patch>,
    /// `response.status`, the reason for a refusal.
    pub result: Option<Value>,
    pub warnings: Vec<String>,
}

fn options(a: &Attributes<'_>) -> Value {
    let kind = match a.operation {
        Operation::Create => "CreateOptions",
        Operation::Update => "UpdateOptions",
        Operation::Delete => "DeleteOptions",
    };
    let mut o = json!({"kind": kind, "apiVersion": "meta.k8s.io/v1"});
    if a.dry_run {
        o["dryRun"] = json!(["All"]);
    }
    o
}

/// The AdmissionReview for `a` with `uid`; `object` is what the request
/// writes (absent on delete).
pub fn request(hook: &Hook, uid: &str, a: &Attributes<'_>, object: Option<&Value>) -> Value {
    let gvk = json!({"group": a.group, "version": a.version, "kind": a.kind});
    let gvr = json!({"group": a.group, "version": a.version, "resource": a.resource});
    let mut user = json!({"username": a.user.name, "groups": a.user.groups});
    if !a.user.uid.is_empty() {
        user["uid"] = json!(a.user.uid);
    }
    if !a.user.extra.is_empty() {
        user["extra"] = json!(a.user.extra);
    }
    let mut req = json!({
        "uid": uid,
        "kind": gvk,
        "resource": gvr,
        "requestKind": gvk,
        "requestResource": gvr,
        "name": a.object_name(object),
        "namespace": a.namespace,
        "operation": operation_name(a.operation),
        "userInfo": user,
        "object": object.cloned().unwrap_or(Value::Null),
        "oldObject": a.old.cloned().unwrap_or(Value::Null),
        "dryRun": a.dry_run,
        "options": options(a),
    });
    if !a.subresource.is_empty() {
        req["subResource"] = json!(a.subresource);
        req["requestSubResource"] = json!(a.subresource);
    }
    json!({
        "apiVersion": format!("admission.k8s.io/{}", hook.review_version),
        "kind": "AdmissionReview",
        "request": req,
    })
}

/// Upstream's `VerifyAdmissionResponse`: the answer to the review with
/// `uid` that `hook` was sent.
pub fn verify(hook: &Hook, uid: &str, body: &[u8]) -> Result<Answer, String> {
    let review: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let resp = review
        .get("response")
        .filter(|r| r.is_object())
        .ok_or("webhook response was absent")?;
    let v1 = hook.review_version == "v1";
    if v1 {
        let got = resp.get("uid").and_then(Value::as_str).unwrap_or("");
        if got != uid {
            return Err(format!("expected response.uid={uid:?}, got {got:?}"));
        }
        let api_version = review
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind = review.get("kind").and_then(Value::as_str).unwrap_or("");
        if (api_version, kind) != ("admission.k8s.io/v1", "AdmissionReview") {
            let (g, v) = api_version.split_once('/').unwrap_or(("", api_version));
            return Err(format!(
                "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got {g}/{v}, Kind={kind}"
            ));
        }
    }
    let patch = resp
        .get("patch")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty());
    let patch_type = resp.get("patchType").filter(|t| !t.is_null());
    let mutating = hook.kind == super::source::Kind::Mutating;
    let mut answer = Answer {
        allowed: resp
            .get("allowed")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        result: resp.get("status").filter(|s| s.is_object()).cloned(),
        warnings: resp
            .get("warnings")
            .and_then(Value::as_array)
            .map(|w| {
                w.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        patch: None,
    };
    if !mutating {
        if patch.is_some() {
            return Err("validating webhook may not return response.patch".into());
        }
        if patch_type.is_some() {
            return Err("validating webhook may not return response.patchType".into());
        }
        return Ok(answer);
    }
    if v1 {
        match (patch, patch_type) {
            (Some(_), None) => {
                return Err("webhook returned response.patch but not response.patchType".into())
            }
            (None, Some(_)) => {
                return Err("webhook returned response.patchType but not response.patch".into())
            }
            (Some(_), Some(t)) if t.as_str() != Some("JSONPatch") => {
                return Err(format!(
                    "unsupported patch type {:?}",
                    t.as_str().unwrap_or("")
                ))
            }
            _ => {}
        }
    }
    if let Some(p) = patch {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(p)
            .map_err(|e| format!("received undecodable patch in webhook response: {e}"))?;
        let parsed: json_patch::Patch = serde_json::from_slice(&raw)
            .map_err(|e| format!("received undecodable patch in webhook response: {e}"))?;
        answer.patch = Some(parsed);
    }
    Ok(answer)
}

/// Upstream's `ToStatusErr`: a refusal as the error the client sees.
pub fn refusal(hook: &Hook, result: Option<&Value>) -> ApiError {
    let denied_by = format!("admission webhook {:?} denied the request", hook.name);
    let s = |k: &str| {
        result
            .and_then(|r| r.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let code = result
        .and_then(|r| r.get("code"))
        .and_then(Value::as_u64)
        .filter(|c| (400..600).contains(c))
        .unwrap_or(400) as u16;
    let (message, reason) = (s("message"), s("reason"));
    let message = if !message.is_empty() {
        format!("{denied_by}: {message}")
    } else if !reason.is_empty() {
        format!("{denied_by}: {reason}")
    } else {
        format!("{denied_by} without explanation")
    };
    let mut err = ApiError::new(code, &reason, message);
    err.details = result
        .and_then(|r| r.get("details"))
        .and_then(|d| serde_json::from_value::<StatusDetails>(d.clone()).ok());
    err
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::webhook::source::Kind;
    use component_base::authn::User;

    fn hook(kind: Kind, version: &str) -> Hook {
        Hook::compile(
            kind,
            "c",
            &json!({"name": "deny.example.com", "admissionReviewVersions": [version],
                    "clientConfig": {"url": "https://127.0.0.1:9443/x"}}),
        )
        .unwrap()
    }

    #[test]
    fn the_request_names_the_write() {
        let user = User {
            name: "alice".into(),
            groups: vec!["devs".into()],
            ..Default::default()
        };
        let a = Attributes {
            operation: Operation::Update,
            group: "apps",
            version: "v1",
            kind: "Deployment",
            resource: "deployments",
            subresource: "scale",
            namespace: "ns",
            name: "web",
            old: Some(&json!({"metadata": {"name": "web"}})),
            dry_run: true,
            user: &user,
        };
        let obj = json!({"metadata": {"name": "web"}, "spec": {}});
        let r = request(&hook(Kind::Validating, "v1beta1"), "u-1", &a, Some(&obj));
        assert_eq!(r["apiVersion"], "admission.k8s.io/v1beta1");
        let q = &r["request"];
        assert_eq!(q["uid"], "u-1");
        assert_eq!(
            q["kind"],
            json!({"group": "apps", "version": "v1", "kind": "Deployment"})
        );
        assert_eq!(q["resource"]["resource"], "deployments");
        assert_eq!(q["subResource"], "scale");
        assert_eq!(q["operation"], "UPDATE");
        assert_eq!(q["name"], "web");
        assert_eq!(
            q["userInfo"],
            json!({"username": "alice", "groups": ["devs"]})
        );
        assert_eq!(q["oldObject"]["metadata"]["name"], "web");
        assert_eq!(
            q["options"],
            json!({"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1", "dryRun": ["All"]})
        );
        assert_eq!(q["dryRun"], true);
    }

    #[test]
    fn answers_are_checked_like_upstream() {
        let v = hook(Kind::Validating, "v1");
        let ok = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": "u", "allowed": true, "warnings": ["careful"]}});
        let a = verify(&v, "u", ok.to_string().as_bytes()).unwrap();
        assert!(a.allowed && a.warnings == ["careful"]);
        assert_eq!(
            verify(&v, "other", ok.to_string().as_bytes()).unwrap_err(),
            "expected response.uid=\"other\", got \"u\""
        );
        let wrong = json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "response": {"uid": "u", "allowed": true}});
        assert_eq!(
            verify(&v, "u", wrong.to_string().as_bytes()).unwrap_err(),
            "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got admission.k8s.io/v1beta1, Kind=AdmissionReview"
        );
        let patch = base64::engine::general_purpose::STANDARD
            .encode(br#"[{"op":"add","path":"/metadata/labels","value":{"a":"b"}}]"#);
        let patched = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": "u", "allowed": true, "patch": patch, "patchType": "JSONPatch"}});
        assert_eq!(
            verify(&v, "u", patched.to_string().as_bytes()).unwrap_err(),
            "validating webhook may not return response.patch"
        );
        let m = hook(Kind::Mutating, "v1");
        assert!(verify(&m, "u", patched.to_string().as_bytes())
            .unwrap()
            .patch
            .is_some());
        let untyped = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": "u", "allowed": true, "patch": patch}});
        assert_eq!(
            verify(&m, "u", untyped.to_string().as_bytes()).unwrap_err(),
            "webhook returned response.patch but not response.patchType"
        );
        // v1beta1 answers need neither the uid nor a patch type.
        let beta = hook(Kind::Mutating, "v1beta1");
        let old = json!({"response": {"allowed": true, "patch": patch}});
        assert!(verify(&beta, "u", old.to_string().as_bytes())
            .unwrap()
            .patch
            .is_some());
        assert_eq!(
            verify(&v, "u", b"{}").unwrap_err(),
            "webhook response was absent"
        );
    }

    #[test]
    fn refusals_read_like_upstream() {
        let h = hook(Kind::Validating, "v1");
        let e = refusal(
            &h,
            Some(
                &json!({"code": 403, "reason": "Forbidden", "message": "no configmaps named bad"}),
            ),
        );
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "admission webhook \"deny.example.com\" denied the request: no configmaps named bad"
        );
        let e = refusal(&h, Some(&json!({"code": 200})));
        assert_eq!(e.code, 400);
        assert_eq!(
            e.message,
            "admission webhook \"deny.example.com\" denied the request without explanation"
        );
        assert_eq!(
            refusal(&h, Some(&json!({"reason": "Conflict"}))).message,
            "admission webhook \"deny.example.com\" denied the request: Conflict"
        );
    }
}
