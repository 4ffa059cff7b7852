//! get, list and watch, with upstream's resourceVersion semantics: unset is a
//! quorum read from etcd, `0` and NotOlderThan are served by the watch cache,
//! Exact and continue tokens read etcd at that revision.

use std::sync::Arc;
use std::time::Duration;

use api::ResourceDef;
use apimachinery::fields::FieldSelector;
use apimachinery::labels::Selector;
use apimachinery::ApiError;
use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use http::Response;
use serde_json::{json, Value};
use storage::cacher::WatchStart;
use storage::{CachedObject, ListOptions};

use super::object::storage_error;
use super::Ctx;
use crate::negotiation::{negotiate, MetaVersion, Output};
use crate::response::{self, Body};
use crate::table::{table, IncludeObject};

/// Label and field selectors of a request, checked against the kind's fields.
pub struct Predicate {
    pub labels: Selector,
    pub fields: FieldSelector,
}

impl Predicate {
    pub fn from_ctx(ctx: &Ctx, def: &ResourceDef) -> Result<Self, ApiError> {
        let labels = Selector::parse(ctx.query.get("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let mut fields = FieldSelector::parse(ctx.query.get("fieldSelector").unwrap_or(""))
            .map_err(ApiError::bad_request)?;
        if let Some(c) = &def.conversion {
            // Selectors name this kind's fields; objects are kept in the stored kind's form.
            fields = fields
                .rename_fields(c.field_label)
                .map_err(|f| ApiError::bad_request(format!("field label not supported: {f}")))?;
        }
        let known = api::attrs::names(def.strategy.attrs);
        for r in fields.requirements() {
            if !known.contains(&r.field.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {}",
                    r.field
                )));
            }
        }
        Ok(Predicate { labels, fields })
    }

    /// Whether the request has no selectors at all.
    pub fn is_everything(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    pub fn matches_cached(&self, o: &CachedObject) -> bool {
        self.labels.matches(&o.labels) && self.fields.matches(|f| o.field(f))
    }

    pub fn matches_value(&self, def: &ResourceDef, v: &Value) -> bool {
        let empty = serde_json::Map::new();
        let labels = apimachinery::meta::labels(v).unwrap_or(&empty);
        if !self.labels.matches(labels) {
            return false;
        }
        let attrs = def.strategy.attrs.map(|f| f(v)).unwrap_or_default();
        self.fields.matches(|f| match f {
            "metadata.name" => Some(apimachinery::meta::name(v).to_string()),
            "metadata.namespace" => Some(apimachinery::meta::namespace(v).to_string()),
            other => attrs
                .iter()
                .find(|(k, _)| *k == other)
                .map(|(_, v)| v.clone()),
        })
    }
}

fn parse_rv(s: &str) -> Result<i64, ApiError> {
    s.parse::<i64>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("invalid resource version: {s}")))
}

/// Waits until the watch cache reached `revision` (NotOlderThan); 0 needs no wait.
async fn wait_fresh(
    ctx: &Ctx,
    def: &ResourceDef,
    revision: i64,
    name: &str,
) -> Result<(), ApiError> {
    if revision > 0 {
        ctx.state
            .cacher
            .wait_until_fresh(revision)
            .await
            .map_err(|e| storage_error(def, name, e))?;
    }
    Ok(())
}

/// An object's bytes in the version the request named (custom resources
/// with several versions; others pass through untouched).
fn served(def: &ResourceDef, bytes: Bytes) -> Bytes {
    match api::custom::convert_bytes(def, &bytes) {
        Some(b) => Bytes::from(b),
        None => bytes,
    }
}

fn respond_object(
    ctx: &Ctx,
    def: &ResourceDef,
    json_bytes: Bytes,
    value: Option<Value>,
) -> Result<Response<Body>, ApiError> {
    let json_bytes = served(def, json_bytes);
    let value = value.map(|mut v| {
        api::custom::convert(def, &mut v);
        v
    });
    match negotiate(ctx.accept.as_deref(), true, false)? {
        Output::Table => {
            let v = match value {
                Some(v) => v,
                None => serde_json::from_slice(&json_bytes)
                    .map_err(|e| ApiError::internal(e.to_string()))?,
            };
            let rv = apimachinery::meta::resource_version(&v).to_string();
            let include = IncludeObject::parse(ctx.query.get("includeObject"));
            Ok(response::json(
                200,
                &table(def, &[v], json!({"resourceVersion": rv}), include),
            ))
        }
        Output::Metadata(version) => {
            let v = match value {
                Some(v) => v,
                None => serde_json::from_slice(&json_bytes)
                    .map_err(|e| ApiError::internal(e.to_string()))?,
            };
            Ok(response::json(200, &partial_metadata(&v, version)))
        }
        _ => Ok(response::json_bytes(200, json_bytes, "application/json")),
    }
}

