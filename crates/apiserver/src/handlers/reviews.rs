//! Create-only review resources: SelfSubjectReview (`kubectl auth whoami`),
//! SelfSubjectAccessReview, LocalSubjectAccessReview and SubjectAccessReview
//! (`kubectl auth can-i`, answered by the configured authorizers),
//! SelfSubjectRulesReview (`kubectl auth can-i --list`), TokenReview.

use api::ResourceDef;
use apimachinery::ApiError;
use http::Response;
use serde_json::{json, Value};

use super::{decode_body, Ctx, User};
use crate::authz::{self, Decision};
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
            out["status"] = access_review(ctx, &def.kind, &body)?
        }
        "SelfSubjectRulesReview" => out["status"] = rules_review(ctx, &body),
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

fn invalid(kind: &str, field: &str, value: &Value, detail: &str) -> ApiError {
    ApiError::invalid(
        kind,
        "authorization.k8s.io",
        "",
        &[apimachinery::field::FieldError::invalid(
            field, value, detail,
        )],
    )
}

/// The subject a review asks about: the requester for a self review,
/// `spec.user`/`groups`/`uid`/`extra` otherwise.
fn review_subject(ctx: &Ctx, kind: &str, spec: &Value) -> Result<User, ApiError> {
    if kind == "SelfSubjectAccessReview" {
        return Ok(ctx.user.clone());
    }
    let s = |k: &str| {
        spec.get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let groups: Vec<String> = spec
        .get("groups")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|g| g.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let name = s("user");
    if name.is_empty() && groups.is_empty() {
        return Err(invalid(
            kind,
            "spec.user",
            &json!(""),
            "at least one of user or group must be specified",
        ));
    }
    let extra = spec
        .get("extra")
        .and_then(|e| serde_json::from_value(e.clone()).ok())
        .unwrap_or_default();
    Ok(User {
        name,
        uid: s("uid"),
        groups,
        extra,
    })
}

/// Upstream's SubjectAccessReview REST: the authorizers' decision on the
/// attributes of the review's spec.
fn access_review(ctx: &Ctx, kind: &str, body: &Value) -> Result<Value, ApiError> {
    let spec = body.get("spec").cloned().unwrap_or(json!({}));
    let resource = spec.get("resourceAttributes").filter(|v| v.is_object());
    let non_resource = spec.get("nonResourceAttributes").filter(|v| v.is_object());
    if resource.is_some() == non_resource.is_some() {
        return Err(invalid(
            kind,
            "spec.resourceAttributes",
            &Value::Null,
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    }
    let user = review_subject(ctx, kind, &spec)?;
    let get = |v: Option<&Value>, k: &str| {
        v.and_then(|v| v.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let mut namespace = get(resource, "namespace");
    if kind == "LocalSubjectAccessReview" {
        if namespace.is_empty() {
            namespace = ctx.info.namespace.clone();
        } else if namespace != ctx.info.namespace {
            return Err(invalid(
                kind,
                "spec.resourceAttributes.namespace",
                &json!(namespace),
                "must match metadata.namespace",
            ));
        }
    }
    let attrs_of = |v: Option<&Value>| {
        (
            get(v, "verb"),
            get(v, "group"),
            get(v, "resource"),
            get(v, "subresource"),
            get(v, "name"),
            get(v, "path"),
        )
    };
    let (verb, group, res, sub, name, path) = attrs_of(resource.or(non_resource));
    let asked = authz::Attributes {
        user: &user,
        verb: &verb,
        resource_request: resource.is_some(),
        namespace: &namespace,
        api_group: &group,
        resource: &res,
        subresource: &sub,
        name: &name,
        path: &path,
    };
    let mut status = match ctx.state.authorizer.authorize(&ctx.state, &asked) {
        Decision::Allow(r) => json!({"allowed": true, "reason": r}),
        Decision::Deny(r) => json!({"allowed": false, "denied": true, "reason": r}),
        Decision::NoOpinion(r) => json!({"allowed": false, "reason": r}),
    };
    if status["reason"] == "" {
        status.as_object_mut().map(|m| m.remove("reason"));
    }
    Ok(status)
}

/// Upstream's SelfSubjectRulesReview REST: the requester's rules in
/// `spec.namespace`.
fn rules_review(ctx: &Ctx, body: &Value) -> Value {
    let namespace = body
        .pointer("/spec/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let (rules, errors) = ctx.state.authorizer.rules_for(&ctx.user, namespace);
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for r in &rules {
        if !r.resources.is_empty() {
            let mut v =
                json!({"verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources});
            if !r.resource_names.is_empty() {
                v["resourceNames"] = json!(r.resource_names);
            }
            resource_rules.push(v);
        }
        if !r.non_resource_urls.is_empty() {
            non_resource_rules
                .push(json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}));
        }
    }
    let mut status = json!({"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": false});
    if !errors.is_empty() {
        status["evaluationError"] = json!(errors.join(", "));
    }
    status
}
