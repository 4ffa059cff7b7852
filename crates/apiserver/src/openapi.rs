//! Serving the OpenAPI documents: `/openapi/v2` as JSON or gnostic protobuf
//! (upstream's `kube-openapi/pkg/handler/handler.go`), `/openapi/v3` and
//! `/openapi/v3/<gv>` as JSON (`kube-openapi/pkg/handler3/handler.go`).
//!
//! The documents are generated (by `api::openapi`) on the first request and
//! kept only as serialised bytes with their ETags; requests never serialise.
//! ETags are upstream's: the quoted upper-case hex SHA-512 of the JSON.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use apimachinery::ApiError;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};

use crate::response::{self, Body};

const PROTO_V2: &str = "com.github.proto-openapi.spec.v2.v1.0+protobuf";
const PROTO_V2_DEPRECATED: &str = "com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// One representation: bytes and ETag (unquoted).
struct Doc {
    bytes: Bytes,
    etag: String,
}

impl Doc {
    fn new(bytes: Vec<u8>, etag: String) -> Doc {
        Doc {
            bytes: Bytes::from(bytes),
            etag,
        }
    }
    fn json(v: &serde_json::Value) -> Doc {
        let bytes = serde_json::to_vec(v).unwrap_or_default();
        let etag = etag(&bytes);
        Doc::new(bytes, etag)
    }
}

/// Everything served, built once.
struct Served {
    v2_json: Doc,
    /// Shares the JSON's ETag, as upstream's does.
    v2_proto: Doc,
    v3_discovery: Doc,
    v3: BTreeMap<String, Doc>,
}

fn etag(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA512, bytes);
    d.as_ref().iter().map(|b| format!("{b:02X}")).collect()
}

fn build() -> Served {
    let docs = api::openapi::documents(&api::builtin_resources());
    let v2_json = Doc::json(&docs.v2);
    let v2_proto = Doc::new(
        api::openapi::gnostic::encode(&docs.v2),
        v2_json.etag.clone(),
    );
    drop(docs.v2);
    let mut v3 = BTreeMap::new();
    let mut paths = serde_json::Map::new();
    for (key, doc) in docs.v3 {
        let d = Doc::json(&doc);
        drop(doc);
        paths.insert(
            key.clone(),
            serde_json::json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={}", d.etag)}),
        );
        v3.insert(key, d);
    }
    let v3_discovery = Doc::json(&serde_json::json!({ "paths": paths }));
    Served {
        v2_json,
        v2_proto,
        v3_discovery,
        v3,
    }
}

static SERVED: LazyLock<Served> = LazyLock::new(build);

/// Sizes of the kept bytes (v2 JSON, v2 protobuf, all v3 JSON), building them if needed.
pub fn sizes() -> (usize, usize, usize) {
    let s = &*SERVED;
    (
        s.v2_json.bytes.len(),
        s.v2_proto.bytes.len(),
        s.v3.values().map(|d| d.bytes.len()).sum(),
    )
}

/// The media types of an `Accept` header, in order, without those of q=0.
fn accepted(headers: &HeaderMap) -> Vec<String> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or("*/*");
    let mut out: Vec<(f32, String)> = accept
        .split(',')
        .filter_map(|r| {
            let mut parts = r.split(';').map(str::trim);
            let essence = parts.next()?.to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            (q > 0.0).then_some((q, essence))
        })
        .collect();
    // Stable: equal weights keep the client's order.
    out.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
    out.into_iter().map(|(_, e)| e).collect()
}

fn matches(range: &str, subtype: &str) -> bool {
    let (t, s) = range.split_once('/').unwrap_or((range, ""));
    (t == "application" || t == "*") && (s == subtype || s == "*")
}

fn respond(
    doc: &Doc,
    content_type: &'static str,
    headers: &HeaderMap,
    vary: bool,
) -> Response<Body> {
    let quoted = format!("\"{}\"", doc.etag);
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == quoted || t.trim() == "*"));
    let mut r = if not_modified {
        let mut r = Response::new(response::full(Bytes::new()));
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        response::json_bytes(200, doc.bytes.clone(), content_type)
    };
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&quoted) {
        h.insert(header::ETAG, v);
    }
    if vary {
        h.insert(header::VARY, HeaderValue::from_static("Accept"));
    }
    r
}

