//! Mutating and ValidatingWebhookConfigurations (upstream's
//! `pkg/apis/admissionregistration/v1/defaults.go` and
//! `pkg/apis/admissionregistration/validation`): the v1 defaults, and the
//! checks that keep a configuration callable — fully qualified unique
//! webhook names, a known AdmissionReview version, no side effects, one of
//! `url` (https, no query, fragment or user) or `service` (a path of
//! segments, a valid port), well-formed rules and selectors, and the
//! policies' and timeout's ranges.

use apimachinery::field::FieldError;
use k8s_openapi::api::admissionregistration::v1 as reg;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::{json, Value};

fn set<T>(field: &mut Option<T>, value: T) {
    if field.is_none() {
        *field = Some(value);
    }
}

fn client_config(c: &mut reg::WebhookClientConfig) {
    if let Some(s) = c.service.as_mut() {
        set(&mut s.port, 443);
    }
}

fn rules(rules: &mut Option<Vec<reg::RuleWithOperations>>) {
    for r in rules.iter_mut().flatten() {
        set(&mut r.scope, "*".into());
    }
}

/// The fields every webhook defaults alike.
macro_rules! common_defaults {
    ($w:expr) => {{
        let w = $w;
        set(&mut w.failure_policy, "Fail".into());
        set(&mut w.match_policy, "Equivalent".into());
        set(&mut w.namespace_selector, LabelSelector::default());
        set(&mut w.object_selector, LabelSelector::default());
        set(&mut w.timeout_seconds, 10);
        client_config(&mut w.client_config);
        rules(&mut w.rules);
    }};
}

pub fn mutating(c: &mut reg::MutatingWebhookConfiguration) {
    for w in c.webhooks.iter_mut().flatten() {
        common_defaults!(&mut *w);
        set(&mut w.reinvocation_policy, "Never".into());
    }
}

pub fn validating(c: &mut reg::ValidatingWebhookConfiguration) {
    for w in c.webhooks.iter_mut().flatten() {
        common_defaults!(w);
    }
}

