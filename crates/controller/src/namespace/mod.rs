//! The namespace controller (upstream's pkg/controller/namespace/
//! namespace_controller.go): a namespace being deleted has all its content
//! removed ([`deleter`]), then the `kubernetes` finalizer is taken out of
//! `spec.finalizers` through `namespaces/{name}/finalize`, after which the
//! API server removes the namespace.
//!
//! While content remains the namespace is requeued (upstream's
//! `ResourcesRemainingError` with its estimate), since deletions of
//! arbitrary kinds — custom resources included — are not watched.

pub mod deleter;

use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::controller::{Action, Controller};
use kube::ResourceExt;

use crate::descriptors::ControllerFuture;
use crate::{ControllerContext, Error, StartError};

const NAME: &str = "namespace-controller";
/// The finalizer this controller owns (upstream's `FinalizerKubernetes`).
pub const FINALIZER: &str = "kubernetes";

struct Ctx {
    client: kube::Client,
}

/// Upstream's `startNamespaceController`.
pub fn start(ctx: &ControllerContext) -> Result<ControllerFuture, StartError> {
    let namespaces = ctx.informers.informer::<Namespace>();
    let controller = Controller::for_shared_stream(namespaces.subscribe(), namespaces.store())
        .with_config(
            kube::runtime::controller::Config::default()
                .concurrency(ctx.config.concurrent_namespace_syncs),
        );
    let c = Arc::new(Ctx {
        client: ctx.client.clone(),
    });
    Ok(Box::pin(crate::runner::drive(
        NAME,
        controller,
        ctx.metrics.clone(),
        c,
        reconcile,
    )))
}

async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if ns.metadata.deletion_timestamp.is_none() {
        return Ok(Action::await_change());
    }
    let finalizers = spec_finalizers(&ns);
    if !finalizers.iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let name = ns.name_any();
    let outcome = deleter::delete_all_content(&ctx.client, &name).await;
    deleter::update_conditions(&ctx.client, &ns, &outcome).await?;
    if let Some(e) = outcome.failure() {
        return Err(e);
    }
    if outcome.remaining() {
        // Upstream waits estimate/2 + 1 seconds before looking again.
        let wait = outcome.estimate_seconds / 2 + 1;
        tracing::debug!(namespace = %name, wait, "content remaining");
        return Ok(Action::requeue(std::time::Duration::from_secs(wait)));
    }
    deleter::finalize(&ctx.client, &ns).await?;
    tracing::info!(namespace = %name, "namespace content removed; finalized");
    Ok(Action::await_change())
}

pub(crate) fn spec_finalizers(ns: &Namespace) -> Vec<String> {
    ns.spec
        .as_ref()
        .and_then(|s| s.finalizers.clone())
        .unwrap_or_default()
}
