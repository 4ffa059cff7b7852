//! The pod's API status from the runtime's view (upstream's
//! `pkg/kubelet/kubelet_pods.go` `generateAPIPodStatus`,
//! `convertToAPIContainerStatuses` and `getPhase`, and
//! `pkg/kubelet/status/generate.go` for the conditions).

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerState as ApiState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus as ApiContainerStatus, HostIP, Pod, PodCondition, PodIP,
    PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::cri::api::ContainerState;
use crate::kuberuntime::actions::RestartPolicy;
use crate::kuberuntime::container::qos_class;
use crate::kuberuntime::manager::Waiting;
use crate::kuberuntime::pod_status::{ContainerStatus, PodRuntimeStatus};

/// What the status needs besides the pod and the runtime.
#[derive(Debug, Clone)]
pub struct StatusContext<'a> {
    pub host_ips: &'a [String],
    /// The CRI runtime's name, the scheme of container ids (`containerd://…`).
    pub runtime_name: &'a str,
    pub now: Timestamp,
    /// The pod is being killed for good: nothing restarts, so containers
    /// show as terminated and the phase is final (upstream's `podIsTerminal`).
    pub terminal: bool,
    /// Probe results; `None`: every running container counts as started
    /// and ready.
    pub probes: Option<&'a crate::prober::Prober>,
}

fn time_ns(ns: i64) -> Option<Time> {
    (ns > 0)
        .then(|| Timestamp::from_nanosecond(i128::from(ns)).ok().map(Time))
        .flatten()
}

fn terminated(c: &ContainerStatus, runtime: &str) -> ContainerStateTerminated {
    let reason = if !c.reason.is_empty() {
        c.reason.clone()
    } else if c.exit_code == 0 {
        "Completed".into()
    } else {
        "Error".into()
    };
    ContainerStateTerminated {
        exit_code: c.exit_code,
        reason: Some(reason),
        message: (!c.message.is_empty()).then(|| c.message.clone()),
        started_at: time_ns(c.started_at),
        finished_at: time_ns(c.finished_at),
        container_id: Some(format!("{runtime}://{}", c.id)),
        signal: None,
    }
}

fn waiting(reason: &str, message: Option<String>) -> ApiState {
    ApiState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message,
        }),
        ..Default::default()
    }
}

/// One container's API status (upstream's `convertToAPIContainerStatuses`).
fn container_status(
    spec: &Container,
    rs: &PodRuntimeStatus,
    waiting_reasons: &HashMap<String, Waiting>,
    default_waiting: &str,
    policy: RestartPolicy,
    ctx: &StatusContext<'_>,
) -> ApiContainerStatus {
    let image = spec.image.clone().unwrap_or_default();
    let mut s = ApiContainerStatus {
        name: spec.name.clone(),
        image: image.clone(),
        image_id: String::new(),
        ready: false,
        restart_count: 0,
        started: Some(false),
        ..Default::default()
    };
    let override_ = waiting_reasons.get(&spec.name);
    let Some(cur) = rs.latest(&spec.name) else {
        s.state = Some(match override_ {
            Some(w) => waiting(&w.reason, Some(w.message.clone())),
            None => waiting(default_waiting, None),
        });
        return s;
    };
    s.restart_count = cur.restart_count;
    s.image_id = cur.image_ref.clone();
    s.container_id = Some(format!("{}://{}", ctx.runtime_name, cur.id));
    let last_from_previous = || {
        rs.previous(&spec.name).map(|p| ApiState {
            terminated: Some(terminated(p, ctx.runtime_name)),
            ..Default::default()
        })
    };
    match cur.state {
        ContainerState::ContainerRunning => {
            s.state = Some(ApiState {
                running: Some(ContainerStateRunning {
                    started_at: time_ns(cur.started_at),
                }),
                ..Default::default()
            });
            let (started, ready) = match ctx.probes {
                Some(p) => (p.started(spec, &cur.id), p.ready(spec, &cur.id)),
                None => (true, true),
            };
            s.ready = ready;
            s.started = Some(started);
            s.last_state = last_from_previous();
        }
        ContainerState::ContainerExited => {
            let term = ApiState {
                terminated: Some(terminated(cur, ctx.runtime_name)),
                ..Default::default()
            };
            match override_ {
                // Waiting to restart: the exit becomes lastState.
                Some(w) => {
                    s.state = Some(waiting(&w.reason, Some(w.message.clone())));
                    s.last_state = Some(term);
                }
                None if policy.restarts(cur.exit_code) => {
                    s.state = Some(waiting("ContainerCreating", None));
                    s.last_state = Some(term);
                }
                None => {
                    s.state = Some(term);
                    s.last_state = last_from_previous();
                }
            }
        }
        _ => {
            s.state = Some(match override_ {
                Some(w) => waiting(&w.reason, Some(w.message.clone())),
                None => waiting("ContainerCreating", None),
            });
            s.last_state = last_from_previous();
        }
    }
    s
}

