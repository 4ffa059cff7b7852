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
    let server = TestApiServer::start().await;
    let client = server.client.clone();
    let mut config = ControllerConfig::default();
    adjust(&server, &mut config);
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
    let task = tokio::spawn(async move {
        if let Err(e) = controller::run(ctx, selected).await {
            panic!("controllers did not start: {e}");
        }
    });
    Cluster {
        server,
        client,
        task,
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
