//! Shared set-up for the controller integration tests: a real API server
//! (in process, on a real etcd) and the selected controllers running
//! against it through the same runner the binary uses.

#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use controller::{ControllerConfig, ControllerContext, ControllerMetrics};
use integration::TestApiServer;

pub struct Cluster {
    pub server: TestApiServer,
    pub client: kube::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the API server and the controllers `--controllers` would select.
pub async fn start(
    controllers: &[&str],
    adjust: impl FnOnce(&TestApiServer, &mut ControllerConfig),
) -> Cluster {
    // Quiet unless RUST_LOG asks.
    if std::env::var_os("RUST_LOG").is_some() {
        component_base::logs::init(0);
    }
    start_on(TestApiServer::start().await, controllers, adjust).await
}

/// Like [`start`], on a server the caller configured.
pub async fn start_on(
    server: TestApiServer,
    controllers: &[&str],
    adjust: impl FnOnce(&TestApiServer, &mut ControllerConfig),
) -> Cluster {
    let client = server.client.clone();
    let mut config = ControllerConfig::default();
    adjust(&server, &mut config);
    let task = spawn_controllers(&server, controllers, config).await;
    Cluster {
        server,
        client,
        task,
    }
}

/// Runs the selected controllers against `server` (a fresh client, as a
/// separate controller-manager process would have) until the handle is aborted.
pub async fn spawn_controllers(
    server: &TestApiServer,
    controllers: &[&str],
    config: ControllerConfig,
) -> tokio::task::JoinHandle<()> {
    let flag: Vec<String> = controllers.iter().map(|s| s.to_string()).collect();
    let selected = match controller::descriptors::enabled(&flag) {
        Ok(s) => s,
        Err(e) => panic!("--controllers: {e}"),
    };
    let kcm_client = match server.new_client().await {
        Ok(c) => c,
        Err(e) => panic!("client: {e}"),
    };
    let ctx = ControllerContext::new(kcm_client, config, Arc::new(ControllerMetrics::default()));
    tokio::spawn(async move {
        if let Err(e) = controller::run(ctx, selected).await {
            panic!("controllers did not start: {e}");
        }
    })
}

impl Cluster {
    /// Stops the controllers (a controller-manager exiting), keeping the API server.
    pub async fn stop_controllers(&mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }

    /// Starts them again (a new controller-manager process).
    pub async fn restart_controllers(&mut self, controllers: &[&str]) {
        self.stop_controllers().await;
        self.task = spawn_controllers(&self.server, controllers, ControllerConfig::default()).await;
    }
}

/// Polls `check` until it yields `Some`, failing the test after 30 s.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn ns(name: &str) -> k8s_openapi::api::core::v1::Namespace {
    match serde_json::from_value(serde_json::json!({"metadata": {"name": name}})) {
        Ok(n) => n,
        Err(e) => panic!("{e}"),
    }
}