fn strs(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

const OPERATIONS: &[&str] = &["*", "CONNECT", "CREATE", "DELETE", "UPDATE"];

fn validate_rule(rule: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let ops = strs(rule.get("operations"));
    if ops.is_empty() {
        errs.push(FieldError::required(format!("{path}.operations"), ""));
    } else if ops.len() > 1 && ops.contains(&"*") {
        errs.push(FieldError::invalid(
            format!("{path}.operations"),
            &json!(ops),
            "if '*' is present, must not specify other operations",
        ));
    }
    for (i, op) in ops.iter().enumerate() {
        if !OPERATIONS.contains(op) {
            errs.push(FieldError::not_supported(
                format!("{path}.operations[{i}]"),
                &json!(op),
                OPERATIONS,
            ));
        }
    }
    for (field, what) in [("apiGroups", "group"), ("apiVersions", "version")] {
        let items = strs(rule.get(field));
        if items.is_empty() {
            errs.push(FieldError::required(format!("{path}.{field}"), ""));
        } else if items.len() > 1 && items.contains(&"*") {
            errs.push(FieldError::invalid(
                format!("{path}.{field}"),
                &json!(items),
                format!("if '*' is present, must not specify other API {what}s"),
            ));
        }
        if field == "apiVersions" {
            for (i, v) in items.iter().enumerate() {
                if v.is_empty() {
                    errs.push(FieldError::required(format!("{path}.{field}[{i}]"), ""));
                }
            }
        }
    }
    validate_resources(&strs(rule.get("resources")), path, errs);
    if let Some(scope) = str_at(rule, "scope") {
        const SCOPES: &[&str] = &["*", "Cluster", "Namespaced"];
        if !SCOPES.contains(&scope) {
            errs.push(FieldError::not_supported(
                format!("{path}.scope"),
                &json!(scope),
                SCOPES,
            ));
        }
    }
}

/// Upstream's `validateResources`: `*` and `*/*` exclude what they cover,
/// as do `a/*` and `*/b`.
fn validate_resources(resources: &[&str], path: &str, errs: &mut Vec<FieldError>) {
    let field = format!("{path}.resources");
    if resources.is_empty() {
        errs.push(FieldError::required(field, ""));
        return;
    }
    let has = |r: &str| resources.contains(&r);
    for (i, r) in resources.iter().enumerate() {
        let at = format!("{field}[{i}]");
        if r.is_empty() {
            errs.push(FieldError::required(at, ""));
            continue;
        }
        let (res, sub) = r.split_once('/').unwrap_or((r, ""));
        if res.is_empty() || (r.contains('/') && sub.is_empty()) {
            errs.push(FieldError::invalid_str(
                at,
                r,
                "resource and subresource must not be empty",
            ));
            continue;
        }
        if sub.is_empty() && res != "*" && has("*") {
            errs.push(FieldError::invalid(
                field.clone(),
                &json!(resources),
                "if '*' is present, must not specify other resources without subresources",
            ));
        }
        if !sub.is_empty() && sub != "*" && has(&format!("{res}/*")) {
            errs.push(FieldError::invalid_str(
                at.clone(),
                r,
                format!("if '{res}/*' is present, must not specify {r}"),
            ));
        }
        if !sub.is_empty() && res != "*" && has(&format!("*/{sub}")) {
            errs.push(FieldError::invalid_str(
                at,
                r,
                format!("if '*/{sub}' is present, must not specify {r}"),
            ));
        }
    }
    if has("*/*") && resources.len() > 1 {
        errs.push(FieldError::invalid(
            field,
            &json!(resources),
            "if '*/*' is present, must not specify other resources",
        ));
    }
}

fn validate_client_config(cc: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) {
    let path = format!("{path}.clientConfig");
    let url = cc.and_then(|c| str_at(c, "url"));
    let service = cc.and_then(|c| c.get("service")).filter(|s| !s.is_null());
    match (url, service) {
        (Some(url), None) => {
            if let Err(why) = check_url(url) {
                errs.push(FieldError::invalid_str(format!("{path}.url"), url, why));
            }
        }
        (None, Some(svc)) => {
            let svc_path = format!("{path}.service");
            for f in ["name", "namespace"] {
                if str_at(svc, f).unwrap_or("").is_empty() {
                    errs.push(FieldError::required(format!("{svc_path}.{f}"), ""));
                }
            }
            if let Some(p) = str_at(svc, "path") {
                if let Err(why) = check_service_path(p) {
                    errs.push(FieldError::invalid_str(format!("{svc_path}.path"), p, why));
                }
            }
            let port = svc.get("port").and_then(Value::as_i64).unwrap_or(443);
            if !(1..=65535).contains(&port) {
                errs.push(FieldError::invalid(
                    format!("{svc_path}.port"),
                    &json!(port),
                    "port is not valid: must be between 1 and 65535, inclusive",
                ));
            }
        }
        _ => errs.push(FieldError::required(
            path,
            "exactly one of url or service is required",
        )),
    }
}

/// Upstream's `ValidateWebhookURL` (for a server outside the cluster).
fn check_url(url: &str) -> Result<(), String> {
    let Some(rest) = url.strip_prefix("https://") else {
        if !url.contains("://") {
            return Err("host must be specified".into());
        }
        let scheme = url.split("://").next().unwrap_or("");
        return Err(format!("'https' is the only allowed URL scheme{}", {
            if scheme.is_empty() {
                String::new()
            } else {
                format!("; {scheme:?} is not allowed")
            }
        }));
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if let Some((user, _)) = authority.rsplit_once('@') {
        return Err(format!(
            "{user:?}: user information is not permitted in the URL"
        ));
    }
    if authority.is_empty() {
        return Err("host must be specified".into());
    }
    if let Some((_, fragment)) = rest.split_once('#') {
        return Err(format!(
            "{fragment:?}: fragments are not permitted in the URL"
        ));
    }
    if let Some((_, query)) = rest.split_once('?') {
        return Err(format!(
            "{query:?}: query parameters are not permitted in the URL"
        ));
    }
    Ok(())
}

/// Upstream's `ValidateWebhookService` path rules.
fn check_service_path(p: &str) -> Result<(), String> {
    let Some(rest) = p.strip_prefix('/') else {
        return Err("must start with a '/'".into());
    };
    if rest.is_empty() {
        return Ok(());
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    for (i, segment) in rest.split('/').enumerate() {
        if segment.is_empty() {
            return Err(format!("segment[{i}] may not be empty"));
        }
        let bad = apimachinery::validation::is_dns1123_subdomain(segment);
        if !bad.is_empty() {
            return Err(format!("segment[{i}]: {}", bad.join(", ")));
        }
    }
    Ok(())
}

fn validate_selector(sel: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(sel) = sel.filter(|s| !s.is_null()) {
        if let Err(why) = apimachinery::labels::Selector::from_label_selector(sel) {
            errs.push(FieldError::invalid(path, sel, why));
        }
    }
}

fn one_of(w: &Value, field: &str, allowed: &[&str], path: &str, errs: &mut Vec<FieldError>) {
    if let Some(v) = w.get(field).filter(|v| !v.is_null()) {
        if !v.as_str().is_some_and(|s| allowed.contains(&s)) {
            errs.push(FieldError::not_supported(
                format!("{path}.{field}"),
                v,
                allowed,
            ));
        }
    }
}

fn validate_webhook(w: &Value, path: &str, mutating: bool, errs: &mut Vec<FieldError>) {
    let name = str_at(w, "name").unwrap_or("");
    if name.is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    } else {
        let bad = apimachinery::validation::is_dns1123_subdomain(name);
        if !bad.is_empty() {
            errs.push(FieldError::invalid_str(
                format!("{path}.name"),
                name,
                bad.join(","),
            ));
        } else if name.split('.').count() < 3 {
            errs.push(FieldError::invalid_str(
                format!("{path}.name"),
                name,
                "should be a domain with at least three segments separated by dots",
            ));
        }
    }
    for (i, rule) in w
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        validate_rule(rule, &format!("{path}.rules[{i}]"), errs);
    }
    one_of(w, "failurePolicy", &["Fail", "Ignore"], path, errs);
    one_of(w, "matchPolicy", &["Equivalent", "Exact"], path, errs);
    if mutating {
        one_of(w, "reinvocationPolicy", &["IfNeeded", "Never"], path, errs);
    }
    const SIDE_EFFECTS: &[&str] = &["None", "NoneOnDryRun"];
    match w.get("sideEffects").filter(|v| v.as_str() != Some("")) {
        None | Some(Value::Null) => errs.push(FieldError::required(
            format!("{path}.sideEffects"),
            "must specify one of None, NoneOnDryRun",
        )),
        Some(v) => {
            if !v.as_str().is_some_and(|s| SIDE_EFFECTS.contains(&s)) {
                errs.push(FieldError::not_supported(
                    format!("{path}.sideEffects"),
                    v,
                    SIDE_EFFECTS,
                ));
            }
        }
    }
    if let Some(t) = w.get("timeoutSeconds").and_then(Value::as_i64) {
        if !(1..=30).contains(&t) {
            errs.push(FieldError::invalid(
                format!("{path}.timeoutSeconds"),
                &json!(t),
                "the timeout value must be between 1 and 30 seconds",
            ));
        }
    }
    validate_selector(
        w.get("namespaceSelector"),
        &format!("{path}.namespaceSelector"),
        errs,
    );
    validate_selector(
        w.get("objectSelector"),
        &format!("{path}.objectSelector"),
        errs,
    );
    validate_client_config(w.get("clientConfig"), path, errs);
    let versions = strs(w.get("admissionReviewVersions"));
    let field = format!("{path}.admissionReviewVersions");
    if versions.is_empty() {
        errs.push(FieldError::required(
            field,
            "must specify one of v1, v1beta1",
        ));
    } else {
        let mut seen = Vec::new();
        for (i, v) in versions.iter().enumerate() {
            if seen.contains(v) {
                errs.push(FieldError::invalid_str(
                    format!("{field}[{i}]"),
                    v,
                    "duplicate version",
                ));
            }
            seen.push(v);
        }
        if !versions.iter().any(|v| matches!(*v, "v1" | "v1beta1")) {
            errs.push(FieldError::invalid(
                field,
                &json!(versions),
                "must include at least one of v1, v1beta1",
            ));
        }
    }
}

fn validate_configuration(obj: &Value, mutating: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names = Vec::new();
    for (i, w) in obj
        .get("webhooks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let path = format!("webhooks[{i}]");
        let name = str_at(w, "name").unwrap_or("");
        if !name.is_empty() && names.contains(&name) {
            errs.push(FieldError::duplicate(format!("{path}.name"), &json!(name)));
        }
        names.push(name);
        validate_webhook(w, &path, mutating, &mut errs);
    }
    errs
}

pub fn validate_mutating(obj: &Value) -> Vec<FieldError> {
    validate_configuration(obj, true)
}

pub fn validate_validating(obj: &Value) -> Vec<FieldError> {
    validate_configuration(obj, false)
}

pub fn validate_mutating_update(obj: &Value, _old: &Value) -> Vec<FieldError> {
    validate_configuration(obj, true)
}

pub fn validate_validating_update(obj: &Value, _old: &Value) -> Vec<FieldError> {
    validate_configuration(obj, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(extra: Value) -> Value {
        let mut w = json!({
            "name": "deny.example.com",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "clientConfig": {"url": "https://127.0.0.1:8443/validate"},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}]
        });
        for (k, v) in extra.as_object().unwrap() {
            w[k] = v.clone();
        }
        json!({"webhooks": [w]})
    }

    fn messages(obj: &Value) -> Vec<String> {
        validate_validating(obj)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_complete_configuration_is_valid_and_defaulted() {
        assert!(messages(&hook(json!({}))).is_empty());
        let mut c: reg::MutatingWebhookConfiguration = serde_json::from_value(hook(
            json!({"clientConfig": {"service": {"namespace": "ns", "name": "svc"}}}),
        ))
        .unwrap();
        mutating(&mut c);
        let v = serde_json::to_value(&c).unwrap();
        let w = &v["webhooks"][0];
        assert_eq!(w["failurePolicy"], "Fail");
        assert_eq!(w["matchPolicy"], "Equivalent");
        assert_eq!(w["reinvocationPolicy"], "Never");
        assert_eq!(w["timeoutSeconds"], 10);
        assert_eq!(w["namespaceSelector"], json!({}));
        assert_eq!(w["clientConfig"]["service"]["port"], 443);
        assert_eq!(w["rules"][0]["scope"], "*");
        assert!(validate_mutating(&v).is_empty());
    }

    #[test]
    fn errors_read_like_upstream() {
        assert_eq!(
            messages(&hook(json!({"name": "k8s.io"}))),
            ["webhooks[0].name: Invalid value: \"k8s.io\": should be a domain with at least three segments separated by dots"]
        );
        assert_eq!(
            messages(&hook(json!({"sideEffects": "Some"}))),
            ["webhooks[0].sideEffects: Unsupported value: \"Some\": supported values: \"None\", \"NoneOnDryRun\""]
        );
        assert_eq!(
            messages(&hook(json!({"sideEffects": ""}))),
            ["webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun"]
        );
        assert_eq!(
            messages(&hook(json!({"admissionReviewVersions": []}))),
            ["webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1"]
        );
        assert_eq!(
            messages(&hook(json!({"clientConfig": {}}))),
            ["webhooks[0].clientConfig: Required value: exactly one of url or service is required"]
        );
        assert_eq!(
            messages(&hook(json!({"timeoutSeconds": 31}))),
            ["webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and 30 seconds"]
        );
        assert_eq!(
            messages(&hook(json!({"failurePolicy": "other"}))),
            ["webhooks[0].failurePolicy: Unsupported value: \"other\": supported values: \"Fail\", \"Ignore\""]
        );
        let two =
            json!({"webhooks": [hook(json!({}))["webhooks"][0], hook(json!({}))["webhooks"][0]]});
        assert_eq!(
            messages(&two),
            ["webhooks[1].name: Duplicate value: \"deny.example.com\""]
        );
    }

    #[test]
    fn urls_paths_and_rules() {
        assert!(check_url("http://example.com")
            .unwrap_err()
            .contains("https"));
        assert_eq!(
            check_url("https:///x").unwrap_err(),
            "host must be specified"
        );
        assert!(check_url("https://example.com/#b")
            .unwrap_err()
            .contains("fragments"));
        assert!(check_url("https://example.com?a=b")
            .unwrap_err()
            .contains("query"));
        assert!(check_url("https://u@example.com/")
            .unwrap_err()
            .contains("user"));
        assert_eq!(
            check_service_path("foo/").unwrap_err(),
            "must start with a '/'"
        );
        assert_eq!(
            check_service_path("//").unwrap_err(),
            "segment[0] may not be empty"
        );
        assert_eq!(
            check_service_path("/foo//bar/").unwrap_err(),
            "segment[1] may not be empty"
        );
        assert!(check_service_path("/validate").is_ok() && check_service_path("/").is_ok());
        let bad_ops = hook(
            json!({"rules": [{"operations": ["CREATE", "*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/*", "pods"]}]}),
        );
        let m = messages(&bad_ops);
        assert!(
            m[0].ends_with("if '*' is present, must not specify other operations"),
            "{m:?}"
        );
        assert!(
            m[1].ends_with("if '*/*' is present, must not specify other resources"),
            "{m:?}"
        );
        let sub = hook(
            json!({"rules": [{"operations": ["*"], "apiGroups": ["a"], "apiVersions": ["a"], "resources": ["a/*", "a/x"]}]}),
        );
        assert_eq!(
            messages(&sub),
            ["webhooks[0].rules[0].resources[1]: Invalid value: \"a/x\": if 'a/*' is present, must not specify a/x"]
        );
    }
}