/// `obj` as a PartialObjectMetadata (upstream's `asPartialObjectMetadata`).
fn partial_metadata(obj: &Value, version: MetaVersion) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": version.api_version(),
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

pub async fn get(ctx: &Ctx, def: &ResourceDef) -> Result<Response<Body>, ApiError> {
    let key = ctx
        .state
        .object_key(def, &ctx.info.namespace, &ctx.info.name);
    let rv = ctx.query.get("resourceVersion").unwrap_or("");
    // Until the watch cache has synced, reads go to etcd (upstream's
    // ResilientWatchCacheInitialization).
    if !rv.is_empty() && ctx.state.cacher.ready() {
        wait_fresh(ctx, def, parse_rv(rv)?, &ctx.info.name).await?;
        let (obj, _) = ctx.state.cacher.get(&key);
        let obj = obj.ok_or_else(|| ApiError::not_found(&def.group_resource(), &ctx.info.name))?;
        return respond_object(ctx, def, obj.json.clone(), None);
    }
    let bytes = ctx
        .state
        .store
        .get_bytes(&key)
        .await
        .map_err(|e| storage_error(def, &ctx.info.name, e))?;
    respond_object(ctx, def, bytes, None)
}

/// Writes `{"kind":..,"apiVersion":..,"metadata":{..},"items":[` + items + `]}`
/// from already serialised items, without re-encoding them.
fn list_bytes(
    def: &ResourceDef,
    rv: i64,
    cont: Option<&str>,
    items: impl Iterator<Item = Bytes>,
) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    let mut buf = BytesMut::with_capacity(4096);
    buf.put_slice(
        format!(
            "{{\"kind\":\"{}\",\"apiVersion\":\"{}\",\"metadata\":{},\"items\":[",
            def.list_kind,
            def.api_version(),
            meta
        )
        .as_bytes(),
    );
    for (i, item) in items.enumerate() {
        if i > 0 {
            buf.put_u8(b',');
        }
        buf.put_slice(&item);
    }
    buf.put_slice(b"]}");
    buf.freeze()
}

