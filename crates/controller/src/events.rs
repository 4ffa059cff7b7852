//! Events about the objects a controller manages (upstream's
//! `record.EventRecorder` as controllers use it: `Eventf(obj, type,
//! reason, message)`), written as core/v1 Events the way upstream's legacy
//! recorder and its EventCorrelator write them: one Event per object, type,
//! reason and message, named `<object>.<hex nanoseconds>`, with
//! `source.component` the controller; the same message again increments
//! `count` and moves `lastTimestamp` (so "Scaled up replica set a to 2" and
//! "… to 3" are two Events, as `kubectl describe` shows upstream).
//! Publishing is best effort and never blocks a reconcile: each event is
//! sent in the background and a failure is only logged, as upstream's
//! broadcaster drops events it cannot write.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

/// Correlation entries kept; beyond it the cache starts over (upstream's
/// LRU holds 4096).
const CACHE_SIZE: usize = 4096;

type Key = (String, String, String, String, String, String);

/// A controller's event recorder.
#[derive(Clone)]
pub struct EventRecorder {
    client: kube::Client,
    component: String,
    /// What was already written: key → (Event name, namespace, count).
    seen: Arc<Mutex<HashMap<Key, (String, String, i32)>>>,
}

impl EventRecorder {
    /// Events reported as coming from `controller` (upstream's component name).
    pub fn new(client: kube::Client, controller: &str) -> Self {
        Self {
            client,
            component: controller.to_string(),
            seen: Arc::default(),
        }
    }

    /// A `Normal` event.
    pub fn normal(&self, reference: &ObjectReference, reason: &str, message: String) {
        self.publish("Normal", reference, reason, message);
    }

    /// A `Warning` event.
    pub fn warning(&self, reference: &ObjectReference, reason: &str, message: String) {
        self.publish("Warning", reference, reason, message);
    }

    fn publish(&self, type_: &str, reference: &ObjectReference, reason: &str, message: String) {
        let namespace = reference
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into());
        let key: Key = (
            reference.uid.clone().unwrap_or_default(),
            reference.kind.clone().unwrap_or_default(),
            reference.name.clone().unwrap_or_default(),
            type_.to_string(),
            reason.to_string(),
            message.clone(),
        );
        // (name, namespace, count): count 1 is a new Event.
        let (name, ns, count) = {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if seen.len() >= CACHE_SIZE && !seen.contains_key(&key) {
                seen.clear();
            }
            let entry = seen.entry(key).or_insert_with(|| {
                let nanos = jiff::Timestamp::now().as_nanosecond();
                let object = reference.name.as_deref().unwrap_or("event");
                (format!("{object}.{nanos:x}"), namespace, 0)
            });
            entry.2 += 1;
            entry.clone()
        };
        let (client, component) = (self.client.clone(), self.component.clone());
        let (reference, reason, type_) = (reference.clone(), reason.to_string(), type_.to_string());
        tokio::spawn(async move {
            let now = Time(jiff::Timestamp::now());
            let api: Api<Event> = Api::namespaced(client, &ns);
            let result = if count > 1 {
                let patch = json!({"count": count, "lastTimestamp": now});
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map(|_| ())
            } else {
                let event = Event {
                    metadata: ObjectMeta {
                        name: Some(name),
                        namespace: Some(ns.clone()),
                        ..Default::default()
                    },
                    involved_object: reference,
                    reason: Some(reason.clone()),
                    message: Some(message),
                    type_: Some(type_),
                    source: Some(EventSource {
                        component: Some(component.clone()),
                        host: None,
                    }),
                    first_timestamp: Some(now.clone()),
                    last_timestamp: Some(now),
                    count: Some(1),
                    reporting_component: Some(component),
                    reporting_instance: Some(String::new()),
                    ..Default::default()
                };
                api.create(&PostParams::default(), &event).await.map(|_| ())
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, %reason, "publishing an event failed");
            }
        });
    }
}
