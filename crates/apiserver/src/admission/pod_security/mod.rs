//! The PodSecurity admission plugin (upstream's
//! `plugin/pkg/admission/security/podsecurity` on
//! `k8s.io/pod-security-admission`): a namespace's
//! `pod-security.kubernetes.io/{enforce,warn,audit}` labels (with their
//! `-version` labels) choose a Pod Security Standards level. Pods that
//! violate the enforce level are refused with upstream's 403; pods and the
//! pod templates of workload objects that violate the warn level are
//! admitted with upstream's warning (templates are never refused, as
//! upstream). Namespace labels are checked: a level or version that is not
//! valid is refused, and making the enforce level stricter warns about the
//! existing pods that violate it.
//!
//! Every version (`latest`, `v1.N`) applies the current standards. Audit
//! annotations and the plugin's configuration file (defaults, exemptions)
//! are not implemented: namespaces without labels are privileged.

pub mod checks;

use apimachinery::ApiError;
use async_trait::async_trait;
use serde_json::Value;

use super::{Attributes, Operation, Plugin};
use crate::state::ApiState;
use checks::Level;

const PREFIX: &str = "pod-security.kubernetes.io/";
const MODES: [&str; 3] = ["enforce", "audit", "warn"];
/// At most this many existing pods are named in a namespace warning.
const MAX_POD_WARNINGS: usize = 10;

/// `PodSecurityConfiguration` (`pod-security.admission.config.k8s.io/v1`,
/// from `--admission-control-config-file`): the levels of namespaces that
/// have no label for a mode, and the users, namespaces and runtime classes
/// that are exempt.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    /// `defaults` as the labels they stand in for
    /// (`pod-security.kubernetes.io/enforce` …).
    defaults: serde_json::Map<String, Value>,
    exempt_users: Vec<String>,
    exempt_namespaces: Vec<String>,
    exempt_runtime_classes: Vec<String>,
}

impl Settings {
    /// From the plugin's configuration object; upstream's errors.
    pub fn from_configuration(c: &Value) -> Result<Self, String> {
        let kind = c.get("kind").and_then(Value::as_str).unwrap_or("");
        let version = c.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        if kind != "PodSecurityConfiguration"
            || !matches!(
                version,
                "pod-security.admission.config.k8s.io/v1"
                    | "pod-security.admission.config.k8s.io/v1beta1"
            )
        {
            return Err(format!(
                "PodSecurity: expected a PodSecurityConfiguration of pod-security.admission.config.k8s.io/v1, got {kind:?} of {version:?}"
            ));
        }
        let mut defaults = serde_json::Map::new();
        let given = c.get("defaults").and_then(Value::as_object);
        for mode in MODES {
            let level = given
                .and_then(|d| d.get(mode))
                .and_then(Value::as_str)
                .unwrap_or("privileged");
            if Level::parse(level).is_none() {
                return Err(format!(
                    "defaults.{mode}: Invalid value: {level:?}: must be one of privileged, baseline, restricted"
                ));
            }
            let ver = given
                .and_then(|d| d.get(&format!("{mode}-version")))
                .and_then(Value::as_str)
                .unwrap_or("latest");
            if !valid_version(ver) {
                return Err(format!(
                    "defaults.{mode}-version: Invalid value: {ver:?}: must be 'latest' or of the form 'v1.x'"
                ));
            }
            defaults.insert(format!("{PREFIX}{mode}"), Value::from(level));
            defaults.insert(format!("{PREFIX}{mode}-version"), Value::from(ver));
        }
        let list = |k: &str| -> Vec<String> {
            c.pointer(&format!("/exemptions/{k}"))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(Self {
            defaults,
            exempt_users: list("usernames"),
            exempt_namespaces: list("namespaces"),
            exempt_runtime_classes: list("runtimeClasses"),
        })
    }

    /// A namespace's labels over the defaults.
    fn labels(
        &self,
        labels: Option<&serde_json::Map<String, Value>>,
    ) -> serde_json::Map<String, Value> {
        let mut all = self.defaults.clone();
        if let Some(l) = labels {
            for (k, v) in l {
                if k.starts_with(PREFIX) {
                    all.insert(k.clone(), v.clone());
                }
            }
        }
        all
    }

    fn exempt(&self, a: &Attributes<'_>, spec: &Value) -> bool {
        let class = spec
            .get("runtimeClassName")
            .and_then(Value::as_str)
            .unwrap_or("");
        self.exempt_users.iter().any(|u| *u == a.user.name)
            || self.exempt_namespaces.iter().any(|n| n == a.namespace)
            || (!class.is_empty() && self.exempt_runtime_classes.iter().any(|c| c == class))
    }
}

#[derive(Default)]
pub struct PodSecurity {
    settings: Settings,
}

impl PodSecurity {
    pub fn new(settings: Settings) -> Self {
        Self { settings }
    }
}

/// `level:version` as upstream prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Policy {
    level: Level,
    version: String,
}