pub async fn list(ctx: &Ctx, def: &ResourceDef) -> Result<Response<Body>, ApiError> {
    let pred = Predicate::from_ctx(ctx, def)?;
    let output = negotiate(ctx.accept.as_deref(), true, false)?;
    let prefix = ctx.state.collection_key(def, &ctx.info.namespace);
    let rv = ctx.query.get("resourceVersion").unwrap_or("");
    let rv_match = ctx.query.get("resourceVersionMatch").unwrap_or("");
    let limit: i64 = ctx
        .query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0)
        .max(0);
    let cont = ctx.query.get("continue").filter(|c| !c.is_empty());
    if cont.is_some() && !rv.is_empty() && rv != "0" {
        return Err(ApiError::bad_request(
            "specifying resource version is not allowed when using continue",
        ));
    }
    if !rv_match.is_empty() && rv.is_empty() {
        return Err(ApiError::bad_request(
            "resourceVersionMatch is forbidden unless resourceVersion is provided",
        ));
    }
    if !matches!(rv_match, "" | "NotOlderThan" | "Exact") {
        return Err(ApiError::bad_request(format!(
            "unsupported resourceVersionMatch: {rv_match}"
        )));
    }
    // The watch cache serves resourceVersion=0 and NotOlderThan reads.
    let from_cache = cont.is_none()
        && ctx.state.cacher.ready()
        && !rv.is_empty()
        && rv_match != "Exact"
        && (rv == "0" || limit == 0 || rv_match == "NotOlderThan");
    let (rv_out, cont_out, items): (i64, Option<String>, Vec<Bytes>) = if from_cache {
        wait_fresh(ctx, def, parse_rv(rv)?, "").await?;
        let (objs, rev) = ctx.state.cacher.list(&prefix, &|o| pred.matches_cached(o));
        (
            rev,
            None,
            objs.iter().map(|o| served(def, o.json.clone())).collect(),
        )
    } else {
        let revision = if rv_match == "Exact" {
            Some(parse_rv(rv)?)
        } else {
            None
        };
        let opts = ListOptions {
            revision,
            limit,
            continue_token: cont.map(str::to_string),
        };
        let filter = |v: &Value| pred.matches_value(def, v);
        // Without selectors nothing needs parsing: stored bytes are served.
        let filter: Option<storage::store::Filter<'_>> = (!pred.is_everything()).then_some(&filter);
        let res = ctx
            .state
            .store
            .list_bytes(&prefix, &opts, filter)
            .await
            .map_err(|e| storage_error(def, "", e))?;
        let items = res.items.into_iter().map(|b| served(def, b)).collect();
        (res.revision, res.continue_token, items)
    };
    match output {
        Output::Table => {
            let values: Vec<Value> = items
                .iter()
                .filter_map(|b| serde_json::from_slice(b).ok())
                .collect();
            let mut meta = json!({"resourceVersion": rv_out.to_string()});
            if let Some(c) = &cont_out {
                meta["continue"] = json!(c);
            }
            let include = IncludeObject::parse(ctx.query.get("includeObject"));
            Ok(response::json(200, &table(def, &values, meta, include)))
        }
        Output::Metadata(version) => {
            let items: Vec<Value> = items
                .iter()
                .filter_map(|b| serde_json::from_slice::<Value>(b).ok())
                .map(|v| partial_metadata(&v, version))
                .collect();
            let mut meta = json!({"resourceVersion": rv_out.to_string()});
            if let Some(c) = &cont_out {
                meta["continue"] = json!(c);
            }
            Ok(response::json(
                200,
                &json!({"kind": "PartialObjectMetadataList", "apiVersion": version.api_version(),
                        "metadata": meta, "items": items}),
            ))
        }
        _ => Ok(response::json_bytes(
            200,
            list_bytes(def, rv_out, cont_out.as_deref(), items.into_iter()),
            "application/json",
        )),
    }
}

fn event_frame(kind: &str, object: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(object.len() + 32);
    b.put_slice(b"{\"type\":\"");
    b.put_slice(kind.as_bytes());
    b.put_slice(b"\",\"object\":");
    b.put_slice(object);
    b.put_slice(b"}\n");
    b.freeze()
}

fn bookmark(def: &ResourceDef, rv: i64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let obj = json!({"kind": def.kind, "apiVersion": def.api_version(), "metadata": meta});
    event_frame("BOOKMARK", &serde_json::to_vec(&obj).unwrap_or_default())
}

