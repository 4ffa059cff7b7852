//! Resource amounts as the scheduler counts them (upstream's
//! `pkg/scheduler/framework/types.go` `Resource` and
//! `k8s.io/component-helpers/resource/helpers.go` `PodRequests`): CPU in
//! millicores, everything else in integer units, quantities parsed once
//! when a pod or node enters the cache.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Upstream's `DefaultMilliCPURequest`: what a container without a CPU
/// request counts as when scoring.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Upstream's `DefaultMemoryRequest` (200 MiB).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

pub const CPU: &str = "cpu";
pub const MEMORY: &str = "memory";
pub const EPHEMERAL_STORAGE: &str = "ephemeral-storage";
pub const PODS: &str = "pods";

/// Parses a Kubernetes quantity to its value times `scale` (1 for units,
/// 1000 for milli-units), rounded up like `Quantity.MilliValue`/`Value`.
/// `None` when the text is no quantity.
pub fn parse_quantity(text: &str, scale: f64) -> Option<i64> {
    let v = apimachinery::quantity::parse_f64(text)? * scale;
    if !v.is_finite() {
        return None;
    }
    // Tolerate float noise before rounding up (0.1 * 1000 = 100.00000000000001).
    let r = v.round();
    Some(if (v - r).abs() < 1e-6 { r } else { v.ceil() } as i64)
}

fn quantity(q: &Quantity, milli: bool) -> i64 {
    parse_quantity(&q.0, if milli { 1000.0 } else { 1.0 }).unwrap_or(0)
}

/// Requested or allocatable resources of one pod or node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resource {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub allowed_pod_number: i64,
    /// Extended resources, hugepages and the like, by name.
    pub scalar: BTreeMap<String, i64>,
}

impl Resource {
    /// From a `ResourceList` (requests, limits, allocatable).
    pub fn from_list(list: &BTreeMap<String, Quantity>) -> Self {
        let mut r = Resource::default();
        for (name, q) in list {
            r.set(name, q);
        }
        r
    }

    fn set(&mut self, name: &str, q: &Quantity) {
        match name {
            CPU => self.milli_cpu = quantity(q, true),
            MEMORY => self.memory = quantity(q, false),
            EPHEMERAL_STORAGE => self.ephemeral_storage = quantity(q, false),
            PODS => self.allowed_pod_number = quantity(q, false),
            other => {
                self.scalar.insert(other.to_string(), quantity(q, false));
            }
        }
    }

    /// The amount of `name` (`cpu` in millicores).
    pub fn get(&self, name: &str) -> i64 {
        match name {
            CPU => self.milli_cpu,
            MEMORY => self.memory,
            EPHEMERAL_STORAGE => self.ephemeral_storage,
            PODS => self.allowed_pod_number,
            other => self.scalar.get(other).copied().unwrap_or(0),
        }
    }

