//! Wiring: etcd → store → watch cache → bootstrap → compaction → HTTPS.

use std::sync::Arc;

use anyhow::Context;
use apiserver::{ApiState, Config};
use storage::etcd3::EtcdBackend;
use storage::{Cacher, Store};

pub async fn run(config: Config) -> anyhow::Result<()> {
    let backend = EtcdBackend::connect(&config.etcd_servers)
        .await
        .with_context(|| format!("connecting to etcd at {:?}", config.etcd_servers))?;
    let store = Store::new(Arc::new(backend));
    let root = format!("{}/", config.etcd_prefix.trim_end_matches('/'));
    let cacher = Cacher::new(store.clone(), &root, config.watch_cache_history);
    let state = ApiState::new(config, store.clone(), cacher.clone())
        .context("loading service account keys")?;
    tokio::spawn(cacher.clone().run());
    let compaction = state.config.compaction_interval;
    if !compaction.is_zero() {
        tokio::spawn(compact_loop(store.clone(), compaction));
    }
    let boot = state.clone();
    tokio::spawn(async move {
        boot.cacher.wait_ready().await;
        let mut delay = std::time::Duration::from_millis(200);
        while let Err(e) = apiserver::bootstrap::run(&boot).await {
            tracing::warn!(error = %e, "bootstrap objects not yet written; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(std::time::Duration::from_secs(10));
        }
        tracing::info!("bootstrap objects ensured");
    });
    apiserver::serve(state).await.context("serving")
}

/// Compacts etcd history older than one interval, every interval (upstream's compactor).
async fn compact_loop(store: Store, every: std::time::Duration) {
    let mut last: Option<i64> = None;
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        if let Some(rev) = last {
            match store.backend().compact(rev).await {
                Ok(()) => tracing::info!(revision = rev, "compacted etcd"),
                Err(e) => tracing::debug!(error = %e, "compaction skipped"),
            }
        }
        last = store.backend().current_revision().await.ok();
    }
}
