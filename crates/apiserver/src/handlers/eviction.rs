//! `pods/<name>/eviction` (upstream's
//! `pkg/registry/core/pod/storage/eviction.go`): a pod is deleted only if
//! the PodDisruptionBudget that covers it allows one more disruption, which
//! the eviction spends atomically on the budget's status. Otherwise 429
//! with a DisruptionBudget cause, which `kubectl drain` retries.

use api::ResourceDef;
use apimachinery::labels::Selector;
use apimachinery::status::StatusCause;
use apimachinery::{meta, ApiError};
use http::Response;
use serde_json::{json, Value};
use storage::{ListOptions, Preconditions};

use super::object::storage_error;
use super::write::{delete_one, delete_options_from};
use super::{decode_body, Ctx};
use crate::negotiation::body_format;
use crate::response::{self, Body};

const VIOLATION: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

fn budget_error(cause: String) -> ApiError {
    ApiError::too_many_requests(
        VIOLATION,
        vec![StatusCause {
            reason: "DisruptionBudget".into(),
            message: cause,
            field: String::new(),
        }],
    )
}

fn condition_true(pod: &Value, kind: &str) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == kind && c["status"] == "True")
        })
}

/// Pods a budget need not protect: finished, pending, or already going.
fn can_ignore_budget(pod: &Value) -> bool {
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    matches!(phase, "Succeeded" | "Failed" | "Pending") || meta::deletion_timestamp(pod).is_some()
}

fn int(v: &Value, p: &str) -> i64 {
    v.pointer(p).and_then(Value::as_i64).unwrap_or(0)
}

/// Creates an Eviction: 201 with a Success Status once the pod is deleted.
pub async fn create(ctx: &Ctx, def: &ResourceDef) -> Result<Response<Body>, ApiError> {
    let mut eviction = decode_body(body_format(ctx.content_type.as_deref(), false)?, &ctx.body)?;
    super::write::admit_subresource_create(ctx, def, ("v1", "Eviction"), &mut eviction).await?;
    let (ns, name) = (ctx.info.namespace.clone(), ctx.info.name.clone());
    let named = eviction
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !named.is_empty() && named != name {
        return Err(ApiError::bad_request(format!(
            "name in URL does not match name in Eviction object: {name} != {named}"
        )));
    }
    let opts = delete_options_from(ctx, eviction.get("deleteOptions").unwrap_or(&json!({})))?;
    let dry = super::object::dry_run(ctx)?;
    let key = ctx.state.object_key(def, &ns, &name);
    let pod = ctx
        .state
        .store
        .get(&key)
        .await
        .map_err(|e| storage_error(def, &name, e))?
        .value;

    if !can_ignore_budget(&pod) {
        spend_budget(ctx, &ns, &name, &pod, dry).await?;
    }
    delete_one(ctx, def, &ns, &name, &opts, dry).await?;
    Ok(response::json(
        201,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
    ))
}

/// Finds the one budget covering the pod and takes a disruption from it.
async fn spend_budget(
    ctx: &Ctx,
    ns: &str,
    name: &str,
    pod: &Value,
    dry: bool,
) -> Result<(), ApiError> {
    let pdb_def = ctx
        .state
        .resource("policy", "v1", "poddisruptionbudgets")
        .ok_or_else(|| ApiError::internal("poddisruptionbudgets are not served"))?;
    let prefix = ctx.state.collection_key(&pdb_def, ns);
    let all = |_: &Value| true;
    let list = ctx
        .state
        .store
        .list(&prefix, &ListOptions::default(), &all)
        .await
        .map_err(|e| storage_error(&pdb_def, "", e))?;
    let labels = pod
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let matching: Vec<&Value> = list
        .items
        .iter()
        .map(|o| &o.value)
        .filter(|pdb| {
            let sel = pdb
                .pointer("/spec/selector")
                .cloned()
                .unwrap_or(Value::Null);
            Selector::from_label_selector(&sel).is_ok_and(|s| !s.is_empty() && s.matches(&labels))
        })
        .collect();
    let pdb = match matching.as_slice() {
        [] => return Ok(()),
        [one] => (*one).clone(),
        _ => {
            return Err(ApiError::internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ))
        }
    };
    let pdb_name = meta::name(&pdb).to_string();
    // An unready pod may go while the budget is healthy (IfHealthyBudget),
    // or always (AlwaysAllow), without spending a disruption.
    if !condition_true(pod, "Ready") {
        let policy = pdb
            .pointer("/spec/unhealthyPodEvictionPolicy")
            .and_then(Value::as_str)
            .unwrap_or("IfHealthyBudget");
        if policy == "AlwaysAllow"
            || (int(&pdb, "/status/currentHealthy") >= int(&pdb, "/status/desiredHealthy")
                && int(&pdb, "/status/desiredHealthy") > 0)
        {
            return Ok(());
        }
    }
    if dry {
        return check_budget(&pdb).map(|_| ());
    }
    let key = ctx.state.object_key(&pdb_def, ns, &pdb_name);
    let pod_name = name.to_string();
    ctx.state
        .store
        .guaranteed_update(&key, false, &Preconditions::default(), None, |cur| {
            let mut b = cur.map(|c| c.value.clone()).unwrap_or(Value::Null);
            let allowed = check_budget(&b)?;
            b["status"]["disruptionsAllowed"] = json!(allowed - 1);
            if !b["status"]["disruptedPods"].is_object() {
                b["status"]["disruptedPods"] = json!({});
            }
            b["status"]["disruptedPods"][&pod_name] = json!(meta::now_rfc3339());
            Ok(b)
        })
        .await
        .map_err(|e| storage_error(&pdb_def, &pdb_name, e))?;
    Ok(())
}

/// The disruptions a budget allows now, or the error that refuses one.
fn check_budget(pdb: &Value) -> Result<i64, ApiError> {
    let name = meta::name(pdb);
    if int(pdb, "/status/observedGeneration") < meta::generation(pdb) {
        return Err(budget_error(format!(
            "The disruption budget {name} is still being processed by the server."
        )));
    }
    let allowed = int(pdb, "/status/disruptionsAllowed");
    if allowed < 0 {
        return Err(ApiError::forbidden("pdb disruptions allowed is negative"));
    }
    if allowed == 0 {
        return Err(budget_error(format!(
            "The disruption budget {name} needs {} healthy pods and has {} currently",
            int(pdb, "/status/desiredHealthy"),
            int(pdb, "/status/currentHealthy")
        )));
    }
    Ok(allowed)
}