/// Serves `/openapi/v2`, `/openapi/v3` and `/openapi/v3/<gv>`; `None` for
/// other paths. `hash` is the `hash` query parameter.
pub fn serve(path: &str, hash: Option<&str>, headers: &HeaderMap) -> Option<Response<Body>> {
    let path = path.trim_end_matches('/');
    let r = if path == "/openapi/v2" {
        serve_v2(headers)
    } else if path == "/openapi/v3" {
        Some(respond(
            &SERVED.v3_discovery,
            "application/json",
            headers,
            false,
        ))
    } else {
        serve_v3(path.strip_prefix("/openapi/v3/")?, hash, headers)
    };
    Some(r.unwrap_or_else(|| response::error(&ApiError::not_acceptable("application/json"))))
}

/// `None` when nothing acceptable is served (406).
fn serve_v2(headers: &HeaderMap) -> Option<Response<Body>> {
    let s = &*SERVED;
    for range in accepted(headers) {
        if matches(&range, "json") {
            return Some(respond(&s.v2_json, "application/json", headers, true));
        }
        if matches(&range, PROTO_V2) || matches(&range, PROTO_V2_DEPRECATED) {
            let ct = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
            return Some(respond(&s.v2_proto, ct, headers, true));
        }
    }
    None
}

/// `None` when nothing acceptable is served (406); JSON only, which is what
/// client-go's openapi3 client asks for.
fn serve_v3(gv: &str, hash: Option<&str>, headers: &HeaderMap) -> Option<Response<Body>> {
    let Some(doc) = SERVED.v3.get(gv) else {
        return Some(response::error(&ApiError::not_found_path()));
    };
    if !accepted(headers).iter().any(|r| matches(r, "json")) {
        return None;
    }
    match hash.filter(|h| !h.is_empty()) {
        Some(h) if h != doc.etag => {
            // A stale link: upstream redirects to the current one.
            let mut r = Response::new(response::full(Bytes::new()));
            *r.status_mut() = StatusCode::MOVED_PERMANENTLY;
            if let Ok(v) = HeaderValue::from_str(&format!("/openapi/v3/{gv}?hash={}", doc.etag)) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            Some(r)
        }
        Some(_) => {
            let mut r = respond(doc, "application/json", headers, true);
            let h = r.headers_mut();
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, immutable"),
            );
            let expires =
                std::time::SystemTime::now() + std::time::Duration::from_secs(365 * 24 * 3600);
            if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(expires)) {
                h.insert(header::EXPIRES, v);
            }
            Some(r)
        }
        None => Some(respond(doc, "application/json", headers, true)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, hash: Option<&str>, accept: &str, etag: Option<&str>) -> Response<Body> {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            HeaderValue::from_str(accept).unwrap_or(HeaderValue::from_static("*/*")),
        );
        if let Some(e) = etag.and_then(|e| HeaderValue::from_str(e).ok()) {
            h.insert(header::IF_NONE_MATCH, e);
        }
        serve(path, hash, &h).unwrap_or_else(|| response::error(&ApiError::not_found_path()))
    }

    #[test]
    fn negotiates_caches_and_redirects_like_kube_openapi() {
        let pb = get(
            "/openapi/v2",
            None,
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
            None,
        );
        assert_eq!(pb.status(), 200);
        assert_eq!(
            pb.headers()[header::CONTENT_TYPE],
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
        );
        let etag = pb.headers()[header::ETAG]
            .to_str()
            .unwrap_or_default()
            .to_string();
        assert_eq!(etag.len(), 128 + 2);
        assert_eq!(
            get("/openapi/v2", None, "application/json", Some(&etag)).status(),
            304
        );
        let json = get("/openapi/v2", None, "application/json", None);
        assert_eq!(json.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(get("/openapi/v2", None, "text/html", None).status(), 406);

        let served = &*SERVED;
        let core = &served.v3["api/v1"];
        let disc: serde_json::Value =
            serde_json::from_slice(&served.v3_discovery.bytes).unwrap_or_default();
        assert_eq!(
            disc["paths"]["api/v1"]["serverRelativeURL"],
            format!("/openapi/v3/api/v1?hash={}", core.etag)
        );
        assert!(disc["paths"]["apis/apps/v1"].is_object());
        let r = get(
            "/openapi/v3/api/v1",
            Some(&core.etag),
            "application/json",
            None,
        );
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "public, immutable");
        let r = get(
            "/openapi/v3/api/v1",
            Some("stale"),
            "application/json",
            None,
        );
        assert_eq!(r.status(), 301);
        assert_eq!(
            get("/openapi/v3/apis/nope/v1", None, "application/json", None).status(),
            404
        );
    }
}