impl Policy {
    fn text(&self) -> String {
        format!("{}:{}", self.level.as_str(), self.version)
    }
}

fn valid_version(v: &str) -> bool {
    v == "latest"
        || v.strip_prefix("v1.")
            .is_some_and(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()))
}

/// The policy of `mode` in `labels`; privileged:latest when unset.
fn policy(labels: Option<&serde_json::Map<String, Value>>, mode: &str) -> Policy {
    let get = |k: String| labels.and_then(|l| l.get(&k)).and_then(Value::as_str);
    Policy {
        level: get(format!("{PREFIX}{mode}"))
            .and_then(Level::parse)
            .unwrap_or(Level::Privileged),
        version: get(format!("{PREFIX}{mode}-version"))
            .filter(|v| valid_version(v))
            .unwrap_or("latest")
            .to_string(),
    }
}

/// Upstream's namespace label errors.
fn label_errors(labels: Option<&serde_json::Map<String, Value>>) -> Vec<String> {
    let mut errs = Vec::new();
    for mode in MODES {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        let key = format!("{PREFIX}{mode}");
        if let Some(l) = get(&key).filter(|l| Level::parse(l).is_none()) {
            errs.push(format!(
                "metadata.labels[{key}]: Invalid value: {l:?}: must be one of privileged, baseline, restricted"
            ));
        }
        let vkey = format!("{PREFIX}{mode}-version");
        if let Some(v) = get(&vkey).filter(|v| !valid_version(v)) {
            errs.push(format!(
                "metadata.labels[{vkey}]: Invalid value: {v:?}: must be \"latest\" or \"v1.x\""
            ));
        }
    }
    errs
}

/// A workload's pod template (metadata, spec), if the resource has one.
fn template<'a>(group: &str, resource: &str, obj: &'a Value) -> Option<(&'a Value, &'a Value)> {
    let path = match (group, resource) {
        ("", "podtemplates") => "/template",
        ("", "replicationcontrollers")
        | ("apps", "deployments" | "replicasets" | "statefulsets" | "daemonsets")
        | ("batch", "jobs") => "/spec/template",
        ("batch", "cronjobs") => "/spec/jobTemplate/spec/template",
        _ => return None,
    };
    let t = obj.pointer(path)?;
    Some((
        t.get("metadata").unwrap_or(&Value::Null),
        t.get("spec").unwrap_or(&Value::Null),
    ))
}

fn namespace_labels(state: &ApiState, ns: &str) -> Option<serde_json::Map<String, Value>> {
    let key = format!("{}namespaces/{ns}", state.prefix);
    let obj = state.cacher.get(&key).0.and_then(|o| o.value().ok())?;
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
}

/// Whether an update of a pod changes what the checks read (upstream
/// ignores metadata-only and status updates).
fn pod_spec_changed(a: &Attributes<'_>, obj: &Value) -> bool {
    match a.old {
        None => true,
        Some(old) => {
            old.get("spec") != obj.get("spec")
                || old.pointer("/metadata/annotations") != obj.pointer("/metadata/annotations")
        }
    }
}