    pub fn add(&mut self, o: &Resource) {
        self.milli_cpu += o.milli_cpu;
        self.memory += o.memory;
        self.ephemeral_storage += o.ephemeral_storage;
        self.allowed_pod_number += o.allowed_pod_number;
        for (k, v) in &o.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    pub fn sub(&mut self, o: &Resource) {
        self.milli_cpu -= o.milli_cpu;
        self.memory -= o.memory;
        self.ephemeral_storage -= o.ephemeral_storage;
        self.allowed_pod_number -= o.allowed_pod_number;
        for (k, v) in &o.scalar {
            *self.scalar.entry(k.clone()).or_default() -= v;
        }
    }

    /// Per-resource maximum (init containers against the regular ones).
    pub fn set_max(&mut self, o: &Resource) {
        self.milli_cpu = self.milli_cpu.max(o.milli_cpu);
        self.memory = self.memory.max(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(o.ephemeral_storage);
        self.allowed_pod_number = self.allowed_pod_number.max(o.allowed_pod_number);
        for (k, v) in &o.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }
}

/// How zero requests are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Zero {
    /// As they are (fitting).
    Keep,
    /// As upstream's defaults for CPU and memory (scoring spreads
    /// best-effort pods instead of piling them on one node).
    NonZero,
}

fn container_requests(c: &Container, zero: Zero) -> Resource {
    let res = c.resources.as_ref();
    let mut list = res.and_then(|r| r.requests.clone()).unwrap_or_default();
    // A limit without a request is the request (API defaulting does this;
    // objects that skipped it are counted the same way).
    if let Some(limits) = res.and_then(|r| r.limits.as_ref()) {
        for (k, v) in limits {
            list.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let mut r = Resource::from_list(&list);
    if zero == Zero::NonZero {
        if !list.contains_key(CPU) {
            r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !list.contains_key(MEMORY) {
            r.memory = DEFAULT_MEMORY_REQUEST;
        }
    }
    r
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

fn pod_requests_with(pod: &Pod, zero: Zero) -> Resource {
    let Some(spec) = pod.spec.as_ref() else {
        return Resource::default();
    };
    let mut reqs = Resource::default();
    for c in &spec.containers {
        reqs.add(&container_requests(c, zero));
    }
    // Sidecars (restartable init containers) run beside everything started
    // after them; a regular init container runs with the sidecars before it.
    let mut sidecars = Resource::default();
    let mut init_max = Resource::default();
    for c in spec.init_containers.iter().flatten() {
        let mut r = container_requests(c, zero);
        if is_sidecar(c) {
            reqs.add(&r);
            sidecars.add(&r);
            r = sidecars.clone();
        } else {
            r.add(&sidecars);
        }
        init_max.set_max(&r);
    }
    reqs.set_max(&init_max);
    if let Some(overhead) = &spec.overhead {
        reqs.add(&Resource::from_list(overhead));
    }
    reqs
}

/// The pod's effective requests (upstream's `PodRequests`): the sum of its
/// containers and sidecars, at least the largest init container phase,
/// plus the pod overhead.
pub fn pod_requests(pod: &Pod) -> Resource {
    pod_requests_with(pod, Zero::Keep)
}

/// Like [`pod_requests`], with unset CPU/memory requests counted as
/// upstream's defaults (only CPU and memory are kept).
pub fn pod_non_zero_requests(pod: &Pod) -> (i64, i64) {
    let r = pod_requests_with(pod, Zero::NonZero);
    (r.milli_cpu, r.memory)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities() {
        let cases = [
            ("100m", 1000.0, Some(100)),
            ("1", 1000.0, Some(1000)),
            ("0.5", 1000.0, Some(500)),
            ("0.0001", 1000.0, Some(1)),
            ("1Gi", 1.0, Some(1 << 30)),
            ("128974848", 1.0, Some(128974848)),
            ("129e6", 1.0, Some(129_000_000)),
            ("129M", 1.0, Some(129_000_000)),
            ("123Mi", 1.0, Some(123 * 1024 * 1024)),
            ("1k", 1.0, Some(1000)),
            ("abc", 1.0, None),
            ("1Zi", 1.0, None),
        ];
        for (text, scale, want) in cases {
            assert_eq!(parse_quantity(text, scale), want, "{text}");
        }
    }

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap()
    }

    #[test]
    fn requests_count_init_containers_sidecars_and_overhead() {
        let c = |cpu: &str, mem: &str| json!({"name": "c", "resources": {"requests": {"cpu": cpu, "memory": mem}}});
        let mut sidecar = c("100m", "100");
        sidecar["restartPolicy"] = json!("Always");
        let cases = [
            (
                "containers only",
                json!({"containers": [c("1", "1Ki"), c("500m", "1Ki")]}),
                1500,
                2048,
            ),
            (
                "init container larger than the sum",
                json!({"containers": [c("1", "1")], "initContainers": [c("2", "10")]}),
                2000,
                10,
            ),
            (
                "sidecar adds to containers and to later init containers",
                json!({"containers": [c("1", "1")], "initContainers": [sidecar.clone(), c("2", "10")]}),
                2100,
                110,
            ),
            (
                "overhead added",
                json!({"containers": [c("1", "1")], "overhead": {"cpu": "250m", "memory": "5"}}),
                1250,
                6,
            ),
            (
                "limits stand in for requests",
                json!({"containers": [{"name": "c", "resources": {"limits": {"cpu": "3"}}}]}),
                3000,
                0,
            ),
        ];
        for (name, spec, cpu, mem) in cases {
            let r = pod_requests(&pod(spec));
            assert_eq!((r.milli_cpu, r.memory), (cpu, mem), "{name}");
        }
    }

    #[test]
    fn non_zero_requests_default_cpu_and_memory() {
        let p = pod(
            json!({"containers": [{"name": "a"}, {"name": "b", "resources": {"requests": {"cpu": "1"}}}]}),
        );
        assert_eq!(
            pod_non_zero_requests(&p),
            (1100, 2 * DEFAULT_MEMORY_REQUEST)
        );
    }
}
