//! Shared steps of the write path: storage errors as Status, decoding and
//! defaulting a body, metadata a client may not set, generation, validation.

use api::strategy::GenerationPolicy;
use api::ResourceDef;
use apimachinery::field::FieldError;
use apimachinery::validation::validate_object_meta;
use apimachinery::{meta, ApiError};
use serde_json::{json, Value};

use super::Ctx;

/// A storage error in the words upstream uses for this resource and name.
pub fn storage_error(def: &ResourceDef, name: &str, e: storage::Error) -> ApiError {
    let gr = def.group_resource();
    match e {
        storage::Error::NotFound { .. } => ApiError::not_found(&gr, name),
        storage::Error::AlreadyExists { .. } => ApiError::already_exists(&gr, name),
        storage::Error::Conflict { message, .. } => ApiError::conflict(&gr, name, &message),
        storage::Error::Expired { message } => ApiError::expired(message),
        storage::Error::TooLargeResourceVersion { requested, current } => {
            ApiError::resource_version_too_large(format!(
                "Timeout: Too large resource version: {requested}, current: {current}"
            ))
        }
        storage::Error::Api(e) => e,
        other => ApiError::internal(other.to_string()),
    }
}

/// How unknown fields are treated (`fieldValidation`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

pub fn field_validation(ctx: &Ctx) -> Result<FieldValidation, ApiError> {
    match ctx.query.get("fieldValidation") {
        None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
        Some("Ignore") => Ok(FieldValidation::Ignore),
        Some("Strict") => Ok(FieldValidation::Strict),
        Some(other) => Err(ApiError::bad_request(format!(
            "fieldValidation parameter unsupported: {other}"
        ))),
    }
}

pub fn dry_run(ctx: &Ctx) -> Result<bool, ApiError> {
    match ctx.query.get("dryRun") {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid dryRun parameter: {other:?}: supported values: \"All\""
        ))),
    }
}

/// Checks apiVersion/kind, then decodes, prunes and defaults through the kind's
/// type. Returns the object and the warnings to send.
pub fn decode(ctx: &Ctx, def: &ResourceDef, obj: Value) -> Result<(Value, Vec<String>), ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request was not a JSON object",
        ));
    }
    let (av, kind) = meta::type_meta(&obj);
    let (av, kind) = (av.to_string(), kind.to_string());
    if kind.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Object 'Kind' is missing in '{}'",
            truncate(&obj.to_string())
        )));
    }
    if kind != def.kind || av != def.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            def.api_version()
        )));
    }
    let mut warnings = Vec::new();
    let decoded = match (def.strategy.decode, &def.custom) {
        (Some(decode), _) => decode(obj)
            .map_err(|e| ApiError::bad_request(format!("error decoding {}: {e}", def.kind)))?,
        (None, Some(custom)) => decode_custom(def, custom, obj)?,
        (None, None) => return Ok((obj, warnings)),
    };
    if !decoded.unknown.is_empty() {
        match field_validation(ctx)? {
            FieldValidation::Strict => {
                let list: Vec<String> = decoded
                    .unknown
                    .iter()
                    .map(|f| format!("unknown field \"{f}\""))
                    .collect();
                return Err(ApiError::bad_request(format!(
                    "strict decoding error: {}",
                    list.join(", ")
                )));
            }
            FieldValidation::Warn => warnings.extend(
                decoded
                    .unknown
                    .iter()
                    .map(|f| format!("unknown field \"{f}\"")),
            ),
            FieldValidation::Ignore => {}
        }
    }
    let value = match def.conversion {
        Some(c) => (c.to_storage)(decoded.value),
        None => decoded.value,
    };
    Ok((value, warnings))
}

/// A custom resource: metadata through ObjectMeta, the rest pruned and
/// defaulted by the version's schema, then stored in the storage version
/// (None conversion: only apiVersion changes).
fn decode_custom(
    def: &ResourceDef,
    custom: &api::custom::CustomResource,
    mut obj: Value,
) -> Result<api::decode::Decoded, ApiError> {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    let mut unknown = Vec::new();
    if let Some(m) = obj.get("metadata").cloned() {
        let d = api::decode::round_trip::<ObjectMeta>(m, api::decode::none)
            .map_err(|e| ApiError::bad_request(format!("error decoding metadata: {e}")))?;
        unknown.extend(d.unknown.iter().map(|f| format!("metadata.{f}")));
        obj["metadata"] = d.value;
    }
    if let Some(schema) = &custom.schema {
        unknown.extend(apiextensions::pruning::prune(schema, &mut obj));
        apiextensions::defaulting::apply(schema, &mut obj);
    }
    obj["apiVersion"] = json!(custom.storage_api_version(&def.group));
    Ok(api::decode::Decoded {
        value: obj,
        unknown,
    })
}

fn truncate(s: &str) -> String {
    s.chars().take(200).collect()
}

