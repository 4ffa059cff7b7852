//! The labels and annotations the kubelet puts on sandboxes and containers
//! so that it can find and adopt them again after a restart (upstream's
//! `pkg/kubelet/kuberuntime/labels.go`, same keys).

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Container, Pod};

pub const POD_NAME: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const POD_UID: &str = "io.kubernetes.pod.uid";
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
pub const CONTAINER_HASH: &str = "io.kubernetes.container.hash";
pub const CONTAINER_RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
pub const TERMINATION_MESSAGE_PATH: &str = "io.kubernetes.container.terminationMessagePath";
pub const TERMINATION_MESSAGE_POLICY: &str = "io.kubernetes.container.terminationMessagePolicy";
pub const POD_TERMINATION_GRACE_PERIOD: &str = "io.kubernetes.pod.terminationGracePeriod";
pub const POD_DELETION_GRACE_PERIOD: &str = "io.kubernetes.pod.deletionGracePeriod";
/// Not upstream's: marks init containers so a relist can tell them apart
/// without the pod (upstream looks the name up in the spec).
pub const CONTAINER_TYPE: &str = "io.kubernetes.container.type";

pub fn pod_name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or_default()
}
pub fn pod_namespace(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or("default")
}
pub fn pod_uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or_default()
}

/// `name_namespace(uid)`, upstream's `format.Pod`.
pub fn pod_desc(pod: &Pod) -> String {
    format!("{}_{}({})", pod_name(pod), pod_namespace(pod), pod_uid(pod))
}

/// The sandbox's labels: the pod's own plus the three identifying ones
/// (upstream's `newPodLabels`).
pub fn new_pod_labels(pod: &Pod) -> HashMap<String, String> {
    let mut l: HashMap<String, String> = pod
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    l.insert(POD_NAME.into(), pod_name(pod).into());
    l.insert(POD_NAMESPACE.into(), pod_namespace(pod).into());
    l.insert(POD_UID.into(), pod_uid(pod).into());
    l
}

/// The sandbox's annotations: the pod's own (upstream's `newPodAnnotations`).
pub fn new_pod_annotations(pod: &Pod) -> HashMap<String, String> {
    pod.metadata
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// Whether a container is an init container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerType {
    Init,
    Regular,
}

impl ContainerType {
    fn as_str(self) -> &'static str {
        match self {
            ContainerType::Init => "INIT_CONTAINER",
            ContainerType::Regular => "CONTAINER",
        }
    }
}

/// A container's labels (upstream's `newContainerLabels`).
pub fn new_container_labels(
    container: &Container,
    pod: &Pod,
    ty: ContainerType,
) -> HashMap<String, String> {
    HashMap::from([
        (POD_NAME.into(), pod_name(pod).into()),
        (POD_NAMESPACE.into(), pod_namespace(pod).into()),
        (POD_UID.into(), pod_uid(pod).into()),
        (CONTAINER_NAME.into(), container.name.clone()),
        (CONTAINER_TYPE.into(), ty.as_str().into()),
    ])
}

/// A container's annotations (upstream's `newContainerAnnotations`).
pub fn new_container_annotations(
    container: &Container,
    pod: &Pod,
    restart_count: i32,
) -> HashMap<String, String> {
    let mut a = HashMap::from([
        (
            CONTAINER_HASH.into(),
            format!("{:x}", container_hash(container)),
        ),
        (CONTAINER_RESTART_COUNT.into(), restart_count.to_string()),
        (
            TERMINATION_MESSAGE_PATH.into(),
            container
                .termination_message_path
                .clone()
                .unwrap_or_else(|| "/dev/termination-log".into()),
        ),
        (
            TERMINATION_MESSAGE_POLICY.into(),
            container
                .termination_message_policy
                .clone()
                .unwrap_or_else(|| "File".into()),
        ),
        (
            POD_TERMINATION_GRACE_PERIOD.into(),
            termination_grace_period(pod).to_string(),
        ),
    ]);
    if let Some(g) = pod.metadata.deletion_grace_period_seconds {
        a.insert(POD_DELETION_GRACE_PERIOD.into(), g.to_string());
    }
    a
}

/// The pod's grace period: upstream's default 30 s when unset.
pub fn termination_grace_period(pod: &Pod) -> i64 {
    pod.spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30)
}

/// A stable hash of the container's spec, to notice a changed spec
/// (upstream's `HashContainer`). FNV-1a over the JSON: stable across
/// restarts and builds, unlike `DefaultHasher`'s unspecified algorithm.
pub fn container_hash(container: &Container) -> u64 {
    let bytes = serde_json::to_vec(container).unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hash_changes_with_the_spec_only() {
        let a = Container {
            name: "a".into(),
            image: Some("busybox".into()),
            ..Default::default()
        };
        let mut b = a.clone();
        assert_eq!(container_hash(&a), container_hash(&b));
        b.image = Some("busybox:1.35".into());
        assert_ne!(container_hash(&a), container_hash(&b));
    }
}
