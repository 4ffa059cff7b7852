//! The metrics-server command (upstream's `cmd/metrics-server/app`): flags
//! are parsed and checked into a `metrics_server::run::Config`, then the
//! server runs until a signal.

mod config;
mod options;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

pub fn run() -> ExitCode {
    let opts = options::Options::parse();
    component_base::logs::init(opts.v);
    component_base::cli::run(None, serve(opts))
}

async fn serve(opts: options::Options) -> anyhow::Result<()> {
    let kube_config = opts
        .kube
        .config()
        .await
        .context("reading the API client configuration")?;
    let config = config::from_options(&opts, &kube_config)?;
    let client = opts
        .kube
        .client()
        .await
        .context("building the API client")?;
    let registry = Arc::new(component_base::metrics::Metrics::default());
    let (addr, serve) = metrics_server::run::start(config, client, registry)
        .await
        .context("starting metrics-server")?;
    tracing::info!(%addr, "metrics-server started");
    tokio::select! {
        () = serve => anyhow::bail!("the server stopped"),
        r = tokio::signal::ctrl_c() => {
            r.context("waiting for a signal")?;
            tracing::info!("shutting down");
            Ok(())
        }
    }
}
