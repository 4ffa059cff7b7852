//! The root-CA publisher (upstream's
//! pkg/controller/certificates/rootcacertpublisher/publisher.go): every
//! active namespace has a `kube-root-ca.crt` ConfigMap whose `ca.crt` is
//! `--root-ca-file`; an edited one is put back, a deleted one recreated.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::ResourceExt;

use crate::descriptors::ControllerFuture;
use crate::serviceaccount::is_active;
use crate::{is_already_exists, is_conflict, is_not_found, ControllerContext, Error, StartError};

const NAME: &str = "root-ca-certificate-publisher-controller";
/// The ConfigMap's name in every namespace.
pub const CONFIG_MAP: &str = "kube-root-ca.crt";
/// Its one key.
pub const KEY: &str = "ca.crt";
const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

struct Ctx {
    client: kube::Client,
    config_maps: Store<ConfigMap>,
    ca: String,
}

/// Upstream's `startRootCACertPublisher`: needs `--root-ca-file`.
pub fn start(ctx: &ControllerContext) -> Result<ControllerFuture, StartError> {
    let ca = match &ctx.config.root_ca {
        Some(bytes) => String::from_utf8(bytes.clone()).map_err(|_| StartError::Config {
            controller: NAME,
            message: "--root-ca-file is not PEM text".into(),
        })?,
        None => {
            // Upstream falls back to the client's CA; without either there
            // is nothing to publish.
            return Err(StartError::Config {
                controller: NAME,
                message: "no --root-ca-file given".into(),
            });
        }
    };
    let namespaces = ctx.informers.informer::<Namespace>();
    let config_maps = ctx
        .informers
        .informer_with::<ConfigMap>(Some(&format!("metadata.name={CONFIG_MAP}")));
    let controller = Controller::for_shared_stream(namespaces.subscribe(), namespaces.store())
        .watches_shared_stream(config_maps.subscribe(), |cm: Arc<ConfigMap>| {
            (cm.name_any() == CONFIG_MAP)
                .then(|| ObjectRef::new(&cm.namespace().unwrap_or_default()))
        });
    let c = Arc::new(Ctx {
        client: ctx.client.clone(),
        config_maps: config_maps.store(),
        ca,
    });
    Ok(Box::pin(crate::runner::drive(
        NAME,
        controller,
        ctx.metrics.clone(),
        c,
        reconcile,
    )))
}

fn wanted_data(ca: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(KEY.to_string(), ca.to_string())])
}

/// Whether a ConfigMap already says what it should.
fn up_to_date(cm: &ConfigMap, ca: &str) -> bool {
    cm.data.as_ref() == Some(&wanted_data(ca))
        && cm
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(DESCRIPTION_ANNOTATION))
            .is_some_and(|d| !d.is_empty())
}

async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if !is_active(&ns) {
        return Ok(Action::await_change());
    }
    let name = ns.name_any();
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &name);
    let what = format!("configmap {name}/{CONFIG_MAP}");
    match ctx
        .config_maps
        .get(&ObjectRef::new(CONFIG_MAP).within(&name))
    {
        None => {
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(CONFIG_MAP.into()),
                    annotations: Some(BTreeMap::from([(
                        DESCRIPTION_ANNOTATION.to_string(),
                        DESCRIPTION.to_string(),
                    )])),
                    ..Default::default()
                },
                data: Some(wanted_data(&ctx.ca)),
                ..Default::default()
            };
            match api.create(&PostParams::default(), &cm).await {
                Ok(_) => tracing::info!(namespace = %name, "published root CA"),
                Err(e) if is_already_exists(&e) => {}
                Err(kube::Error::Api(s))
                    if s.code == 403 && s.message.contains("being terminated") => {}
                Err(e) => return Err(Error::api("create", what)(e)),
            }
        }
        Some(cm) if up_to_date(&cm, &ctx.ca) => {}
        Some(cm) => {
            let mut cm = (*cm).clone();
            cm.data = Some(wanted_data(&ctx.ca));
            cm.binary_data = None;
            cm.metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(DESCRIPTION_ANNOTATION.into(), DESCRIPTION.into());
            match api.replace(CONFIG_MAP, &PostParams::default(), &cm).await {
                Ok(_) => tracing::info!(namespace = %name, "restored root CA"),
                // A newer version or a deletion is on its way through the watch.
                Err(e) if is_conflict(&e) || is_not_found(&e) => {}
                Err(e) => return Err(Error::api("update", what)(e)),
            }
        }
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edited_or_unannotated_maps_are_not_up_to_date() {
        let mut cm = ConfigMap {
            data: Some(wanted_data("PEM")),
            ..Default::default()
        };
        assert!(
            !up_to_date(&cm, "PEM"),
            "the description annotation is missing"
        );
        cm.metadata.annotations = Some(BTreeMap::from([(
            DESCRIPTION_ANNOTATION.to_string(),
            DESCRIPTION.to_string(),
        )]));
        assert!(up_to_date(&cm, "PEM"));
        assert!(!up_to_date(&cm, "OTHER"));
        cm.data
            .get_or_insert_with(BTreeMap::new)
            .insert("extra".into(), "x".into());
        assert!(!up_to_date(&cm, "PEM"));
    }
}
