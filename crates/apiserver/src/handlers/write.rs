//! create, update, patch, delete and deletecollection, plus the binding and
//! scale subresources (upstream's create.go, update.go, patch.go, delete.go
//! and `registry/generic/registry/store.go`).

use std::sync::Arc;

use api::ResourceDef;
use apimachinery::{meta, ApiError};
use http::Response;
use serde_json::{json, Value};
use storage::{ListOptions, Preconditions, StoredObject};

use super::object::{
    self, check_resource_version, dry_run, prepare_update, storage_error, validate,
};
use super::read::Predicate;
use super::{decode_body, Ctx};
use crate::admission::{Attributes, Operation};
use crate::negotiation::{body_format, BodyFormat};
use crate::response::{self, with_warnings, Body};
use crate::services;

fn ttl(ctx: &Ctx, def: &ResourceDef) -> Option<i64> {
    def.strategy
        .ttl
        .then(|| ctx.state.config.event_ttl.as_secs() as i64)
}

fn respond(
    ctx: &Ctx,
    def: &ResourceDef,
    code: u16,
    obj: &Value,
    warnings: &[String],
) -> Result<Response<Body>, ApiError> {
    let _ = ctx;
    if def.custom.is_some() || def.conversion.is_some() {
        let mut obj = obj.clone();
        api::custom::convert(def, &mut obj);
        return Ok(with_warnings(response::json(code, &obj), warnings));
    }
    Ok(with_warnings(response::json(code, obj), warnings))
}

pub async fn create(ctx: &Ctx, def: &ResourceDef) -> Result<Response<Body>, ApiError> {
    let format = body_format(ctx.content_type.as_deref(), false)?;
    let body = decode_body(format, &ctx.body)?;
    let (obj, warnings) = object::decode(ctx, def, body)?;
    match create_decoded(ctx, def, obj, Tracking::Update).await? {
        Created::DryRun(obj) => respond(ctx, def, 201, &obj, &warnings),
        Created::Stored(stored, _) if def.custom.is_some() || def.conversion.is_some() => {
            respond(ctx, def, 201, &stored.value, &warnings)
        }
        Created::Stored(_, served) => Ok(with_warnings(
            response::json_bytes(201, served, "application/json"),
            &warnings,
        )),
    }
}

/// What [`create_decoded`] did.
enum Created {
    /// Written; the stored object and its served bytes.
    Stored(StoredObject, bytes::Bytes),
    /// `dryRun=All`: what would have been written.
    DryRun(Value),
}

