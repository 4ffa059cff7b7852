//! What pods use (upstream's pkg/quota/v1/evaluator/core/pods.go, with
//! `PodRequests`/`PodLimits` of pkg/api/v1/resource/helpers.go and
//! `GetPodQOS` of pkg/apis/core/v1/helper/qos).
//!
//! - `count/pods` counts every pod in storage.
//! - `pods` and the compute resources count only pods upstream's
//!   `QuotaV1Pod` charges: not Succeeded/Failed, and not deleted with
//!   `deletionTimestamp + deletionGracePeriodSeconds` already past.
//! - A pod's request for a resource is the sum over its app containers and
//!   sidecars (init containers with `restartPolicy: Always`), or the
//!   largest init-time need if that is more (an init container plus the
//!   sidecars started before it), plus `spec.overhead`. Limits alike, with
//!   the overhead added only to limits that are set.
//! - Scopes: Terminating/NotTerminating (`activeDeadlineSeconds`),
//!   BestEffort/NotBestEffort (QoS class), PriorityClass (with
//!   In/NotIn/Exists/DoesNotExist on `priorityClassName`) and
//!   CrossNamespacePodAffinity.
//!
//! Not mirrored: in-place resize (upstream reads the resources allocated in
//! the container statuses while a resize is in progress) and pod-level
//! `spec.resources` (alpha in 1.33); the requests in the pod spec count.

use std::collections::BTreeMap;
use std::time::Duration;

use apimachinery::labels::{Operator, Requirement};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{
    Container, Pod, PodAffinityTerm, ScopedResourceSelectorRequirement, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
use kube::runtime::reflector::Store;

use super::{calculate_usage_stats, in_namespace, object_count_name, Evaluator, UsageStatsOptions};
use apimachinery::quantity::Quantity;

use crate::resources::{self, ResourceList};
use crate::Now;

/// The resources this evaluator measures by name (upstream's `podResources`).
const POD_RESOURCES: [&str; 11] = [
    "count/pods",
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
];

/// Resource prefixes measured too (`hugepages-2Mi`, `requests.hugepages-2Mi`).
const POD_RESOURCE_PREFIXES: [&str; 2] = ["hugepages-", "requests.hugepages-"];

const REQUESTS_PREFIX: &str = "requests.";

/// Upstream's `IsNativeResource`: no domain, or a `kubernetes.io` one.
fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// Upstream's `IsExtendedResourceName` (`example.com/gpu`).
fn is_extended_resource_name(name: &str) -> bool {
    !is_native_resource(name)
        && !name.starts_with(REQUESTS_PREFIX)
        && apimachinery::validation::is_qualified_name(&format!("{REQUESTS_PREFIX}{name}"))
            .is_empty()
}

/// Upstream's `isExtendedResourceNameForQuota` (`requests.example.com/gpu`).
fn is_extended_resource_name_for_quota(name: &str) -> bool {
    !is_native_resource(name) && name.starts_with(REQUESTS_PREFIX)
}

/// Measures pods from the shared pod cache.
pub struct PodEvaluator {
    store: Store<Pod>,
    now: Now,
}

impl PodEvaluator {
    pub fn new(store: Store<Pod>, now: Now) -> Self {
        Self { store, now }
    }
}

impl Evaluator for PodEvaluator {
    fn matching_resources(&self, input: &[String]) -> Vec<String> {
        let mut out = resources::intersection(input, &POD_RESOURCES);
        for name in input {
            if POD_RESOURCE_PREFIXES.iter().any(|p| name.starts_with(p))
                || is_extended_resource_name_for_quota(name)
            {
                out.push(name.clone());
            }
        }
        out
    }

    fn usage_stats(&self, options: &UsageStatsOptions<'_>) -> ResourceList {
        let pods = in_namespace(&self.store, options.namespace);
        let now = (self.now)();
        calculate_usage_stats(options, &pods, pod_matches_scope, |p| pod_usage(p, now))
    }

    fn next_change(&self, namespace: &str) -> Option<Duration> {
        let now = (self.now)();
        in_namespace(&self.store, namespace)
            .iter()
            .filter(|p| !is_terminal(p))
            .filter_map(|p| charge_ends_at(p))
            .filter(|end| *end >= now)
            // Upstream stops charging strictly after the end; a second later is safe.
            .filter_map(|end| Duration::try_from(end.duration_since(now)).ok())
            .map(|d| d + Duration::from_secs(1))
            .min()
    }
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// When a deleted pod stops being charged: `deletionTimestamp` plus
/// `deletionGracePeriodSeconds`, as upstream computes it.
fn charge_ends_at(pod: &Pod) -> Option<Timestamp> {
    let deleted = pod.metadata.deletion_timestamp.as_ref()?.0;
    let grace = pod.metadata.deletion_grace_period_seconds?;
    deleted.checked_add(SignedDuration::from_secs(grace)).ok()
}

/// Whether quota charges the pod's compute resources (upstream's `QuotaV1Pod`).
pub fn quota_v1_pod(pod: &Pod, now: Timestamp) -> bool {
    if is_terminal(pod) {
        return false;
    }
    !matches!(charge_ends_at(pod), Some(end) if now > end)
}

/// A pod's quota usage (upstream's `PodUsageFunc`).
pub fn pod_usage(pod: &Pod, now: Timestamp) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert(object_count_name("", "pods"), Quantity::from_int(1));
    if !quota_v1_pod(pod, now) {
        return out;
    }
    let usage = compute_usage(&pod_requests(pod), &pod_limits(pod));
    resources::add(&out, &usage)
}

/// Requests and limits as quota names them (upstream's `podComputeUsageHelper`).
pub fn compute_usage(requests: &ResourceList, limits: &ResourceList) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("pods".to_string(), Quantity::from_int(1));
    for name in ["cpu", "memory", "ephemeral-storage"] {
        if let Some(q) = requests.get(name) {
            out.insert(name.to_string(), *q);
            out.insert(format!("{REQUESTS_PREFIX}{name}"), *q);
        }
        if let Some(q) = limits.get(name) {
            out.insert(format!("limits.{name}"), *q);
        }
    }
    for (name, q) in requests {
        if name.starts_with("hugepages-") {
            out.insert(name.clone(), *q);
            out.insert(format!("{REQUESTS_PREFIX}{name}"), *q);
        }
        if is_extended_resource_name(name) {
            out.insert(format!("{REQUESTS_PREFIX}{name}"), *q);
        }
    }
    out
}

