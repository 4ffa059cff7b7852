//! The OpenAPI v3 documents, one per group-version, served at
//! `/openapi/v3/api/v1`, `/openapi/v3/apis/<group>/<version>` and kept in
//! `api/openapi-spec/v3/` (upstream's `kube-openapi/pkg/builder3`
//! `BuildOpenAPISpecFromRoutes`, one per group-version, as upstream's
//! `api/openapi-spec/v3/*_openapi.json`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use super::extensions::{gvk, GVK};
use super::paths::{self, Operation, Param, PathItem, Type};
use super::{for_each_ref, Model, V2_REF_PREFIX};
use crate::registry::ResourceDef;

pub const V3_REF_PREFIX: &str = "#/components/schemas/";

/// `api/v1`, `apis/apps/v1`: the key of a group-version in `/openapi/v3`.
pub fn gv_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The file name upstream keeps a group-version's document under.
pub fn file_name(key: &str) -> String {
    format!("{}_openapi.json", key.replace('/', "__"))
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("{V3_REF_PREFIX}{name}") })
}

fn schema_type(t: Type) -> Value {
    let ty = match t {
        Type::String => "string",
        Type::Integer => "integer",
        Type::Boolean => "boolean",
    };
    json!({"type": ty, "uniqueItems": true})
}

fn param(p: &Param, location: &str) -> Value {
    let mut v = json!({
        "name": p.name,
        "in": location,
        "description": p.description,
        "schema": schema_type(p.ty),
    });
    if location == "path" {
        v["required"] = true.into();
    }
    v
}

fn content(types: &[&str], schema: &Value) -> Value {
    let m: Map<String, Value> = types
        .iter()
        .filter(|t| !t.contains("stream=watch") || schema_is_watch(schema))
        .map(|t| (t.to_string(), json!({ "schema": schema })))
        .collect();
    Value::Object(m)
}

fn schema_is_watch(schema: &Value) -> bool {
    schema["$ref"]
        .as_str()
        .is_some_and(|r| r.ends_with(super::names::WATCH_EVENT))
}

fn operation(o: &Operation, kind_schema: &str) -> Value {
    let mut responses = Map::new();
    for (code, desc, schema) in &o.responses {
        let mut r = json!({ "description": desc });
        if let Some(s) = schema {
            r["content"] = content(o.produces, &reference(s));
        }
        responses.insert(code.to_string(), r);
    }
    let mut v = json!({
        "description": o.description,
        "operationId": o.id,
        "tags": [o.tag],
        "responses": responses,
        "x-kubernetes-action": o.action,
        GVK: gvk(&o.gvk.0, &o.gvk.1, &o.gvk.2),
    });
    if !o.params.is_empty() {
        v["parameters"] = o.params.iter().map(|p| param(p, "query")).collect();
    }
    if let Some((_, b)) = &o.body {
        v["requestBody"] = json!({
            "content": content(b.consumes, &reference(paths::body_schema(b, kind_schema))),
            "required": b.required,
        });
    }
    v
}

pub fn render(item: &PathItem) -> Value {
    let mut m = Map::new();
    for o in &item.operations {
        m.insert(o.method.into(), operation(o, &item.kind_schema));
    }
    let params: Vec<Value> = item
        .path_params
        .iter()
        .map(|p| param(p, super::v2::location(item, p)))
        .collect();
    m.insert("parameters".into(), Value::Array(params));
    Value::Object(m)
}

/// A v2 schema in v3's form: references under `#/components/schemas/`, and
/// a `$ref` with siblings wrapped in `allOf` (as upstream's builder3 does).
pub fn convert_schema(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out: Map<String, Value> = m
                .iter()
                .map(|(k, x)| {
                    let x = match (k.as_str(), x) {
                        ("$ref", Value::String(s)) => {
                            Value::String(s.replacen(V2_REF_PREFIX, V3_REF_PREFIX, 1))
                        }
                        // Property names are data, not schemas.
                        _ => convert_schema(x),
                    };
                    (k.clone(), x)
                })
                .collect();
            if out.len() > 1 {
                if let Some(r) = out.remove("$ref") {
                    out.insert("allOf".into(), json!([{ "$ref": r }]));
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(convert_schema).collect()),
        other => other.clone(),
    }
}

/// The schemas `roots` refer to, transitively, in v2 names.
fn closure(model: &Model, roots: BTreeSet<String>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = roots.into_iter().collect();
    while let Some(n) = todo.pop() {
        if !seen.insert(n.clone()) {
            continue;
        }
        if let Some(s) = model.definitions.get(&n) {
            for_each_ref(s, &mut |r| {
                if let Some(x) = r.strip_prefix(V2_REF_PREFIX) {
                    if !seen.contains(x) {
                        todo.push(x.to_string());
                    }
                }
            });
        }
    }
    seen
}

/// Every group-version's document, keyed by `api/v1`, `apis/apps/v1`, ….
pub fn documents(model: &Model, resources: &[ResourceDef]) -> BTreeMap<String, Value> {
    let mut by_gv: BTreeMap<String, Vec<PathItem>> = BTreeMap::new();
    for item in super::v2::path_items(model, resources) {
        if item.operations.is_empty() {
            continue;
        }
        by_gv
            .entry(gv_key(&item.group, &item.version))
            .or_default()
            .push(item);
    }
    let (ma, mi, pa) = crate::KUBERNETES_VERSION;
    let mut out = BTreeMap::new();
    for (key, items) in by_gv {
        let mut paths = Map::new();
        let mut roots = BTreeSet::new();
        for item in &items {
            let rendered = render(item);
            for_each_ref(&rendered, &mut |r| {
                if let Some(x) = r.strip_prefix(V3_REF_PREFIX) {
                    roots.insert(x.to_string());
                }
            });
            paths.insert(item.path.clone(), rendered);
        }
        let schemas: Map<String, Value> = closure(model, roots)
            .into_iter()
            .filter_map(|n| model.definitions.get(&n).map(|s| (n, convert_schema(s))))
            .collect();
        out.insert(
            key,
            json!({
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes", "version": format!("v{ma}.{mi}.{pa}")},
                "paths": paths,
                "components": {
                    "schemas": schemas,
                    "securitySchemes": {
                        "BearerToken": {"description": "Bearer Token authentication", "in": "header", "name": "authorization", "type": "apiKey"},
                    },
                },
                "security": [{"BearerToken": []}],
            }),
        );
    }
    out
}