/// Validates metadata and the kind; 422 with causes.
pub fn validate(def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let mut errs: Vec<FieldError> = validate_object_meta(
        obj.get("metadata").unwrap_or(&Value::Null),
        def.namespaced(),
        def.strategy.names,
        "metadata",
    );
    errs.extend(match old {
        None => (def.strategy.validate)(obj),
        Some(old) => (def.strategy.validate_update)(obj, old),
    });
    if let Some(schema) = def.custom.as_ref().and_then(|c| c.schema.as_ref()) {
        errs.extend(apiextensions::validation::validate(schema, obj, ""));
    }
    if let Some(old) = old {
        for f in ["uid", "creationTimestamp"] {
            let (n, o) = (
                obj.pointer(&format!("/metadata/{f}")),
                old.pointer(&format!("/metadata/{f}")),
            );
            if n.is_some() && n != o {
                errs.push(FieldError::invalid(
                    format!("metadata.{f}"),
                    n.unwrap_or(&Value::Null),
                    "field is immutable",
                ));
            }
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            &def.kind,
            &def.group,
            meta::name(obj),
            &errs,
        ))
    }
}

const NAME_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Metadata the server sets on create (upstream's `rest.BeforeCreate`).
/// Five characters for a generated name (upstream's `SimpleNameGenerator`).
pub fn random_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..5)
        .map(|_| NAME_CHARS[rng.random_range(0..NAME_CHARS.len())] as char)
        .collect()
}

pub fn prepare_create(def: &ResourceDef, obj: &mut Value, namespace: &str) -> Result<(), ApiError> {
    let m = meta::metadata_mut(obj);
    if def.namespaced() {
        let body_ns = m.get("namespace").and_then(Value::as_str).unwrap_or("");
        if !body_ns.is_empty() && body_ns != namespace {
            return Err(ApiError::bad_request("the namespace of the provided object does not match the namespace sent on the request"));
        }
        m.insert("namespace".into(), json!(namespace));
    } else {
        m.remove("namespace");
    }
    let name = m
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let gen = m
        .get("generateName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if name.is_empty() && !gen.is_empty() {
        m.insert("name".into(), json!(format!("{gen}{}", random_suffix())));
    }
    m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    m.insert("creationTimestamp".into(), json!(meta::now_rfc3339()));
    for f in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        m.remove(f);
    }
    match def.strategy.generation {
        GenerationPolicy::None => {
            m.remove("generation");
        }
        _ => {
            m.insert("generation".into(), json!(1));
        }
    }
    Ok(())
}

/// The kind's own create preparation (upstream's `PrepareForCreate`, e.g. a
/// pod's status and QoS class), after mutating admission so that what the
/// plugins added (LimitRanger's requests) counts.
pub fn prepare_for_create(def: &ResourceDef, obj: &mut Value) {
    if let Some(f) = def.strategy.prepare_create {
        f(obj);
    }
}

fn without(v: &Value, keys: &[&str]) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        for k in keys {
            m.remove(*k);
        }
    }
    v
}

/// Carries over what an update may not change and bumps generation
/// (upstream's `rest.BeforeUpdate` plus each strategy's PrepareForUpdate).
pub fn prepare_update(def: &ResourceDef, new: &mut Value, old: &Value, status_write: bool) {
    use api::strategy::StatusPolicy;
    if def.strategy.status == StatusPolicy::Subresource {
        if status_write {
            // A status write keeps everything but status (and labels/annotations stay the old ones).
            let status = new.get("status").cloned();
            *new = old.clone();
            match status {
                Some(s) => new["status"] = s,
                None => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        } else if let Some(m) = new.as_object_mut() {
            match old.get("status") {
                Some(s) => {
                    m.insert("status".into(), s.clone());
                }
                None => {
                    m.remove("status");
                }
            }
        }
    }
    let om = old.get("metadata").cloned().unwrap_or(json!({}));
    let nm = meta::metadata_mut(new);
    for f in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "namespace",
        "name",
    ] {
        match om.get(f) {
            Some(v) => {
                nm.insert(f.into(), v.clone());
            }
            None => {
                nm.remove(f);
            }
        }
    }
    let changed = match def.strategy.generation {
        GenerationPolicy::None => false,
        GenerationPolicy::Spec => new.get("spec") != old.get("spec"),
        GenerationPolicy::NonMetadata => {
            without(new, &["metadata", "status"]) != without(old, &["metadata", "status"])
        }
    };
    if changed {
        let g = meta::generation(old) + 1;
        meta::metadata_mut(new).insert("generation".into(), json!(g));
    }
}

/// Upstream's check of a body's resourceVersion against the stored one.
pub fn check_resource_version(
    def: &ResourceDef,
    new: &Value,
    current: &Value,
) -> Result<(), ApiError> {
    let rv = meta::resource_version(new);
    if !rv.is_empty() && rv != meta::resource_version(current) {
        return Err(ApiError::conflict(
            &def.group_resource(),
            meta::name(current),
            "the object has been modified; please apply your changes to the latest version and try again",
        ));
    }
    Ok(())
}