impl PodSecurity {
    fn namespace_update(
        &self,
        state: &ApiState,
        a: &Attributes<'_>,
        obj: &Value,
    ) -> Result<Vec<String>, ApiError> {
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
        let errs = label_errors(labels);
        if !errs.is_empty() {
            let all = if errs.len() == 1 {
                errs[0].clone()
            } else {
                format!("[{}]", errs.join(", "))
            };
            return Err(ApiError::new(
                422,
                "Invalid",
                format!("namespaces {:?} is invalid: {all}", a.name),
            ));
        }
        let new = policy(Some(&self.settings.labels(labels)), "enforce");
        let old_labels = a
            .old
            .and_then(|o| o.pointer("/metadata/labels"))
            .and_then(Value::as_object);
        let old = policy(Some(&self.settings.labels(old_labels)), "enforce");
        if a.operation != Operation::Update || new == old || new.level == Level::Privileged {
            return Ok(Vec::new());
        }
        // Existing pods that the new enforce level would refuse.
        let prefix = format!("{}pods/{}/", state.prefix, a.name);
        let (pods, _) = state.cacher.list(&prefix, &|_| true);
        let mut offenders = Vec::new();
        for p in pods.iter() {
            let Ok(pod) = p.value() else { continue };
            let v = checks::evaluate(
                new.level,
                pod.get("metadata").unwrap_or(&Value::Null),
                pod.get("spec").unwrap_or(&Value::Null),
            );
            if !v.is_empty() {
                offenders.push(format!(
                    "{}: {}",
                    apimachinery::meta::name(&pod),
                    v.iter().map(|x| x.reason).collect::<Vec<_>>().join(", ")
                ));
            }
        }
        if offenders.is_empty() {
            return Ok(Vec::new());
        }
        let mut warnings = vec![format!(
            "existing pods in namespace {:?} violate the new PodSecurity enforce level {:?}",
            a.name,
            new.text()
        )];
        offenders.sort();
        let extra = offenders.len().saturating_sub(MAX_POD_WARNINGS);
        warnings.extend(offenders.into_iter().take(MAX_POD_WARNINGS));
        if extra > 0 {
            warnings.push(format!("(and {extra} other pods)"));
        }
        Ok(warnings)
    }
}

