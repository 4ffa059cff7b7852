//! Outcomes written to the API server (upstream's `handleSchedulingFailure`
//! and the binding cycle's event in `schedule_one.go`, and
//! `updatePod`): a `Scheduled` Event when bound; a `FailedScheduling`
//! Warning, the `PodScheduled=False` condition and
//! `status.nominatedNodeName` when not. The condition is patched only
//! when it changes, so a pod that stays unschedulable does not rewrite
//! itself on every attempt.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter as EventReporter};
use kube::Resource;
use serde_json::json;

use crate::framework::PodInfo;
use crate::scheduler::{Failure, Reporter};

pub struct ApiReporter {
    client: kube::Client,
    recorder: Recorder,
}

impl ApiReporter {
    /// `controller` is the reporting component (`default-scheduler`).
    pub fn new(client: kube::Client, controller: &str, instance: Option<String>) -> Self {
        let recorder = Recorder::new(
            client.clone(),
            EventReporter {
                controller: controller.into(),
                instance,
            },
        );
        ApiReporter { client, recorder }
    }

    async fn event(
        &self,
        pod: &PodInfo,
        type_: EventType,
        reason: &str,
        note: String,
        action: &str,
    ) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &pod.pod.object_ref(&())).await {
            tracing::debug!(pod = %pod.key, error = %e, "recording event");
        }
    }
}

/// Whether the pod already carries this condition and nomination.
fn unchanged(pod: &Pod, f: &Failure) -> bool {
    let status = pod.status.as_ref();
    let cond = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"));
    let same_cond = cond.is_some_and(|c| {
        c.status == "False"
            && c.reason.as_deref() == Some(f.reason)
            && c.message.as_deref() == Some(&f.message)
    });
    let nominated = status
        .and_then(|s| s.nominated_node_name.clone())
        .unwrap_or_default();
    same_cond && f.nominated_node.as_ref().is_none_or(|n| *n == nominated)
}

#[async_trait::async_trait]
impl Reporter for ApiReporter {
    async fn scheduled(&self, pod: &PodInfo, node: &str) {
        let note = format!("Successfully assigned {} to {node}", pod.key);
        self.event(pod, EventType::Normal, "Scheduled", note, "Binding")
            .await;
    }

    async fn failed(&self, pod: &PodInfo, f: &Failure) {
        self.event(
            pod,
            EventType::Warning,
            "FailedScheduling",
            f.message.clone(),
            "Scheduling",
        )
        .await;
        if unchanged(&pod.pod, f) {
            return;
        }
        let now = serde_json::to_value(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        ))
        .unwrap_or_default();
        let mut status = json!({"conditions": [{
            "type": "PodScheduled",
            "status": "False",
            "reason": f.reason,
            "message": f.message,
            "lastProbeTime": null,
            "lastTransitionTime": now,
        }]});
        if let Some(n) = &f.nominated_node {
            status["nominatedNodeName"] = if n.is_empty() { json!(null) } else { json!(n) };
        }
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace);
        let patch = Patch::Strategic(json!({"status": status}));
        if let Err(e) = api
            .patch_status(&pod.name, &PatchParams::default(), &patch)
            .await
        {
            tracing::debug!(pod = %pod.key, error = %e, "updating PodScheduled condition");
        }
    }
}
