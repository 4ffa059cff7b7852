//! `GET /metrics`: the kubelet's own gauges that can be read from the
//! runtime at scrape time (upstream's `pkg/kubelet/metrics/metrics.go`
//! `kubelet_running_pods` and `kubelet_running_containers`, which upstream
//! also fills from the runtime's pod cache). The many histograms upstream
//! records along the sync path are not kept here.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use crate::cri::api::{ContainerState, PodSandboxState};
use crate::cri::{CriError, RuntimeService};

fn state_name(state: i32) -> &'static str {
    match ContainerState::try_from(state) {
        Ok(ContainerState::ContainerCreated) => "created",
        Ok(ContainerState::ContainerRunning) => "running",
        Ok(ContainerState::ContainerExited) => "exited",
        _ => "unknown",
    }
}

/// Pods evicted, by signal (upstream's `kubelet_evictions` counter).
static EVICTIONS: Mutex<BTreeMap<&'static str, u64>> = Mutex::new(BTreeMap::new());

/// Counts one eviction for `signal` (`memory.available`, `emptydirfs.limit`, …).
pub fn count_eviction(signal: &'static str) {
    if let Ok(mut m) = EVICTIONS.lock() {
        *m.entry(signal).or_default() += 1;
    }
}

/// The exposition text, asking the runtime now.
pub async fn render(runtime: &dyn RuntimeService) -> Result<String, CriError> {
    let sandboxes = runtime.list_pod_sandbox(None).await?;
    let containers = runtime.list_containers(None).await?;
    let running_pods = sandboxes
        .iter()
        .filter(|s| s.state == PodSandboxState::SandboxReady as i32)
        .count();
    let mut by_state: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &containers {
        *by_state.entry(state_name(c.state)).or_default() += 1;
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP kubelet_running_containers [ALPHA] Number of containers currently running"
    );
    let _ = writeln!(out, "# TYPE kubelet_running_containers gauge");
    for (state, n) in &by_state {
        let _ = writeln!(
            out,
            "kubelet_running_containers{{container_state=\"{state}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP kubelet_running_pods [ALPHA] Number of pods that have a running pod sandbox"
    );
    let _ = writeln!(out, "# TYPE kubelet_running_pods gauge");
    let _ = writeln!(out, "kubelet_running_pods {running_pods}");
    let evictions = EVICTIONS.lock().map(|m| m.clone()).unwrap_or_default();
    if !evictions.is_empty() {
        let _ = writeln!(
            out,
            "# HELP kubelet_evictions [ALPHA] Cumulative number of pod evictions by eviction signal"
        );
        let _ = writeln!(out, "# TYPE kubelet_evictions counter");
        for (signal, n) in &evictions {
            let _ = writeln!(out, "kubelet_evictions{{eviction_signal=\"{signal}\"}} {n}");
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cri::api::{ContainerConfig, PodSandboxConfig};
    use crate::cri::fake::FakeRuntime;

    #[tokio::test]
    async fn counts_pods_and_containers_by_state() {
        let fake = FakeRuntime::new();
        let sb = fake
            .run_pod_sandbox(PodSandboxConfig::default())
            .await
            .unwrap();
        let cfg = ContainerConfig::default;
        let a = fake
            .create_container(&sb, cfg(), PodSandboxConfig::default())
            .await
            .unwrap();
        fake.create_container(&sb, cfg(), PodSandboxConfig::default())
            .await
            .unwrap();
        fake.start_container(&a).await.unwrap();
        let text = render(&fake).await.unwrap();
        assert!(text.contains("kubelet_running_pods 1\n"), "{text}");
        assert!(text.contains("kubelet_running_containers{container_state=\"running\"} 1\n"));
        assert!(text.contains("kubelet_running_containers{container_state=\"created\"} 1\n"));
        assert!(!text.contains("exited"));
    }
}
