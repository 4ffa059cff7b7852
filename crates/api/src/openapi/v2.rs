//! The OpenAPI v2 (swagger 2.0) document served at `/openapi/v2` and kept in
//! `api/openapi-spec/swagger.json` (upstream's `kube-openapi/pkg/builder`
//! `BuildOpenAPISpec`, rendered as upstream's `api/openapi-spec/swagger.json`).

use serde_json::{json, Map, Value};

use super::extensions::{gvk, GVK};
use super::paths::{self, Operation, Param, PathItem, Type};
use super::{reference, Model};
use crate::registry::ResourceDef;

fn type_name(t: Type) -> &'static str {
    match t {
        Type::String => "string",
        Type::Integer => "integer",
        Type::Boolean => "boolean",
    }
}

fn param(p: &Param, location: &str) -> Value {
    let mut v = json!({
        "name": p.name,
        "in": location,
        "type": type_name(p.ty),
        "uniqueItems": true,
        "description": p.description,
    });
    if location == "path" {
        v["required"] = true.into();
    }
    v
}

/// Path parameters are those named in the path; the rest are query parameters.
pub fn location(item: &PathItem, p: &Param) -> &'static str {
    if item.path.contains(&format!("{{{}}}", p.name)) {
        "path"
    } else {
        "query"
    }
}

fn operation(o: &Operation, kind_schema: &str) -> Value {
    let mut params: Vec<Value> = Vec::new();
    if let Some((name, b)) = &o.body {
        params.push(json!({
            "name": name,
            "in": "body",
            "required": b.required,
            "schema": reference(paths::body_schema(b, kind_schema)),
        }));
    }
    params.extend(o.params.iter().map(|p| param(p, "query")));
    let mut responses = Map::new();
    for (code, desc, schema) in &o.responses {
        let mut r = json!({ "description": desc });
        if let Some(s) = schema {
            r["schema"] = reference(s);
        }
        responses.insert(code.to_string(), r);
    }
    let consumes = o
        .body
        .as_ref()
        .map(|(_, b)| b.consumes)
        .unwrap_or(paths::ANY);
    json!({
        "description": o.description,
        "operationId": o.id,
        "consumes": consumes,
        "produces": o.produces,
        "schemes": ["https"],
        "tags": [o.tag],
        "parameters": params,
        "responses": responses,
        "x-kubernetes-action": o.action,
        GVK: gvk(&o.gvk.0, &o.gvk.1, &o.gvk.2),
    })
}

/// The path items of `resources`, rendered, with the kind each renders for.
pub fn path_items(model: &Model, resources: &[ResourceDef]) -> Vec<PathItem> {
    let mut out = Vec::new();
    for def in resources {
        if let Some(schema) = model.kind(&def.group, &def.version, &def.kind) {
            out.extend(paths::resource_paths(def, schema));
        }
    }
    out
}

/// Renders one path item (v2 form).
fn render(item: &PathItem) -> Value {
    let mut m = Map::new();
    for o in &item.operations {
        m.insert(o.method.into(), operation(o, &item.kind_schema));
    }
    let params: Vec<Value> = item
        .path_params
        .iter()
        .map(|p| param(p, location(item, p)))
        .collect();
    m.insert("parameters".into(), Value::Array(params));
    Value::Object(m)
}

/// The whole v2 document.
pub fn document(model: &Model, resources: &[ResourceDef]) -> Value {
    let mut paths = Map::new();
    for item in path_items(model, resources) {
        if item.operations.is_empty() {
            continue;
        }
        paths.insert(item.path.clone(), render(&item));
    }
    let (ma, mi, pa) = crate::KUBERNETES_VERSION;
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": format!("v{ma}.{mi}.{pa}")},
        "paths": paths,
        "definitions": model.definitions,
        "securityDefinitions": {
            "BearerToken": {"description": "Bearer Token authentication", "in": "header", "name": "authorization", "type": "apiKey"},
        },
        "security": [{"BearerToken": []}],
    })
}
