//! What a sync must do to bring the runtime to the pod's spec (upstream's
//! `kuberuntime_manager.go` `computePodActions`): a pure function of the
//! pod and the runtime's view of it, so each decision is tested on its own.

use k8s_openapi::api::core::v1::Pod;

use crate::cri::api::ContainerState;

use super::labels;
use super::pod_status::{ContainerStatus, PodRuntimeStatus};

/// The pod's restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    pub fn of(pod: &Pod) -> Self {
        match pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) {
            Some("Never") => RestartPolicy::Never,
            Some("OnFailure") => RestartPolicy::OnFailure,
            _ => RestartPolicy::Always,
        }
    }

    /// Whether a container that ended with `exit_code` is started again.
    pub fn restarts(self, exit_code: i32) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => exit_code != 0,
            RestartPolicy::Never => false,
        }
    }
}

/// A container to start, by its place in the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToStart {
    Init(usize),
    Regular(usize),
}

/// The actions of one sync, carried out in field order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodActions {
    /// Stop every container and sandbox of the pod first (a new sandbox
    /// is needed, or an init container failed for good).
    pub kill_pod: bool,
    /// Create a sandbox with this attempt number.
    pub create_sandbox: Option<u32>,
    /// Container ids to stop (spec changed), with the container's name.
    pub containers_to_kill: Vec<(String, String)>,
    pub containers_to_start: Vec<ToStart>,
}

fn ended(c: &ContainerStatus) -> bool {
    matches!(
        c.state,
        ContainerState::ContainerExited | ContainerState::ContainerCreated
    )
}

/// The exit code used for restart decisions; a container that was created
/// but never ran counts as failed.
fn exit_code(c: &ContainerStatus) -> i32 {
    if c.state == ContainerState::ContainerCreated {
        -1
    } else {
        c.exit_code
    }
}