/// Upstream's `Store.Create` after decoding, shared by POST and by the
/// writes that create a missing object (PUT on kinds that allow it, and
/// server-side apply): create defaults, admission (mutating), validation,
/// admission (validating), field ownership, allocation, storage.
async fn create_decoded(
    ctx: &Ctx,
    def: &ResourceDef,
    mut obj: Value,
    tracking: Tracking,
) -> Result<Created, ApiError> {
    // Admission sees the generateName prefix when there is no name yet (it
    // stays a prefix in its messages, like upstream's).
    let named = match meta::name(&obj) {
        "" => obj
            .pointer("/metadata/generateName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        n => n.to_string(),
    };
    object::prepare_create(def, &mut obj, &ctx.info.namespace)?;
    let attrs = Attributes {
        operation: Operation::Create,
        group: &def.group,
        version: &def.version,
        kind: &def.kind,
        resource: &def.plural,
        subresource: "",
        namespace: &ctx.info.namespace,
        name: &named,
        old: None,
        dry_run: dry_run(ctx)?,
        user: &ctx.user,
    };
    let warned = ctx
        .state
        .admission
        .admit(&ctx.state, &attrs, &mut obj)
        .await?;
    ctx.add_warnings(warned);
    object::prepare_for_create(def, &mut obj);
    if let Some(record) = def.strategy.record_requester {
        record(&mut obj, &super::reviews::user_info(&ctx.user));
    }
    validate(def, &obj, None)?;
    crate::authz::escalation::check(
        &ctx.state,
        &ctx.user,
        &def.group,
        &def.plural,
        &ctx.info.namespace,
        &obj,
        None,
    )
    .await?;
    let warned = ctx
        .state
        .admission
        .validate(&ctx.state, &attrs, &obj)
        .await?;
    ctx.add_warnings(warned);
    if tracking == Tracking::Update {
        crate::fieldmanager::track_update(ctx, def, None, &mut obj);
    }
    let name = meta::name(&obj).to_string();
    if dry_run(ctx)? {
        return Ok(Created::DryRun(obj));
    }
    if def.group.is_empty() && def.plural == "services" {
        services::allocate(&ctx.state, &mut obj).await?;
    }
    let key = ctx.state.object_key(def, &ctx.info.namespace, &name);
    let (stored, served) = ctx
        .state
        .store
        .create_served(&key, obj, ttl(ctx, def))
        .await
        .map_err(|e| storage_error(def, &name, e))?;
    Ok(Created::Stored(stored, served))
}

/// A write to `pods/<name>/ephemeralcontainers` (upstream's
/// EphemeralContainersStrategy): only `spec.ephemeralContainers` changes,
/// existing ones stay as they are, and names stay unique in the pod.
fn ephemeral_containers_update(current: &Value, requested: &Value) -> Result<Value, ApiError> {
    use apimachinery::field::FieldError;
    let list = |v: &Value, f: &str| {
        v.pointer(&format!("/spec/{f}"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let old = list(current, "ephemeralContainers");
    let mut new = list(requested, "ephemeralContainers");
    for c in &mut new {
        if let Some(m) = c.as_object_mut() {
            m.entry("terminationMessagePath")
                .or_insert(json!("/dev/termination-log"));
            m.entry("terminationMessagePolicy").or_insert(json!("File"));
            let image = m.get("image").and_then(Value::as_str).unwrap_or("");
            let latest = !image.contains(':') || image.ends_with(":latest");
            m.entry("imagePullPolicy").or_insert(json!(if latest {
                "Always"
            } else {
                "IfNotPresent"
            }));
        }
    }
    let name = meta::name(current).to_string();
    let mut errs = Vec::new();
    for o in &old {
        if !new.iter().any(|n| n == o) {
            errs.push(FieldError::forbidden(
                "spec.ephemeralContainers",
                format!(
                    "existing ephemeral containers {} may not be changed",
                    o["name"]
                ),
            ));
        }
    }
    let mut names: Vec<String> = ["containers", "initContainers"]
        .iter()
        .flat_map(|f| list(current, f))
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    for (i, c) in new.iter().enumerate() {
        let n = c["name"].as_str().unwrap_or("");
        if n.is_empty() {
            errs.push(FieldError::required(
                format!("spec.ephemeralContainers[{i}].name"),
                "",
            ));
        } else if names.iter().any(|x| x == n) {
            errs.push(FieldError::duplicate(
                format!("spec.ephemeralContainers[{i}].name"),
                &json!(n),
            ));
        } else {
            names.push(n.to_string());
        }
        if c["image"].as_str().unwrap_or("").is_empty() {
            errs.push(FieldError::required(
                format!("spec.ephemeralContainers[{i}].image"),
                "",
            ));
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::invalid("Pod", "", &name, &errs));
    }
    let mut out = current.clone();
    out["spec"]["ephemeralContainers"] = json!(new);
    Ok(out)
}

/// How a write records field ownership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tracking {
    /// The change moves the fields it touched to the writer.
    Update,
    /// The change is a server-side apply that set managedFields itself.
    Applied,
}

/// One write of an object through GuaranteedUpdate: `change` turns the
/// current object into the requested one; the rest is upstream's update path.
async fn write(
    ctx: &Ctx,
    def: &ResourceDef,
    create_if_missing: bool,
    tracking: Tracking,
    change: &(dyn Fn(Option<&Value>) -> Result<Value, ApiError> + Send + Sync),
) -> Result<(StoredObject, bool, Vec<String>), ApiError> {
    let name = ctx.info.name.clone();
    // A missing object is created through the create path (admission
    // included); losing a race with another creator means updating instead.
    for _ in 0..3 {
        match update_existing(ctx, def, tracking, change).await {
            Err(storage::Error::NotFound { .. }) if create_if_missing => {}
            Err(e) => return Err(storage_error(def, &name, e)),
            Ok((stored, warnings)) => return Ok((stored, false, warnings)),
        }
        let requested = change(None)?;
        check_body_name(&requested, &name)?;
        let (mut obj, warnings) = object::decode(ctx, def, requested)?;
        meta::set_str(&mut obj, "name", &name);
        match create_decoded(ctx, def, obj, tracking).await {
            Ok(Created::Stored(stored, _)) => return Ok((stored, true, warnings)),
            Ok(Created::DryRun(value)) => {
                return Ok((StoredObject { value, revision: 0 }, true, warnings))
            }
            Err(e) if e.reason == "AlreadyExists" => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::conflict(
        &def.group_resource(),
        &name,
        "the object was created and deleted concurrently, please retry",
    ))
}

/// A write's body names the object on the URL, or nothing.
fn check_body_name(requested: &Value, name: &str) -> Result<(), ApiError> {
    let body_name = meta::name(requested);
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    Ok(())
}

/// The update half of [`write`]: upstream's GuaranteedUpdate of an existing
/// object with admission inside each attempt. Admission is async and the
/// store's update closure is not, so each attempt reads the current object,
/// computes the new one, runs admission and validation, then writes only if
/// the object is still at the revision read; otherwise the attempt is
/// repeated from the new current object, as upstream's tryUpdate is.
async fn update_existing(
    ctx: &Ctx,
    def: &ResourceDef,
    tracking: Tracking,
    change: &(dyn Fn(Option<&Value>) -> Result<Value, ApiError> + Send + Sync),
) -> Result<(StoredObject, Vec<String>), storage::Error> {
    let name = ctx.info.name.clone();
    let key = ctx.state.object_key(def, &ctx.info.namespace, &name);
    // `/approval` (CSRs) is a status write too: only status may change.
    let status_write = matches!(ctx.info.subresource.as_str(), "status" | "approval");
    let dry = dry_run(ctx)?;
    loop {
        let cur = ctx.state.store.get(&key).await?;
        let requested = change(Some(&cur.value))?;
        check_body_name(&requested, &name)?;
        let (mut obj, warnings) = object::decode(ctx, def, requested)?;
        check_resource_version(def, &obj, &cur.value)?;
        let ephemeral = ctx.info.subresource == "ephemeralcontainers";
        if ephemeral {
            // Only the ephemeral containers changed, checked below; the
            // pod's update rules (immutable spec) do not apply.
            obj = ephemeral_containers_update(&cur.value, &obj)?;
        } else {
            prepare_update(def, &mut obj, &cur.value, status_write);
            if let Some(f) = def.strategy.prepare_subresource_update {
                f(&ctx.info.subresource, &mut obj, &cur.value);
            }
        }
        let attrs = Attributes {
            operation: Operation::Update,
            group: &def.group,
            version: &def.version,
            kind: &def.kind,
            resource: &def.plural,
            subresource: &ctx.info.subresource,
            namespace: &ctx.info.namespace,
            name: &name,
            old: Some(&cur.value),
            dry_run: dry,
            user: &ctx.user,
        };
        let admitted = ctx
            .state
            .admission
            .admit(&ctx.state, &attrs, &mut obj)
            .await?;
        if ephemeral {
            validate(def, &obj, None)?;
        } else {
            validate(def, &obj, Some(&cur.value))?;
        }
        if ctx.info.subresource.is_empty() {
            crate::authz::escalation::check(
                &ctx.state,
                &ctx.user,
                &def.group,
                &def.plural,
                &ctx.info.namespace,
                &obj,
                Some(&cur.value),
            )
            .await?;
        }
        let mut warned = admitted;
        warned.extend(
            ctx.state
                .admission
                .validate(&ctx.state, &attrs, &obj)
                .await?,
        );
        if tracking == Tracking::Update {
            crate::fieldmanager::track_update(ctx, def, Some(&cur.value), &mut obj);
        }
        if dry {
            ctx.add_warnings(warned);
            return Ok((
                StoredObject {
                    value: obj,
                    revision: 0,
                },
                warnings,
            ));
        }
        let mut stale = false;
        let result = ctx
            .state
            .store
            .guaranteed_update(
                &key,
                false,
                &Preconditions::default(),
                ttl(ctx, def),
                |now| match now {
                    Some(now) if now.revision == cur.revision => Ok(obj.clone()),
                    Some(_) => {
                        stale = true;
                        Err(storage::Error::Api(ApiError::new(0, "Stale", "")))
                    }
                    None => Err(storage::Error::NotFound { key: key.clone() }),
                },
            )
            .await;
        match result {
            Ok(stored) => {
                ctx.add_warnings(warned);
                return Ok((stored, warnings));
            }
            Err(_) if stale => continue,
            Err(e) => return Err(e),
        }
    }
}

/// After a write: an object being deleted whose last finalizer went away is removed.
async fn finish_deletion(
    ctx: &Ctx,
    def: &ResourceDef,
    stored: StoredObject,
) -> Result<Value, ApiError> {
    if meta::deletion_timestamp(&stored.value).is_some()
        && meta::finalizers(&stored.value).is_empty()
        && namespace_finalizers(def, &stored.value).is_empty()
    {
        let grace = stored
            .value
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if grace == 0 {
            let key = ctx
                .state
                .object_key(def, &ctx.info.namespace, &ctx.info.name);
            let pre = Preconditions {
                uid: None,
                resource_version: Some(stored.revision.to_string()),
            };
            match ctx.state.store.delete(&key, &pre, |_| Ok(())).await {
                Ok(_) | Err(storage::Error::NotFound { .. }) => {}
                Err(e) => return Err(storage_error(def, &ctx.info.name, e)),
            }
        }
    }
    Ok(stored.value)
}

pub async fn update(ctx: &Ctx, def: &ResourceDef) -> Result<Response<Body>, ApiError> {
    let format = body_format(ctx.content_type.as_deref(), false)?;
    let body = decode_body(format, &ctx.body)?;
    let create_ok = def.strategy.create_on_update && ctx.info.subresource.is_empty();
    let (stored, created, warnings) =
        write(ctx, def, create_ok, Tracking::Update, &|_| Ok(body.clone())).await?;
    let value = finish_deletion(ctx, def, stored).await?;
    respond(ctx, def, if created { 201 } else { 200 }, &value, &warnings)
}

pub async fn patch(ctx: &Ctx, def: &ResourceDef) -> Result<Response<Body>, ApiError> {
    let format = body_format(ctx.content_type.as_deref(), true)?;
    if format == BodyFormat::StrategicMergePatch && def.strategy.decode.is_none() {
        return Err(ApiError::unsupported_media_type(
            "application/strategic-merge-patch+json",
        ));
    }
    let apply = format == BodyFormat::ApplyPatch;
    if apply && ctx.query.get("fieldManager").unwrap_or("").is_empty() {
        return Err(ApiError::bad_request(
            "PATCH requests with apply content type require fieldManager to be set",
        ));
    }
    let body = ctx.body.clone();
    let ty = crate::patch::kind_type(&def.group, &def.version, &def.kind);
    let config = if apply {
        Some(super::decode_yaml(&body)?)
    } else {
        None
    };
    let tracking = if apply {
        Tracking::Applied
    } else {
        Tracking::Update
    };
    let (stored, created, warnings) = write(ctx, def, apply, tracking, &move |current| {
        // The patch is written against the served form.
        let served = current.map(|c| {
            let mut c = c.clone();
            api::custom::convert(def, &mut c);
            c
        });
        if let Some(config) = &config {
            return crate::fieldmanager::apply(ctx, def, served.as_ref(), config);
        }
        match served {
            Some(mut cur) => {
                // A patch of the main resource never sees (or changes) status through it.
                let patched = crate::patch::apply(format, &cur, &body, ty)?;
                if let (Some(m), Some(p)) = (cur.as_object_mut(), patched.as_object()) {
                    *m = p.clone();
                }
                Ok(cur)
            }
            None => crate::patch::apply(format, &json!({}), &body, ty),
        }
    })
    .await?;
    let value = finish_deletion(ctx, def, stored).await?;
    respond(ctx, def, if created { 201 } else { 200 }, &value, &warnings)
}

/// What a DELETE asks (DeleteOptions from the body or the query).
pub(super) struct DeleteOptions {
    pub grace: Option<i64>,
    pub propagation: Option<String>,
    pub preconditions: Preconditions,
}

fn delete_options(ctx: &Ctx) -> Result<DeleteOptions, ApiError> {
    let body: Value = if ctx.body.is_empty() {
        json!({})
    } else {
        super::decode_yaml(&ctx.body)?
    };
    delete_options_from(ctx, &body)
}

/// DeleteOptions from a body (a DeleteOptions, or an Eviction's
/// `deleteOptions`) with the query's parameters as fallbacks.
pub(super) fn delete_options_from(ctx: &Ctx, body: &Value) -> Result<DeleteOptions, ApiError> {
    let grace = body
        .get("gracePeriodSeconds")
        .and_then(Value::as_i64)
        .or_else(|| {
            ctx.query
                .get("gracePeriodSeconds")
                .and_then(|g| g.parse().ok())
        });
    let mut propagation = body
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| ctx.query.get("propagationPolicy").map(str::to_string));
    if propagation.is_none() {
        match body
            .get("orphanDependents")
            .and_then(Value::as_bool)
            .or_else(|| ctx.query.get("orphanDependents").map(|o| o == "true"))
        {
            Some(true) => propagation = Some("Orphan".into()),
            Some(false) => propagation = Some("Background".into()),
            None => {}
        }
    }
    if let Some(p) = &propagation {
        if !["Orphan", "Background", "Foreground"].contains(&p.as_str()) {
            return Err(ApiError::invalid(
                "DeleteOptions",
                "",
                "",
                &[apimachinery::field::FieldError::not_supported(
                    "propagationPolicy",
                    &json!(p),
                    &["Foreground", "Background", "Orphan", "nil"],
                )],
            ));
        }
    }
    let pre = body.get("preconditions").cloned().unwrap_or(json!({}));
    Ok(DeleteOptions {
        grace,
        propagation,
        preconditions: Preconditions {
            uid: pre.get("uid").and_then(Value::as_str).map(str::to_string),
            resource_version: pre
                .get("resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string),
        },
    })
}

/// A namespace's `spec.finalizers` (empty for every other kind).
fn namespace_finalizers(def: &ResourceDef, obj: &Value) -> Vec<String> {
    if !(def.group.is_empty() && def.plural == "namespaces") {
        return Vec::new();
    }
    obj.pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Deletes one object like upstream's generic store: finalizers (and the
/// propagation policy's) and pod grace periods make it a deletionTimestamp
/// update; otherwise it is removed.
pub(super) async fn delete_one(
    ctx: &Ctx,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    opts: &DeleteOptions,
    dry: bool,
) -> Result<(Value, bool), ApiError> {
    let key = ctx.state.object_key(def, ns, name);
    let current = ctx
        .state
        .store
        .get(&key)
        .await
        .map_err(|e| storage_error(def, name, e))?;
    let mut finalizers = meta::finalizers(&current.value);
    let policy = opts.propagation.clone().unwrap_or_else(|| {
        if def.strategy.default_orphan {
            "Orphan".into()
        } else {
            "Background".into()
        }
    });
    let add = match policy.as_str() {
        "Orphan" => Some("orphan"),
        "Foreground" => Some("foregroundDeletion"),
        _ => None,
    };
    for f in add.into_iter().chain(def.strategy.delete_finalizer) {
        if !finalizers.iter().any(|x| x == f) {
            finalizers.push(f.to_string());
        }
    }
    let is_pod = def.group.is_empty() && def.plural == "pods";
    let pod_grace = if is_pod {
        let phase = current
            .value
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("");
        let scheduled = !current
            .value
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty();
        let default = current
            .value
            .pointer("/spec/terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(30);
        let g = opts.grace.unwrap_or(default);
        // Unscheduled and finished pods go at once, as upstream's pod strategy says.
        if !scheduled || phase == "Succeeded" || phase == "Failed" {
            0
        } else {
            g.max(0)
        }
    } else {
        0
    };
    // A namespace waits for its spec.finalizers (the namespace controller
    // empties `kubernetes` through namespaces/{name}/finalize), as upstream's
    // namespace REST Delete does, and shows phase Terminating meanwhile.
    let namespace_pending = !namespace_finalizers(def, &current.value).is_empty();
    let graceful = !finalizers.is_empty() || pod_grace > 0 || namespace_pending;
    if !graceful {
        if dry {
            return Ok((current.value, true));
        }
        let last = ctx
            .state
            .store
            .delete(&key, &opts.preconditions, |_| Ok(()))
            .await
            .map_err(|e| storage_error(def, name, e))?;
        return Ok((last.value, true));
    }
    let mut obj = current.value.clone();
    let already = meta::deletion_timestamp(&obj).is_some();
    let existing_grace = obj
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64);
    if !already || existing_grace.is_some_and(|g| pod_grace < g) {
        let when = chrono::Utc::now() + chrono::Duration::seconds(pod_grace);
        meta::set_str(
            &mut obj,
            "deletionTimestamp",
            &when.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
        meta::metadata_mut(&mut obj).insert("deletionGracePeriodSeconds".into(), json!(pod_grace));
        if def.strategy.generation != api::strategy::GenerationPolicy::None {
            let g = meta::generation(&obj) + 1;
            meta::metadata_mut(&mut obj).insert("generation".into(), json!(g));
        }
    }
    meta::set_finalizers(&mut obj, &finalizers);
    if namespace_pending {
        obj["status"]["phase"] = json!("Terminating");
    }
    if dry {
        return Ok((obj, false));
    }
    let target = obj.clone();
    let stored = ctx
        .state
        .store
        .guaranteed_update(&key, false, &opts.preconditions, ttl(ctx, def), move |_| {
            Ok(target.clone())
        })
        .await
        .map_err(|e| storage_error(def, name, e))?;
    Ok((stored.value, false))
}

/// Admission for a create through a subresource whose body is another kind
/// (a TokenRequest for `serviceaccounts/token`, an Eviction for
/// `pods/eviction`): both phases, their warnings kept.
pub(super) async fn admit_subresource_create(
    ctx: &Ctx,
    def: &ResourceDef,
    (version, kind): (&str, &str),
    obj: &mut Value,
) -> Result<(), ApiError> {
    let attrs = Attributes {
        operation: Operation::Create,
        group: &def.group,
        version,
        kind,
        resource: &def.plural,
        subresource: &ctx.info.subresource,
        namespace: &ctx.info.namespace,
        name: &ctx.info.name,
        old: None,
        dry_run: dry_run(ctx)?,
        user: &ctx.user,
    };
    let mut warned = ctx.state.admission.admit(&ctx.state, &attrs, obj).await?;
    warned.extend(
        ctx.state
            .admission
            .validate(&ctx.state, &attrs, obj)
            .await?,
    );
    ctx.add_warnings(warned);
    Ok(())
}

pub async fn delete(ctx: &Ctx, def: &ResourceDef) -> Result<Response<Body>, ApiError> {
    let opts = delete_options(ctx)?;
    let dry = dry_run(ctx)?;
    // Webhooks see the object being deleted (upstream's Store.Delete reads
    // it before admission); a read only when there are webhooks.
    let current = if ctx.state.webhooks.is_empty() {
        None
    } else {
        let key = ctx
            .state
            .object_key(def, &ctx.info.namespace, &ctx.info.name);
        ctx.state.store.get(&key).await.ok().map(|o| o.value)
    };
    let attrs = Attributes {
        operation: Operation::Delete,
        group: &def.group,
        version: &def.version,
        kind: &def.kind,
        resource: &def.plural,
        subresource: "",
        namespace: &ctx.info.namespace,
        name: &ctx.info.name,
        old: current.as_ref(),
        dry_run: dry,
        user: &ctx.user,
    };
    let mut nothing = Value::Null;
    let mut warned = ctx
        .state
        .admission
        .admit(&ctx.state, &attrs, &mut nothing)
        .await?;
    warned.extend(
        ctx.state
            .admission
            .validate(&ctx.state, &attrs, &nothing)
            .await?,
    );
    ctx.add_warnings(warned);
    let (mut obj, gone) =
        delete_one(ctx, def, &ctx.info.namespace, &ctx.info.name, &opts, dry).await?;
    api::custom::convert(def, &mut obj);
    // Upstream answers 202 Accepted while a graceful deletion is pending.
    Ok(response::json(if gone { 200 } else { 202 }, &obj))
}

pub async fn delete_collection(ctx: &Ctx, def: &ResourceDef) -> Result<Response<Body>, ApiError> {
    let opts = delete_options(ctx)?;
    let dry = dry_run(ctx)?;
    let pred = Predicate::from_ctx(ctx, def)?;
    let prefix = ctx.state.collection_key(def, &ctx.info.namespace);
    let filter = |v: &Value| pred.matches_value(def, v);
    let list = ctx
        .state
        .store
        .list(&prefix, &ListOptions::default(), &filter)
        .await
        .map_err(|e| storage_error(def, "", e))?;
    let mut items = Vec::new();
    for o in list.items {
        let (ns, name) = (
            meta::namespace(&o.value).to_string(),
            meta::name(&o.value).to_string(),
        );
        match delete_one(ctx, def, &ns, &name, &opts, dry).await {
            Ok((v, _)) => items.push(v),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(response::json(
        200,
        &json!({"kind": def.list_kind, "apiVersion": def.api_version(), "metadata": {"resourceVersion": list.revision.to_string()}, "items": items}),
    ))
}

/// `pods/binding` (and the `bindings` resource): sets spec.nodeName once.
pub async fn bind(ctx: &Ctx, def: &ResourceDef) -> Result<Response<Body>, ApiError> {
    let body = decode_body(body_format(ctx.content_type.as_deref(), false)?, &ctx.body)?;
    let node = body
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if node.is_empty() {
        return Err(ApiError::invalid(
            "Binding",
            "",
            &ctx.info.name,
            &[apimachinery::field::FieldError::required("target.name", "")],
        ));
    }
    let key = ctx
        .state
        .object_key(def, &ctx.info.namespace, &ctx.info.name);
    let name = ctx.info.name.clone();
    ctx.state
        .store
        .guaranteed_update(&key, false, &Preconditions::default(), None, |cur| {
            let mut pod = cur.map(|c| c.value.clone()).unwrap_or(Value::Null);
            if meta::deletion_timestamp(&pod).is_some() {
                return Err(ApiError::conflict(&def.group_resource(), &name, "pod is being deleted, cannot be assigned to a host").into());
            }
            let current = pod.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("");
            if !current.is_empty() {
                return Err(ApiError::conflict(&def.group_resource(), &name, &format!("pod {name} is already assigned to node {current:?}")).into());
            }
            pod["spec"]["nodeName"] = json!(node);
            let conds = pod["status"]["conditions"].as_array().cloned().unwrap_or_default();
            let mut conds: Vec<Value> = conds.into_iter().filter(|c| c["type"] != "PodScheduled").collect();
            conds.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": meta::now_rfc3339()}));
            pod["status"]["conditions"] = json!(conds);
            Ok(pod)
        })
        .await
        .map_err(|e| storage_error(def, &ctx.info.name, e))?;
    Ok(response::json(
        201,
        &apimachinery::status::success_status(None),
    ))
}

fn scale_of(def: &ResourceDef, obj: &Value) -> Value {
    let spec = obj
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let status = obj
        .pointer("/status/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let selector = obj
        .pointer("/spec/selector")
        .map(
            |s| match s.get("matchLabels").or(s.get("matchExpressions")) {
                Some(_) => apimachinery::labels::Selector::from_label_selector(s)
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                None => s
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default(),
            },
        )
        .unwrap_or_default();
    let m = obj.get("metadata").cloned().unwrap_or(json!({}));
    let _ = def;
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"], "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
        "spec": {"replicas": spec},
        "status": {"replicas": status, "selector": selector},
    })
}

pub async fn get_scale(ctx: &Ctx, def: &ResourceDef) -> Result<Response<Body>, ApiError> {
    let key = ctx
        .state
        .object_key(def, &ctx.info.namespace, &ctx.info.name);
    let obj = ctx
        .state
        .store
        .get(&key)
        .await
        .map_err(|e| storage_error(def, &ctx.info.name, e))?;
    Ok(response::json(200, &scale_of(def, &obj.value)))
}

pub async fn update_scale(ctx: &Ctx, def: &ResourceDef) -> Result<Response<Body>, ApiError> {
    let key = ctx
        .state
        .object_key(def, &ctx.info.namespace, &ctx.info.name);
    let patch_format = (ctx.info.verb == "patch")
        .then(|| body_format(ctx.content_type.as_deref(), true))
        .transpose()?;
    let plain = match patch_format {
        None => Some(decode_body(
            body_format(ctx.content_type.as_deref(), false)?,
            &ctx.body,
        )?),
        Some(_) => None,
    };
    let def_arc = Arc::new(def.clone());
    let body = ctx.body.clone();
    let stored = ctx
        .state
        .store
        .guaranteed_update(&key, false, &Preconditions::default(), None, |cur| {
            let cur = cur.map(|c| c.value.clone()).unwrap_or(Value::Null);
            let scale = scale_of(&def_arc, &cur);
            let wanted = match (&plain, patch_format) {
                (Some(p), _) => {
                    check_resource_version(&def_arc, p, &cur)?;
                    p.clone()
                }
                (None, Some(f)) => crate::patch::apply(
                    f,
                    &scale,
                    &body,
                    crate::patch::kind_type("autoscaling", "v1", "Scale"),
                )?,
                (None, None) => scale,
            };
            let replicas = wanted
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if replicas < 0 {
                return Err(ApiError::invalid(
                    "Scale",
                    "autoscaling",
                    meta::name(&cur),
                    &[apimachinery::field::FieldError::invalid(
                        "spec.replicas",
                        &json!(replicas),
                        "must be greater than or equal to 0",
                    )],
                )
                .into());
            }
            let mut new = cur.clone();
            new["spec"]["replicas"] = json!(replicas);
            if new.get("spec") != cur.get("spec") {
                let g = meta::generation(&cur) + 1;
                meta::metadata_mut(&mut new).insert("generation".into(), json!(g));
            }
            Ok(new)
        })
        .await
        .map_err(|e| storage_error(def, &ctx.info.name, e))?;
    Ok(response::json(200, &scale_of(def, &stored.value)))
}
