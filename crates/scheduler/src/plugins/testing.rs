//! Builders for plugin unit tests: pods and nodes from JSON fragments.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::framework::{NodeInfo, PodInfo};

pub fn pod(spec: Value) -> PodInfo {
    pod_meta(json!({"name": "p", "namespace": "default"}), spec)
}

pub fn pod_meta(meta: Value, spec: Value) -> PodInfo {
    let mut spec = spec;
    if spec.get("containers").is_none() {
        spec["containers"] = json!([{"name": "c"}]);
    }
    let p = serde_json::from_value(json!({"metadata": meta, "spec": spec})).expect("test pod");
    PodInfo::new(Arc::new(p))
}

/// A pod requesting `cpu` and `memory` in one container.
pub fn pod_req(cpu: &str, mem: &str) -> PodInfo {
    pod(
        json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": mem}}}]}),
    )
}

pub fn node(name: &str, extra: Value) -> NodeInfo {
    let mut n = json!({"metadata": {"name": name},
        "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}});
    merge(&mut n, extra);
    let node = serde_json::from_value(n).expect("test node");
    let mut ni = NodeInfo::new(name);
    ni.set_node(Arc::new(node));
    ni
}

fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

/// The default profile's framework, as a one-entry profile map.
pub fn default_profiles(
) -> Arc<std::collections::HashMap<String, Arc<crate::framework::runtime::Framework>>> {
    let cfg = crate::config::KubeSchedulerConfiguration::defaulted();
    let fwk = crate::framework::runtime::Framework::new(
        &cfg.profiles[0],
        &super::in_tree_registry(),
        &crate::framework::runtime::Handle::default(),
    )
    .expect("default profile");
    Arc::new(
        [(crate::DEFAULT_SCHEDULER_NAME.to_string(), Arc::new(fwk))]
            .into_iter()
            .collect(),
    )
}
