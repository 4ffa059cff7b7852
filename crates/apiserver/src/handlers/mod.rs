//! Request handlers: non-resource endpoints, discovery and the REST verbs
//! (upstream's `endpoints/handlers`: get.go, create.go, update.go, patch.go,
//! delete.go, watch.go).

mod eviction;
pub(crate) mod object;
mod read;
mod reviews;
mod token;
mod write;

use std::collections::HashMap;
use std::sync::Arc;

use apimachinery::ApiError;
use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::BodyExt;
use serde_json::{json, Value};

use crate::aggregator::registry::discovery as agg_discovery;
use crate::discovery;
use crate::negotiation::{negotiate, BodyFormat, Output};
use crate::request_info::{self, RequestInfo};
use crate::response::{self, Body};
use crate::state::ApiState;

/// The authenticated user (upstream's `user.Info`).
pub use component_base::authn::User;

/// Query parameters, decoded.
#[derive(Debug, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(q: Option<&str>) -> Self {
        let mut m = HashMap::new();
        for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            m.insert(dec(k), dec(v));
        }
        Query(m)
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }
    /// A boolean parameter as upstream converts query values
    /// (`Convert_Slice_string_To_bool`): present and neither `0` nor
    /// `false` in any case (the Python client sends `True`).
    pub fn flag(&self, k: &str) -> bool {
        self.get(k).is_some_and(query_bool)
    }
}

/// Upstream's reading of one boolean query value.
pub fn query_bool(v: &str) -> bool {
    !(v == "0" || v.eq_ignore_ascii_case("false"))
}

/// Everything a verb handler gets.
pub struct Ctx {
    pub state: Arc<ApiState>,
    pub info: RequestInfo,
    pub query: Query,
    pub user: User,
    pub accept: Option<String>,
    pub content_type: Option<String>,
    pub user_agent: Option<String>,
    pub body: Bytes,
    /// What admission plugins warn about, sent as `Warning` headers with
    /// the answer.
    pub warnings: std::sync::Mutex<Vec<String>>,
}

impl Ctx {
    /// Adds admission warnings to the answer.
    pub fn add_warnings(&self, w: Vec<String>) {
        if !w.is_empty() {
            self.warnings
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(w);
        }
    }
}

/// Past the limit, how much more is read and thrown away so that the client
/// gets its 413 instead of a reset connection.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// Reads the body, bounded: 413 past the limit, with memory bounded by it.
async fn read_body(mut body: hyper::body::Incoming, limit: usize) -> Result<Bytes, ApiError> {
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen <= limit {
                buf.extend_from_slice(&data);
            } else if seen > limit + DRAIN_LIMIT {
                break;
            }
        }
    }
    if seen > limit {
        return Err(ApiError::too_large(
            "the server has received a request that is too large",
        ));
    }
    Ok(buf.freeze())
}

/// Decodes a JSON, YAML or protobuf body into a value, bounded in depth;
/// 400 on malformed input.
pub fn decode_body(format: BodyFormat, body: &[u8]) -> Result<Value, ApiError> {
    match format {
        BodyFormat::Yaml | BodyFormat::ApplyPatch => decode_yaml(body),
        BodyFormat::Protobuf => api::protobuf::decode(body),
        _ => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding JSON body: {e}"))),
    }
}

/// Decodes YAML (or JSON, its subset). serde_yaml bounds recursion and alias
/// expansion, so billion-laughs documents fail fast.
pub fn decode_yaml(body: &[u8]) -> Result<Value, ApiError> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    let v: serde_yaml::Value = serde_yaml::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))?;
    serde_json::to_value(v)
        .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))
}

/// Routes one authenticated request.
pub async fn dispatch(
    state: Arc<ApiState>,
    req: Request<hyper::body::Incoming>,
    user: User,
) -> Response<Body> {
    match route(state, req, user).await {
        Ok(r) => r,
        Err(e) => response::error(&e),
    }
}

