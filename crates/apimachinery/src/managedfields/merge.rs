//! Applying a configuration onto a live object (structured-merge-diff's
//! `typed/merge.go`) and removing the fields an applier gave up
//! (`typed/remove.go`).

use serde_json::Value;

use super::set::Set;
use super::walk::{item_element, ListKind, Schema};

/// `config` merged into `live`: the config's fields win; associative lists
/// merge item by item, sets are united, atomic lists and scalars replaced.
/// A null in the config removes the field.
pub fn merge<S: Schema>(schema: &S, node: &S::Node, live: &Value, config: &Value) -> Value {
    match (live, config) {
        (Value::Object(l), Value::Object(c)) if !schema.atomic_map(node) => {
            let mut out = l.clone();
            for (k, cv) in c {
                if cv.is_null() {
                    out.remove(k);
                    continue;
                }
                let merged = match l.get(k) {
                    Some(lv) => merge(schema, &schema.field(node, k), lv, cv),
                    None => cv.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(c)) => {
            let kind = schema.list_kind(node);
            if kind == ListKind::Atomic {
                return config.clone();
            }
            let el = |i: &Value| item_element(schema, node, &kind, i);
            let item_node = schema.item(node);
            let mut out: Vec<Value> = Vec::with_capacity(l.len().max(c.len()));
            for li in l {
                let e = el(li);
                let matched = e
                    .as_ref()
                    .and_then(|e| c.iter().find(|ci| el(ci).as_deref() == Some(e.as_str())));
                out.push(match (matched, &kind) {
                    (Some(ci), ListKind::Map(_)) => merge(schema, &item_node, li, ci),
                    _ => li.clone(),
                });
            }
            for ci in c {
                let e = el(ci);
                let present = e
                    .as_ref()
                    .is_some_and(|e| l.iter().any(|li| el(li).as_deref() == Some(e.as_str())));
                if !present {
                    out.push(ci.clone());
                }
            }
            Value::Array(out)
        }
        _ => config.clone(),
    }
}

/// Removes every member of `fields` from `v`.
pub fn remove<S: Schema>(schema: &S, node: &S::Node, v: &mut Value, fields: &Set) {
    for (pe, child) in fields.children() {
        if let Some(name) = pe.strip_prefix("f:") {
            let Some(m) = v.as_object_mut() else { continue };
            if child.is_member() {
                m.remove(name);
            } else if let Some(cv) = m.get_mut(name) {
                remove(schema, &schema.field(node, name), cv, child);
            }
        } else if pe.starts_with("k:") || pe.starts_with("v:") {
            let kind = schema.list_kind(node);
            let item_node = schema.item(node);
            let Some(items) = v.as_array_mut() else {
                continue;
            };
            let matches = |i: &Value| item_element(schema, node, &kind, i).as_deref() == Some(pe);
            if child.is_member() {
                items.retain(|i| !matches(i));
            } else {
                for i in items.iter_mut().filter(|i| matches(i)) {
                    remove(schema, &item_node, i, child);
                }
            }
        }
    }
}
