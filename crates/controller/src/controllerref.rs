//! Claiming pods for a controller (upstream's pkg/controller/controller_ref_manager.go
//! `PodControllerRefManager.ClaimPods`), for the DaemonSet and StatefulSet
//! controllers: pods controlled by the owner that still match its selector
//! are kept, those that stopped matching are released, and matching orphans
//! are adopted — after a live check that the owner still exists and is not
//! being deleted (upstream's `RecheckDeletionTimestamp`). Every ownerReferences
//! write is guarded by the pod's resourceVersion.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use apimachinery::labels::Selector;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, Patch, PatchParams};
use kube::ResourceExt;
use serde_json::{json, Value};

use crate::{is_not_found, Error};

/// The pods of one namespace that are, or may become, the owner's.
pub(crate) async fn claim_pods<F, Fut>(
    client: &kube::Client,
    namespace: &str,
    owner: &OwnerReference,
    selector: &Selector,
    pods: Vec<Arc<Pod>>,
    still_owner: F,
) -> Result<Vec<Arc<Pod>>, Error>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<bool, Error>>,
{
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let mut claimed = Vec::new();
    let mut still_owner = Some(still_owner);
    let mut can_adopt: Option<bool> = None;
    for pod in pods {
        let labels: BTreeMap<String, String> = pod.metadata.labels.clone().unwrap_or_default();
        let matches = selector.matches(&labels);
        let refs = pod.owner_references().to_vec();
        match refs.iter().find(|r| r.controller == Some(true)) {
            Some(r) if r.uid == owner.uid => {
                if matches {
                    claimed.push(pod);
                } else {
                    let keep: Vec<&OwnerReference> =
                        refs.iter().filter(|r| r.uid != owner.uid).collect();
                    patch_refs(&api, &pod, json!(keep)).await?;
                    tracing::info!(pod = %pod.name_any(), owner = %owner.name, "released pod that no longer matches");
                }
            }
            Some(_) => {}
            None => {
                if !matches || pod.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                if can_adopt.is_none() {
                    let check = still_owner.take();
                    can_adopt = Some(match check {
                        Some(f) => f().await?,
                        None => false,
                    });
                }
                if can_adopt != Some(true) {
                    continue;
                }
                let mut new_refs = refs.clone();
                new_refs.push(owner.clone());
                if let Some(p) = patch_refs(&api, &pod, json!(new_refs)).await? {
                    tracing::info!(pod = %pod.name_any(), owner = %owner.name, "adopted pod");
                    claimed.push(Arc::new(p));
                }
            }
        }
    }
    Ok(claimed)
}

/// Rewrites a pod's ownerReferences; `None`: the pod is gone.
async fn patch_refs(api: &Api<Pod>, pod: &Pod, refs: Value) -> Result<Option<Pod>, Error> {
    let refs = if refs.as_array().is_some_and(|a| a.is_empty()) {
        Value::Null
    } else {
        refs
    };
    let patch = json!({"metadata": {"resourceVersion": pod.metadata.resource_version, "ownerReferences": refs}});
    let name = pod.name_any();
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(p) => Ok(Some(p)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(Error::api(
            "patch ownerReferences of",
            format!("pod {name}"),
        )(e)),
    }
}

/// Upstream's `RecheckDeletionTimestamp` on a live GET: the owner `name`
/// with `uid` exists and is not being deleted.
pub(crate) async fn owner_is_live<K>(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    uid: &str,
) -> Result<bool, Error>
where
    K: crate::informers::Watched + kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(name).await {
        Ok(Some(o)) => {
            Ok(o.meta().uid.as_deref() == Some(uid) && o.meta().deletion_timestamp.is_none())
        }
        Ok(None) => Ok(false),
        Err(e) => Err(Error::api(
            "get",
            format!("{} {namespace}/{name}", K::kind(&())),
        )(e)),
    }
}

/// The pods of `namespace` a claim considers: the owner's and orphans.
pub(crate) fn candidates(pods: &[Arc<Pod>], namespace: &str, uid: &str) -> Vec<Arc<Pod>> {
    pods.iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(namespace))
        .filter(|p| {
            let controller = p
                .owner_references()
                .iter()
                .find(|r| r.controller == Some(true));
            controller.is_none_or(|r| r.uid == uid)
        })
        .cloned()
        .collect()
}
