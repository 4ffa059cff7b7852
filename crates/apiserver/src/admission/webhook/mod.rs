//! Admission webhooks (upstream's `plugin/webhook/{mutating,validating}`
//! and `generic.Webhook`): the MutatingAdmissionWebhook and
//! ValidatingAdmissionWebhook plugins call the webhooks of the
//! configurations in force ([`source`]) whose rules, namespace selector
//! and object selector match the write, with an AdmissionReview
//! ([`review`]) over HTTPS ([`call`]).
//!
//! Mutating webhooks run one after another, each seeing the previous one's
//! patch; a webhook with `reinvocationPolicy: IfNeeded` is called once more
//! when a later one changed the object after it. Validating webhooks run
//! concurrently. A webhook that cannot be called, or answers nonsense, fails
//! the write with a 500 unless its `failurePolicy` is `Ignore`; a refusal
//! fails it with the webhook's status. Writes of the webhook and policy
//! configurations themselves are never sent to webhooks.
//!
//! Not evaluated here: `matchConditions` (CEL; the webhook is called as if
//! they held) and `matchPolicy: Equivalent` beyond the served version.

pub mod call;
pub mod hook;
pub mod metrics;
pub mod review;
pub mod source;

use std::sync::Arc;

use apimachinery::{ApiError, GroupResource};
use async_trait::async_trait;
use bytes::Bytes;
use serde_json::Value;

use super::{Attributes, Operation, Plugin};
use crate::state::ApiState;
use hook::Hook;
use source::Kind;

pub use source::Source;

/// Upstream's `IsExemptAdmissionConfigurationResource`.
fn exempt(a: &Attributes<'_>) -> bool {
    a.group == "admissionregistration.k8s.io"
        && matches!(
            a.resource,
            "mutatingwebhookconfigurations"
                | "validatingwebhookconfigurations"
                | "validatingadmissionpolicies"
                | "validatingadmissionpolicybindings"
                | "mutatingadmissionpolicies"
                | "mutatingadmissionpolicybindings"
        )
}

fn labels(obj: Option<&Value>) -> Option<&serde_json::Map<String, Value>> {
    obj?.pointer("/metadata/labels")?.as_object()
}

/// The labels the namespace selector is matched against (upstream's
/// `GetNamespaceLabels`); None when the selector does not apply.
fn namespace_labels(
    state: &ApiState,
    a: &Attributes<'_>,
    obj: Option<&Value>,
) -> Result<Option<serde_json::Map<String, Value>>, ApiError> {
    let is_namespace = a.group.is_empty() && a.resource == "namespaces";
    if a.namespace.is_empty() && !is_namespace {
        return Ok(None);
    }
    if is_namespace && a.subresource.is_empty() && a.operation != Operation::Delete {
        return Ok(Some(labels(obj).cloned().unwrap_or_default()));
    }
    let key = format!("{}namespaces/{}", state.prefix, a.namespace);
    match state.cacher.get(&key).0.and_then(|o| o.value().ok()) {
        Some(ns) => Ok(Some(labels(Some(&ns)).cloned().unwrap_or_default())),
        None => Err(ApiError::not_found(
            &GroupResource::new("", "namespaces"),
            a.namespace,
        )),
    }
}

/// Upstream's `ShouldCallHook`: the rules, then both selectors.
fn should_call(
    hook: &Hook,
    a: &Attributes<'_>,
    obj: Option<&Value>,
    ns_labels: &mut Option<Option<serde_json::Map<String, Value>>>,
    state: &ApiState,
) -> Result<bool, ApiError> {
    if !hook.matches_rules(a) {
        return Ok(false);
    }
    if !hook.namespace_selector.is_empty() {
        if ns_labels.is_none() {
            *ns_labels = Some(namespace_labels(state, a, obj)?);
        }
        if let Some(Some(l)) = ns_labels {
            if !hook.namespace_selector.matches(l) {
                return Ok(false);
            }
        }
    }
    if !hook.object_selector.is_empty() {
        let empty = serde_json::Map::new();
        let matches = |o: Option<&Value>| {
            o.is_some_and(|o| {
                hook.object_selector
                    .matches(labels(Some(o)).unwrap_or(&empty))
            })
        };
        let either = matches(obj) || matches(a.old);
        if !either {
            return Ok(false);
        }
    }
    if hook.has_match_conditions {
        tracing::debug!(webhook = %hook.name, "matchConditions are not evaluated; calling the webhook");
    }
    Ok(true)
}

