//! `KubeSchedulerConfiguration` (`kubescheduler.config.k8s.io/v1`), its
//! defaults and validation (upstream's `pkg/scheduler/apis/config/v1`
//! `default_plugins.go`, `defaults.go` and `validation/validation.go`).
//! Decoding is strict like upstream's: an unknown field is an error that
//! names it. Plugin args stay JSON until the plugin's factory decodes them.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::framework::runtime::ExtensionPoint;

pub const API_VERSION: &str = "kubescheduler.config.k8s.io/v1";

/// Why a configuration was refused; the message names the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The document is no valid configuration (syntax, unknown field, type).
    #[error("decoding {path}: {message}")]
    Decode { path: String, message: String },
    /// A field has a value upstream's validation refuses.
    #[error("invalid KubeSchedulerConfiguration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientConnection {
    #[serde(default)]
    pub kubeconfig: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qps: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_content_types: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeaderElection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_elect: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_deadline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_period: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_lock: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_namespace: Option<String>,
}

/// One plugin named in a set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
}

/// Enabled and disabled plugins at one extension point.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginSet {
    #[serde(default)]
    pub enabled: Vec<PluginRef>,
    #[serde(default)]
    pub disabled: Vec<PluginRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Plugins {
    #[serde(default)]
    pub pre_enqueue: PluginSet,
    #[serde(default)]
    pub queue_sort: PluginSet,
    #[serde(default)]
    pub pre_filter: PluginSet,
    #[serde(default)]
    pub filter: PluginSet,
    #[serde(default)]
    pub post_filter: PluginSet,
    #[serde(default)]
    pub pre_score: PluginSet,
    #[serde(default)]
    pub score: PluginSet,
    #[serde(default)]
    pub reserve: PluginSet,
    #[serde(default)]
    pub permit: PluginSet,
    #[serde(default)]
    pub pre_bind: PluginSet,
    #[serde(default)]
    pub bind: PluginSet,
    #[serde(default)]
    pub post_bind: PluginSet,
    #[serde(default)]
    pub multi_point: PluginSet,
}

impl Plugins {
    pub fn get(&self, ep: ExtensionPoint) -> &PluginSet {
        match ep {
            ExtensionPoint::QueueSort => &self.queue_sort,
            ExtensionPoint::PreEnqueue => &self.pre_enqueue,
            ExtensionPoint::PreFilter => &self.pre_filter,
            ExtensionPoint::Filter => &self.filter,
            ExtensionPoint::PostFilter => &self.post_filter,
            ExtensionPoint::PreScore => &self.pre_score,
            ExtensionPoint::Score => &self.score,
            ExtensionPoint::Reserve => &self.reserve,
            ExtensionPoint::Permit => &self.permit,
            ExtensionPoint::PreBind => &self.pre_bind,
            ExtensionPoint::Bind => &self.bind,
            ExtensionPoint::PostBind => &self.post_bind,
        }
    }

