//! Server-side printing: objects as a `meta.k8s.io/v1` Table (upstream's
//! `endpoints/handlers/response.go` transformObject with TableConvertor).

use api::ResourceDef;
use serde_json::{json, Value};

/// What each row carries (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

fn custom_columns(def: &ResourceDef) -> Vec<Value> {
    let mut cols = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    for c in &def.printer_columns {
        cols.push(json!({
            "name": c.get("name").cloned().unwrap_or(json!("")),
            "type": c.get("type").cloned().unwrap_or(json!("string")),
            "format": c.get("format").cloned().unwrap_or(json!("")),
            "description": c.get("description").cloned().unwrap_or(json!("")),
            "priority": c.get("priority").cloned().unwrap_or(json!(0)),
        }));
    }
    if !def
        .printer_columns
        .iter()
        .any(|c| c.get("name").and_then(Value::as_str) == Some("Age"))
    {
        cols.push(
            json!({"name": "Age", "type": "date", "format": "", "description": "", "priority": 0}),
        );
    }
    cols
}

fn json_path(obj: &Value, path: &str) -> Value {
    let mut cur = obj;
    for p in path
        .trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
    {
        match cur.get(p) {
            Some(v) => cur = v,
            None => return Value::Null,
        }
    }
    cur.clone()
}

fn columns(def: &ResourceDef) -> Vec<Value> {
    if !def.printer_columns.is_empty() {
        return custom_columns(def);
    }
    let cols = printers::columns(&def.group, &def.kind).unwrap_or_else(printers::default_columns);
    cols.iter()
        .map(|c| json!({"name": c.name, "type": c.type_, "format": c.format, "description": c.description, "priority": c.priority}))
        .collect()
}

fn cells(def: &ResourceDef, obj: &Value, now: chrono::DateTime<chrono::Utc>) -> Vec<Value> {
    if !def.printer_columns.is_empty() {
        let mut out = vec![json!(apimachinery::meta::name(obj))];
        for c in &def.printer_columns {
            let v = json_path(obj, c.get("jsonPath").and_then(Value::as_str).unwrap_or(""));
            let date = c.get("type").and_then(Value::as_str) == Some("date");
            out.push(if date {
                json!(printers::translate_timestamp_since(v.as_str(), now))
            } else {
                v
            });
        }
        if !def
            .printer_columns
            .iter()
            .any(|c| c.get("name").and_then(Value::as_str) == Some("Age"))
        {
            out.push(json!(printers::translate_timestamp_since(
                obj.pointer("/metadata/creationTimestamp")
                    .and_then(Value::as_str),
                now
            )));
        }
        return out;
    }
    if printers::columns(&def.group, &def.kind).is_some() {
        printers::cells(&def.group, &def.kind, obj, now)
    } else {
        printers::default_cells(obj, now)
    }
}

fn row_object(obj: &Value, include: IncludeObject) -> Value {
    match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Object => obj.clone(),
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
        }),
    }
}

/// A Table of objects; `list_meta` is the list's metadata (resourceVersion, continue).
pub fn table(def: &ResourceDef, objs: &[Value], list_meta: Value, include: IncludeObject) -> Value {
    let now = chrono::Utc::now();
    let rows: Vec<Value> = objs
        .iter()
        .map(|o| {
            let mut r = json!({"cells": cells(def, o, now)});
            let obj = row_object(o, include);
            if !obj.is_null() {
                r["object"] = obj;
            }
            r
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "columnDefinitions": columns(def), "rows": rows})
}
