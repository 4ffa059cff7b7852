//! NodeResourcesFit and NodeResourcesBalancedAllocation (upstream's
//! `plugins/noderesources`), sharing the per-resource requested/allocatable
//! arithmetic of `resource_allocation.go`.

pub mod balanced;
pub mod fit;

use serde::Deserialize;

use crate::framework::resource::{CPU, MEMORY};
use crate::framework::{NodeInfo, PodInfo};

/// `ResourceSpec`: a resource and its weight in scoring.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceSpec {
    pub name: String,
    #[serde(default)]
    pub weight: i64,
}

pub fn default_resources() -> Vec<ResourceSpec> {
    vec![
        ResourceSpec {
            name: CPU.into(),
            weight: 1,
        },
        ResourceSpec {
            name: MEMORY.into(),
            weight: 1,
        },
    ]
}

/// Which request totals scoring reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// Zero CPU/memory requests counted as upstream's defaults.
    NonZero,
    /// The actual requests.
    Actual,
}

/// The node's allocatable and requested amounts of one resource with the
/// pod added; `None` when the resource does not count (nothing allocatable,
/// or an extended resource the pod does not request).
pub fn allocatable_requested(
    node: &NodeInfo,
    pod: &PodInfo,
    resource: &str,
    which: Requested,
) -> Option<(i64, i64)> {
    let alloc = node.allocatable.get(resource);
    let (node_req, pod_req) = match (resource, which) {
        (CPU, Requested::NonZero) => (node.non_zero_requested.0, pod.non_zero.0),
        (MEMORY, Requested::NonZero) => (node.non_zero_requested.1, pod.non_zero.1),
        (r, _) => (node.requested.get(r), pod.requests.get(r)),
    };
    let scalar = !matches!(
        resource,
        CPU | MEMORY | crate::framework::resource::EPHEMERAL_STORAGE
    );
    if (pod_req == 0 && scalar) || alloc == 0 {
        return None;
    }
    Some((alloc, node_req + pod_req))
}
