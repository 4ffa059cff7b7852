//! The kube-scheduler binary against a real API server: it takes the
//! Lease, serves `/healthz`, `/readyz` and `/metrics` on its secure port,
//! and binds a pod; a malformed `--config` stops it at start-up with a
//! message naming the field.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use integration::TestApiServer;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The secure port's self-signed certificate is not what this test checks.
#[derive(Debug)]
struct AnyCert;

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// GET over HTTPS; the status code and body.
async fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert))
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let name = ServerName::try_from("localhost").ok()?;
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tls.write_all(req.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    let _ = tls.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

async fn until<T, F: std::future::Future<Output = Option<T>>>(
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leads_serves_health_and_binds_pods() {
    let s = TestApiServer::start().await;
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _child = Kill(
        Command::new(env!("CARGO_BIN_EXE_kube-scheduler"))
            .arg(format!("--kubeconfig={}", s.kubeconfig.display()))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--secure-port={port}"))
            .arg("--leader-elect=true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let leases: Api<Lease> = Api::namespaced(s.client.clone(), "kube-system");
    let holder = until("the scheduler to lead", || {
        let leases = leases.clone();
        async move {
            leases
                .get_opt("kube-scheduler")
                .await
                .ok()
                .flatten()?
                .spec?
                .holder_identity
        }
    })
    .await;
    assert!(!holder.is_empty());
    let (code, body) = until("/readyz", || async {
        get(port, "/readyz?verbose")
            .await
            .filter(|(c, _)| *c == 200)
    })
    .await;
    assert_eq!(code, 200);
    assert!(body.contains("[+]sched-handler-sync ok"), "{body}");
    assert_eq!(get(port, "/healthz").await.map(|r| r.1), Some("ok".into()));

    let nodes: Api<Node> = Api::all(s.client.clone());
    let n: Node = serde_json::from_value(json!({"metadata": {"name": "n1"}})).unwrap();
    nodes.create(&PostParams::default(), &n).await.unwrap();
    let status = json!({"status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "10"}}});
    nodes
        .patch_status("n1", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    let p: Pod = serde_json::from_value(json!({"metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}))
    .unwrap();
    pods.create(&PostParams::default(), &p).await.unwrap();
    let bound = until("the pod to be bound", || {
        let pods = pods.clone();
        async move { pods.get("p").await.ok()?.spec?.node_name }
    })
    .await;
    assert_eq!(bound, "n1");
    let (_, metrics) = until("the attempt metric", || async {
        get(port, "/metrics")
            .await
            .filter(|(_, b)| b.contains("scheduler_schedule_attempts_total{"))
    })
    .await;
    assert!(
        metrics.contains(
            r#"scheduler_schedule_attempts_total{result="scheduled",profile="default-scheduler"} 1"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains("scheduler_pending_pods"), "{metrics}");
}

#[test]
fn malformed_config_fails_start_up_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n- schedulerName: x\n  plugins:\n    score:\n      enabled:\n      - name: ImageLocality\n        weight: -1\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kube-scheduler"))
        .arg(format!("--config={}", path.display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("profiles[0].plugins.score.enabled[0].weight: Invalid value: -1"),
        "{err}"
    );
}
