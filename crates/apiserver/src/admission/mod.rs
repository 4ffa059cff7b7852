//! Admission control (upstream's `k8s.io/apiserver/pkg/admission` and
//! `plugin/pkg/admission`): after decoding and defaulting, every write
//! passes the mutating plugins in order, then validation, then the
//! validating plugins, then storage.
//!
//! [`registry`] lists every plugin this server has, in upstream's order
//! (`AllOrderedPlugins`). `--enable-admission-plugins` and
//! `--disable-admission-plugins` choose among them like upstream: plugins
//! run in the registry's order whatever the order of the flag.

mod config_file;
mod default_class;
mod limit_ranger;
mod namespace_lifecycle;
mod node_restriction;
mod node_taints;
pub mod pod_security;
mod priority;
mod resource_quota;
mod runtime_class;
mod serviceaccount;
mod storage_protection;
mod tolerations;
pub mod webhook;

use apimachinery::{ApiError, GroupResource};
use async_trait::async_trait;
use serde_json::Value;

use crate::state::ApiState;

/// What a request does (upstream's `admission.Operation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

/// The request an admission plugin decides on (upstream's
/// `admission.Attributes`).
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    pub operation: Operation,
    pub group: &'a str,
    /// The version the request addressed, and the kind it writes.
    pub version: &'a str,
    pub kind: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub namespace: &'a str,
    /// The object's name, or its `generateName` prefix on a create.
    pub name: &'a str,
    /// The stored object an update changes (upstream's `GetOldObject`);
    /// None on create and delete.
    pub old: Option<&'a Value>,
    /// `dryRun=All`: plugins must not persist side effects (quota charges).
    pub dry_run: bool,
    /// Who asks.
    pub user: &'a component_base::authn::User,
}

impl Attributes<'_> {
    /// Whether this is a write of `group/resource` itself (no subresource).
    pub fn is(&self, group: &str, resource: &str) -> bool {
        self.group == group && self.resource == resource && self.subresource.is_empty()
    }

    /// The name upstream's `GetName` gives: the object's own, which is
    /// empty on a create that only has a `generateName`.
    pub fn object_name<'b>(&'b self, object: Option<&'b Value>) -> &'b str {
        match (self.operation, object) {
            (Operation::Create, Some(o)) => apimachinery::meta::name(o),
            _ => self.name,
        }
    }

    /// 403 for this request, worded like upstream's `admission.NewForbidden`.
    pub fn forbidden(&self, why: impl std::fmt::Display) -> ApiError {
        ApiError::forbidden_named(
            &GroupResource::new(self.group, self.resource),
            self.name,
            why,
        )
    }
}

/// One admission plugin. Both phases default to "admit".
#[async_trait]
pub trait Plugin: Send + Sync {
    /// Upstream's registered name, e.g. `ServiceAccount`.
    fn name(&self) -> &'static str;

    /// The mutating phase: may change `obj`.
    async fn admit(
        &self,
        _state: &ApiState,
        _a: &Attributes<'_>,
        _obj: &mut Value,
    ) -> Result<(), ApiError> {
        Ok(())
    }

    /// The mutating phase with warnings for the client; defaults to
    /// [`Plugin::admit`] without any.
    async fn admit_warn(
        &self,
        state: &ApiState,
        a: &Attributes<'_>,
        obj: &mut Value,
    ) -> Result<Vec<String>, ApiError> {
        self.admit(state, a, obj).await.map(|()| Vec::new())
    }

    /// The validating phase: may only refuse.
    async fn validate(
        &self,
        _state: &ApiState,
        _a: &Attributes<'_>,
        _obj: &Value,
    ) -> Result<(), ApiError> {
        Ok(())
    }

    /// The validating phase with warnings for the client (upstream's
    /// `warning.AddWarning`); defaults to [`Plugin::validate`] without any.
    async fn validate_warn(
        &self,
        state: &ApiState,
        a: &Attributes<'_>,
        obj: &Value,
    ) -> Result<Vec<String>, ApiError> {
        self.validate(state, a, obj).await.map(|()| Vec::new())
    }
}