fn containers(pod: &Pod) -> (&[Container], &[Container]) {
    match &pod.spec {
        Some(s) => (
            &s.containers,
            s.init_containers.as_deref().unwrap_or_default(),
        ),
        None => (&[], &[]),
    }
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// Which half of a container's resources to read.
#[derive(Clone, Copy)]
enum Half {
    Requests,
    Limits,
}

fn container_list(c: &Container, half: Half) -> ResourceList {
    let r = c.resources.as_ref();
    resources::parse(r.and_then(|r| match half {
        Half::Requests => r.requests.as_ref(),
        Half::Limits => r.limits.as_ref(),
    }))
}

/// Upstream's `AggregateContainerRequests`/`AggregateContainerLimits`:
/// app containers and sidecars summed, then the maximum with every init
/// container's need (itself plus the sidecars declared before it).
fn aggregate(pod: &Pod, half: Half) -> ResourceList {
    let (app, init) = containers(pod);
    let mut total = ResourceList::new();
    for c in app {
        resources::add_into(&mut total, &container_list(c, half));
    }
    let mut sidecars = ResourceList::new();
    let mut init_need = ResourceList::new();
    for c in init {
        let own = container_list(c, half);
        let need = if is_sidecar(c) {
            resources::add_into(&mut total, &own);
            resources::add_into(&mut sidecars, &own);
            sidecars.clone()
        } else {
            resources::add(&own, &sidecars)
        };
        resources::max_into(&mut init_need, &need);
    }
    resources::max_into(&mut total, &init_need);
    total
}

fn overhead(pod: &Pod) -> ResourceList {
    resources::parse(pod.spec.as_ref().and_then(|s| s.overhead.as_ref()))
}

/// A pod's effective requests (upstream's `PodRequests`), overhead included.
pub fn pod_requests(pod: &Pod) -> ResourceList {
    let mut reqs = aggregate(pod, Half::Requests);
    resources::add_into(&mut reqs, &overhead(pod));
    reqs
}

/// A pod's effective limits (upstream's `PodLimits`); the overhead is added
/// only to resources that have a limit.
pub fn pod_limits(pod: &Pod) -> ResourceList {
    let mut limits = aggregate(pod, Half::Limits);
    for (name, q) in overhead(pod) {
        if let Some(v) = limits.get_mut(&name) {
            v.add(&q);
        }
    }
    limits
}

/// Upstream's `GetPodQOS` reduced to the question quota asks: the recorded
/// `status.qosClass` if any, otherwise BestEffort when no container has a
/// positive cpu or memory request or limit.
pub fn is_best_effort(pod: &Pod) -> bool {
    if let Some(class) = pod
        .status
        .as_ref()
        .and_then(|s| s.qos_class.as_deref())
        .filter(|c| !c.is_empty())
    {
        return class == "BestEffort";
    }
    let (app, init) = containers(pod);
    let positive = |m: Option<&BTreeMap<String, ApiQuantity>>| {
        m.into_iter().flatten().any(|(name, q)| {
            matches!(name.as_str(), "cpu" | "memory")
                && Quantity::parse(&q.0).is_some_and(|v| v > Quantity::default())
        })
    };
    !app.iter().chain(init).any(|c| {
        let r = c.resources.as_ref();
        positive(r.and_then(|r| r.requests.as_ref())) || positive(r.and_then(|r| r.limits.as_ref()))
    })
}

/// Upstream's `isTerminating`: an `activeDeadlineSeconds` of zero or more.
pub fn is_terminating(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.active_deadline_seconds)
        .is_some_and(|d| d >= 0)
}

