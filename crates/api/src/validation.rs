//! Kind-specific validation beyond object metadata (upstream's
//! `pkg/apis/*/validation`). Works on the decoded JSON, so field paths are the
//! JSON ones (`spec.containers[0].name`).

use std::collections::HashSet;

use apimachinery::field::FieldError;
use apimachinery::labels::Selector;
use apimachinery::validation::is_dns1123_label;
use serde_json::{json, Value};

fn arr<'a>(v: &'a Value, ptr: &str) -> &'a [Value] {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn containers(
    list: &[Value],
    path: &str,
    required: bool,
    names: &mut HashSet<String>,
    errs: &mut Vec<FieldError>,
) {
    if list.is_empty() && required {
        errs.push(FieldError::required(path, ""));
    }
    for (i, c) in list.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            errs.push(FieldError::required(format!("{p}.name"), ""));
        } else {
            for m in is_dns1123_label(name) {
                errs.push(FieldError::invalid_str(format!("{p}.name"), name, m));
            }
            if !names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(format!("{p}.name"), &json!(name)));
            }
        }
        if c.get("image")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .is_empty()
        {
            errs.push(FieldError::required(format!("{p}.image"), ""));
        }
        for (j, port) in arr(c, "/ports").iter().enumerate() {
            let n = port
                .get("containerPort")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if !(1..=65535).contains(&n) {
                errs.push(FieldError::invalid(
                    format!("{p}.ports[{j}].containerPort"),
                    &json!(n),
                    "must be between 1 and 65535, inclusive",
                ));
            }
        }
    }
}

/// A pod spec at `path` (`spec` or `spec.template.spec`).
pub fn pod_spec(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let mut names = HashSet::new();
    containers(
        arr(spec, "/containers"),
        &format!("{path}.containers"),
        true,
        &mut names,
        errs,
    );
    containers(
        arr(spec, "/initContainers"),
        &format!("{path}.initContainers"),
        false,
        &mut names,
        errs,
    );
    let rp = spec
        .get("restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("Always");
    if !["Always", "OnFailure", "Never"].contains(&rp) {
        errs.push(FieldError::not_supported(
            format!("{path}.restartPolicy"),
            &json!(rp),
            &["Always", "OnFailure", "Never"],
        ));
    }
    let mut vols = HashSet::new();
    for (i, v) in arr(spec, "/volumes").iter().enumerate() {
        let name = v.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            errs.push(FieldError::required(
                format!("{path}.volumes[{i}].name"),
                "",
            ));
        } else if !vols.insert(name) {
            errs.push(FieldError::duplicate(
                format!("{path}.volumes[{i}].name"),
                &json!(name),
            ));
        }
    }
}

pub fn pod(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    pod_spec(obj.get("spec").unwrap_or(&Value::Null), "spec", &mut errs);
    errs
}

/// Pod spec fields are immutable once created, except the ones upstream lets change.
pub fn pod_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = pod(new);
    let strip = |v: &Value| {
        let mut s = v.get("spec").cloned().unwrap_or(Value::Null);
        if let Some(m) = s.as_object_mut() {
            m.remove("activeDeadlineSeconds");
            m.remove("tolerations");
            m.remove("schedulingGates");
            if let Some(cs) = m.get_mut("containers").and_then(Value::as_array_mut) {
                for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                    c.remove("image");
                }
            }
        }
        s
    };
    if strip(new) != strip(old) {
        errs.push(FieldError::forbidden("spec", "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"));
    }
    errs
}

/// Workloads: a selector that selects the template's labels, and a valid template.
fn workload(obj: &Value, selector_required: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    match spec.get("selector") {
        None | Some(Value::Null) if selector_required => {
            errs.push(FieldError::required("spec.selector", ""))
        }
        Some(sel) if !sel.is_null() => match Selector::from_label_selector(sel) {
            Ok(s) if s.is_empty() => errs.push(FieldError::invalid(
                "spec.selector",
                sel,
                "empty selector is invalid for deployment",
            )),
            Ok(s) => {
                let labels = spec
                    .pointer("/template/metadata/labels")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                if !s.matches(&labels) {
                    errs.push(FieldError::invalid(
                        "spec.template.metadata.labels",
                        &Value::Object(labels.clone()),
                        "`selector` does not match template `labels`",
                    ));
                }
            }
            Err(e) => errs.push(FieldError::invalid("spec.selector", sel, e)),
        },
        _ => {}
    }
    if let Some(r) = spec.get("replicas").and_then(Value::as_i64) {
        if r < 0 {
            errs.push(FieldError::invalid(
                "spec.replicas",
                &json!(r),
                "must be greater than or equal to 0",
            ));
        }
    }
    pod_spec(
        spec.pointer("/template/spec").unwrap_or(&Value::Null),
        "spec.template.spec",
        &mut errs,
    );
    errs
}

pub fn deployment(obj: &Value) -> Vec<FieldError> {
    workload(obj, true)
}

pub fn job(obj: &Value) -> Vec<FieldError> {
    let mut errs = workload(obj, false);
    let rp = obj
        .pointer("/spec/template/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !["OnFailure", "Never"].contains(&rp) {
        errs.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            &json!(rp),
            &["OnFailure", "Never"],
        ));
    }
    errs
}