    fn sets_mut(&mut self) -> [(&'static str, &mut PluginSet); 13] {
        [
            ("multiPoint", &mut self.multi_point),
            ("preEnqueue", &mut self.pre_enqueue),
            ("queueSort", &mut self.queue_sort),
            ("preFilter", &mut self.pre_filter),
            ("filter", &mut self.filter),
            ("postFilter", &mut self.post_filter),
            ("preScore", &mut self.pre_score),
            ("score", &mut self.score),
            ("reserve", &mut self.reserve),
            ("permit", &mut self.permit),
            ("preBind", &mut self.pre_bind),
            ("bind", &mut self.bind),
            ("postBind", &mut self.post_bind),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginConfig {
    pub name: String,
    #[serde(default)]
    pub args: Value,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Profile {
    #[serde(default)]
    pub scheduler_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage_of_nodes_to_score: Option<i32>,
    #[serde(default)]
    pub plugins: Plugins,
    #[serde(default)]
    pub plugin_config: Vec<PluginConfig>,
}

/// The configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeSchedulerConfiguration {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<i32>,
    #[serde(default)]
    pub client_connection: ClientConnection,
    #[serde(default)]
    pub leader_election: LeaderElection,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage_of_nodes_to_score: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_initial_backoff_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_max_backoff_seconds: Option<i64>,
    #[serde(default)]
    pub profiles: Vec<Profile>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extenders: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_cache_until_active: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_bind_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_bind_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_profiling: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_contention_profiling: Option<bool>,
}

pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

/// Upstream's default MultiPoint plugins (v1 `getDefaultPlugins`), limited
/// to the plugins this scheduler has, with upstream's weights.
pub fn default_plugins() -> Plugins {
    let p = |name: &str, weight: Option<i32>| PluginRef {
        name: name.into(),
        weight,
    };
    Plugins {
        multi_point: PluginSet {
            enabled: vec![
                p("SchedulingGates", None),
                p("PrioritySort", None),
                p("NodeUnschedulable", None),
                p("NodeName", None),
                p("TaintToleration", Some(3)),
                p("NodeAffinity", Some(2)),
                p("NodePorts", None),
                p("NodeResourcesFit", Some(1)),
                p("VolumeRestrictions", None),
                p("VolumeBinding", None),
                p("PodTopologySpread", Some(2)),
                p("InterPodAffinity", Some(2)),
                p("DefaultPreemption", None),
                p("NodeResourcesBalancedAllocation", Some(1)),
                p("ImageLocality", Some(1)),
                p("DefaultBinder", None),
            ],
            disabled: vec![],
        },
        ..Default::default()
    }
}

/// Upstream's `mergePluginSet`: defaults minus the disabled ones (all with
/// `*`), a custom entry replacing the default of the same name in place,
/// the other custom entries appended.
fn merge_set(default: &PluginSet, custom: &PluginSet) -> PluginSet {
    let all = custom.disabled.iter().any(|d| d.name == "*");
    let mut enabled: Vec<PluginRef> = Vec::new();
    let mut replaced = Vec::new();
    if !all {
        for d in &default.enabled {
            if custom.disabled.iter().any(|x| x.name == d.name) {
                continue;
            }
            match custom.enabled.iter().position(|c| c.name == d.name) {
                Some(i) => {
                    enabled.push(custom.enabled[i].clone());
                    replaced.push(i);
                }
                None => enabled.push(d.clone()),
            }
        }
    }
    for (i, c) in custom.enabled.iter().enumerate() {
        if !replaced.contains(&i) {
            enabled.push(c.clone());
        }
    }
    PluginSet {
        enabled,
        disabled: custom.disabled.clone(),
    }
}

impl KubeSchedulerConfiguration {
    /// Reads, decodes strictly, defaults and validates a file.
    pub fn load(path: &str) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &str, text: &str) -> Result<Self, ConfigError> {
        let mut c: Self = serde_yaml::from_str(text).map_err(|e| ConfigError::Decode {
            path: path.into(),
            message: e.to_string(),
        })?;
        if c.api_version != API_VERSION || c.kind != "KubeSchedulerConfiguration" {
            return Err(ConfigError::Decode {
                path: path.into(),
                message: format!(
                    "no kind {:?} is registered for version {:?} (want kind KubeSchedulerConfiguration, apiVersion {API_VERSION})",
                    c.kind, c.api_version
                ),
            });
        }
        c.set_defaults();
        c.validate()?;
        Ok(c)
    }

    /// The configuration without a file: one default profile.
    pub fn defaulted() -> Self {
        let mut c = KubeSchedulerConfiguration {
            api_version: API_VERSION.into(),
            kind: "KubeSchedulerConfiguration".into(),
            ..Default::default()
        };
        c.set_defaults();
        c
    }

    /// Upstream's v1 `SetDefaults_KubeSchedulerConfiguration`.
    pub fn set_defaults(&mut self) {
        self.parallelism.get_or_insert(16);
        self.pod_initial_backoff_seconds.get_or_insert(1);
        self.pod_max_backoff_seconds.get_or_insert(10);
        if self.profiles.is_empty() {
            self.profiles.push(Profile::default());
        }
        let only = self.profiles.len() == 1;
        let defaults = default_plugins();
        for p in &mut self.profiles {
            if p.scheduler_name.is_empty() && only {
                p.scheduler_name = DEFAULT_SCHEDULER_NAME.into();
            }
            let mut custom = std::mem::take(&mut p.plugins);
            let mut merged = defaults.clone();
            for ((_, m), (_, c)) in merged.sets_mut().into_iter().zip(custom.sets_mut()) {
                *m = merge_set(m, c);
            }
            p.plugins = merged;
        }
    }

    /// Upstream's `ValidateKubeSchedulerConfiguration` (the parts that apply).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errs: Vec<String> = Vec::new();
        let pct = |v: Option<i32>, field: &str, errs: &mut Vec<String>| {
            if let Some(v) = v.filter(|v| !(0..=100).contains(v)) {
                errs.push(format!(
                    "{field}: Invalid value: {v}: not in valid range [0-100]"
                ));
            }
        };
        if self.parallelism.is_some_and(|p| p <= 0) {
            errs.push(format!(
                "parallelism: Invalid value: {}: should be an integer value greater than zero",
                self.parallelism.unwrap_or(0)
            ));
        }
        pct(
            self.percentage_of_nodes_to_score,
            "percentageOfNodesToScore",
            &mut errs,
        );
        let initial = self.pod_initial_backoff_seconds.unwrap_or(1);
        let max = self.pod_max_backoff_seconds.unwrap_or(10);
        if initial <= 0 {
            errs.push(format!(
                "podInitialBackoffSeconds: Invalid value: {initial}: must be greater than 0"
            ));
        }
        if max < initial {
            errs.push(format!(
                "podMaxBackoffSeconds: Invalid value: {max}: must be greater than or equal to PodInitialBackoffSeconds"
            ));
        }
        if let Some(q) = self.client_connection.qps.filter(|q| *q < 0.0) {
            errs.push(format!(
                "clientConnection.qps: Invalid value: {q}: must be non-negative"
            ));
        }
        for field in [
            ("leaseDuration", &self.leader_election.lease_duration),
            ("renewDeadline", &self.leader_election.renew_deadline),
            ("retryPeriod", &self.leader_election.retry_period),
        ] {
            if let Some(v) = field.1 {
                if apimachinery::duration::parse_go_duration(v).is_err() {
                    errs.push(format!(
                        "leaderElection.{}: Invalid value: {v:?}: not a duration",
                        field.0
                    ));
                }
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, p) in self.profiles.iter().enumerate() {
            let f = format!("profiles[{i}]");
            if p.scheduler_name.is_empty() {
                errs.push(format!("{f}.schedulerName: Required value"));
            } else if !names.insert(p.scheduler_name.as_str()) {
                errs.push(format!(
                    "{f}.schedulerName: Duplicate value: {:?}",
                    p.scheduler_name
                ));
            }
            pct(
                p.percentage_of_nodes_to_score,
                &format!("{f}.percentageOfNodesToScore"),
                &mut errs,
            );
            for (j, w) in p.plugins.score.enabled.iter().enumerate() {
                if w.weight.is_some_and(|w| w <= 0) {
                    errs.push(format!(
                        "{f}.plugins.score.enabled[{j}].weight: Invalid value: {}: must be greater than 0",
                        w.weight.unwrap_or(0)
                    ));
                }
            }
            for (j, w) in p.plugins.multi_point.enabled.iter().enumerate() {
                if w.weight.is_some_and(|w| w < 0) {
                    errs.push(format!(
                        "{f}.plugins.multiPoint.enabled[{j}].weight: Invalid value: {}: must not be negative",
                        w.weight.unwrap_or(0)
                    ));
                }
            }
            let mut seen = std::collections::HashSet::new();
            for (j, c) in p.plugin_config.iter().enumerate() {
                if !seen.insert(c.name.as_str()) {
                    errs.push(format!(
                        "{f}.pluginConfig[{j}].name: Duplicate value: {:?}",
                        c.name
                    ));
                }
            }
        }
        // Every profile must share the queue sort plugin.
        let sort = |p: &Profile| -> Vec<String> {
            let specific: Vec<String> = p
                .plugins
                .queue_sort
                .enabled
                .iter()
                .map(|r| r.name.clone())
                .collect();
            if specific.is_empty() {
                vec!["PrioritySort".into()]
            } else {
                specific
            }
        };
        if let Some(first) = self.profiles.first() {
            for (i, p) in self.profiles.iter().enumerate().skip(1) {
                if sort(p) != sort(first) {
                    errs.push(format!(
                        "profiles[{i}].plugins.queueSort: Invalid value: {:?}: must be the same for all profiles",
                        sort(p)
                    ));
                }
            }
        }
        if !self.extenders.is_empty() {
            errs.push("extenders: Forbidden: scheduler extenders are not supported".into());
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(errs.join(", ")))
        }
    }

    pub fn initial_backoff(&self) -> Duration {
        Duration::from_secs(self.pod_initial_backoff_seconds.unwrap_or(1).max(1) as u64)
    }

    pub fn max_backoff(&self) -> Duration {
        Duration::from_secs(self.pod_max_backoff_seconds.unwrap_or(10).max(1) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<KubeSchedulerConfiguration, ConfigError> {
        KubeSchedulerConfiguration::parse("cfg.yaml", text)
    }

    #[test]
    fn defaults_one_profile() {
        let c =
            parse("apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n")
                .unwrap();
        assert_eq!(c.profiles.len(), 1);
        assert_eq!(c.profiles[0].scheduler_name, DEFAULT_SCHEDULER_NAME);
        assert_eq!(c.parallelism, Some(16));
        assert_eq!(c.initial_backoff(), Duration::from_secs(1));
        assert_eq!(c.max_backoff(), Duration::from_secs(10));
        let mp = &c.profiles[0].plugins.multi_point.enabled;
        assert!(mp
            .iter()
            .any(|p| p.name == "TaintToleration" && p.weight == Some(3)));
    }

    #[test]
    fn merges_custom_plugins_like_upstream() {
        let c = parse(
            r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: a
  plugins:
    multiPoint:
      enabled:
      - name: NodeAffinity
        weight: 7
      disabled:
      - name: ImageLocality
    score:
      disabled:
      - name: "*"
- schedulerName: b
"#,
        )
        .unwrap();
        let a = &c.profiles[0].plugins;
        let pos = a
            .multi_point
            .enabled
            .iter()
            .position(|p| p.name == "NodeAffinity")
            .unwrap();
        assert_eq!(
            a.multi_point.enabled[pos].weight,
            Some(7),
            "replaced in place"
        );
        assert_eq!(pos, 5);
        assert!(!a
            .multi_point
            .enabled
            .iter()
            .any(|p| p.name == "ImageLocality"));
        assert_eq!(a.score.disabled[0].name, "*");
        assert_eq!(c.profiles[1].scheduler_name, "b");
    }

    #[test]
    fn malformed_configs_name_the_field() {
        let head = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n";
        let cases = [
            ("percentageOfNodesToScore: 120\n", "percentageOfNodesToScore: Invalid value: 120"),
            ("profiles:\n- schedulerName: a\n- schedulerName: a\n", "profiles[1].schedulerName: Duplicate value"),
            ("profiles:\n- schedulerName: a\n- {}\n", "profiles[1].schedulerName: Required value"),
            (
                "profiles:\n- plugins:\n    score:\n      enabled:\n      - name: ImageLocality\n        weight: 0\n",
                "profiles[0].plugins.score.enabled[0].weight: Invalid value: 0",
            ),
            ("podInitialBackoffSeconds: 5\npodMaxBackoffSeconds: 2\n", "podMaxBackoffSeconds: Invalid value: 2"),
            ("profiles:\n- schedulerName: a\n  bogus: 1\n", "unknown field `bogus`"),
            ("leaderElection:\n  leaseDuration: forever\n", "leaderElection.leaseDuration"),
        ];
        for (body, want) in cases {
            let err = parse(&format!("{head}{body}")).unwrap_err().to_string();
            assert!(err.contains(want), "{body:?}: {err}");
        }
        let err = parse("apiVersion: v1\nkind: Pod\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("KubeSchedulerConfiguration"), "{err}");
    }
}
