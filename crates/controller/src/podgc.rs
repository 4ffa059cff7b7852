//! The pod garbage collector (upstream's pkg/controller/podgc/
//! gc_controller.go): every `check_period` it looks at the cached pods and
//!
//! - deletes the oldest terminated (Succeeded/Failed) pods beyond
//!   `--terminated-pod-gc-threshold`,
//! - force-deletes pods bound to a Node that does not exist (after a
//!   quarantine and a live check of the Node), marking them Failed with a
//!   `DisruptionTarget` condition first,
//! - force-deletes terminating pods that were never scheduled.
//!
//! Like upstream it is a periodic sweep over the shared caches, not a
//! reconcile loop; the sweep itself never lists from the API server.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::ResourceExt;
use serde_json::json;

use crate::descriptors::ControllerFuture;
use crate::{is_not_found, ControllerContext, StartError};

const NAME: &str = "pod-garbage-collector-controller";

/// The sweep's knobs (upstream's defaults in [`Default`]).
#[derive(Debug, Clone, Copy)]
pub struct PodGcConfig {
    /// `--terminated-pod-gc-threshold`; 0 or less keeps every terminated pod.
    pub terminated_pod_gc_threshold: i32,
    pub check_period: Duration,
    pub quarantine: Duration,
}

impl Default for PodGcConfig {
    fn default() -> Self {
        Self {
            terminated_pod_gc_threshold: 12500,
            check_period: Duration::from_secs(20),
            quarantine: Duration::from_secs(40),
        }
    }
}

/// Upstream's `startPodGCController`.
pub fn start(ctx: &ControllerContext) -> Result<ControllerFuture, StartError> {
    let pods = ctx.informers.informer::<Pod>().store();
    let nodes = ctx.informers.informer::<Node>().store();
    let client = ctx.client.clone();
    let cfg = ctx.config.pod_gc;
    Ok(Box::pin(async move {
        let mut absent_since: HashMap<String, Instant> = HashMap::new();
        let mut tick = tokio::time::interval(cfg.check_period);
        loop {
            tick.tick().await;
            sweep(&client, &pods, &nodes, &cfg, &mut absent_since).await;
        }
    }))
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

async fn force_delete(client: &kube::Client, p: &Pod, why: &str) {
    let api: Api<Pod> = Api::namespaced(client.clone(), &p.namespace().unwrap_or_default());
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: p.metadata.uid.clone().map(|uid| kube::api::Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&p.name_any(), &dp).await {
        Ok(_) => {
            tracing::info!(controller = NAME, pod = %format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any()), reason = why, "deleted pod")
        }
        Err(e) if is_not_found(&e) => {}
        Err(e) => {
            tracing::warn!(controller = NAME, pod = %p.name_any(), error = %e, "deleting pod failed; next sweep retries")
        }
    }
}

/// Pods to delete for the terminated threshold: the oldest beyond it.
pub fn terminated_excess(pods: &[Arc<Pod>], threshold: i32) -> Vec<Arc<Pod>> {
    let Ok(threshold) = usize::try_from(threshold) else {
        return Vec::new();
    };
    if threshold == 0 {
        return Vec::new();
    }
    let mut done: Vec<Arc<Pod>> = pods
        .iter()
        .filter(|p| matches!(phase(p), "Succeeded" | "Failed"))
        .cloned()
        .collect();
    if done.len() <= threshold {
        return Vec::new();
    }
    done.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let n = done.len() - threshold;
    done.truncate(n);
    done
}

async fn sweep(
    client: &kube::Client,
    pods: &Store<Pod>,
    nodes: &Store<Node>,
    cfg: &PodGcConfig,
    absent_since: &mut HashMap<String, Instant>,
) {
    let all = pods.state();
    for p in terminated_excess(&all, cfg.terminated_pod_gc_threshold) {
        force_delete(client, &p, "terminated pod threshold").await;
    }
    // Orphaned: bound to a node that is gone.
    let node_api: Api<Node> = Api::all(client.clone());
    let mut still_absent = HashMap::new();
    for p in all
        .iter()
        .filter(|p| !matches!(phase(p), "Succeeded" | "Failed"))
    {
        let Some(node) = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty())
        else {
            if p.metadata.deletion_timestamp.is_some() {
                force_delete(client, p, "unscheduled and terminating").await;
            }
            continue;
        };
        if nodes.get(&ObjectRef::new(&node)).is_some() {
            continue;
        }
        let since = *absent_since.get(&node).unwrap_or(&Instant::now());
        still_absent.insert(node.clone(), since);
        if since.elapsed() < cfg.quarantine {
            continue;
        }
        match node_api.get_opt(&node).await {
            Ok(None) => {
                let api: Api<Pod> =
                    Api::namespaced(client.clone(), &p.namespace().unwrap_or_default());
                let now = k8s_openapi::jiff::Timestamp::now().to_string();
                let status = json!({"status": {"phase": "Failed", "conditions": [{"type": "DisruptionTarget", "status": "True",
                    "reason": "DeletionByPodGC", "message": "PodGC: node no longer exists", "lastTransitionTime": now}]}});
                let _ = api
                    .patch_status(
                        &p.name_any(),
                        &PatchParams::default(),
                        &Patch::Merge(&status),
                    )
                    .await;
                force_delete(client, p, "node no longer exists").await;
            }
            Ok(Some(_)) => {}
            Err(e) => {
                tracing::warn!(controller = NAME, node = %node, error = %e, "checking node failed")
            }
        }
    }
    *absent_since = still_absent;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_terminated_pods_beyond_the_threshold_go() {
        let pod = |name: &str, phase: &str, created: &str| -> Arc<Pod> {
            Arc::new(serde_json::from_value(json!({"metadata": {"name": name, "creationTimestamp": created}, "status": {"phase": phase}})).unwrap_or_default())
        };
        let pods = vec![
            pod("new", "Succeeded", "2026-01-03T00:00:00Z"),
            pod("old", "Failed", "2026-01-01T00:00:00Z"),
            pod("running", "Running", "2025-01-01T00:00:00Z"),
            pod("mid", "Succeeded", "2026-01-02T00:00:00Z"),
        ];
        let names: Vec<String> = terminated_excess(&pods, 1)
            .iter()
            .map(|p| p.name_any())
            .collect();
        assert_eq!(names, vec!["old".to_string(), "mid".to_string()]);
        assert!(terminated_excess(&pods, 0).is_empty());
        assert!(terminated_excess(&pods, 5).is_empty());
    }
}
