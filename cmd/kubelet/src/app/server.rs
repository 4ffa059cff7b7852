//! Builds the kubelet from the configuration and runs it (upstream's
//! cmd/kubelet/app/server.go `RunKubelet`): the CRI client, the API client,
//! the servers, then the sync loop.

use std::sync::Arc;

use anyhow::Context;

use kubelet::cri::remote::RemoteRuntime;
use kubelet::cri::RuntimeService;
use kubelet::server::{bind_healthz, bind_https, ServerState};
use kubelet::Kubelet;

use super::options::Config;

/// Upstream's kubelet client defaults (`--kube-api-qps=50`, burst 100).
const QPS: f32 = 50.0;
const BURST: u32 = 100;
/// How long a runtime that is still starting (its socket up, its CRI
/// service "not initialized yet") is waited for before giving up.
const RUNTIME_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Waits until the runtime answers `Version`, or the wait is over; the
/// last error is left for `Kubelet::new` to report.
async fn wait_for_runtime(runtime: &RemoteRuntime, endpoint: &str) {
    let deadline = tokio::time::Instant::now() + RUNTIME_WAIT;
    loop {
        match runtime.version().await {
            Ok(_) => return,
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::info!(endpoint, error = %e, "container runtime not ready yet; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(_) => return,
        }
    }
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    let client = config
        .kube
        .client_with_defaults(QPS, BURST)
        .await
        .context("building the API client")?;
    let remote = Arc::new(
        RemoteRuntime::new(&config.runtime_endpoint).context("container runtime endpoint")?,
    );
    wait_for_runtime(&remote, &config.runtime_endpoint).await;
    std::fs::create_dir_all(&config.kubelet.root_dir)
        .with_context(|| format!("creating {}", config.kubelet.root_dir.display()))?;
    let auth = Arc::new(
        kubelet::auth::KubeletAuth::new(
            &config.auth,
            Some(client.clone()),
            &config.kubelet.node_name,
        )
        .map_err(anyhow::Error::msg)
        .context("kubelet authentication")?,
    );
    let kubelet = Kubelet::new(client, remote.clone(), remote, config.kubelet)
        .await
        .with_context(|| {
            format!(
                "connecting to the container runtime at {}",
                config.runtime_endpoint
            )
        })?;
    let checks = kubelet.health_checks();
    if let Some(addr) = config.healthz {
        let (local, serve) = bind_healthz(addr, checks.clone())
            .await
            .with_context(|| format!("listening on {addr}"))?;
        tracing::info!(address = %local, "serving healthz");
        tokio::spawn(serve);
    }
    if let Some(addr) = config.serve {
        let opts = component_base::serving::SecureServingOptions {
            bind_address: addr.ip(),
            secure_port: Some(addr.port()),
            tls_cert_file: config.tls_cert_file.clone(),
            tls_private_key_file: config.tls_private_key_file.clone(),
        };
        let tls = match &config.auth.client_ca {
            Some(ca) => component_base::serving::tls_config_with_client_cas(&opts, ca),
            None => component_base::serving::tls_config(&opts),
        }
        .context("kubelet serving certificate")?;
        let state = ServerState {
            pods: kubelet.pods.clone(),
            manager: kubelet.manager.clone(),
            healthz: checks,
            stats: kubelet.stats_provider(),
            auth,
        };
        let (_, serve) = bind_https(addr, tls, state)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        tokio::spawn(serve);
    }
    kubelet.run().await;
    anyhow::bail!("the pod watch ended")
}