fn is_terminated_ok(s: &ApiContainerStatus) -> bool {
    s.state
        .as_ref()
        .and_then(|st| st.terminated.as_ref())
        .is_some_and(|t| t.exit_code == 0)
}

fn is_terminated(s: &ApiContainerStatus) -> bool {
    s.state.as_ref().is_some_and(|st| st.terminated.is_some())
}

/// Upstream's `getPhase`.
pub fn get_phase(
    policy: RestartPolicy,
    init: &[ApiContainerStatus],
    containers: &[ApiContainerStatus],
) -> &'static str {
    for s in init {
        if is_terminated(s) && !is_terminated_ok(s) && policy == RestartPolicy::Never {
            return "Failed";
        }
    }
    let pending_init = !init.iter().all(is_terminated_ok);
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in containers {
        let st = s.state.as_ref();
        if st.is_some_and(|st| st.running.is_some()) {
            running += 1;
        } else if let Some(t) = st.and_then(|st| st.terminated.as_ref()) {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if s
            .last_state
            .as_ref()
            .is_some_and(|l| l.terminated.is_some())
        {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    if pending_init {
        return "Pending";
    }
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 {
        return match policy {
            RestartPolicy::Always => "Running",
            RestartPolicy::OnFailure if stopped == succeeded => "Succeeded",
            RestartPolicy::OnFailure => "Running",
            RestartPolicy::Never if stopped == succeeded => "Succeeded",
            RestartPolicy::Never => "Failed",
        };
    }
    "Pending"
}

fn condition(
    old: Option<&PodStatus>,
    ty: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    now: &Timestamp,
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let prev = old
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == ty));
    let last_transition_time = match prev {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => Some(Time(*now)),
    };
    PodCondition {
        type_: ty.into(),
        status: status.into(),
        reason: reason.map(str::to_string),
        message,
        last_transition_time,
        last_probe_time: None,
        observed_generation: None,
    }
}

