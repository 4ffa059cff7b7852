//! Create-only review resources: SelfSubjectReview (`kubectl auth whoami`),
//! SelfSubjectAccessReview and SubjectAccessReview (`kubectl auth can-i`;
//! the authorizer allows every authenticated user until RBAC lands),
//! TokenReview.

use api::ResourceDef;
use apimachinery::ApiError;
use http::Response;
use serde_json::{json, Value};

use super::{decode_body, Ctx};
use crate::negotiation::body_format;
use crate::response::{self, Body};

pub fn create(ctx: &Ctx, def: &ResourceDef) -> Result<Response<Body>, ApiError> {
    if ctx.info.verb != "create" {
        return Err(ApiError::method_not_supported(
            &def.group_resource(),
            &ctx.info.verb,
        ));
    }
    let body: Value = decode_body(body_format(ctx.content_type.as_deref(), false)?, &ctx.body)?;
    let mut out = body.clone();
    out["apiVersion"] = json!(def.api_version());
    out["kind"] = json!(def.kind);
    if out.get("metadata").is_none() {
        out["metadata"] = json!({});
    }
    out["metadata"]["creationTimestamp"] = json!(apimachinery::meta::now_rfc3339());
    let user = json!({"username": ctx.user.name, "groups": ctx.user.groups});
    match def.kind.as_str() {
        "SelfSubjectReview" => out["status"] = json!({"userInfo": user}),
        "SelfSubjectAccessReview" | "SubjectAccessReview" | "LocalSubjectAccessReview" => {
            out["status"] = json!({"allowed": true, "reason": "no authorizer is configured: every authenticated request is allowed"})
        }
        "SelfSubjectRulesReview" => {
            out["status"] = json!({"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}], "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}], "incomplete": false})
        }
        "TokenReview" => {
            out["status"] =
                json!({"authenticated": false, "error": "token authentication is not configured"})
        }
        "Binding" => {
            return Err(ApiError::method_not_supported(
                &def.group_resource(),
                "create",
            ))
        }
        _ => return Err(ApiError::not_found_path()),
    }
    Ok(response::json(201, &out))
}