/// How a call went wrong.
enum Failure {
    /// The webhook could not be called or answered nonsense: subject to
    /// the failure policy.
    Call(String),
    /// The webhook refused, or its patch cannot be applied.
    Refused(ApiError),
}

/// One call: the review out, the checked answer back.
async fn invoke(
    state: &ApiState,
    hook: &Hook,
    a: &Attributes<'_>,
    obj: Option<&Value>,
) -> Result<review::Answer, Failure> {
    let start = std::time::Instant::now();
    let result = exchange(state, hook, a, obj).await;
    let (rejected, code) = match &result {
        Ok(_) => (false, 200),
        Err(Failure::Refused(e)) => (true, e.code),
        Err(Failure::Call(_)) => (!hook.ignore_failures, 0),
    };
    state.webhooks.metrics.observe(
        &hook.name,
        hook.kind,
        a.operation,
        start.elapsed(),
        rejected,
        code,
    );
    result
}

async fn exchange(
    state: &ApiState,
    hook: &Hook,
    a: &Attributes<'_>,
    obj: Option<&Value>,
) -> Result<review::Answer, Failure> {
    let uid = uuid::Uuid::new_v4().to_string();
    let body = review::request(hook, &uid, a, obj);
    let body = Bytes::from(serde_json::to_vec(&body).map_err(|e| Failure::Call(e.to_string()))?);
    let answer = call::post(state, hook, body).await.map_err(Failure::Call)?;
    let answer = review::verify(hook, &uid, &answer)
        .map_err(|e| Failure::Call(format!("received invalid webhook response: {e}")))?;
    if !answer.allowed {
        return Err(Failure::Refused(review::refusal(
            hook,
            answer.result.as_ref(),
        )));
    }
    Ok(answer)
}

/// A call failure under the webhook's failure policy: None to go on.
fn failed(state: &ApiState, hook: &Hook, why: String) -> Option<ApiError> {
    let message = format!("failed calling webhook {:?}: {why}", hook.name);
    if hook.ignore_failures {
        state.webhooks.metrics.failed_open(&hook.name, hook.kind);
        tracing::warn!(webhook = %hook.name, error = %message, "failed calling webhook, failing open");
        None
    } else {
        tracing::warn!(webhook = %hook.name, error = %message, "failed calling webhook, failing closed");
        Some(ApiError::internal(message))
    }
}

/// Re-applies the kind's defaults to a patched object, as upstream decodes
/// the patched JSON into a defaulted typed object.
fn redefault(state: &ApiState, a: &Attributes<'_>, obj: Value) -> Result<Value, ApiError> {
    let decode = state
        .resource(a.group, a.version, a.resource)
        .and_then(|def| def.strategy.decode);
    match decode {
        Some(decode) => decode(obj).map(|d| d.value).map_err(ApiError::internal),
        None => Ok(obj),
    }
}

/// Applies a mutating webhook's answer; whether the object changed.
fn apply(
    state: &ApiState,
    hook: &Hook,
    a: &Attributes<'_>,
    obj: &mut Value,
    answer: &review::Answer,
) -> Result<bool, ApiError> {
    let Some(patch) = answer.patch.as_ref().filter(|p| !p.0.is_empty()) else {
        return Ok(false);
    };
    if a.operation == Operation::Delete {
        return Err(ApiError::internal(format!(
            "admission webhook {:?} attempted to modify the object, which is not supported for this operation",
            hook.name
        )));
    }
    let mut patched = obj.clone();
    json_patch::patch(&mut patched, patch).map_err(|e| ApiError::internal(e.to_string()))?;
    let patched = redefault(state, a, patched)?;
    if patched == *obj {
        return Ok(false);
    }
    *obj = patched;
    Ok(true)
}

