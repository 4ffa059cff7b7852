//! `spec.podFailurePolicy` (upstream's pkg/controller/job/pod_failure_policy.go
//! `matchPodFailurePolicy`): the first rule matching a failed pod decides —
//! `FailJob` fails the Job (reason `PodFailurePolicy`), `Ignore` does not
//! count the failure against `backoffLimit`, `Count` counts it as usual.
//! `onExitCodes` looks at terminated containers (init and regular) with a
//! non-zero exit code; `onPodConditions` at the pod's conditions.
//!
//! The policy is read as JSON so every API version's shape (the pattern's
//! `status` optional since 1.35) is handled alike.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use serde_json::Value;

/// What a matching rule asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    FailJob(String),
    Ignore,
    Count,
}

fn matching_container<'a>(req: &Value, statuses: &'a [ContainerStatus]) -> Option<(&'a str, i32)> {
    let name = req.get("containerName").and_then(Value::as_str);
    let values: Vec<i64> = req
        .get("values")
        .and_then(Value::as_array)
        .map(|v| v.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    let op_in = req.get("operator").and_then(Value::as_str) == Some("In");
    statuses.iter().find_map(|cs| {
        let code = cs.state.as_ref()?.terminated.as_ref()?.exit_code;
        if code == 0 || name.is_some_and(|n| n != cs.name) {
            return None;
        }
        (values.contains(&i64::from(code)) == op_in).then_some((cs.name.as_str(), code))
    })
}

/// The verdict of the first rule matching `pod` (which has failed), if any.
pub fn evaluate(policy: &Value, pod: &Pod) -> Option<Verdict> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let status = pod.status.as_ref();
    let mut containers: Vec<ContainerStatus> = status
        .and_then(|s| s.init_container_statuses.clone())
        .unwrap_or_default();
    containers.extend(
        status
            .and_then(|s| s.container_statuses.clone())
            .unwrap_or_default(),
    );
    let conditions = status
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let rules = policy.get("rules").and_then(Value::as_array)?;
    for (i, rule) in rules.iter().enumerate() {
        let action = rule.get("action").and_then(Value::as_str).unwrap_or("");
        let mut matched: Option<String> = None;
        if let Some(req) = rule.get("onExitCodes").filter(|v| !v.is_null()) {
            if let Some((c, code)) = matching_container(req, &containers) {
                matched = Some(format!(
                    "Container {c} for pod {ns}/{name} failed with exit code {code} matching {action} rule at index {i}"
                ));
            }
        }
        if matched.is_none() {
            for pat in rule
                .get("onPodConditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let ty = pat.get("type").and_then(Value::as_str).unwrap_or("");
                let want = pat.get("status").and_then(Value::as_str).unwrap_or("True");
                if conditions.iter().any(|c| c.type_ == ty && c.status == want) {
                    matched = Some(format!(
                        "Pod {ns}/{name} has condition {ty} matching {action} rule at index {i}"
                    ));
                    break;
                }
            }
        }
        let Some(message) = matched else {
            continue;
        };
        match action {
            "FailJob" => return Some(Verdict::FailJob(message)),
            "Ignore" => return Some(Verdict::Ignore),
            "Count" => return Some(Verdict::Count),
            // FailIndex (backoffLimitPerIndex) is not implemented: counted.
            _ => return Some(Verdict::Count),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(code: i32, conds: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "n"},
            "status": {"phase": "Failed", "conditions": conds, "containerStatuses": [{
                "name": "main", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": code}}}]}
        }))
        .unwrap_or_default()
    }

    #[test]
    fn first_matching_rule_decides() {
        let policy = json!({"rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
            {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1]}},
        ]});
        let disrupted = pod(42, json!([{"type": "DisruptionTarget", "status": "True"}]));
        assert_eq!(evaluate(&policy, &disrupted), Some(Verdict::Ignore));
        assert_eq!(
            evaluate(&policy, &pod(42, json!([]))),
            Some(Verdict::FailJob(
                "Container main for pod n/p failed with exit code 42 matching FailJob rule at index 1".into()
            ))
        );
        assert_eq!(evaluate(&policy, &pod(3, json!([]))), Some(Verdict::Count));
        assert_eq!(evaluate(&policy, &pod(1, json!([]))), None);
        // Exit code 0 never matches.
        assert_eq!(evaluate(&policy, &pod(0, json!([]))), None);
    }
}
