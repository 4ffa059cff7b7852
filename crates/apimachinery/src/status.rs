//! API errors as upstream's `metav1.Status` (upstream's `api/errors`).
//!
//! Every error that reaches an API client is an [`ApiError`]: an HTTP code, a
//! `reason`, a message and optional details with causes, serialised exactly as
//! upstream's Status object.

use crate::field::{aggregate, FieldError};
use crate::resource::GroupResource;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// One cause inside `Status.details.causes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCause {
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub reason: String,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub message: String,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub field: String,
}

/// `Status.details`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDetails {
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub group: String,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub uid: String,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub causes: Vec<StatusCause>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub retry_after_seconds: Option<i32>,
}

/// An error answered to an API client as a `Status`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
    pub details: Option<StatusDetails>,
}

impl ApiError {
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.to_string(),
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, details: StatusDetails) -> Self {
        self.details = Some(details);
        self
    }

    fn named(gr: &GroupResource, name: &str) -> StatusDetails {
        StatusDetails {
            name: name.to_string(),
            group: gr.group.clone(),
            kind: gr.resource.clone(),
            ..Default::default()
        }
    }

    /// 404 `pods "x" not found`.
    pub fn not_found(gr: &GroupResource, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{gr} \"{name}\" not found"))
            .with_details(Self::named(gr, name))
    }

    /// 404 for a path that names no resource (`the server could not find the requested resource`).
    pub fn not_found_path() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(StatusDetails::default())
    }

    /// 409 `pods "x" already exists`.
    pub fn already_exists(gr: &GroupResource, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{gr} \"{name}\" already exists"),
        )
        .with_details(Self::named(gr, name))
    }

    /// 409 Conflict with upstream's optimistic-concurrency message.
    pub fn conflict(gr: &GroupResource, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {gr} \"{name}\": {why}"),
        )
        .with_details(Self::named(gr, name))
    }

    /// 422 Invalid with one cause per field error.
    pub fn invalid(kind: &str, group: &str, name: &str, errs: &[FieldError]) -> Self {
        let causes = errs
            .iter()
            .map(|e| StatusCause {
                reason: e.kind.cause_reason().to_string(),
                message: e.body(),
                field: e.field.clone(),
            })
            .collect();
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        Self::new(
            422,
            "Invalid",
            format!("{qualified} \"{name}\" is invalid: {}", aggregate(errs)),
        )
        .with_details(StatusDetails {
            name: name.to_string(),
            group: group.to_string(),
            kind: kind.to_string(),
            causes,
            ..Default::default()
        })
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "Unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// 403 `pods "x" is forbidden: <why>` (upstream's `NewForbidden`; an
    /// empty name drops the quotes).
    pub fn forbidden_named(gr: &GroupResource, name: &str, why: impl std::fmt::Display) -> Self {
        let message = if name.is_empty() {
            format!("{gr} is forbidden: {why}")
        } else {
            format!("{gr} \"{name}\" is forbidden: {why}")
        };
        Self::new(403, "Forbidden", message).with_details(Self::named(gr, name))
    }

    pub fn method_not_supported(gr: &GroupResource, action: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("{action} is not supported on resources of kind {gr:?}"),
        )
        .with_details(StatusDetails {
            group: gr.group.clone(),
            kind: gr.resource.clone(),
            ..Default::default()
        })
    }

    pub fn not_acceptable(accepted: &str) -> Self {
        Self::new(
            406,
            "NotAcceptable",
            format!("only the following media types are accepted: {accepted}"),
        )
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {content_type:?})"))
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(413, "RequestEntityTooLarge", message)
    }

    /// 410 Gone, reason Expired (a resourceVersion or continue token too old).
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 410 Gone for a watch start that is too old (`too old resource version: 5 (7)`).
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        )
        .with_details(StatusDetails {
            causes: vec![StatusCause {
                message,
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// 504 for a resourceVersion the store has not reached in time.
    pub fn resource_version_too_large(message: impl Into<String>) -> Self {
        Self::new(504, "Timeout", message).with_details(StatusDetails {
            causes: vec![StatusCause {
                reason: "ResourceVersionTooLarge".into(),
                message: "Too large resource version".into(),
                field: String::new(),
            }],
            retry_after_seconds: Some(1),
            ..Default::default()
        })
    }

    /// 429 TooManyRequests, with optional causes (the eviction API's DisruptionBudget).
    pub fn too_many_requests(message: impl Into<String>, causes: Vec<StatusCause>) -> Self {
        Self::new(429, "TooManyRequests", message).with_details(StatusDetails {
            causes,
            ..Default::default()
        })
    }

    /// 409 Conflict of a server-side apply, one `FieldManagerConflict` cause per field.
    pub fn apply_conflict(message: impl Into<String>, causes: Vec<StatusCause>) -> Self {
        Self::new(409, "Conflict", message).with_details(StatusDetails {
            causes,
            ..Default::default()
        })
    }

    /// A backend's failed answer (upstream's `NewGenericServerResponse`,
    /// as the pods/log and proxy paths use it, with an empty verb): the
    /// reason follows the code and the backend's words become the cause.
    pub fn generic_server_response(
        code: u16,
        gr: &GroupResource,
        name: &str,
        server_message: &str,
    ) -> Self {
        let (reason, message) = match code {
            401 => ("Unauthorized", "the server has asked for the client to provide credentials"),
            403 => ("Forbidden", "the server does not allow access to the requested resource"),
            404 => ("NotFound", "the server could not find the requested resource"),
            409 => ("Conflict", "the server reported a conflict"),
            422 => ("Invalid", "the server rejected our request due to an error in our request"),
            429 => ("TooManyRequests", "the server has received too many requests and has asked us to try again later"),
            503 => ("ServiceUnavailable", "the server is currently unable to handle the request"),
            504 => ("Timeout", "the server was unable to return a response in the time allotted, but may still be processing the request"),
            c if c >= 500 => ("InternalError", "an error on the server has prevented the request from succeeding"),
            _ => ("BadRequest", "the server rejected our request for an unknown reason"),
        };
        let message = if name.is_empty() {
            format!("{message} ( {gr})")
        } else {
            format!("{message} ( {gr} {name})")
        };
        let mut details = Self::named(gr, name);
        if !server_message.is_empty() {
            details.causes.push(StatusCause {
                reason: "UnexpectedServerResponse".into(),
                message: server_message.to_string(),
                field: String::new(),
            });
        }
        Self::new(code, reason, message).with_details(details)
    }

    /// The Status object as JSON.
    pub fn to_status(&self) -> Value {
        let mut v = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            v["details"] = serde_json::to_value(d).unwrap_or(Value::Null);
        }
        v
    }
}

/// A successful Status (`{"status":"Success"}`), as DELETE of a collection or
/// of a fully removed object may answer.
pub fn success_status(details: Option<StatusDetails>) -> Value {
    let mut v = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"});
    if let Some(d) = details {
        v["details"] = serde_json::to_value(d).unwrap_or(Value::Null);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_matches_upstream_shape() {
        let e = ApiError::not_found(&GroupResource::new("apps", "deployments"), "web");
        let s = e.to_status();
        assert_eq!(s["message"], "deployments.apps \"web\" not found");
        assert_eq!(s["details"]["kind"], "deployments");
        assert_eq!(s["details"]["group"], "apps");
        assert_eq!(s["code"], 404);
    }

    #[test]
    fn invalid_has_causes() {
        let errs = vec![FieldError::required(
            "metadata.name",
            "name or generateName is required",
        )];
        let s = ApiError::invalid("Pod", "", "", &errs).to_status();
        assert_eq!(s["reason"], "Invalid");
        assert_eq!(
            s["message"],
            "Pod \"\" is invalid: metadata.name: Required value: name or generateName is required"
        );
        assert_eq!(s["details"]["causes"][0]["reason"], "FieldValueRequired");
        assert_eq!(s["details"]["causes"][0]["field"], "metadata.name");
    }
}