fn cross_namespace(term: &PodAffinityTerm) -> bool {
    term.namespaces.as_ref().is_some_and(|n| !n.is_empty()) || term.namespace_selector.is_some()
}

/// Upstream's `usesCrossNamespacePodAffinity`.
fn uses_cross_namespace_pod_affinity(pod: &Pod) -> bool {
    let Some(affinity) = pod.spec.as_ref().and_then(|s| s.affinity.as_ref()) else {
        return false;
    };
    let terms = |req: Option<&Vec<PodAffinityTerm>>,
                 pref: Option<&Vec<WeightedPodAffinityTerm>>| {
        req.into_iter().flatten().any(cross_namespace)
            || pref
                .into_iter()
                .flatten()
                .any(|w| cross_namespace(&w.pod_affinity_term))
    };
    affinity.pod_affinity.as_ref().is_some_and(|a| {
        terms(
            a.required_during_scheduling_ignored_during_execution
                .as_ref(),
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref(),
        )
    }) || affinity.pod_anti_affinity.as_ref().is_some_and(|a| {
        terms(
            a.required_during_scheduling_ignored_during_execution
                .as_ref(),
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref(),
        )
    })
}

/// Whether a pod matches one scope requirement (upstream's `podMatchesScopeFunc`).
pub fn pod_matches_scope(
    selector: &ScopedResourceSelectorRequirement,
    pod: &Pod,
) -> Result<bool, String> {
    Ok(match selector.scope_name.as_str() {
        "Terminating" => is_terminating(pod),
        "NotTerminating" => !is_terminating(pod),
        "BestEffort" => is_best_effort(pod),
        "NotBestEffort" => !is_best_effort(pod),
        "PriorityClass" => return priority_class_matches(selector, pod),
        "CrossNamespacePodAffinity" => uses_cross_namespace_pod_affinity(pod),
        _ => false,
    })
}

