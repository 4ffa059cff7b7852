//! Create-only review resources: SelfSubjectReview (`kubectl auth whoami`),
//! SelfSubjectAccessReview and SubjectAccessReview (`kubectl auth can-i`;
//! the authorizer allows every authenticated user until RBAC lands),
//! TokenReview.

use api::ResourceDef;
use apimachinery::ApiError;
use http::Response;
use serde_json::{json, Value};

use super::{decode_body, Ctx, User};
use crate::negotiation::body_format;
use crate::response::{self, Body};

pub async fn create(ctx: &Ctx, def: &ResourceDef) -> Result<Response<Body>, ApiError> {
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
    let user = user_info(&ctx.user);
    match def.kind.as_str() {
        "SelfSubjectReview" => out["status"] = json!({"userInfo": user}),
        "SelfSubjectAccessReview" | "SubjectAccessReview" | "LocalSubjectAccessReview" => {
            out["status"] = json!({"allowed": true, "reason": "no authorizer is configured: every authenticated request is allowed"})
        }
        "SelfSubjectRulesReview" => {
            out["status"] = json!({"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}], "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}], "incomplete": false})
        }
        "TokenReview" => {
            let token = body
                .pointer("/spec/token")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let audiences: Vec<String> = body
                .pointer("/spec/audiences")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            out["status"] = match crate::authn::authenticate_token(&ctx.state, token, &audiences)
                .await
            {
                Ok(u) => {
                    let audiences = if audiences.is_empty() {
                        ctx.state
                            .tokens
                            .as_ref()
                            .map(|t| t.default_audiences())
                            .unwrap_or_default()
                    } else {
                        audiences
                    };
                    json!({"authenticated": true, "user": user_info(&u), "audiences": audiences})
                }
                Err(e) => json!({"authenticated": false, "error": format!("[{e}]")}),
            }
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

/// upstream's `UserInfo` as JSON (empty uid and extra left out).
pub(super) fn user_info(u: &User) -> Value {
    let mut v = json!({"username": u.name, "groups": u.groups});
    if !u.uid.is_empty() {
        v["uid"] = json!(u.uid);
    }
    if !u.extra.is_empty() {
        v["extra"] = json!(u.extra);
    }
    v
}