async fn route(
    state: Arc<ApiState>,
    req: Request<hyper::body::Incoming>,
    user: User,
) -> Result<Response<Body>, ApiError> {
    let asked = Query::parse(req.uri().query());
    let info = request_info::parse(req.method().as_str(), req.uri().path(), asked.flag("watch"));
    let selected = crate::authz::selected_name(&asked);
    crate::authz::check(
        &state,
        &crate::authz::Attributes::of_request(&user, &info, req.uri().path(), selected.as_deref()),
    )?;
    if let Some(remote) = aggregated_remote(&state, req.uri().path()) {
        return crate::aggregator::proxy::proxy(&state, &remote, req, &user).await;
    }
    if let Some(kind) = crate::kubelet::connect::wanted(&info) {
        return crate::kubelet::connect::serve(&state, kind, &info, req, &user).await;
    }
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = Query::parse(parts.uri.query());
    let header = |n: http::header::HeaderName| {
        parts
            .headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let accept = header(http::header::ACCEPT);
    let content_type = header(http::header::CONTENT_TYPE);
    let user_agent = header(http::header::USER_AGENT);
    if !info.is_resource {
        if parts.method != Method::GET && parts.method != Method::HEAD {
            return Err(ApiError::new(
                405,
                "MethodNotAllowed",
                format!("the server does not allow this method on the requested resource"),
            ));
        }
        if let Some(r) = crate::openapi::serve(
            &path,
            query.get("hash"),
            &parts.headers,
            &state.openapi_custom,
        ) {
            return Ok(r);
        }
        return non_resource(&state, &path, &info, accept.as_deref(), &user);
    }
    let body = read_body(body, state.config.max_request_body).await?;
    let ctx = Ctx {
        state,
        info,
        query,
        user,
        accept,
        content_type,
        user_agent,
        body,
        warnings: Default::default(),
    };
    resource(ctx).await
}

/// The APIService serving `/apis/<group>/<version>/…`, when aggregated.
fn aggregated_remote(state: &ApiState, path: &str) -> Option<crate::aggregator::Remote> {
    let rest = path.strip_prefix("/apis/")?;
    let mut parts = rest.split('/');
    let (group, version) = (parts.next()?, parts.next()?);
    if group.is_empty() || version.is_empty() {
        return None;
    }
    state.aggregator.get(group, version)
}

fn discovery_or_json(
    accept: Option<&str>,
    aggregated: impl FnOnce(crate::negotiation::DiscoveryVersion) -> Value,
    legacy: impl FnOnce() -> Value,
) -> Result<Response<Body>, ApiError> {
    match negotiate(accept, false, true)? {
        Output::Discovery(v) => {
            let ct = match v {
                crate::negotiation::DiscoveryVersion::V2 => {
                    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
                }
                crate::negotiation::DiscoveryVersion::V2Beta1 => {
                    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
                }
            };
            let mut r = response::json_bytes(
                200,
                serde_json::to_vec(&aggregated(v)).unwrap_or_default(),
                ct,
            );
            r.headers_mut()
                .insert("Vary", http::HeaderValue::from_static("Accept"));
            Ok(r)
        }
        _ => Ok(response::json(200, &legacy())),
    }
}

fn non_resource(
    state: &ApiState,
    path: &str,
    info: &RequestInfo,
    accept: Option<&str>,
    user: &User,
) -> Result<Response<Body>, ApiError> {
    let resources = state.resources.read().unwrap_or_else(|p| p.into_inner());
    let addr = format!(
        "{}:{}",
        state.config.advertise_address,
        state.config.bind.port()
    );
    match path.trim_end_matches('/') {
        "/api" => {
            return discovery_or_json(
                accept,
                |v| discovery::aggregated(&resources, true, v),
                || discovery::core_versions(&addr),
            )
        }
        "/apis" => {
            let remotes = state.aggregator.all();
            let known = resources.groups();
            return discovery_or_json(
                accept,
                |v| {
                    let mut d = discovery::aggregated(&resources, false, v);
                    if let Some(items) = d["items"].as_array_mut() {
                        items.extend(agg_discovery::aggregated_items(&remotes));
                    }
                    d
                },
                || {
                    let mut d = discovery::group_list(&resources);
                    if let Some(groups) = d["groups"].as_array_mut() {
                        groups.extend(agg_discovery::legacy_groups(&remotes, &known));
                    }
                    d
                },
            );
        }
        "/version" => return Ok(response::json(200, &discovery::version())),
        // Service-account issuer discovery (upstream's ServiceAccountIssuerDiscovery).
        "/.well-known/openid-configuration" | "/openid/v1/jwks" => {
            let tokens = state
                .tokens
                .as_ref()
                .filter(|t| t.can_issue())
                .ok_or_else(ApiError::not_found_path)?;
            return Ok(if path.starts_with("/openid") {
                response::json_bytes(
                    200,
                    serde_json::to_vec(&tokens.jwks()).unwrap_or_default(),
                    "application/jwk-set+json",
                )
            } else {
                response::json(200, &tokens.openid_configuration())
            });
        }
        "" => {
            let mut paths: Vec<String> = vec![
                "/api".into(),
                "/api/v1".into(),
                "/apis".into(),
                "/healthz".into(),
                "/livez".into(),
                "/readyz".into(),
                "/metrics".into(),
                "/version".into(),
            ];
            for g in resources.groups().iter().filter(|g| !g.is_empty()) {
                paths.push(format!("/apis/{g}"));
                for d in resources.list.iter().filter(|d| &d.group == g) {
                    let p = format!("/apis/{g}/{}", d.version);
                    if !paths.contains(&p) {
                        paths.push(p);
                    }
                }
            }
            for r in state.aggregator.all() {
                for p in [
                    format!("/apis/{}", r.group),
                    format!("/apis/{}/{}", r.group, r.version),
                ] {
                    if !paths.contains(&p) {
                        paths.push(p);
                    }
                }
            }
            return Ok(response::json(200, &json!({"paths": paths})));
        }
        _ => {}
    }
    let _ = user;
    if info.api_prefix == "api" || info.api_prefix == "apis" {
        if !info.version.is_empty() {
            if let Some(list) = discovery::resource_list(&resources, &info.group, &info.version) {
                return Ok(response::json(200, &list));
            }
        } else if let Some(g) = discovery::group(&resources, &info.group) {
            return Ok(response::json(200, &g));
        } else if let Some(g) = agg_discovery::group(&state.aggregator.all(), &info.group) {
            return Ok(response::json(200, &g));
        }
    }
    Err(ApiError::not_found_path())
}

async fn resource(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let r = dispatch_resource(&ctx).await?;
    let warnings = std::mem::take(&mut *ctx.warnings.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(crate::response::with_warnings(r, &warnings))
}

async fn dispatch_resource(ctx: &Ctx) -> Result<Response<Body>, ApiError> {
    let def = ctx
        .state
        .resource(&ctx.info.group, &ctx.info.version, &ctx.info.resource)
        .ok_or_else(ApiError::not_found_path)?;
    if !def.namespaced() && !ctx.info.namespace.is_empty() {
        return Err(ApiError::not_found_path());
    }
    let sub = ctx.info.subresource.clone();
    if !sub.is_empty() && !def.has_subresource(&sub) {
        return Err(ApiError::not_found_path());
    }
    if !def.verbs.contains(&ctx.info.verb.as_str()) && sub.is_empty() {
        return Err(ApiError::method_not_supported(
            &def.group_resource(),
            &ctx.info.verb,
        ));
    }
    if !def.stored() {
        return reviews::create(&ctx, &def).await;
    }
    match (ctx.info.verb.as_str(), sub.as_str()) {
        ("get", "" | "status" | "ephemeralcontainers" | "approval") => read::get(&ctx, &def).await,
        ("list", "") => read::list(&ctx, &def).await,
        ("watch", "") => read::watch(&ctx, &def).await,
        ("create", "") => write::create(&ctx, &def).await,
        ("create", "binding") => write::bind(&ctx, &def).await,
        ("create", "token") => token::create(&ctx, &def).await,
        ("create", "eviction") => eviction::create(&ctx, &def).await,
        ("update", "" | "status" | "ephemeralcontainers" | "approval") => {
            write::update(&ctx, &def).await
        }
        ("patch", "" | "status" | "ephemeralcontainers" | "approval") => {
            write::patch(&ctx, &def).await
        }
        ("delete", "") => write::delete(&ctx, &def).await,
        ("deletecollection", "") => write::delete_collection(&ctx, &def).await,
        ("get", "scale") => write::get_scale(&ctx, &def).await,
        ("update" | "patch", "scale") => write::update_scale(&ctx, &def).await,
        ("update", "finalize") => write::update(&ctx, &def).await,
        (verb, sub) => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!(
                "{verb} on {}/{sub} is not supported by this server yet",
                def.plural
            ),
        )),
    }
}
