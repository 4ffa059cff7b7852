//! ImageLocality (upstream's `plugins/imagelocality/image_locality.go`):
//! prefers nodes that already have the pod's images, each image's size
//! scaled by the share of nodes having it (so one node with a popular
//! image does not attract everything), clamped to
//! [23 MB, 1000 MB × containers] and mapped to 0..=100.

use std::sync::Arc;

use serde_json::Value;

use crate::cache::Snapshot;
use crate::framework::runtime::Handle;
use crate::framework::types::normalize_image_name;
use crate::framework::{
    CycleState, NodeInfo, Plugin, PodInfo, PreScorePlugin, ScorePlugin, Status, MAX_NODE_SCORE,
};

pub const NAME: &str = "ImageLocality";
const MB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

pub struct ImageLocality;

pub fn new(_: Option<&Value>, _: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(ImageLocality))
}

/// The pod's images with the share of nodes having each.
struct PreScoreState {
    images: Vec<(String, f64)>,
    containers: i64,
}

impl Plugin for ImageLocality {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

fn pod_images(pod: &PodInfo) -> Vec<String> {
    let Some(spec) = pod.pod.spec.as_ref() else {
        return vec![];
    };
    spec.init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .filter_map(|c| c.image.as_deref())
        .map(normalize_image_name)
        .collect()
}

impl PreScorePlugin for ImageLocality {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snap: &Snapshot,
        _: &[Arc<NodeInfo>],
    ) -> Status {
        let total = snap.len().max(1) as f64;
        let names = pod_images(pod);
        let containers = names.len() as i64;
        let images = names
            .into_iter()
            .map(|n| {
                let spread = snap.nodes_with_image(&n) as f64 / total;
                (n, spread)
            })
            .collect();
        state.write(NAME, PreScoreState { images, containers });
        Status::success()
    }
}

/// Upstream's `calculatePriority`.
fn priority(sum: i64, containers: i64) -> i64 {
    let max = MAX_CONTAINER_THRESHOLD * containers.max(1);
    let sum = sum.clamp(MIN_THRESHOLD, max);
    MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max - MIN_THRESHOLD)
}

impl ScorePlugin for ImageLocality {
    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let Some(s) = state.read::<PreScoreState>(NAME) else {
            return Err(Status::error(
                "reading ImageLocality pre-score state: not found",
            ));
        };
        let sum: f64 = s
            .images
            .iter()
            .filter_map(|(name, spread)| node.images.get(name).map(|size| *size as f64 * spread))
            .sum();
        Ok(priority(sum as i64, s.containers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{node, pod};
    use serde_json::json;

    #[test]
    fn image_sizes_scaled_by_spread() {
        let with = |size: i64| {
            node(
                "a",
                json!({"status": {"images": [{"names": ["busybox:latest"], "sizeBytes": size}]}}),
            )
        };
        let big = with(500 * MB);
        let snap = Snapshot::from_nodes([big.clone(), node("b", json!({}))]);
        let p = pod(json!({"containers": [{"name": "c", "image": "busybox"}]}));
        let mut state = CycleState::default();
        ImageLocality.pre_score(&mut state, &p, &snap, &[]);
        // 500 MB × 1/2 of the nodes = 250 MB.
        let want =
            MAX_NODE_SCORE * (250 * MB - MIN_THRESHOLD) / (MAX_CONTAINER_THRESHOLD - MIN_THRESHOLD);
        assert_eq!(ImageLocality.score(&state, &p, &big).unwrap(), want);
        assert_eq!(
            ImageLocality
                .score(&state, &p, &node("b", json!({})))
                .unwrap(),
            0
        );
        assert_eq!(
            priority(2000 * MB, 1),
            MAX_NODE_SCORE,
            "clamped at the maximum"
        );
    }
}
