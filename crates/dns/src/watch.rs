//! Keeping the index current (CoreDNS's kubernetes plugin `dnsController`):
//! kube-rs reflectors of Services and EndpointSlices; any change rebuilds
//! the index from the stores and swaps it in, at most once per
//! `min_rebuild` so that a burst of events costs one rebuild. Until both
//! initial lists are in, the index stays empty and `/readyz` fails.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use client::reflect::follow;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector;
use kube::Api;
use tokio::sync::Notify;

use crate::index::{Index, IndexConfig};
use crate::server::Dns;

/// Whether the index has been built from complete lists.
#[derive(Debug, Default)]
pub struct Readiness(AtomicBool);

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Watches until the process ends, rebuilding `dns`'s index on changes.
pub async fn run(
    client: kube::Client,
    config: IndexConfig,
    dns: Arc<Dns>,
    ready: Arc<Readiness>,
    min_rebuild: Duration,
) {
    let (services, svc_writer) = reflector::store::<Service>();
    let (slices, slice_writer) = reflector::store::<EndpointSlice>();
    let changed = Arc::new(Notify::new());
    let watch_services = follow(Api::<Service>::all(client.clone()), svc_writer, || {
        changed.notify_one()
    });
    let watch_slices = follow(Api::<EndpointSlice>::all(client), slice_writer, || {
        changed.notify_one()
    });
    let wake = changed.clone();
    let rebuild = async move {
        let _ = services.wait_until_ready().await;
        let _ = slices.wait_until_ready().await;
        loop {
            let start = Instant::now();
            let svcs = services.state();
            let eps = slices.state();
            match Index::build(
                &config,
                svcs.iter().map(|s| s.as_ref()),
                eps.iter().map(|s| s.as_ref()),
            ) {
                Ok(index) => {
                    tracing::debug!(services = index.services(), slices = eps.len(), elapsed = ?start.elapsed(), "index rebuilt");
                    dns.set_index(index);
                    if !ready.is_ready() {
                        tracing::info!(services = svcs.len(), "initial lists synced; ready");
                    }
                    ready.set();
                }
                Err(e) => tracing::error!(error = %e, "building the index failed"),
            }
            tokio::time::sleep(min_rebuild).await;
            wake.notified().await;
        }
    };
    tokio::join!(watch_services, watch_slices, rebuild);
}
