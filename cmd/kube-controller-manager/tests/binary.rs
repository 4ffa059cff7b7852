//! The kube-controller-manager binary against a real API server: it takes
//! the `kube-system/kube-controller-manager` Lease, serves /healthz and
//! /metrics on its secure port, and runs the selected controllers.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, PostParams};

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn curl(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sk", "--max-time", "5", url])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test]
async fn binary_leads_serves_health_and_runs_controllers() {
    let server = integration::TestApiServer::start().await;
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_kube-controller-manager"))
        .arg(format!("--kubeconfig={}", server.kubeconfig.display()))
        .arg(format!("--root-ca-file={}", server.ca_file.display()))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--secure-port={port}"))
        .arg("--controllers=serviceaccount,root-ca-cert-publisher")
        .arg("--leader-elect=true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start kube-controller-manager");
    let _kill = Kill(child);
    let leases: Api<Lease> = Api::namespaced(server.client.clone(), "kube-system");
    let holder = eventually("the leader lease", || async {
        leases
            .get_opt("kube-controller-manager")
            .await
            .ok()??
            .spec?
            .holder_identity
    })
    .await;
    assert!(!holder.is_empty());
    let nss: Api<Namespace> = Api::all(server.client.clone());
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "bin"}})).expect("ns");
    nss.create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    let sas: Api<ServiceAccount> = Api::namespaced(server.client.clone(), "bin");
    eventually("the default service account", || async {
        sas.get_opt("default").await.ok()?
    })
    .await;
    let health = eventually("/healthz", || async {
        curl(&format!("https://127.0.0.1:{port}/healthz"))
    })
    .await;
    assert_eq!(health, "ok");
    let metrics = curl(&format!("https://127.0.0.1:{port}/metrics")).expect("/metrics");
    assert!(metrics.contains("controller_reconcile_total"), "{metrics}");
}