/// MutatingAdmissionWebhook.
pub struct MutatingAdmissionWebhook;

#[async_trait]
impl Plugin for MutatingAdmissionWebhook {
    fn name(&self) -> &'static str {
        "MutatingAdmissionWebhook"
    }

    async fn admit_warn(
        &self,
        state: &ApiState,
        a: &Attributes<'_>,
        obj: &mut Value,
    ) -> Result<Vec<String>, ApiError> {
        let hooks = state.webhooks.hooks(Kind::Mutating);
        if hooks.is_empty() || exempt(a) {
            return Ok(Vec::new());
        }
        let mut warnings = Vec::new();
        let mut ns_labels = None;
        // The object each IfNeeded webhook last saw, to tell whether a
        // later webhook changed it afterwards.
        let mut reinvocable: Vec<(Arc<Hook>, Value)> = Vec::new();
        for hook in hooks.iter() {
            let current = (!obj.is_null()).then_some(&*obj);
            if !should_call(hook, a, current, &mut ns_labels, state)? {
                continue;
            }
            self.call_one(state, hook, a, obj, &mut warnings).await?;
            if hook.reinvoke {
                reinvocable.push((hook.clone(), obj.clone()));
            }
        }
        // One more round for the IfNeeded webhooks whose output a later
        // webhook changed.
        for (hook, seen) in reinvocable {
            if seen != *obj {
                self.call_one(state, &hook, a, obj, &mut warnings).await?;
            }
        }
        Ok(warnings)
    }
}

impl MutatingAdmissionWebhook {
    /// Calls `hook` and applies its patch: Some(changed) when it answered,
    /// None when it failed open.
    async fn call_one(
        &self,
        state: &ApiState,
        hook: &Hook,
        a: &Attributes<'_>,
        obj: &mut Value,
        warnings: &mut Vec<String>,
    ) -> Result<Option<bool>, ApiError> {
        let current = (!obj.is_null()).then_some(&*obj);
        match invoke(state, hook, a, current).await {
            Ok(answer) => {
                warnings.extend(answer.warnings.iter().cloned());
                apply(state, hook, a, obj, &answer).map(Some)
            }
            Err(Failure::Refused(e)) => Err(e),
            Err(Failure::Call(why)) => match failed(state, hook, why) {
                Some(e) => Err(e),
                None => Ok(None),
            },
        }
    }
}

/// ValidatingAdmissionWebhook.
pub struct ValidatingAdmissionWebhook;

#[async_trait]
impl Plugin for ValidatingAdmissionWebhook {
    fn name(&self) -> &'static str {
        "ValidatingAdmissionWebhook"
    }

    async fn validate_warn(
        &self,
        state: &ApiState,
        a: &Attributes<'_>,
        obj: &Value,
    ) -> Result<Vec<String>, ApiError> {
        let hooks = state.webhooks.hooks(Kind::Validating);
        if hooks.is_empty() || exempt(a) {
            return Ok(Vec::new());
        }
        let current = (!obj.is_null()).then_some(obj);
        let mut ns_labels = None;
        let mut relevant = Vec::new();
        for hook in hooks.iter() {
            if should_call(hook, a, current, &mut ns_labels, state)? {
                relevant.push(hook.clone());
            }
        }
        let results =
            futures::future::join_all(relevant.iter().map(|h| invoke(state, h, a, current))).await;
        let mut warnings = Vec::new();
        let mut first_error = None;
        for (hook, r) in relevant.iter().zip(results) {
            let err = match r {
                Ok(answer) => {
                    warnings.extend(answer.warnings);
                    None
                }
                Err(Failure::Refused(e)) => Some(e),
                Err(Failure::Call(why)) => failed(state, hook, why),
            };
            if first_error.is_none() {
                first_error = err;
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(warnings),
        }
    }
}
