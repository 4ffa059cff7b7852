//! Selectable fields per kind (upstream's `GetAttrs`/`ToSelectableFields` in
//! each strategy), beyond metadata.name and metadata.namespace.

use serde_json::Value;

fn s(v: &Value, path: &[&str]) -> String {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(n) => cur = n,
            None => return String::new(),
        }
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

pub fn pod(v: &Value) -> Vec<(&'static str, String)> {
    vec![
        ("spec.nodeName", s(v, &["spec", "nodeName"])),
        ("spec.restartPolicy", s(v, &["spec", "restartPolicy"])),
        ("spec.schedulerName", s(v, &["spec", "schedulerName"])),
        (
            "spec.serviceAccountName",
            s(v, &["spec", "serviceAccountName"]),
        ),
        ("spec.hostNetwork", {
            let h = s(v, &["spec", "hostNetwork"]);
            if h.is_empty() {
                "false".into()
            } else {
                h
            }
        }),
        ("status.phase", s(v, &["status", "phase"])),
        ("status.podIP", s(v, &["status", "podIP"])),
        (
            "status.nominatedNodeName",
            s(v, &["status", "nominatedNodeName"]),
        ),
    ]
}

pub fn node(v: &Value) -> Vec<(&'static str, String)> {
    let unschedulable = v
        .pointer("/spec/unschedulable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    vec![("spec.unschedulable", unschedulable.to_string())]
}

pub fn event(v: &Value) -> Vec<(&'static str, String)> {
    let mut out = vec![
        ("reason", s(v, &["reason"])),
        ("reportingComponent", s(v, &["reportingComponent"])),
        ("source", s(v, &["source", "component"])),
        ("type", s(v, &["type"])),
    ];
    for f in [
        "kind",
        "namespace",
        "name",
        "uid",
        "apiVersion",
        "resourceVersion",
        "fieldPath",
    ] {
        let name: &'static str = match f {
            "kind" => "involvedObject.kind",
            "namespace" => "involvedObject.namespace",
            "name" => "involvedObject.name",
            "uid" => "involvedObject.uid",
            "apiVersion" => "involvedObject.apiVersion",
            "resourceVersion" => "involvedObject.resourceVersion",
            _ => "involvedObject.fieldPath",
        };
        out.push((name, s(v, &["involvedObject", f])));
    }
    out
}

pub fn secret(v: &Value) -> Vec<(&'static str, String)> {
    vec![("type", s(v, &["type"]))]
}

pub fn namespace(v: &Value) -> Vec<(&'static str, String)> {
    vec![("status.phase", s(v, &["status", "phase"]))]
}

pub fn replicaset(v: &Value) -> Vec<(&'static str, String)> {
    vec![("status.replicas", {
        let r = s(v, &["status", "replicas"]);
        if r.is_empty() {
            "0".into()
        } else {
            r
        }
    })]
}

pub fn job(v: &Value) -> Vec<(&'static str, String)> {
    vec![("status.successful", {
        let r = s(v, &["status", "succeeded"]);
        if r.is_empty() {
            "0".into()
        } else {
            r
        }
    })]
}

pub fn csr(v: &Value) -> Vec<(&'static str, String)> {
    vec![("spec.signerName", s(v, &["spec", "signerName"]))]
}

pub fn service(v: &Value) -> Vec<(&'static str, String)> {
    vec![
        ("spec.clusterIP", s(v, &["spec", "clusterIP"])),
        ("spec.type", s(v, &["spec", "type"])),
    ]
}

/// The names of the selectable fields of a kind (for 400s on unknown field selectors).
pub fn names(attrs: Option<crate::strategy::AttrsFn>) -> Vec<&'static str> {
    let mut out = vec!["metadata.name", "metadata.namespace"];
    if let Some(f) = attrs {
        out.extend(f(&Value::Null).into_iter().map(|(k, _)| k));
    }
    out
}
