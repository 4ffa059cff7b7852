//! Walking objects by their schema: the field set an object sets
//! (structured-merge-diff's `typed/tofieldset.go`) and the comparison of two
//! versions of an object (`typed/compare.go`: added, modified, removed).

use serde_json::Value;

use super::set::{self, Set};

/// How a list merges (`x-kubernetes-list-type`, `x-kubernetes-list-map-keys`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListKind {
    /// Replaced whole; owned as one field.
    Atomic,
    /// Unique scalars, each owned on its own.
    Set,
    /// Items identified by these key fields, each owned on its own.
    Map(Vec<String>),
}

/// What the walks need to know of a type. `Node` describes the value at one
/// path (a struct, a map, a list or a scalar).
pub trait Schema {
    type Node: Clone;
    /// The value of `name` inside an object described by `parent`.
    fn field(&self, parent: &Self::Node, name: &str) -> Self::Node;
    /// An item of a list described by `list`.
    fn item(&self, list: &Self::Node) -> Self::Node;
    fn list_kind(&self, list: &Self::Node) -> ListKind;
    /// `x-kubernetes-map-type: atomic` (or a struct marked atomic).
    fn atomic_map(&self, node: &Self::Node) -> bool;
    /// A declared struct (not a free-form map): adding one does not make the
    /// struct itself a member, as Go's zero-valued structs always exist.
    fn is_struct(&self, node: &Self::Node) -> bool;
    /// The default of a key field an item may omit (ports' `protocol`).
    fn key_default(&self, list: &Self::Node, key: &str) -> Option<Value>;
    /// Fields of `parent` nobody owns (identity fields, reset fields): the
    /// walks skip them, so callers need not copy objects to strip them.
    fn skip(&self, _parent: &Self::Node, _key: &str) -> bool {
        false
    }
}

/// The element of list item `item` in a list of `kind`, `None` for atomic
/// lists and items without their keys.
pub fn item_element<S: Schema>(
    schema: &S,
    list: &S::Node,
    kind: &ListKind,
    item: &Value,
) -> Option<String> {
    match kind {
        ListKind::Atomic => None,
        ListKind::Set => Some(set::value(item)),
        ListKind::Map(keys) => {
            let mut owned = Vec::new();
            for k in keys {
                match item.get(k.as_str()).filter(|v| !v.is_null()) {
                    Some(v) => owned.push((k.as_str(), v.clone())),
                    None => {
                        if let Some(d) = schema.key_default(list, k) {
                            owned.push((k.as_str(), d));
                        }
                    }
                }
            }
            if owned.is_empty() {
                return None;
            }
            let refs: Vec<(&str, &Value)> = owned.iter().map(|(k, v)| (*k, v)).collect();
            Some(set::key(&refs))
        }
    }
}

/// The set of fields `v` sets.
pub fn to_field_set<S: Schema>(schema: &S, node: &S::Node, v: &Value) -> Set {
    let mut out = Set::new();
    walk_set(schema, node, v, &mut Vec::new(), &mut out);
    out
}

fn walk_set<S: Schema>(
    schema: &S,
    node: &S::Node,
    v: &Value,
    path: &mut Vec<String>,
    out: &mut Set,
) {
    match v {
        Value::Object(m) => {
            if schema.atomic_map(node) {
                out.insert(path);
                return;
            }
            for (k, child) in m {
                if schema.skip(node, k) {
                    continue;
                }
                path.push(set::field(k));
                walk_set(schema, &schema.field(node, k), child, path, out);
                if child.is_null() || child.as_object().is_some_and(|c| c.is_empty()) {
                    out.insert(path);
                }
                path.pop();
            }
        }
        Value::Array(items) => {
            let kind = schema.list_kind(node);
            if kind == ListKind::Atomic {
                out.insert(path);
                return;
            }
            let item_node = schema.item(node);
            for item in items {
                let Some(pe) = item_element(schema, node, &kind, item) else {
                    // An item without its keys cannot be owned alone: own the list.
                    out.insert(path);
                    continue;
                };
                path.push(pe);
                if matches!(kind, ListKind::Map(_)) {
                    walk_set(schema, &item_node, item, path, out);
                }
                out.insert(path);
                path.pop();
            }
        }
        _ => out.insert(path),
    }
}