/// The PriorityClass scope: the requirement evaluated as a label selector
/// over `{PriorityClass: <priorityClassName>}` (no label when the pod has
/// none), like upstream's `podMatchesSelector`.
fn priority_class_matches(
    selector: &ScopedResourceSelectorRequirement,
    pod: &Pod,
) -> Result<bool, String> {
    let class = pod
        .spec
        .as_ref()
        .and_then(|s| s.priority_class_name.as_deref())
        .unwrap_or_default();
    let operator = match selector.operator.as_str() {
        "Exists" => return Ok(!class.is_empty()),
        "In" => Operator::In,
        "NotIn" => Operator::NotIn,
        "DoesNotExist" => Operator::DoesNotExist,
        other => return Err(format!("{other:?} is not a valid scope selector operator")),
    };
    let requirement = Requirement::new(
        selector.scope_name.clone(),
        operator,
        selector.values.clone().unwrap_or_default(),
    )?;
    let mut labels = BTreeMap::new();
    if !class.is_empty() {
        labels.insert(selector.scope_name.clone(), class.to_string());
    }
    Ok(requirement.matches(&labels))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use std::sync::Arc;

    use super::super::testing::{names, store, text};
    use super::*;

    fn pod(v: Value) -> Pod {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("pod: {e}"))
    }

    fn container(name: &str, requests: Value, limits: Value) -> Value {
        json!({"name": name, "image": "x", "resources": {"requests": requests, "limits": limits}})
    }

    fn list(l: &ResourceList) -> Vec<(String, String)> {
        text(l)
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn now() -> Timestamp {
        "2026-12-01T00:00:00Z".parse().unwrap_or_default()
    }

    #[test]
    fn requests_are_max_of_sum_and_each_init_container_plus_overhead() {
        let p = pod(json!({"metadata": {"name": "p"}, "spec": {
            "containers": [
                container("a", json!({"cpu": "100m", "memory": "64Mi"}), json!({"cpu": "200m"})),
                container("b", json!({"cpu": "150m", "memory": "64Mi"}), json!({"memory": "1Gi"})),
            ],
            "initContainers": [
                container("init-big-cpu", json!({"cpu": "1", "memory": "10Mi"}), json!({"cpu": "2"})),
                container("init-small", json!({"cpu": "10m"}), json!({})),
            ],
            "overhead": {"cpu": "50m", "memory": "1Mi"}
        }}));
        assert_eq!(
            list(&pod_requests(&p)),
            pairs(&[("cpu", "1050m"), ("memory", "129Mi")])
        );
        // Overhead only on limits that are set; memory limit 1Gi + 1Mi.
        assert_eq!(
            list(&pod_limits(&p)),
            pairs(&[("cpu", "2050m"), ("memory", "1025Mi")])
        );
    }

    #[test]
    fn sidecars_add_to_the_pod_and_to_later_init_containers() {
        let p = pod(json!({"metadata": {"name": "p"}, "spec": {
            "containers": [container("app", json!({"cpu": "500m"}), json!({}))],
            "initContainers": [
                {"name": "sidecar", "image": "x", "restartPolicy": "Always",
                 "resources": {"requests": {"cpu": "200m"}}},
                container("init", json!({"cpu": "600m"}), json!({})),
            ]
        }}));
        // app + sidecar = 700m; init time: sidecar + init = 800m.
        assert_eq!(list(&pod_requests(&p)), pairs(&[("cpu", "800m")]));
    }

    #[test]
    fn usage_names_and_terminal_pods() {
        let running = pod(json!({"metadata": {"name": "p"}, "spec": {
            "containers": [container("a",
                json!({"cpu": "250m", "memory": "1Gi", "ephemeral-storage": "1Gi",
                       "hugepages-2Mi": "4Mi", "example.com/gpu": "1"}),
                json!({"cpu": "500m", "memory": "2Gi"}))]
        }, "status": {"phase": "Running"}}));
        assert_eq!(
            list(&pod_usage(&running, now())),
            pairs(&[
                ("count/pods", "1"),
                ("cpu", "250m"),
                ("ephemeral-storage", "1Gi"),
                ("hugepages-2Mi", "4Mi"),
                ("limits.cpu", "500m"),
                ("limits.memory", "2Gi"),
                ("memory", "1Gi"),
                ("pods", "1"),
                ("requests.cpu", "250m"),
                ("requests.ephemeral-storage", "1Gi"),
                ("requests.example.com/gpu", "1"),
                ("requests.hugepages-2Mi", "4Mi"),
                ("requests.memory", "1Gi"),
            ])
        );
        for done in ["Succeeded", "Failed"] {
            let mut p = running.clone();
            if let Some(s) = p.status.as_mut() {
                s.phase = Some(done.into());
            }
            assert_eq!(list(&pod_usage(&p, now())), pairs(&[("count/pods", "1")]));
        }
    }

    #[test]
    fn deleted_pods_stop_counting_after_their_grace() {
        let p = pod(json!({"metadata": {"name": "p", "namespace": "ns",
            "deletionTimestamp": "2026-12-01T00:00:00Z", "deletionGracePeriodSeconds": 30},
            "spec": {"containers": [container("a", json!({"cpu": "1"}), json!({}))]}}));
        let at = |s: &str| s.parse::<Timestamp>().unwrap_or_default();
        assert!(quota_v1_pod(&p, at("2026-12-01T00:00:30Z")));
        assert!(!quota_v1_pod(&p, at("2026-12-01T00:00:31Z")));
        let then = at("2026-12-01T00:00:10Z");
        let clock: Now = Arc::new(move || then);
        let e = PodEvaluator::new(
            store(vec![serde_json::to_value(&p).unwrap_or_default()]),
            clock,
        );
        assert_eq!(e.next_change("ns"), Some(Duration::from_secs(21)));
        assert_eq!(e.next_change("other"), None);
    }

    fn scope(name: &str, op: &str, values: &[&str]) -> ScopedResourceSelectorRequirement {
        ScopedResourceSelectorRequirement {
            scope_name: name.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| names(values)),
        }
    }

    #[test]
    fn scopes_select_pods_like_upstream() {
        let best_effort = pod(json!({"metadata": {"name": "be"}, "spec": {
            "containers": [container("a", json!({}), json!({}))], "activeDeadlineSeconds": 10}}));
        let burstable = pod(json!({"metadata": {"name": "bu"}, "spec": {
            "containers": [container("a", json!({"memory": "1Mi"}), json!({}))],
            "priorityClassName": "high"}}));
        let zero_request = pod(json!({"metadata": {"name": "z"}, "spec": {
            "containers": [container("a", json!({"cpu": "0"}), json!({}))]}}));
        let recorded = pod(json!({"metadata": {"name": "r"}, "spec": {
            "containers": [container("a", json!({"cpu": "1"}), json!({}))]},
            "status": {"qosClass": "BestEffort"}}));
        let m = |s: &ScopedResourceSelectorRequirement, p: &Pod| pod_matches_scope(s, p);
        let exists = |n: &str| scope(n, "Exists", &[]);
        assert_eq!(m(&exists("BestEffort"), &best_effort), Ok(true));
        assert_eq!(m(&exists("BestEffort"), &burstable), Ok(false));
        assert_eq!(m(&exists("BestEffort"), &zero_request), Ok(true));
        assert_eq!(m(&exists("BestEffort"), &recorded), Ok(true));
        assert_eq!(m(&exists("NotBestEffort"), &burstable), Ok(true));
        assert_eq!(m(&exists("Terminating"), &best_effort), Ok(true));
        assert_eq!(m(&exists("NotTerminating"), &best_effort), Ok(false));
        assert_eq!(m(&exists("NotTerminating"), &burstable), Ok(true));
        assert_eq!(m(&exists("PriorityClass"), &burstable), Ok(true));
        assert_eq!(m(&exists("PriorityClass"), &best_effort), Ok(false));
        let in_high = scope("PriorityClass", "In", &["high", "medium"]);
        assert_eq!(m(&in_high, &burstable), Ok(true));
        assert_eq!(m(&in_high, &best_effort), Ok(false));
        let not_in_high = scope("PriorityClass", "NotIn", &["high"]);
        assert_eq!(m(&not_in_high, &burstable), Ok(false));
        assert_eq!(m(&not_in_high, &best_effort), Ok(true));
        let none = scope("PriorityClass", "DoesNotExist", &[]);
        assert_eq!(m(&none, &best_effort), Ok(true));
        assert_eq!(m(&none, &burstable), Ok(false));
        assert!(m(&scope("PriorityClass", "Gt", &["1"]), &burstable).is_err());
    }

    #[test]
    fn best_effort_quota_counts_only_best_effort_pods() {
        let pods = store::<Pod>(vec![
            json!({"metadata": {"name": "be", "namespace": "ns"},
                   "spec": {"containers": [container("a", json!({}), json!({}))]}}),
            json!({"metadata": {"name": "bu", "namespace": "ns"},
                   "spec": {"containers": [container("a", json!({"cpu": "1"}), json!({}))]}}),
        ]);
        let e = PodEvaluator::new(pods, Arc::new(now));
        let selectors = [scope("BestEffort", "Exists", &[])];
        let resources = e.matching_resources(&names(&["pods", "requests.cpu", "configmaps"]));
        assert_eq!(resources, names(&["pods", "requests.cpu"]));
        let used = e.usage_stats(&UsageStatsOptions {
            namespace: "ns",
            selectors: &selectors,
            resources: &resources,
        });
        assert_eq!(
            list(&resources::mask(&used, &resources)),
            pairs(&[("pods", "1"), ("requests.cpu", "0")])
        );
    }

    #[test]
    fn extended_and_hugepage_resources_match() {
        let e = PodEvaluator::new(store(vec![]), Arc::new(now));
        let input = names(&[
            "requests.example.com/gpu",
            "example.com/gpu",
            "hugepages-1Gi",
            "requests.hugepages-1Gi",
            "requests.storage",
        ]);
        assert_eq!(
            e.matching_resources(&input),
            names(&[
                "requests.example.com/gpu",
                "hugepages-1Gi",
                "requests.hugepages-1Gi"
            ])
        );
    }
}