/// The pod's status as the kubelet reports it.
pub fn generate_api_pod_status(
    pod: &Pod,
    rs: &PodRuntimeStatus,
    waiting_reasons: &HashMap<String, Waiting>,
    ctx: &StatusContext<'_>,
) -> PodStatus {
    let old = pod.status.as_ref();
    let policy = if ctx.terminal {
        RestartPolicy::Never
    } else {
        RestartPolicy::of(pod)
    };
    let spec = pod.spec.clone().unwrap_or_default();
    let init_specs = spec.init_containers.clone().unwrap_or_default();
    let init: Vec<ApiContainerStatus> = init_specs
        .iter()
        .map(|c| {
            // An init container that succeeded is done whatever the policy.
            let p = match policy {
                RestartPolicy::Always => RestartPolicy::OnFailure,
                p => p,
            };
            container_status(c, rs, waiting_reasons, "PodInitializing", p, ctx)
        })
        .collect();
    let init_done = init.iter().all(is_terminated_ok);
    let app_default = if init_done {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    let containers: Vec<ApiContainerStatus> = spec
        .containers
        .iter()
        .map(|c| container_status(c, rs, waiting_reasons, app_default, policy, ctx))
        .collect();
    let phase = get_phase(policy, &init, &containers);

    let sandbox = rs.ready_sandbox();
    let host_network = spec.host_network.unwrap_or(false);
    let mut pod_ips: Vec<String> = if host_network {
        ctx.host_ips.to_vec()
    } else {
        sandbox.map(|s| s.ips.clone()).unwrap_or_default()
    };
    if pod_ips.is_empty() {
        // A stopped sandbox has no IP; the pod keeps the one it had.
        pod_ips = old
            .and_then(|s| s.pod_ips.as_ref())
            .map(|ips| ips.iter().map(|i| i.ip.clone()).collect())
            .unwrap_or_default();
    }

    let now = &ctx.now;
    let incomplete_init: Vec<&str> = init_specs
        .iter()
        .zip(&init)
        .filter(|(_, s)| !is_terminated_ok(s))
        .map(|(c, _)| c.name.as_str())
        .collect();
    let unready: Vec<&str> = spec
        .containers
        .iter()
        .zip(&containers)
        .filter(|(_, s)| !s.ready)
        .map(|(c, _)| c.name.as_str())
        .collect();
    let ready = unready.is_empty() && !containers.is_empty();
    let (ready_reason, ready_message) = if ready {
        (None, None)
    } else if phase == "Succeeded" || phase == "Failed" {
        (Some("PodCompleted"), None)
    } else {
        (
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    };
    let (init_reason, init_message) = if init_done {
        if phase == "Succeeded" || phase == "Failed" {
            (Some("PodCompleted"), None)
        } else {
            (None, None)
        }
    } else {
        (
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: [{}]",
                incomplete_init.join(" ")
            )),
        )
    };
    let mut conditions = vec![
        condition(
            old,
            "PodReadyToStartContainers",
            sandbox.is_some(),
            None,
            None,
            now,
        ),
        condition(
            old,
            "Initialized",
            init_done,
            init_reason,
            init_message,
            now,
        ),
        condition(
            old,
            "Ready",
            ready,
            ready_reason,
            ready_message.clone(),
            now,
        ),
        condition(
            old,
            "ContainersReady",
            ready,
            ready_reason,
            ready_message,
            now,
        ),
    ];
    // Conditions others own (PodScheduled, readiness gates …) stay as they are.
    let owned = [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
    ];
    let mut others: Vec<PodCondition> = old
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|c| !owned.contains(&c.type_.as_str()))
        .collect();
    if !others.iter().any(|c| c.type_ == "PodScheduled") {
        others.insert(0, condition(None, "PodScheduled", true, None, None, now));
    }
    others.append(&mut conditions);

    PodStatus {
        phase: Some(phase.into()),
        conditions: Some(others),
        host_ip: ctx.host_ips.first().cloned(),
        host_ips: Some(
            ctx.host_ips
                .iter()
                .map(|ip| HostIP { ip: ip.clone() })
                .collect(),
        ),
        pod_ip: pod_ips.first().cloned(),
        pod_ips: Some(pod_ips.iter().map(|ip| PodIP { ip: ip.clone() }).collect()),
        start_time: Some(old.and_then(|s| s.start_time.clone()).unwrap_or(Time(*now))),
        init_container_statuses: (!init.is_empty()).then_some(init),
        container_statuses: Some(containers),
        qos_class: Some(qos_class(pod).into()),
        ..old.cloned().unwrap_or_default()
    }
}

/// Whether the phase is final.
pub fn is_terminal(phase: Option<&str>) -> bool {
    matches!(phase, Some("Succeeded") | Some("Failed"))
}

/// The status with all times cleared, to tell a real change from a
/// re-computation (the heartbeat-free comparison the status manager makes).
pub fn same_status(a: &PodStatus, b: &PodStatus) -> bool {
    let strip = |s: &PodStatus| {
        let mut s = s.clone();
        for c in s.conditions.iter_mut().flatten() {
            c.last_transition_time = None;
            c.last_probe_time = None;
        }
        s
    };
    strip(a) == strip(b)
}
