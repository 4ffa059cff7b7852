//! Running kube-dns: the API client, then `dns::run::start` and serving
//! until a signal.

use std::sync::Arc;

use anyhow::Context;

use super::options::Options;

pub async fn run(opts: Options, config: dns::run::Config) -> anyhow::Result<()> {
    let client = opts
        .kube
        .client()
        .await
        .context("building the API client")?;
    let registry = Arc::new(component_base::metrics::Metrics::default());
    let (running, serve) = dns::run::start(config, client, registry)
        .await
        .context("starting the DNS server")?;
    tracing::info!(dns = %running.dns_addr, health = ?running.health_addr, "kube-dns started");
    tokio::select! {
        () = serve => anyhow::bail!("the server stopped"),
        r = tokio::signal::ctrl_c() => {
            r.context("waiting for a signal")?;
            tracing::info!("shutting down");
            Ok(())
        }
    }
}