pub async fn watch(ctx: &Ctx, def: &ResourceDef) -> Result<Response<Body>, ApiError> {
    let pred = Predicate::from_ctx(ctx, def)?;
    let output = negotiate(ctx.accept.as_deref(), true, false)?;
    let prefix = ctx.state.collection_key(def, &ctx.info.namespace);
    let resource_prefix = ctx.state.collection_key(def, "");
    let single = (!ctx.info.name.is_empty()).then(|| ctx.info.name.clone());
    let rv = ctx.query.get("resourceVersion").unwrap_or("");
    let send_initial = ctx.query.get("sendInitialEvents");
    let bookmarks = ctx.query.flag("allowWatchBookmarks");
    if !ctx.state.cacher.ready() {
        // Clients retry after the Retry-After the response carries.
        let mut e = ApiError::too_many_requests("storage is (re)initializing", vec![]);
        if let Some(d) = e.details.as_mut() {
            d.retry_after_seconds = Some(1);
        }
        return Err(e);
    }
    if send_initial.is_some()
        && !(bookmarks && ctx.query.get("resourceVersionMatch") == Some("NotOlderThan"))
    {
        return Err(ApiError::invalid(
            "ListOptions", "meta.k8s.io", "",
            &[apimachinery::field::FieldError::forbidden("sendInitialEvents", "sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled and allowWatchBookmarks=true and resourceVersionMatch=NotOlderThan")],
        ));
    }
    let start = match (rv, send_initial) {
        (_, Some("true")) => {
            if !rv.is_empty() {
                wait_fresh(ctx, def, parse_rv(rv)?, "").await?;
            }
            WatchStart::Now
        }
        ("", _) => {
            // Unset: "start at most recent", i.e. what etcd has now.
            let current = ctx
                .state
                .store
                .backend()
                .current_revision()
                .await
                .map_err(|e| storage_error(def, "", e))?;
            wait_fresh(ctx, def, current, "").await?;
            WatchStart::Now
        }
        ("0", _) => WatchStart::Now,
        (n, _) => {
            let n = parse_rv(n)?;
            wait_fresh(ctx, def, n, "").await?;
            WatchStart::After(n)
        }
    };
    let sub = match ctx.state.cacher.watch(&resource_prefix, &prefix, start) {
        Ok(s) => s,
        // Too old: upstream answers 200 with one ERROR event carrying the 410 Status.
        Err(storage::Error::Expired { message }) => {
            let status = ApiError::gone(message).to_status();
            let frame = event_frame("ERROR", &serde_json::to_vec(&status).unwrap_or_default());
            return Ok(response::json_bytes(200, frame, "application/json"));
        }
        Err(e) => return Err(storage_error(def, "", e)),
    };
    let timeout = ctx
        .query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or_else(|| Duration::from_secs(1800 + rand::random::<u64>() % 1800));
    let def = Arc::new(def.clone());
    let include = IncludeObject::parse(ctx.query.get("includeObject"));
    let table_out = output == Output::Table;
    let metadata_out = match output {
        Output::Metadata(v) => Some(v),
        _ => None,
    };
    let initial_end = send_initial == Some("true");
    let (tx, rx) =
        tokio::sync::mpsc::channel::<Result<hyper::body::Frame<Bytes>, std::io::Error>>(64);
    let single_key = single.map(|n| format!("{prefix}{n}"));
    tokio::spawn(async move {
        let render = |kind: &str, o: &CachedObject| -> Bytes {
            let json = served(&def, o.json.clone());
            if table_out {
                let v: Value = serde_json::from_slice(&json).unwrap_or(Value::Null);
                let t = table(
                    &def,
                    &[v],
                    json!({"resourceVersion": o.revision.to_string()}),
                    include,
                );
                event_frame(kind, &serde_json::to_vec(&t).unwrap_or_default())
            } else if let Some(version) = metadata_out {
                let v: Value = serde_json::from_slice(&json).unwrap_or(Value::Null);
                let m = partial_metadata(&v, version);
                event_frame(kind, &serde_json::to_vec(&m).unwrap_or_default())
            } else {
                event_frame(kind, &json)
            }
        };
        let wanted = |o: &CachedObject| {
            o.key.starts_with(&prefix)
                && single_key.as_ref().is_none_or(|k| &o.key == k)
                && pred.matches_cached(o)
        };
        let mut last = sub.after;
        for ev in &sub.initial {
            if let Some((kind, obj)) = ev.filtered(&wanted) {
                last = last.max(ev.revision);
                if tx
                    .send(Ok(hyper::body::Frame::data(render(kind.as_str(), &obj))))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        if initial_end
            && tx
                .send(Ok(hyper::body::Frame::data(bookmark(
                    &def, sub.after, true,
                ))))
                .await
                .is_err()
        {
            return;
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(Duration::from_secs(55));
        tick.tick().await;
        let mut live = tokio_stream::wrappers::BroadcastStream::new(sub.live);
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = tick.tick(), if bookmarks => {
                    if tx.send(Ok(hyper::body::Frame::data(bookmark(&def, last, false)))).await.is_err() { return; }
                }
                ev = live.next() => match ev {
                    Some(Ok(ev)) => {
                        if ev.revision <= sub.after { continue; }
                        last = ev.revision;
                        if let Some((kind, obj)) = ev.filtered(&wanted) {
                            if tx.send(Ok(hyper::body::Frame::data(render(kind.as_str(), &obj)))).await.is_err() { return; }
                        }
                    }
                    // A slow watcher or a cache relist ends the watch; the client re-watches.
                    _ => return,
                },
            }
        }
    });
    let body = http_body_util::StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    let mut r = Response::new(http_body_util::BodyExt::boxed(body));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}