/// Upstream's `computePodActions`.
pub fn compute_pod_actions(pod: &Pod, rs: &PodRuntimeStatus) -> PodActions {
    let mut a = PodActions::default();
    let Some(spec) = &pod.spec else {
        return a;
    };
    let policy = RestartPolicy::of(pod);
    let init = spec.init_containers.as_deref().unwrap_or_default();

    let Some(sandbox) = rs.ready_sandbox() else {
        // A pod that ran with restartPolicy Never is not started again.
        if policy == RestartPolicy::Never && !rs.containers.is_empty() {
            a.kill_pod = !rs.sandboxes.is_empty();
            return a;
        }
        a.kill_pod = !rs.sandboxes.is_empty();
        a.create_sandbox = Some(rs.sandboxes.first().map(|s| s.attempt + 1).unwrap_or(0));
        a.containers_to_start = if init.is_empty() {
            (0..spec.containers.len()).map(ToStart::Regular).collect()
        } else {
            vec![ToStart::Init(0)]
        };
        return a;
    };
    let in_sandbox = |name: &str| {
        rs.containers
            .iter()
            .find(|c| c.name == name && c.sandbox_id == sandbox.id)
    };

    for (i, ic) in init.iter().enumerate() {
        match in_sandbox(&ic.name) {
            None => {
                a.containers_to_start.push(ToStart::Init(i));
                return a;
            }
            Some(c) if ended(c) && exit_code(c) == 0 => continue,
            Some(c) if ended(c) => {
                if policy == RestartPolicy::Never {
                    a.kill_pod = true;
                } else {
                    a.containers_to_start.push(ToStart::Init(i));
                }
                return a;
            }
            // Running or unknown: wait for it.
            Some(_) => return a,
        }
    }

    for (i, c) in spec.containers.iter().enumerate() {
        match in_sandbox(&c.name) {
            None => a.containers_to_start.push(ToStart::Regular(i)),
            Some(st) if st.state == ContainerState::ContainerRunning => {
                let want = format!("{:x}", labels::container_hash(c));
                if !st.hash.is_empty() && st.hash != want {
                    a.containers_to_kill.push((st.id.clone(), c.name.clone()));
                    a.containers_to_start.push(ToStart::Regular(i));
                }
            }
            Some(st) if ended(st) => {
                if policy.restarts(exit_code(st)) {
                    a.containers_to_start.push(ToStart::Regular(i));
                }
            }
            Some(_) => {}
        }
    }
    a
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::kuberuntime::pod_status::SandboxStatus;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    fn pod(policy: &str, init: &[&str], containers: &[&str]) -> Pod {
        let c = |n: &&str| Container {
            name: n.to_string(),
            image: Some("busybox".into()),
            ..Default::default()
        };
        Pod {
            spec: Some(PodSpec {
                restart_policy: Some(policy.into()),
                init_containers: (!init.is_empty()).then(|| init.iter().map(c).collect()),
                containers: containers.iter().map(c).collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn sandbox(id: &str, ready: bool, attempt: u32) -> SandboxStatus {
        SandboxStatus {
            id: id.into(),
            ready,
            created_at: 1,
            attempt,
            ips: vec![],
        }
    }

    fn container(p: &Pod, name: &str, state: ContainerState, exit: i32) -> ContainerStatus {
        let spec = p.spec.as_ref().unwrap();
        let c = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .find(|c| c.name == name)
            .unwrap();
        ContainerStatus {
            id: format!("id-{name}"),
            sandbox_id: "sb1".into(),
            name: name.into(),
            state,
            created_at: 1,
            started_at: 1,
            finished_at: 2,
            exit_code: exit,
            reason: String::new(),
            message: String::new(),
            image: "busybox".into(),
            image_ref: "sha256:b".into(),
            restart_count: 0,
            hash: format!("{:x}", labels::container_hash(c)),
            log_path: String::new(),
        }
    }

    use ContainerState::{ContainerExited as Exited, ContainerRunning as Running};

    #[test]
    fn new_pod_gets_a_sandbox_and_all_containers() {
        let p = pod("Always", &[], &["a", "b"]);
        let a = compute_pod_actions(&p, &PodRuntimeStatus::default());
        assert_eq!(a.create_sandbox, Some(0));
        assert!(!a.kill_pod);
        assert_eq!(
            a.containers_to_start,
            vec![ToStart::Regular(0), ToStart::Regular(1)]
        );
    }

    #[test]
    fn dead_sandbox_is_replaced_with_the_next_attempt() {
        let p = pod("Always", &[], &["a"]);
        let rs = PodRuntimeStatus {
            sandboxes: vec![sandbox("sb1", false, 2)],
            containers: vec![container(&p, "a", Exited, 137)],
        };
        let a = compute_pod_actions(&p, &rs);
        assert!(a.kill_pod);
        assert_eq!(a.create_sandbox, Some(3));
    }

    #[test]
    fn never_policy_pod_that_ran_is_not_restarted() {
        let p = pod("Never", &[], &["a"]);
        let rs = PodRuntimeStatus {
            sandboxes: vec![sandbox("sb1", false, 0)],
            containers: vec![container(&p, "a", Exited, 0)],
        };
        assert_eq!(compute_pod_actions(&p, &rs).create_sandbox, None);
    }

    #[test]
    fn init_containers_run_one_at_a_time_in_order() {
        let p = pod("Always", &["i1", "i2"], &["a"]);
        let mut rs = PodRuntimeStatus {
            sandboxes: vec![sandbox("sb1", true, 0)],
            containers: vec![container(&p, "i1", Running, 0)],
        };
        assert_eq!(compute_pod_actions(&p, &rs), PodActions::default());
        rs.containers = vec![container(&p, "i1", Exited, 0)];
        assert_eq!(
            compute_pod_actions(&p, &rs).containers_to_start,
            vec![ToStart::Init(1)]
        );
        rs.containers.insert(0, container(&p, "i2", Exited, 1));
        assert_eq!(
            compute_pod_actions(&p, &rs).containers_to_start,
            vec![ToStart::Init(1)]
        );
        rs.containers[0] = container(&p, "i2", Exited, 0);
        assert_eq!(
            compute_pod_actions(&p, &rs).containers_to_start,
            vec![ToStart::Regular(0)]
        );
    }

    #[test]
    fn failed_init_container_with_never_kills_the_pod() {
        let p = pod("Never", &["i1"], &["a"]);
        let rs = PodRuntimeStatus {
            sandboxes: vec![sandbox("sb1", true, 0)],
            containers: vec![container(&p, "i1", Exited, 3)],
        };
        let a = compute_pod_actions(&p, &rs);
        assert!(a.kill_pod);
        assert!(a.containers_to_start.is_empty());
    }

    #[test]
    fn restart_policy_decides_on_exited_containers() {
        for (policy, exit, restart) in [
            ("Always", 0, true),
            ("Always", 1, true),
            ("OnFailure", 0, false),
            ("OnFailure", 1, true),
            ("Never", 1, false),
        ] {
            let p = pod(policy, &[], &["a"]);
            let rs = PodRuntimeStatus {
                sandboxes: vec![sandbox("sb1", true, 0)],
                containers: vec![container(&p, "a", Exited, exit)],
            };
            let a = compute_pod_actions(&p, &rs);
            assert_eq!(
                !a.containers_to_start.is_empty(),
                restart,
                "{policy} exit {exit}"
            );
        }
    }

    #[test]
    fn changed_spec_restarts_the_running_container() {
        let p = pod("Always", &[], &["a"]);
        let mut c = container(&p, "a", Running, 0);
        let rs = PodRuntimeStatus {
            sandboxes: vec![sandbox("sb1", true, 0)],
            containers: vec![c.clone()],
        };
        assert_eq!(compute_pod_actions(&p, &rs), PodActions::default());
        c.hash = "0".into();
        let rs = PodRuntimeStatus {
            containers: vec![c],
            ..rs
        };
        let a = compute_pod_actions(&p, &rs);
        assert_eq!(
            a.containers_to_kill,
            vec![("id-a".to_string(), "a".to_string())]
        );
        assert_eq!(a.containers_to_start, vec![ToStart::Regular(0)]);
    }
}
