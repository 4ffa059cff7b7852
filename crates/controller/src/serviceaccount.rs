//! The ServiceAccount controller (upstream's
//! pkg/controller/serviceaccount/serviceaccounts_controller.go): every
//! active namespace has a `default` ServiceAccount; one deleted is
//! recreated.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::ResourceExt;

use crate::descriptors::ControllerFuture;
use crate::{is_already_exists, ControllerContext, Error, StartError};

const NAME: &str = "serviceaccount-controller";
/// The accounts every namespace gets (upstream's `--service-account-names` default).
pub const DEFAULT_ACCOUNTS: &[&str] = &["default"];

struct Ctx {
    client: kube::Client,
    accounts: Store<ServiceAccount>,
}

/// Upstream's `startServiceAccountController`.
pub fn start(ctx: &ControllerContext) -> Result<ControllerFuture, StartError> {
    let namespaces = ctx.informers.informer::<Namespace>();
    let accounts = ctx.informers.informer::<ServiceAccount>();
    let controller = Controller::for_shared_stream(namespaces.subscribe(), namespaces.store())
        .watches_shared_stream(accounts.subscribe(), |sa: Arc<ServiceAccount>| {
            let ns = sa.namespace().unwrap_or_default();
            DEFAULT_ACCOUNTS
                .contains(&sa.name_any().as_str())
                .then(|| ObjectRef::new(&ns))
        });
    let c = Arc::new(Ctx {
        client: ctx.client.clone(),
        accounts: accounts.store(),
    });
    let metrics = ctx.metrics.clone();
    Ok(Box::pin(crate::runner::drive(
        NAME, controller, metrics, c, reconcile,
    )))
}

/// Whether a namespace takes new content: upstream checks `phase == Active`.
pub(crate) fn is_active(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_none()
        && ns
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_none_or(|p| p == "Active")
}

async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if !is_active(&ns) {
        return Ok(Action::await_change());
    }
    let name = ns.name_any();
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &name);
    for account in DEFAULT_ACCOUNTS {
        if ctx
            .accounts
            .get(&ObjectRef::new(account).within(&name))
            .is_some()
        {
            continue;
        }
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some((*account).to_string()),
                ..Default::default()
            },
            ..Default::default()
        };
        match api.create(&PostParams::default(), &sa).await {
            Ok(_) => tracing::info!(namespace = %name, account, "created service account"),
            // Someone else made it, or the namespace started terminating.
            Err(e) if is_already_exists(&e) => {}
            Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains("being terminated") => {
            }
            Err(e) => {
                return Err(Error::api(
                    "create",
                    format!("serviceaccount {name}/{account}"),
                )(e))
            }
        }
    }
    Ok(Action::await_change())
}
