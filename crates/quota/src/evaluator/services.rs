//! What services use (upstream's pkg/quota/v1/evaluator/core/services.go):
//! every service counts for `services` and `count/services`; a NodePort
//! service uses one `services.nodeports` per port; a LoadBalancer uses one
//! `services.loadbalancers` and a node port per port (only the ports with
//! an explicit `nodePort` when `allocateLoadBalancerNodePorts` is false).
//! Services know no scopes.

use k8s_openapi::api::core::v1::Service;
use kube::runtime::reflector::Store;

use super::{
    calculate_usage_stats, in_namespace, matches_no_scope, object_count_name, Evaluator,
    UsageStatsOptions,
};
use apimachinery::quantity::Quantity;

use crate::resources::{self, ResourceList};

const SERVICE_RESOURCES: [&str; 4] = [
    "count/services",
    "services",
    "services.nodeports",
    "services.loadbalancers",
];

/// Measures services from the shared service cache.
pub struct ServiceEvaluator {
    store: Store<Service>,
}

impl ServiceEvaluator {
    pub fn new(store: Store<Service>) -> Self {
        Self { store }
    }
}

impl Evaluator for ServiceEvaluator {
    fn matching_resources(&self, input: &[String]) -> Vec<String> {
        resources::intersection(input, &SERVICE_RESOURCES)
    }

    fn usage_stats(&self, options: &UsageStatsOptions<'_>) -> ResourceList {
        let items = in_namespace(&self.store, options.namespace);
        calculate_usage_stats(options, &items, matches_no_scope, service_usage)
    }
}

fn count(n: usize) -> Quantity {
    Quantity::from_int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// One service's usage (upstream's `serviceEvaluator.Usage`).
pub fn service_usage(svc: &Service) -> ResourceList {
    let spec = svc.spec.as_ref();
    let ports = spec.and_then(|s| s.ports.as_deref()).unwrap_or_default();
    let mut out = ResourceList::new();
    out.insert(object_count_name("", "services"), Quantity::from_int(1));
    out.insert("services".into(), Quantity::from_int(1));
    let (load_balancers, node_ports) = match spec.and_then(|s| s.type_.as_deref()) {
        Some("NodePort") => (0, ports.len()),
        Some("LoadBalancer") => {
            let allocate = spec.and_then(|s| s.allocate_load_balancer_node_ports);
            let node_ports = if allocate == Some(false) {
                ports
                    .iter()
                    .filter(|p| p.node_port.unwrap_or(0) != 0)
                    .count()
            } else {
                ports.len()
            };
            (1, node_ports)
        }
        _ => (0, 0),
    };
    out.insert("services.loadbalancers".into(), count(load_balancers));
    out.insert("services.nodeports".into(), count(node_ports));
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::{names, store, text};
    use super::*;

    #[test]
    fn node_ports_and_load_balancers() {
        let svcs = store::<Service>(vec![
            json!({"metadata": {"name": "c", "namespace": "ns"},
                   "spec": {"ports": [{"port": 80}]}}),
            json!({"metadata": {"name": "np", "namespace": "ns"},
                   "spec": {"type": "NodePort", "ports": [{"port": 80}, {"port": 443}]}}),
            json!({"metadata": {"name": "lb", "namespace": "ns"},
                   "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}}),
            json!({"metadata": {"name": "lb-no-np", "namespace": "ns"},
                   "spec": {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false,
                            "ports": [{"port": 80}, {"port": 81, "nodePort": 30081}]}}),
        ]);
        let e = ServiceEvaluator::new(svcs);
        let resources = e.matching_resources(&names(&[
            "services",
            "services.nodeports",
            "services.loadbalancers",
            "count/services",
            "pods",
        ]));
        assert_eq!(resources.len(), 4);
        let used = e.usage_stats(&UsageStatsOptions {
            namespace: "ns",
            selectors: &[],
            resources: &resources,
        });
        let want: Vec<(String, String)> = [
            ("count/services", "4"),
            ("services", "4"),
            ("services.loadbalancers", "2"),
            ("services.nodeports", "4"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(text(&used), want);
    }
}
