//! Wiring (upstream's cmd/kube-scheduler/app/server.go `Run`): client →
//! scheduler (profiles checked before anything starts) → secure port with
//! `/healthz`, `/livez`, `/readyz`, `/metrics` → leader election → the
//! scheduler's watchers and loop. Losing the lease ends the process, as
//! upstream's does.

use std::sync::Arc;

use anyhow::Context;
use client::leaderelection::{default_identity, LeaderElector};
use component_base::healthz::{Check, Checks};
use component_base::metrics::Metrics;
use component_base::serving::{self, Endpoints};
use scheduler::metrics::SchedulerMetrics;

use super::config::Config;
use super::options::DEFAULT_SECURE_PORT;

pub async fn run(c: Config) -> anyhow::Result<()> {
    let client = c.kube.client().await.context("building the API client")?;
    let registry = Arc::new(Metrics::default());
    let metrics = SchedulerMetrics::register(&registry);
    let sched =
        scheduler::build(client.clone(), &c.file, metrics).context("building the scheduler")?;
    let elector = LeaderElector::new(
        client.clone(),
        &c.leader_election,
        "kube-scheduler",
        default_identity(),
    );

    let mut healthz = Checks::new(vec![Check::ping()]);
    if c.leader_election.leader_elect {
        healthz.push(elector.health_check());
    }
    let mut readyz = healthz.clone();
    let synced = sched.clone();
    readyz.push(Check::new("sched-handler-sync", move || {
        if synced.synced() {
            Ok(())
        } else {
            Err("waiting for the pod and node watchers to list".into())
        }
    }));
    let endpoints = Endpoints {
        livez: healthz.clone(),
        readyz,
        healthz,
        metrics: Some(registry),
    };
    if let Some(addr) = c.serving.addr(DEFAULT_SECURE_PORT) {
        let (_, serve) = serving::bind(addr, &c.serving, endpoints)
            .await
            .context("starting the secure port")?;
        tokio::spawn(serve);
    }
    tracing::info!(profiles = c.file.profiles.len(), "starting kube-scheduler");
    elector
        .run(async move {
            tracing::info!("leading: starting the scheduling loop");
            scheduler::spawn(&sched, client);
            std::future::pending::<()>().await;
        })
        .await
        .context("leader election")?;
    Ok(())
}
