//! `serviceaccounts/<name>/token` (upstream's
//! `pkg/registry/core/serviceaccount/storage/token.go`): TokenRequest issues
//! a bound token for a ServiceAccount, optionally bound to a Pod, Secret or
//! Node whose deletion then invalidates it (`kubectl create token`).

use api::ResourceDef;
use apimachinery::field::FieldError;
use apimachinery::{meta, ApiError};
use http::Response;
use serde_json::{json, Value};

use super::object::storage_error;
use super::{decode_body, Ctx};
use crate::authn::serviceaccount::{Claims, KubernetesClaims, Ref};
use crate::negotiation::body_format;
use crate::response::{self, Body};

const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
const MIN_EXPIRATION_SECONDS: i64 = 600;
const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;

fn invalid(name: &str, errs: &[FieldError]) -> ApiError {
    ApiError::invalid("TokenRequest", "authentication.k8s.io", name, errs)
}

async fn get(ctx: &Ctx, resource: &str, namespace: &str, name: &str) -> Result<Value, ApiError> {
    let def = ctx
        .state
        .resource("", "v1", resource)
        .ok_or_else(ApiError::not_found_path)?;
    let key = ctx.state.object_key(&def, namespace, name);
    let obj = ctx
        .state
        .store
        .get(&key)
        .await
        .map_err(|e| storage_error(&def, name, e))?;
    Ok(obj.value)
}

fn reference(obj: &Value) -> Ref {
    Ref {
        name: meta::name(obj).to_string(),
        uid: meta::uid(obj).to_string(),
    }
}

/// Creates a TokenRequest: 201 with `status.token` and `expirationTimestamp`.
pub async fn create(ctx: &Ctx, def: &ResourceDef) -> Result<Response<Body>, ApiError> {
    let tokens = ctx
        .state
        .tokens
        .as_ref()
        .filter(|t| t.can_issue())
        .ok_or_else(|| ApiError::new(404, "NotFound", "the server is not configured to issue service account tokens (--service-account-issuer and --service-account-signing-key-file)"))?;
    let mut req = decode_body(body_format(ctx.content_type.as_deref(), false)?, &ctx.body)?;
    let (ns, name) = (ctx.info.namespace.clone(), ctx.info.name.clone());
    let requested = req
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64);
    let mut expiration = requested.unwrap_or(DEFAULT_EXPIRATION_SECONDS);
    if expiration < MIN_EXPIRATION_SECONDS {
        return Err(invalid(
            &name,
            &[FieldError::invalid(
                "spec.expirationSeconds",
                &json!(expiration),
                "may not specify a duration less than 10 minutes",
            )],
        ));
    }
    if expiration > MAX_EXPIRATION_SECONDS {
        return Err(invalid(
            &name,
            &[FieldError::invalid(
                "spec.expirationSeconds",
                &json!(expiration),
                "may not specify a duration larger than 2^32 seconds",
            )],
        ));
    }
    super::write::admit_subresource_create(ctx, def, ("v1", "TokenRequest"), &mut req).await?;
    if let Some(max) = tokens.config.max_token_expiration {
        expiration = expiration.min(max.as_secs() as i64);
    }
    let audiences: Vec<String> = req
        .pointer("/spec/audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .filter(|a: &Vec<String>| !a.is_empty())
        .unwrap_or_else(|| tokens.default_audiences());

    let sa = get(ctx, "serviceaccounts", &ns, &name).await?;
    let mut claims = KubernetesClaims {
        namespace: ns.clone(),
        serviceaccount: reference(&sa),
        pod: None,
        secret: None,
        node: None,
    };
    if let Some(bound) = req
        .pointer("/spec/boundObjectRef")
        .filter(|b| b.is_object())
    {
        let kind = bound["kind"].as_str().unwrap_or_default();
        let api_version = bound["apiVersion"].as_str().unwrap_or("v1");
        let obj_name = bound["name"].as_str().unwrap_or_default();
        let (resource, namespace) = match (api_version, kind) {
            ("v1", "Pod") => ("pods", ns.as_str()),
            ("v1", "Secret") => ("secrets", ns.as_str()),
            ("v1", "Node") => ("nodes", ""),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "cannot bind token for object of type {api_version}, Kind={kind}"
                )))
            }
        };
        let obj = get(ctx, resource, namespace, obj_name).await?;
        let want_uid = bound["uid"].as_str().unwrap_or_default();
        if !want_uid.is_empty() && want_uid != meta::uid(&obj) {
            let gr = apimachinery::resource::GroupResource {
                group: String::new(),
                resource: kind.to_string(),
            };
            return Err(ApiError::conflict(
                &gr,
                obj_name,
                &format!("the UID in the bound object reference ({want_uid}) does not match the UID in record. The object might have been deleted and then recreated"),
            ));
        }
        let r = reference(&obj);
        match kind {
            "Pod" => {
                let pod_sa = obj
                    .pointer("/spec/serviceAccountName")
                    .and_then(Value::as_str)
                    .unwrap_or("default");
                if pod_sa != name {
                    return Err(ApiError::bad_request(format!("cannot bind token for serviceaccount {name:?} to pod running with different serviceaccount name.")));
                }
                // The node a bound pod runs on rides along (upstream's
                // ServiceAccountTokenPodNodeInfo).
                if let Some(node) = obj
                    .pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty())
                {
                    if let Ok(n) = get(ctx, "nodes", "", node).await {
                        claims.node = Some(reference(&n));
                    }
                }
                claims.pod = Some(r);
            }
            "Secret" => claims.secret = Some(r),
            _ => claims.node = Some(r),
        }
        req["spec"]["boundObjectRef"]["uid"] = json!(meta::uid(&obj));
    }

    let now = chrono::Utc::now();
    let exp = now.timestamp() + expiration;
    let token = if ctx.query.get("dryRun").is_some() {
        String::new()
    } else {
        tokens
            .sign(&Claims {
                aud: audiences.clone(),
                exp,
                iat: now.timestamp(),
                iss: tokens.issuer().to_string(),
                jti: uuid::Uuid::new_v4().to_string(),
                kubernetes: claims,
                nbf: now.timestamp(),
                sub: format!("system:serviceaccount:{ns}:{name}"),
            })
            .map_err(ApiError::internal)?
    };
    req["apiVersion"] = json!("authentication.k8s.io/v1");
    req["kind"] = json!("TokenRequest");
    req["metadata"] =
        json!({"name": name, "namespace": ns, "creationTimestamp": meta::now_rfc3339()});
    req["spec"]["audiences"] = json!(audiences);
    req["spec"]["expirationSeconds"] = json!(expiration);
    let expires = chrono::DateTime::from_timestamp(exp, 0).unwrap_or(now);
    req["status"] = json!({"token": token, "expirationTimestamp": expires.format("%Y-%m-%dT%H:%M:%SZ").to_string()});
    Ok(response::json(201, &req))
}