#[async_trait]
impl Plugin for PodSecurity {
    fn name(&self) -> &'static str {
        "PodSecurity"
    }

    async fn validate_warn(
        &self,
        state: &ApiState,
        a: &Attributes<'_>,
        obj: &Value,
    ) -> Result<Vec<String>, ApiError> {
        if a.operation == Operation::Delete {
            return Ok(Vec::new());
        }
        if a.is("", "namespaces") {
            return self.namespace_update(state, a, obj);
        }
        let pod = a.group.is_empty()
            && a.resource == "pods"
            && matches!(a.subresource, "" | "ephemeralcontainers");
        let (meta, spec) = if pod {
            if !pod_spec_changed(a, obj) {
                return Ok(Vec::new());
            }
            (
                obj.get("metadata").unwrap_or(&Value::Null),
                obj.get("spec").unwrap_or(&Value::Null),
            )
        } else if a.subresource.is_empty() {
            match template(a.group, a.resource, obj) {
                Some(t) => t,
                None => return Ok(Vec::new()),
            }
        } else {
            return Ok(Vec::new());
        };
        if self.settings.exempt(a, spec) {
            return Ok(Vec::new());
        }
        let labels = self
            .settings
            .labels(namespace_labels(state, a.namespace).as_ref());
        let enforce = policy(Some(&labels), "enforce");
        let warn = policy(Some(&labels), "warn");
        if pod && enforce.level != Level::Privileged {
            let v = checks::evaluate(enforce.level, meta, spec);
            if !v.is_empty() {
                return Err(a.forbidden(format!(
                    "violates PodSecurity {:?}: {}",
                    enforce.text(),
                    checks::describe(&v)
                )));
            }
        }
        // Workloads are warned about their enforce level too (upstream
        // warns for templates that the enforce level would refuse).
        let mut warnings = Vec::new();
        let mut levels = vec![warn];
        if !pod {
            levels.push(enforce);
        }
        levels.sort_by(|x, y| y.level.cmp(&x.level));
        if let Some(strictest) = levels.into_iter().find(|p| p.level != Level::Privileged) {
            let v = checks::evaluate(strictest.level, meta, spec);
            if !v.is_empty() {
                warnings.push(format!(
                    "would violate PodSecurity {:?}: {}",
                    strictest.text(),
                    checks::describe(&v)
                ));
            }
        }
        Ok(warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_choose_the_policy_and_bad_ones_are_refused() {
        let labels = json!({"pod-security.kubernetes.io/enforce": "restricted",
                            "pod-security.kubernetes.io/enforce-version": "v1.30",
                            "pod-security.kubernetes.io/warn": "baseline"});
        let l = labels.as_object();
        assert_eq!(
            policy(l, "enforce"),
            Policy {
                level: Level::Restricted,
                version: "v1.30".into()
            }
        );
        assert_eq!(policy(l, "warn").text(), "baseline:latest");
        assert_eq!(policy(l, "audit").text(), "privileged:latest");
        assert!(label_errors(l).is_empty());
        let bad = json!({"pod-security.kubernetes.io/enforce": "strict", "pod-security.kubernetes.io/warn-version": "2"});
        let errs = label_errors(bad.as_object());
        assert_eq!(errs.len(), 2);
        assert!(
            errs[0].contains("must be one of privileged, baseline, restricted"),
            "{errs:?}"
        );
    }

    #[test]
    fn configuration_defaults_and_exemptions() {
        let c = json!({"apiVersion": "pod-security.admission.config.k8s.io/v1", "kind": "PodSecurityConfiguration",
            "defaults": {"enforce": "baseline", "warn": "restricted", "warn-version": "v1.30"},
            "exemptions": {"usernames": ["ci"], "namespaces": ["kube-system"], "runtimeClasses": ["kata"]}});
        let s = Settings::from_configuration(&c).unwrap();
        let none = s.labels(None);
        assert_eq!(policy(Some(&none), "enforce").text(), "baseline:latest");
        assert_eq!(policy(Some(&none), "warn").text(), "restricted:v1.30");
        assert_eq!(policy(Some(&none), "audit").text(), "privileged:latest");
        // A namespace's label wins over the default.
        let ns = json!({"pod-security.kubernetes.io/enforce": "privileged"});
        let merged = s.labels(ns.as_object());
        assert_eq!(policy(Some(&merged), "enforce").text(), "privileged:latest");
        assert_eq!(policy(Some(&merged), "warn").text(), "restricted:v1.30");
        let bad = json!({"apiVersion": "pod-security.admission.config.k8s.io/v1", "kind": "PodSecurityConfiguration", "defaults": {"enforce": "strict"}});
        assert_eq!(
            Settings::from_configuration(&bad).unwrap_err(),
            "defaults.enforce: Invalid value: \"strict\": must be one of privileged, baseline, restricted"
        );
        assert!(Settings::from_configuration(&json!({"kind": "Other"})).is_err());
        let user = component_base::authn::User {
            name: "ci".into(),
            ..Default::default()
        };
        let other = component_base::authn::User::default();
        let attrs = |u: &'static component_base::authn::User, ns: &'static str| Attributes {
            operation: Operation::Create,
            group: "",
            version: "v1",
            kind: "Pod",
            resource: "pods",
            subresource: "",
            namespace: ns,
            name: "p",
            old: None,
            dry_run: false,
            user: u,
        };
        let (user, other): (&'static _, &'static _) =
            (Box::leak(Box::new(user)), Box::leak(Box::new(other)));
        assert!(s.exempt(&attrs(user, "default"), &json!({})));
        assert!(s.exempt(&attrs(other, "kube-system"), &json!({})));
        assert!(s.exempt(
            &attrs(other, "default"),
            &json!({"runtimeClassName": "kata"})
        ));
        assert!(!s.exempt(
            &attrs(other, "default"),
            &json!({"runtimeClassName": "runc"})
        ));
    }

    #[test]
    fn templates_are_found_in_every_workload_kind() {
        let d = json!({"spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {"hostNetwork": true}}}});
        assert_eq!(
            template("apps", "deployments", &d).unwrap().1["hostNetwork"],
            true
        );
        let cj =
            json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"hostPID": true}}}}}});
        assert_eq!(
            template("batch", "cronjobs", &cj).unwrap().1["hostPID"],
            true
        );
        assert!(template("", "configmaps", &d).is_none());
    }
}