pub fn service(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    if !["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"].contains(&ty) {
        errs.push(FieldError::not_supported(
            "spec.type",
            &json!(ty),
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ));
    }
    let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None");
    let ports = arr(spec, "/ports");
    if ports.is_empty() && ty != "ExternalName" && !headless {
        errs.push(FieldError::required("spec.ports", ""));
    }
    if ty == "ExternalName"
        && spec
            .get("externalName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
    {
        errs.push(FieldError::required("spec.externalName", ""));
    }
    let mut names = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
        if !(1..=65535).contains(&port) {
            errs.push(FieldError::invalid(
                format!("spec.ports[{i}].port"),
                &json!(port),
                "must be between 1 and 65535, inclusive",
            ));
        }
        let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
        if !["TCP", "UDP", "SCTP"].contains(&proto) {
            errs.push(FieldError::not_supported(
                format!("spec.ports[{i}].protocol"),
                &json!(proto),
                &["SCTP", "TCP", "UDP"],
            ));
        }
        let name = p.get("name").and_then(Value::as_str).unwrap_or("");
        if ports.len() > 1 && name.is_empty() {
            errs.push(FieldError::required(format!("spec.ports[{i}].name"), ""));
        }
        if !name.is_empty() && !names.insert(name) {
            errs.push(FieldError::duplicate(
                format!("spec.ports[{i}].name"),
                &json!(name),
            ));
        }
    }
    errs
}

/// The priority classes every cluster has (upstream's
/// `SystemPriorityClasses`): name, value and description.
pub const SYSTEM_PRIORITY_CLASSES: &[(&str, i64, &str)] = &[
    (
        "system-node-critical",
        2_000_001_000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    (
        "system-cluster-critical",
        2_000_000_000,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
];

/// The highest value a user's PriorityClass may have.
pub const HIGHEST_USER_DEFINABLE_PRIORITY: i64 = 1_000_000_000;

/// Why `name` with `value` and `global_default` is no system class, like
/// upstream's `IsKnownSystemPriorityClass`.
fn system_class_error(name: &str, value: i64, global_default: bool) -> Option<String> {
    let Some((_, want, _)) = SYSTEM_PRIORITY_CLASSES.iter().find(|(n, _, _)| *n == name) else {
        return Some(format!("{name:?} is not a known system priority class"));
    };
    if value != *want {
        return Some(format!("value of {name} PriorityClass must be {want}"));
    }
    global_default.then(|| format!("globalDefault of {name} PriorityClass must be false"))
}

fn preemption_policy(obj: &Value, errs: &mut Vec<FieldError>) {
    if let Some(p) = obj.get("preemptionPolicy").filter(|p| !p.is_null()) {
        let known = ["Never", "PreemptLowerPriority"];
        if !p.as_str().is_some_and(|s| known.contains(&s)) {
            errs.push(FieldError::not_supported("preemptionPolicy", p, &known));
        }
    }
}

/// scheduling.k8s.io PriorityClass (upstream's `ValidatePriorityClass`):
/// `system-` names are reserved for the system classes, user values are at
/// most one billion.
pub fn priority_class(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let value = obj.get("value").and_then(Value::as_i64).unwrap_or(0);
    let global = obj
        .get("globalDefault")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if name.starts_with("system-") {
        if let Some(e) = system_class_error(name, value, global) {
            errs.push(FieldError::forbidden(
                "metadata.name",
                format!("priority class names with 'system-' prefix are reserved for system use only. error: {e}"),
            ));
        }
    } else if value > HIGHEST_USER_DEFINABLE_PRIORITY {
        errs.push(FieldError::forbidden(
            "value",
            format!("maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"),
        ));
    }
    preemption_policy(obj, &mut errs);
    errs
}

/// A PriorityClass's value and preemptionPolicy never change.
pub fn priority_class_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = priority_class(new);
    if new.get("value") != old.get("value") {
        errs.push(FieldError::forbidden(
            "value",
            "may not be changed in an update.",
        ));
    }
    let policy = |v: &Value| v.get("preemptionPolicy").cloned().unwrap_or(Value::Null);
    if policy(new) != policy(old) {
        errs.push(FieldError::invalid(
            "preemptionPolicy",
            &policy(new),
            "field is immutable",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_need_named_containers_with_images() {
        let errs =
            pod(&json!({"spec": {"containers": [{"name": "a"}, {"name": "a", "image": "x"}]}}));
        let fields: Vec<String> = errs.iter().map(|e| e.field.clone()).collect();
        assert_eq!(
            fields,
            vec!["spec.containers[0].image", "spec.containers[1].name"]
        );
        assert_eq!(
            pod(&json!({"spec": {}}))[0].to_string(),
            "spec.containers: Required value"
        );
    }

    #[test]
    fn deployment_selector_must_match_template() {
        let d = json!({"spec": {"selector": {"matchLabels": {"app": "a"}}, "template": {"metadata": {"labels": {"app": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let errs = deployment(&d);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec.template.metadata.labels");
    }
}
