//! `metadata.managedFields` on every write and server-side apply (upstream's
//! `k8s.io/apiserver/pkg/endpoints/handlers/fieldmanager` over
//! `apimachinery::managedfields`): who owns which field, updated from the
//! change each write makes; apply merges a configuration by ownership and
//! answers 409 with `FieldManagerConflict` causes unless `force=true`.
//!
//! Like upstream: the identity fields (apiVersion, kind, name, namespace,
//! uid, resourceVersion, generation, creationTimestamp, managedFields) are
//! never owned; a write to the main resource never owns `status` of a kind
//! with a status subresource, a status write never owns `spec`; a request
//! carrying managedFields different from the stored ones replaces them
//! (`[{}]` strips them; `[]` is ignored, so unaware clients lose nothing).

use api::field_schema::{KindNode, KindSchema};
use api::strategy::StatusPolicy;
use api::ResourceDef;
use apimachinery::managedfields::{self, Conflict, Managed, Set, Writer};
use apimachinery::managedfields::{ListKind, Schema};
use apimachinery::status::StatusCause;
use apimachinery::ApiError;
use serde_json::{json, Map, Value};

use crate::handlers::Ctx;

const IDENTITY: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "managedFields",
];

/// Who is writing: `fieldManager`, else the User-Agent up to its first `/`.
pub fn manager(ctx: &Ctx) -> String {
    if let Some(m) = ctx.query.get("fieldManager").filter(|m| !m.is_empty()) {
        return m.to_string();
    }
    let ua = ctx.user_agent.as_deref().unwrap_or("");
    let prefix: String = ua
        .split('/')
        .next()
        .unwrap_or("")
        .chars()
        .take(128)
        .collect();
    if prefix.is_empty() {
        "unknown".into()
    } else {
        prefix
    }
}

fn api_version(def: &ResourceDef) -> String {
    if def.group.is_empty() {
        def.version.clone()
    } else {
        format!("{}/{}", def.group, def.version)
    }
}

/// The part of an object whose fields are tracked for this subresource.
fn tracked(def: &ResourceDef, v: &Value, subresource: &str) -> Value {
    let mut out = v.clone();
    if let Some(m) = out.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
        if def.strategy.status == StatusPolicy::Subresource {
            m.remove(if subresource == "status" {
                "spec"
            } else {
                "status"
            });
        }
        let empty_meta = match m.get_mut("metadata").and_then(Value::as_object_mut) {
            Some(meta) => {
                for f in IDENTITY {
                    meta.remove(*f);
                }
                meta.is_empty()
            }
            None => false,
        };
        if empty_meta {
            m.remove("metadata");
        }
    }
    out
}

/// A resource's schema with the untracked fields skipped, so updates walk
/// the objects in place instead of stripped copies.
struct Tracked<'a> {
    inner: KindSchema<'a>,
    /// The reset half: `status` for the main resource of a kind with a
    /// status subresource, `spec` for its status writes.
    reset: Option<&'static str>,
}

#[derive(Clone, Copy)]
enum Level {
    Root,
    Metadata,
    Inner,
}

impl<'a> Tracked<'a> {
    fn of(def: &'a ResourceDef, subresource: &str) -> (Self, (KindNode<'a>, Level)) {
        let (inner, root) = KindSchema::of(def);
        let reset = (def.strategy.status == StatusPolicy::Subresource).then_some(
            if subresource == "status" {
                "spec"
            } else {
                "status"
            },
        );
        (Tracked { inner, reset }, (root, Level::Root))
    }
}

impl<'a> Schema for Tracked<'a> {
    type Node = (KindNode<'a>, Level);

    fn field(&self, parent: &Self::Node, name: &str) -> Self::Node {
        let level = match (parent.1, name) {
            (Level::Root, "metadata") => Level::Metadata,
            _ => Level::Inner,
        };
        (self.inner.field(&parent.0, name), level)
    }
    fn item(&self, list: &Self::Node) -> Self::Node {
        (self.inner.item(&list.0), Level::Inner)
    }
    fn list_kind(&self, list: &Self::Node) -> ListKind {
        self.inner.list_kind(&list.0)
    }
    fn atomic_map(&self, node: &Self::Node) -> bool {
        self.inner.atomic_map(&node.0)
    }
    fn is_struct(&self, node: &Self::Node) -> bool {
        self.inner.is_struct(&node.0)
    }
    fn key_default(&self, list: &Self::Node, key: &str) -> Option<Value> {
        self.inner.key_default(&list.0, key)
    }
    fn skip(&self, parent: &Self::Node, key: &str) -> bool {
        match parent.1 {
            Level::Root => key == "apiVersion" || key == "kind" || Some(key) == self.reset,
            Level::Metadata => IDENTITY.contains(&key),
            Level::Inner => false,
        }
    }
}

fn decode_entries(v: Option<&Value>) -> Vec<Managed> {
    let Some(list) = v.and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|e| {
            let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let set = Set::from_fields_v1(e.get("fieldsV1")?).ok()?;
            Some(Managed {
                manager: s("manager"),
                operation: s("operation"),
                api_version: s("apiVersion"),
                subresource: s("subresource"),
                time: e.get("time").and_then(Value::as_str).map(str::to_string),
                set,
            })
        })
        .collect()
}

fn encode_entries(managers: &[Managed]) -> Value {
    Value::Array(
        managers
            .iter()
            .map(|m| {
                let mut e = Map::new();
                e.insert("manager".into(), json!(m.manager));
                e.insert("operation".into(), json!(m.operation));
                e.insert("apiVersion".into(), json!(m.api_version));
                if let Some(t) = &m.time {
                    e.insert("time".into(), json!(t));
                }
                e.insert("fieldsType".into(), json!("FieldsV1"));
                e.insert("fieldsV1".into(), m.set.to_fields_v1());
                if !m.subresource.is_empty() {
                    e.insert("subresource".into(), json!(m.subresource));
                }
                Value::Object(e)
            })
            .collect(),
    )
}