/// What changed between two versions of an object.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Comparison {
    pub added: Set,
    pub modified: Set,
    pub removed: Set,
}

/// Compares `old` with `new` (either absent when the object is created).
pub fn compare<S: Schema>(
    schema: &S,
    node: &S::Node,
    old: Option<&Value>,
    new: Option<&Value>,
) -> Comparison {
    let mut c = Comparison::default();
    walk_compare(schema, node, old, new, &mut Vec::new(), &mut c);
    c
}

fn walk_compare<S: Schema>(
    schema: &S,
    node: &S::Node,
    old: Option<&Value>,
    new: Option<&Value>,
    path: &mut Vec<String>,
    c: &mut Comparison,
) {
    match (old, new) {
        (None, None) => {}
        (None, Some(n)) => {
            match n {
                Value::Object(m) if !schema.atomic_map(node) => {
                    for (k, child) in m.iter().filter(|(k, _)| !schema.skip(node, k)) {
                        path.push(set::field(k));
                        walk_compare(schema, &schema.field(node, k), None, Some(child), path, c);
                        path.pop();
                    }
                }
                Value::Array(_) if schema.list_kind(node) != ListKind::Atomic => {
                    let mut sub = Set::new();
                    walk_set(schema, node, n, &mut path.clone(), &mut sub);
                    c.added.union(&sub);
                }
                _ => {}
            }
            // Like upstream's typed objects: a declared struct always exists
            // (Go zero values) and a granular list is only its items, so
            // neither is owned as a whole when added; maps and atomics are.
            let member = match n {
                Value::Object(_) => !schema.is_struct(node) || schema.atomic_map(node),
                Value::Array(_) => schema.list_kind(node) == ListKind::Atomic,
                _ => true,
            };
            if !path.is_empty() && member {
                c.added.insert(path);
            }
        }
        (Some(_), None) => {
            if !path.is_empty() {
                c.removed.insert(path);
            }
        }
        (Some(Value::Object(o)), Some(Value::Object(n))) if !schema.atomic_map(node) => {
            let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys.into_iter().filter(|k| !schema.skip(node, k)) {
                path.push(set::field(k));
                walk_compare(schema, &schema.field(node, k), o.get(k), n.get(k), path, c);
                path.pop();
            }
        }
        (Some(Value::Array(o)), Some(Value::Array(n))) => {
            let kind = schema.list_kind(node);
            let elements = |items: &[Value]| -> Option<Vec<(String, Value)>> {
                items
                    .iter()
                    .map(|i| item_element(schema, node, &kind, i).map(|e| (e, i.clone())))
                    .collect()
            };
            match (kind != ListKind::Atomic, elements(o), elements(n)) {
                (true, Some(oe), Some(ne)) => {
                    let item_node = schema.item(node);
                    let find = |list: &[(String, Value)], e: &str| {
                        list.iter().find(|(k, _)| k == e).map(|(_, v)| v.clone())
                    };
                    let mut keys: Vec<&String> =
                        oe.iter().chain(ne.iter()).map(|(k, _)| k).collect();
                    keys.sort();
                    keys.dedup();
                    for k in keys {
                        let (ov, nv) = (find(&oe, k), find(&ne, k));
                        path.push(k.clone());
                        if matches!(kind, ListKind::Set) {
                            match (&ov, &nv) {
                                (None, Some(_)) => c.added.insert(path),
                                (Some(_), None) => c.removed.insert(path),
                                _ => {}
                            }
                        } else {
                            if ov.is_none() && nv.is_some() {
                                c.added.insert(path);
                            }
                            walk_compare(schema, &item_node, ov.as_ref(), nv.as_ref(), path, c);
                        }
                        path.pop();
                    }
                }
                _ => {
                    if o != n {
                        c.modified.insert(path);
                    }
                }
            }
        }
        (Some(o), Some(n)) => {
            if o != n {
                c.modified.insert(path);
            }
        }
    }
}