/// Whether the bytes `haystack` hold `needle` (a cheap test on cached JSON
/// before parsing it).
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every plugin this server implements, in upstream's order.
fn registry(config: &AdmissionConfig) -> Vec<Box<dyn Plugin>> {
    vec![
        Box::new(namespace_lifecycle::NamespaceLifecycle),
        Box::new(limit_ranger::LimitRanger),
        Box::new(serviceaccount::ServiceAccount::default()),
        Box::new(node_restriction::NodeRestriction),
        Box::new(node_taints::TaintNodesByCondition),
        Box::new(pod_security::PodSecurity::new(config.pod_security.clone())),
        Box::new(priority::Priority),
        Box::new(tolerations::DefaultTolerationSeconds {
            not_ready_seconds: config.default_not_ready_toleration_seconds,
            unreachable_seconds: config.default_unreachable_toleration_seconds,
        }),
        Box::new(default_class::DefaultStorageClass),
        Box::new(storage_protection::StorageObjectInUseProtection),
        Box::new(runtime_class::RuntimeClass),
        Box::new(default_class::DefaultIngressClass),
        Box::new(webhook::MutatingAdmissionWebhook),
        Box::new(webhook::ValidatingAdmissionWebhook),
        Box::new(resource_quota::ResourceQuota),
    ]
}

/// Upstream's plugins, in `AllOrderedPlugins` order, and whether each is on
/// by default (`DefaultOffAdmissionPlugins` is the complement).
const UPSTREAM: &[(&str, bool)] = &[
    ("AlwaysAdmit", false),
    ("NamespaceAutoProvision", false),
    ("NamespaceLifecycle", true),
    ("NamespaceExists", false),
    ("LimitPodHardAntiAffinityTopology", false),
    ("LimitRanger", true),
    ("ServiceAccount", true),
    ("NodeRestriction", false),
    ("TaintNodesByCondition", true),
    ("AlwaysPullImages", false),
    ("ImagePolicyWebhook", false),
    ("PodSecurity", true),
    ("PodNodeSelector", false),
    ("Priority", true),
    ("DefaultTolerationSeconds", true),
    ("PodTolerationRestriction", false),
    ("EventRateLimit", false),
    ("ExtendedResourceToleration", false),
    ("DefaultStorageClass", true),
    ("StorageObjectInUseProtection", true),
    ("OwnerReferencesPermissionEnforcement", false),
    ("PersistentVolumeClaimResize", true),
    ("RuntimeClass", true),
    ("CertificateApproval", true),
    ("CertificateSigning", true),
    ("ClusterTrustBundleAttest", true),
    ("CertificateSubjectRestriction", true),
    ("DefaultIngressClass", true),
    ("DenyServiceExternalIPs", false),
    ("PodTopologyLabels", false),
    ("MutatingAdmissionPolicy", false),
    ("MutatingAdmissionWebhook", true),
    ("ValidatingAdmissionPolicy", true),
    ("ValidatingAdmissionWebhook", true),
    ("ResourceQuota", true),
    ("AlwaysDeny", false),
];

/// The enabled plugins, in order.
pub struct Chain {
    plugins: Vec<Box<dyn Plugin>>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.plugins.iter().map(|p| p.name()))
            .finish()
    }
}

/// `--enable-admission-plugins` / `--disable-admission-plugins` and the
/// plugins' own flags.
#[derive(Debug, Clone)]
pub struct AdmissionConfig {
    pub enable: Vec<String>,
    pub disable: Vec<String>,
    /// `--default-not-ready-toleration-seconds` (300).
    pub default_not_ready_toleration_seconds: i64,
    /// `--default-unreachable-toleration-seconds` (300).
    pub default_unreachable_toleration_seconds: i64,
    /// PodSecurity's configuration from `--admission-control-config-file`.
    pub pod_security: pod_security::Settings,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            enable: Vec::new(),
            disable: Vec::new(),
            default_not_ready_toleration_seconds: 300,
            default_unreachable_toleration_seconds: 300,
            pod_security: Default::default(),
        }
    }
}

impl AdmissionConfig {
    /// Reads `--admission-control-config-file` into the plugins' settings.
    pub fn load_config_file(&mut self, path: &std::path::Path) -> Result<(), String> {
        let configs = config_file::load(path)?;
        if let Some(c) = configs.get("PodSecurity") {
            self.pod_security = pod_security::Settings::from_configuration(c)?;
        }
        Ok(())
    }
}

