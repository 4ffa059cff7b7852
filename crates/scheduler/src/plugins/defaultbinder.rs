//! DefaultBinder (upstream's `plugins/defaultbinder`): binds through the
//! `pods/binding` subresource.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use serde_json::Value;

use crate::framework::runtime::Handle;
use crate::framework::{BindPlugin, CycleState, Plugin, PodInfo, Status};

pub const NAME: &str = "DefaultBinder";

pub struct DefaultBinder {
    client: Option<kube::Client>,
}

pub fn new(_: Option<&Value>, h: &Handle) -> Result<Arc<dyn Plugin>, String> {
    Ok(Arc::new(DefaultBinder {
        client: h.client.clone(),
    }))
}

impl Plugin for DefaultBinder {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_bind(&self) -> Option<&dyn BindPlugin> {
        Some(self)
    }
}

#[async_trait::async_trait]
impl BindPlugin for DefaultBinder {
    async fn bind(&self, _: &CycleState, pod: &PodInfo, node: &str) -> Status {
        let Some(client) = &self.client else {
            return Status::error("no API client to bind with");
        };
        let binding = Binding {
            metadata: ObjectMeta {
                name: Some(pod.name.clone()),
                namespace: Some(pod.namespace.clone()),
                uid: Some(pod.uid.clone()).filter(|u| !u.is_empty()),
                ..Default::default()
            },
            target: ObjectReference {
                kind: Some("Node".into()),
                name: Some(node.to_string()),
                ..Default::default()
            },
        };
        let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
        match api
            .create_subresource::<Binding, Value>(
                "binding",
                &pod.name,
                &PostParams::default(),
                &binding,
            )
            .await
        {
            Ok(_) => Status::success(),
            Err(e) => Status::error(format!("binding rejected: {e}")),
        }
    }
}
