//! Defaulting of built-in kinds (upstream's `pkg/apis/*/v1/defaults.go`),
//! on the k8s-openapi types.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    Container, LimitRange, Namespace, PersistentVolume, PersistentVolumeClaim, Pod, PodSpec,
    PodTemplate, ReplicationController, Secret, Service,
};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

fn set<T>(field: &mut Option<T>, value: T) {
    if field.is_none() {
        *field = Some(value);
    }
}

fn container(c: &mut Container) {
    set(
        &mut c.termination_message_path,
        "/dev/termination-log".into(),
    );
    set(&mut c.termination_message_policy, "File".into());
    if c.image_pull_policy.is_none() {
        c.image_pull_policy = Some(default_pull_policy(c.image.as_deref().unwrap_or("")).into());
    }
    set(&mut c.resources, Default::default());
    for p in c.ports.iter_mut().flatten() {
        set(&mut p.protocol, "TCP".into());
    }
}

/// `Always` for `:latest` or untagged images, `IfNotPresent` otherwise (digests included).
pub fn default_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

pub fn pod_spec(s: &mut PodSpec) {
    set(&mut s.restart_policy, "Always".into());
    set(&mut s.dns_policy, "ClusterFirst".into());
    set(&mut s.termination_grace_period_seconds, 30);
    set(&mut s.security_context, Default::default());
    set(&mut s.scheduler_name, "default-scheduler".into());
    set(&mut s.enable_service_links, true);
    for c in s.containers.iter_mut() {
        container(c);
    }
    for c in s.init_containers.iter_mut().flatten() {
        container(c);
    }
    for v in s.volumes.iter_mut().flatten() {
        if let Some(sec) = v.secret.as_mut() {
            set(&mut sec.default_mode, 0o644);
        }
        if let Some(cm) = v.config_map.as_mut() {
            set(&mut cm.default_mode, 0o644);
        }
        if let Some(p) = v.projected.as_mut() {
            set(&mut p.default_mode, 0o644);
        }
        if let Some(d) = v.downward_api.as_mut() {
            set(&mut d.default_mode, 0o644);
        }
        if let Some(h) = v.host_path.as_mut() {
            set(&mut h.type_, String::new());
        }
    }
}

