//! Events about the objects a controller manages (upstream's
//! `record.EventRecorder` as controllers use it: `Eventf(obj, type,
//! reason, message)`), on kube-rs's [`Recorder`] (events.k8s.io/v1, with
//! its series de-duplication). Publishing is best effort and never blocks
//! a reconcile: each event is sent in the background and a failure is
//! only logged, as upstream's broadcaster drops events it cannot write.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// A controller's event recorder.
#[derive(Clone)]
pub struct EventRecorder {
    recorder: Recorder,
}

impl EventRecorder {
    /// Events reported as coming from `controller` (upstream's component name).
    pub fn new(client: kube::Client, controller: &str) -> Self {
        Self {
            recorder: Recorder::new(
                client,
                Reporter {
                    controller: controller.to_string(),
                    instance: None,
                },
            ),
        }
    }

    /// A `Normal` event.
    pub fn normal(&self, reference: &ObjectReference, reason: &str, message: String) {
        self.publish(EventType::Normal, reference, reason, message);
    }

    /// A `Warning` event.
    pub fn warning(&self, reference: &ObjectReference, reason: &str, message: String) {
        self.publish(EventType::Warning, reference, reason, message);
    }

    fn publish(&self, type_: EventType, reference: &ObjectReference, reason: &str, note: String) {
        let recorder = self.recorder.clone();
        let reference = reference.clone();
        let ev = Event {
            type_,
            reason: reason.to_string(),
            note: Some(note),
            action: reason.to_string(),
            secondary: None,
        };
        tokio::spawn(async move {
            if let Err(e) = recorder.publish(&ev, &reference).await {
                tracing::debug!(error = %e, reason = ev.reason, "publishing an event failed");
            }
        });
    }
}
