//! Running the controller manager (upstream's `Run` in
//! cmd/kube-controller-manager/app/controllermanager.go): the secure port
//! with /healthz and /metrics, leader election on the
//! `kube-system/kube-controller-manager` Lease, then the controllers.

use std::sync::Arc;

use anyhow::Context;
use client::leaderelection::{default_identity, LeaderElector};
use client::service_account_credentials::ServiceAccountClients;
use component_base::healthz::{Check, Checks};
use component_base::metrics::Metrics;
use component_base::serving::{bind, Endpoints};
use controller::{ControllerContext, ControllerMetrics};

use super::options::Completed;

/// Upstream's `--kube-api-qps`/`--kube-api-burst` defaults for this component.
const DEFAULT_QPS: f32 = 20.0;
const DEFAULT_BURST: u32 = 30;
/// Upstream's secure port for the controller manager.
const SECURE_PORT: u16 = 10257;
const LEASE_NAME: &str = "kube-controller-manager";

pub async fn run(c: Completed) -> anyhow::Result<()> {
    let client = c
        .kube
        .client_with_defaults(DEFAULT_QPS, DEFAULT_BURST)
        .await
        .context("building the client")?;
    let metrics = Arc::new(Metrics::default());
    let controller_metrics = Arc::new(ControllerMetrics::new(&metrics));
    let elector = LeaderElector::new(
        client.clone(),
        &c.leader_election,
        LEASE_NAME,
        default_identity(),
    );
    let endpoints = Endpoints {
        healthz: Checks::new(vec![Check::ping(), elector.health_check()]),
        metrics: Some(metrics),
        ..Default::default()
    };
    if let Some(addr) = c.serving.addr(SECURE_PORT) {
        let (_, serve) = bind(addr, &c.serving, endpoints).await?;
        tokio::spawn(serve);
    }
    let mut ctx = ControllerContext::new(client.clone(), c.config, controller_metrics);
    if c.use_service_account_credentials {
        let config = c.kube.config().await.context("building the client")?;
        let qps = c
            .kube
            .kube_api_qps
            .filter(|q| *q != 0.0)
            .unwrap_or(DEFAULT_QPS);
        let burst = c
            .kube
            .kube_api_burst
            .filter(|b| *b > 0)
            .unwrap_or(DEFAULT_BURST);
        ctx.credentials = Some(Arc::new(ServiceAccountClients::new(
            client, config, qps, burst,
        )));
    }
    let controllers = c.controllers;
    tracing::info!(
        identity = elector.identity(),
        "starting kube-controller-manager"
    );
    let work = async move {
        if let Err(e) = controller::run(ctx, controllers).await {
            tracing::error!(error = %e, "error starting controllers");
        }
    };
    tokio::select! {
        r = elector.run(work) => r.context("leader election")?,
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; stopping"),
    }
    Ok(())
}