pub fn pod(p: &mut Pod) {
    if let Some(s) = p.spec.as_mut() {
        pod_spec(s);
        // A limit without a request requests the limit (upstream's
        // SetDefaults_Pod; templates are left as written).
        let all = s
            .containers
            .iter_mut()
            .chain(s.init_containers.iter_mut().flatten());
        for r in all.filter_map(|c| c.resources.as_mut()) {
            if let Some(limits) = r.limits.as_ref() {
                let requests = r.requests.get_or_insert_with(Default::default);
                for (k, v) in limits {
                    requests.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        // v1's deprecated `serviceAccount` mirrors `serviceAccountName` (the
        // ServiceAccount admission plugin picks `default`).
        if s.service_account_name.is_none() {
            s.service_account_name = s.service_account.clone();
        }
        if s.service_account.is_none() {
            s.service_account = s.service_account_name.clone();
        }
    }
}

pub fn pod_template(t: &mut PodTemplate) {
    if let Some(s) = t.template.as_mut().and_then(|t| t.spec.as_mut()) {
        pod_spec(s);
    }
}

fn template(t: &mut k8s_openapi::api::core::v1::PodTemplateSpec) {
    if let Some(s) = t.spec.as_mut() {
        pod_spec(s);
    }
}

pub fn deployment(d: &mut Deployment) {
    if let Some(s) = d.spec.as_mut() {
        set(&mut s.replicas, 1);
        set(&mut s.revision_history_limit, 10);
        set(&mut s.progress_deadline_seconds, 600);
        let strategy = s.strategy.get_or_insert_with(Default::default);
        set(&mut strategy.type_, "RollingUpdate".into());
        if strategy.type_.as_deref() == Some("RollingUpdate") {
            let ru = strategy.rolling_update.get_or_insert_with(Default::default);
            set(&mut ru.max_surge, IntOrString::String("25%".into()));
            set(&mut ru.max_unavailable, IntOrString::String("25%".into()));
        }
        template(&mut s.template);
    }
}

pub fn replicaset(r: &mut ReplicaSet) {
    if let Some(s) = r.spec.as_mut() {
        set(&mut s.replicas, 1);
        if let Some(t) = s.template.as_mut() {
            template(t);
        }
    }
}

pub fn replication_controller(r: &mut ReplicationController) {
    if let Some(s) = r.spec.as_mut() {
        set(&mut s.replicas, 1);
        if let Some(t) = s.template.as_mut() {
            template(t);
        }
    }
}

pub fn statefulset(st: &mut StatefulSet) {
    if let Some(s) = st.spec.as_mut() {
        set(&mut s.replicas, 1);
        set(&mut s.pod_management_policy, "OrderedReady".into());
        set(&mut s.revision_history_limit, 10);
        let u = s.update_strategy.get_or_insert_with(Default::default);
        set(&mut u.type_, "RollingUpdate".into());
        if u.type_.as_deref() == Some("RollingUpdate") {
            set(
                &mut u
                    .rolling_update
                    .get_or_insert_with(Default::default)
                    .partition,
                0,
            );
        }
        let p = s
            .persistent_volume_claim_retention_policy
            .get_or_insert_with(Default::default);
        set(&mut p.when_deleted, "Retain".into());
        set(&mut p.when_scaled, "Retain".into());
        template(&mut s.template);
    }
}

pub fn daemonset(d: &mut DaemonSet) {
    if let Some(s) = d.spec.as_mut() {
        set(&mut s.revision_history_limit, 10);
        let u = s.update_strategy.get_or_insert_with(Default::default);
        set(&mut u.type_, "RollingUpdate".into());
        if u.type_.as_deref() == Some("RollingUpdate") {
            let ru = u.rolling_update.get_or_insert_with(Default::default);
            set(&mut ru.max_unavailable, IntOrString::Int(1));
            set(&mut ru.max_surge, IntOrString::Int(0));
        }
        template(&mut s.template);
    }
}

pub fn job(j: &mut Job) {
    if let Some(s) = j.spec.as_mut() {
        if s.completions.is_none() && s.parallelism.is_none() {
            s.completions = Some(1);
            s.parallelism = Some(1);
        }
        set(&mut s.parallelism, 1);
        set(&mut s.backoff_limit, 6);
        set(&mut s.completion_mode, "NonIndexed".into());
        set(&mut s.suspend, false);
        set(&mut s.pod_replacement_policy, "TerminatingOrFailed".into());
        template(&mut s.template);
    }
}

pub fn cronjob(c: &mut CronJob) {
    if let Some(s) = c.spec.as_mut() {
        set(&mut s.concurrency_policy, "Allow".into());
        set(&mut s.suspend, false);
        set(&mut s.successful_jobs_history_limit, 3);
        set(&mut s.failed_jobs_history_limit, 1);
        if let Some(js) = s.job_template.spec.as_mut() {
            set(&mut js.backoff_limit, 6);
            set(&mut js.completion_mode, "NonIndexed".into());
            set(&mut js.suspend, false);
            template(&mut js.template);
        }
    }
}

pub fn service(svc: &mut Service) {
    if let Some(s) = svc.spec.as_mut() {
        set(&mut s.type_, "ClusterIP".into());
        set(&mut s.session_affinity, "None".into());
        if s.type_.as_deref() != Some("ExternalName") {
            set(&mut s.internal_traffic_policy, "Cluster".into());
        }
        if matches!(s.type_.as_deref(), Some("NodePort") | Some("LoadBalancer")) {
            set(&mut s.external_traffic_policy, "Cluster".into());
        }
        for p in s.ports.iter_mut().flatten() {
            set(&mut p.protocol, "TCP".into());
            if p.target_port.is_none() {
                p.target_port = Some(IntOrString::Int(p.port));
            }
        }
    }
}

pub fn namespace(n: &mut Namespace) {
    let name = n.metadata.name.clone().unwrap_or_default();
    if !name.is_empty() {
        n.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert("kubernetes.io/metadata.name".into(), name);
    }
}

pub fn secret(s: &mut Secret) {
    set(&mut s.type_, "Opaque".into());
}

pub fn pvc(p: &mut PersistentVolumeClaim) {
    if let Some(s) = p.spec.as_mut() {
        set(&mut s.volume_mode, "Filesystem".into());
    }
}

/// A Container limit's default limit falls back to its max, its default
/// request to the default limit, then to its min (upstream's
/// `SetDefaults_LimitRangeItem`).
pub fn limit_range(l: &mut LimitRange) {
    let items = l.spec.iter_mut().flat_map(|s| s.limits.iter_mut());
    for item in items.filter(|i| i.type_ == "Container") {
        let default = item.default.get_or_insert_with(Default::default);
        for (k, v) in item.max.iter().flatten() {
            default.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let request = item.default_request.get_or_insert_with(Default::default);
        for (k, v) in default.iter().chain(item.min.iter().flatten()) {
            request.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}

pub fn priority_class(p: &mut PriorityClass) {
    set(&mut p.preemption_policy, "PreemptLowerPriority".into());
}

pub fn pv(p: &mut PersistentVolume) {
    if let Some(s) = p.spec.as_mut() {
        set(&mut s.persistent_volume_reclaim_policy, "Retain".into());
        set(&mut s.volume_mode, "Filesystem".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_follows_the_tag() {
        assert_eq!(default_pull_policy("busybox"), "Always");
        assert_eq!(default_pull_policy("busybox:latest"), "Always");
        assert_eq!(default_pull_policy("busybox:1.36"), "IfNotPresent");
        assert_eq!(default_pull_policy("127.0.0.1:5000/busybox"), "Always");
        assert_eq!(default_pull_policy("busybox@sha256:abc"), "IfNotPresent");
    }
}

/// autoscaling/v2 (upstream's `SetDefaults_HorizontalPodAutoscaler`):
/// `minReplicas` 1, a CPU utilization target of 80 % when no metric is
/// given, and a given `behavior`'s missing rules filled in.
pub fn hpa(h: &mut k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler) {
    use k8s_openapi::api::autoscaling::v2::{MetricSpec, MetricTarget, ResourceMetricSource};
    let Some(s) = h.spec.as_mut() else { return };
    set(&mut s.min_replicas, 1);
    if s.metrics.as_ref().is_none_or(Vec::is_empty) {
        s.metrics = Some(vec![MetricSpec {
            type_: "Resource".into(),
            resource: Some(ResourceMetricSource {
                name: "cpu".into(),
                target: MetricTarget {
                    type_: "Utilization".into(),
                    average_utilization: Some(DEFAULT_CPU_UTILIZATION),
                    ..Default::default()
                },
            }),
            ..Default::default()
        }]);
    }
    if let Some(b) = s.behavior.as_mut() {
        b.scale_up = Some(scale_up_rules(b.scale_up.take()));
        b.scale_down = Some(scale_down_rules(b.scale_down.take()));
    }
}

/// autoscaling/v1: `minReplicas` 1 (the CPU target defaults in the stored
/// autoscaling/v2 form).
pub fn hpa_v1(h: &mut k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler) {
    if let Some(s) = h.spec.as_mut() {
        set(&mut s.min_replicas, 1);
    }
}

/// Upstream's `autoscaling.DefaultCPUUtilization`.
pub const DEFAULT_CPU_UTILIZATION: i32 = 80;

use k8s_openapi::api::autoscaling::v2::{HPAScalingPolicy, HPAScalingRules};

fn policy(type_: &str, value: i32) -> HPAScalingPolicy {
    HPAScalingPolicy {
        type_: type_.into(),
        value,
        period_seconds: 15,
    }
}

/// Upstream's `GenerateHPAScaleUpRules`: no stabilization, at most 4 pods
/// or 100 % per 15 s, the larger.
pub fn scale_up_rules(given: Option<HPAScalingRules>) -> HPAScalingRules {
    let mut r = given.unwrap_or_default();
    if r.policies.as_ref().is_none_or(Vec::is_empty) {
        r.policies = Some(vec![policy("Pods", 4), policy("Percent", 100)]);
    }
    set(&mut r.select_policy, "Max".into());
    set(&mut r.stabilization_window_seconds, 0);
    r
}

/// Upstream's `GenerateHPAScaleDownRules`: 100 % per 15 s; the
/// stabilization window stays unset (the controller's
/// `--horizontal-pod-autoscaler-downscale-stabilization` applies).
pub fn scale_down_rules(given: Option<HPAScalingRules>) -> HPAScalingRules {
    let mut r = given.unwrap_or_default();
    if r.policies.as_ref().is_none_or(Vec::is_empty) {
        r.policies = Some(vec![policy("Percent", 100)]);
    }
    set(&mut r.select_policy, "Max".into());
    r
}