fn managed_fields(v: &Value) -> Option<&Value> {
    v.pointer("/metadata/managedFields")
        .filter(|m| !m.is_null())
}

fn set_managed_fields(v: &mut Value, managers: &[Managed]) {
    let meta = apimachinery::meta::metadata_mut(v);
    if managers.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), encode_entries(managers));
    }
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The entries a write starts from: the request's own when it changed
/// them, else the stored ones. `None`: the request strips them (`[{}]`).
fn base_entries(old: Option<&Value>, new: &Value) -> Option<Vec<Managed>> {
    let stored = old.and_then(managed_fields);
    match managed_fields(new) {
        Some(Value::Array(list)) if list.len() == 1 && list[0] == json!({}) => None,
        Some(Value::Array(list)) if !list.is_empty() && Some(managed_fields(new)?) != stored => {
            Some(decode_entries(managed_fields(new)))
        }
        _ => Some(decode_entries(stored)),
    }
}

/// Records an update (create, PUT, non-apply PATCH) in `new`'s managedFields.
pub fn track_update(ctx: &Ctx, def: &ResourceDef, old: Option<&Value>, new: &mut Value) {
    let Some(mut managers) = base_entries(old, new) else {
        apimachinery::meta::metadata_mut(new).remove("managedFields");
        return;
    };
    let sub = ctx.info.subresource.as_str();
    let (manager, version, now) = (manager(ctx), api_version(def), now());
    let who = Writer {
        manager: &manager,
        api_version: &version,
        subresource: sub,
        now: &now,
    };
    let (schema, root) = Tracked::of(def, sub);
    managedfields::update(&schema, &root, &mut managers, old, new, &who);
    set_managed_fields(new, &managers);
}

/// Server-side apply of `config` onto `live` (served form; absent on
/// create): the merged object with its new managedFields, before defaulting.
pub fn apply(
    ctx: &Ctx,
    def: &ResourceDef,
    live: Option<&Value>,
    config: &Value,
) -> Result<Value, ApiError> {
    if !config.is_object() {
        return Err(ApiError::bad_request(
            "the apply configuration must be an object",
        ));
    }
    for (field, what) in [("apiVersion", "apiVersion"), ("kind", "kind")] {
        if config
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            return Err(ApiError::bad_request(format!(
                "invalid object type: {what} must be set in an apply configuration"
            )));
        }
    }
    let sub = ctx.info.subresource.as_str();
    let mut managers = decode_entries(live.and_then(managed_fields));
    let (manager, version, now) = (manager(ctx), api_version(def), now());
    let who = Writer {
        manager: &manager,
        api_version: &version,
        subresource: sub,
        now: &now,
    };
    let force = ctx.query.flag("force");
    let live_t = live.map(|l| tracked(def, l, sub));
    let config_t = tracked(def, config, sub);
    let (schema, root) = KindSchema::of(def);
    let merged_t = managedfields::apply(
        &schema,
        &root,
        &mut managers,
        live_t.as_ref(),
        &config_t,
        &who,
        force,
    )
    .map_err(conflict_error)?;
    // Put the untracked parts (identity, the other half of spec/status) back.
    let mut merged = live.cloned().unwrap_or_else(|| json!({}));
    let keep_meta = merged.get("metadata").cloned();
    if let (Some(m), Value::Object(t)) = (merged.as_object_mut(), merged_t) {
        let untracked: Vec<String> = m
            .keys()
            .filter(|k| !t.contains_key(*k) && is_untracked(def, k, sub))
            .cloned()
            .collect();
        let kept: Map<String, Value> = untracked
            .into_iter()
            .filter_map(|k| m.get(&k).map(|v| (k.clone(), v.clone())))
            .collect();
        *m = t;
        m.extend(kept);
    }
    let meta = apimachinery::meta::metadata_mut(&mut merged);
    if let Some(Value::Object(old)) = keep_meta {
        for f in IDENTITY {
            if let Some(v) = old.get(*f) {
                meta.insert((*f).to_string(), v.clone());
            }
        }
    }
    if let Some(name) = config.pointer("/metadata/name") {
        meta.entry("name").or_insert_with(|| name.clone());
    }
    for f in ["apiVersion", "kind"] {
        if let Some(v) = config.get(f) {
            merged[f] = v.clone();
        }
    }
    set_managed_fields(&mut merged, &managers);
    Ok(merged)
}

fn is_untracked(def: &ResourceDef, key: &str, sub: &str) -> bool {
    match key {
        "apiVersion" | "kind" => true,
        "status" => def.strategy.status == StatusPolicy::Subresource && sub != "status",
        "spec" => def.strategy.status == StatusPolicy::Subresource && sub == "status",
        _ => false,
    }
}

fn conflict_error(conflicts: Vec<Conflict>) -> ApiError {
    let causes = conflicts
        .iter()
        .map(|c| StatusCause {
            reason: "FieldManagerConflict".into(),
            message: format!("conflict with {}", c.manager),
            field: c.field.clone(),
        })
        .collect();
    let message = if let [c] = conflicts.as_slice() {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.manager, c.field
        )
    } else {
        let mut by_manager: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for c in &conflicts {
            by_manager.entry(&c.manager).or_default().push(&c.field);
        }
        let mut lines = Vec::new();
        for (m, fields) in by_manager {
            lines.push(format!("conflicts with {m}:"));
            lines.extend(fields.iter().map(|f| format!("- {f}")));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    ApiError::apply_conflict(message, causes)
}