impl AdmissionConfig {
    /// The plugin names that end up on, in upstream's order, or upstream's
    /// flag error. Names upstream has but this server lacks are reported in
    /// the second list (accepted, doing nothing).
    pub fn resolve(&self) -> Result<(Vec<&'static str>, Vec<&'static str>), String> {
        let known = |n: &str| UPSTREAM.iter().any(|(u, _)| *u == n);
        for n in self.enable.iter().chain(&self.disable) {
            if !known(n) {
                let flag = if self.enable.contains(n) {
                    "enable-admission-plugins"
                } else {
                    "disable-admission-plugins"
                };
                return Err(format!("{flag} plugin \"{n}\" is unknown"));
            }
        }
        let mut both: Vec<&str> = self
            .enable
            .iter()
            .filter(|n| self.disable.contains(n))
            .map(String::as_str)
            .collect();
        if !both.is_empty() {
            both.sort_unstable();
            both.dedup();
            return Err(format!(
                "[{}] in enable-admission-plugins and disable-admission-plugins overlapped",
                both.join(" ")
            ));
        }
        let implemented: Vec<&'static str> = registry(self).iter().map(|p| p.name()).collect();
        let (mut on, mut missing) = (Vec::new(), Vec::new());
        for (name, default_on) in UPSTREAM {
            let wanted = (*default_on || self.enable.iter().any(|e| e == name))
                && !self.disable.iter().any(|d| d == name);
            if !wanted {
                continue;
            }
            if implemented.contains(name) {
                on.push(*name);
            } else {
                missing.push(*name);
            }
        }
        Ok((on, missing))
    }
}

impl Chain {
    /// The chain `config` selects; see [`AdmissionConfig::resolve`].
    pub fn new(config: &AdmissionConfig) -> Result<Self, String> {
        let (on, missing) = config.resolve()?;
        if !missing.is_empty() {
            tracing::warn!(
                plugins = ?missing,
                "admission plugins enabled but not implemented by this server; they admit everything"
            );
        }
        tracing::info!(plugins = ?on, "admission plugins");
        Ok(Self {
            plugins: registry(config)
                .into_iter()
                .filter(|p| on.contains(&p.name()))
                .collect(),
        })
    }

    /// Runs the mutating phase; the plugins' warnings for the client.
    pub async fn admit(
        &self,
        state: &ApiState,
        a: &Attributes<'_>,
        obj: &mut Value,
    ) -> Result<Vec<String>, ApiError> {
        let mut warnings = Vec::new();
        for p in &self.plugins {
            warnings.extend(p.admit_warn(state, a, obj).await?);
        }
        Ok(warnings)
    }

    /// Runs the validating phase; the plugins' warnings for the client.
    pub async fn validate(
        &self,
        state: &ApiState,
        a: &Attributes<'_>,
        obj: &Value,
    ) -> Result<Vec<String>, ApiError> {
        let mut warnings = Vec::new();
        for p in &self.plugins {
            warnings.extend(p.validate_warn(state, a, obj).await?);
        }
        Ok(warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(enable: &[&str], disable: &[&str]) -> AdmissionConfig {
        AdmissionConfig {
            enable: enable.iter().map(|s| s.to_string()).collect(),
            disable: disable.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_follow_upstream_order_and_report_what_is_missing() {
        let (on, missing) = cfg(&[], &[]).resolve().unwrap();
        assert_eq!(
            on,
            [
                "NamespaceLifecycle",
                "LimitRanger",
                "ServiceAccount",
                "TaintNodesByCondition",
                "PodSecurity",
                "Priority",
                "DefaultTolerationSeconds",
                "DefaultStorageClass",
                "StorageObjectInUseProtection",
                "RuntimeClass",
                "DefaultIngressClass",
                "MutatingAdmissionWebhook",
                "ValidatingAdmissionWebhook",
                "ResourceQuota"
            ]
        );
        assert!(missing.contains(&"PersistentVolumeClaimResize"));
        assert!(!missing.contains(&"PodSecurity"));
        assert!(!missing.contains(&"AlwaysDeny"));
    }

    #[test]
    fn flags_enable_disable_and_refuse_like_upstream() {
        let (on, _) = cfg(&[], &["ServiceAccount"]).resolve().unwrap();
        assert!(!on.contains(&"ServiceAccount"));
        let (on, _) = cfg(&["NodeRestriction"], &[]).resolve().unwrap();
        assert_eq!(&on[2..4], ["ServiceAccount", "NodeRestriction"]);
        let (_, missing) = cfg(&["AlwaysPullImages"], &[]).resolve().unwrap();
        assert!(missing.contains(&"AlwaysPullImages"));
        assert_eq!(
            cfg(&["Bogus"], &[]).resolve().unwrap_err(),
            "enable-admission-plugins plugin \"Bogus\" is unknown"
        );
        assert_eq!(
            cfg(&[], &["Bogus"]).resolve().unwrap_err(),
            "disable-admission-plugins plugin \"Bogus\" is unknown"
        );
        assert_eq!(
            cfg(&["ServiceAccount"], &["ServiceAccount"])
                .resolve()
                .unwrap_err(),
            "[ServiceAccount] in enable-admission-plugins and disable-admission-plugins overlapped"
        );
    }
}
