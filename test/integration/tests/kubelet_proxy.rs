//! The API server's way to kubelets: `pods/log`, `pods/exec` (SPDY and
//! WebSocket upgrades spliced through) and `nodes/proxy` reach a fake kubelet (an
//! HTTPS server in this test that demands the API server's kubelet client
//! certificate) at the Node's InternalIP and kubelet port, with upstream's
//! URLs and error wording.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use integration::TestApiServer;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, LogParams, Patch, PatchParams, PostParams};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Resp = http::Response<Full<Bytes>>;

fn text(code: u16, body: String) -> Resp {
    http::Response::builder()
        .status(code)
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

async fn kubelet_answer(mut req: http::Request<hyper::body::Incoming>) -> Resp {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    if let Some(rest) = path.strip_prefix("/containerLogs/default/web/") {
        return match rest {
            "app" => text(200, format!("hello from app\nquery={query}\n")),
            c => text(
                400,
                format!("container {c:?} in pod \"web\" is waiting to start: ContainerCreating"),
            ),
        };
    }
    if path.starts_with("/exec/default/web/") {
        // containerd's streaming server: WebSocket up to v4, else 403.
        let websocket = req
            .headers()
            .get("upgrade")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
        let offered = req
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if websocket && !offered.split(',').any(|p| p.trim() == "v4.channel.k8s.io") {
            return text(403, "requested protocol(s) are not supported".into());
        }
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let Ok(io) = upgrade.await else { return };
            let mut io = hyper_util::rt::TokioIo::new(io);
            let _ = io
                .write_all(format!("path={path}?{query}\n").as_bytes())
                .await;
            let mut buf = [0u8; 64];
            while let Ok(n) = io.read(&mut buf).await {
                if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        });
        let reply = http::Response::builder()
            .status(101)
            .header("Connection", "Upgrade");
        let reply = if websocket {
            reply
                .header("Upgrade", "websocket")
                .header("Sec-WebSocket-Protocol", "v4.channel.k8s.io")
        } else {
            reply
                .header("Upgrade", "SPDY/3.1")
                .header("X-Stream-Protocol-Version", "v4.channel.k8s.io")
        };
        return reply.body(Full::new(Bytes::new())).unwrap();
    }
    if path == "/metrics" {
        return text(200, "kubelet_fake_metric 1\n".into());
    }
    text(404, "404 page not found".into())
}

/// A kubelet stand-in that only talks to clients with a certificate from `ca`.
async fn fake_kubelet(ca: &CertifiedIssuer<'_, KeyPair>) -> u16 {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(|req| async move {
                    Ok::<_, std::convert::Infallible>(kubelet_answer(req).await)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    port
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

fn api_error(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.message),
        other => panic!("expected a Status, got {other}"),
    }
}

async fn raw(
    client: &kube::Client,
    req: http::Request<Vec<u8>>,
) -> http::Response<kube::client::Body> {
    client
        .send(req.map(kube::client::Body::from))
        .await
        .unwrap()
}

async fn body_text(resp: http::Response<kube::client::Body>) -> String {
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_exec_and_node_proxy_reach_the_kubelet() {
    let client_ca = ca("kubelet-client-ca");
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(DnType::CommonName, "kube-apiserver-kubelet-client");
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = p.signed_by(&key, &client_ca).unwrap();
    let (cert_file, key_file) = (dir.path().join("k.crt"), dir.path().join("k.key"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let s = TestApiServer::start_with(|c| {
        c.kubelet.client_certificate = Some(cert_file.clone());
        c.kubelet.client_key = Some(key_file.clone());
    })
    .await;
    let port = fake_kubelet(&client_ca).await;

    let nodes: Api<Node> = Api::all(s.client.clone());
    nodes
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "n1"}})).unwrap(),
        )
        .await
        .unwrap();
    nodes
        .patch_status(
            "n1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}})),
        )
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    let pod = |name: &str, node: Option<&str>| -> Pod {
        let mut spec = json!({"containers": [{"name": "app", "image": "busybox"},
                                             {"name": "sidecar", "image": "busybox"}]});
        if let Some(n) = node {
            spec["nodeName"] = json!(n);
        }
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
    };
    pods.create(&PostParams::default(), &pod("web", Some("n1")))
        .await
        .unwrap();
    pods.create(&PostParams::default(), &pod("pending", None))
        .await
        .unwrap();

    // pods/log: the URL and options upstream sends, the kubelet's words on failure.
    let logs = pods
        .logs(
            "web",
            &LogParams {
                container: Some("app".into()),
                tail_lines: Some(5),
                timestamps: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(logs, "hello from app\nquery=tailLines=5&timestamps=true\n");
    let (code, message) = api_error(pods.logs("web", &LogParams::default()).await.unwrap_err());
    assert_eq!(code, 400);
    assert_eq!(
        message,
        "a container name must be specified for pod web, choose one of: [app sidecar]"
    );
    let waiting = LogParams {
        container: Some("sidecar".into()),
        ..Default::default()
    };
    let (code, message) = api_error(pods.logs("web", &waiting).await.unwrap_err());
    assert_eq!(
        (code, message.as_str()),
        (
            400,
            "container \"sidecar\" in pod \"web\" is waiting to start: ContainerCreating"
        )
    );
    let (code, message) = api_error(
        pods.logs(
            "web",
            &LogParams {
                container: Some("nope".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        (code, message.as_str()),
        (400, "container nope is not valid for pod web")
    );
    let bad = raw(
        &s.client,
        http::Request::get("/api/v1/namespaces/default/pods/web/log?container=app&tailLines=-1")
            .body(vec![])
            .unwrap(),
    )
    .await;
    assert_eq!(bad.status(), 422);
    let status: Value = serde_json::from_str(&body_text(bad).await).unwrap();
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(status["details"]["kind"], "PodLogOptions");
    // A pod without a node has no logs yet: an empty answer, not an error.
    let none = pods
        .logs(
            "pending",
            &LogParams {
                container: Some("app".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(none, "");

    // nodes/proxy reaches the kubelet's own endpoints.
    let metrics = raw(
        &s.client,
        http::Request::get("/api/v1/nodes/n1/proxy/metrics")
            .body(vec![])
            .unwrap(),
    )
    .await;
    assert_eq!(metrics.status(), 200);
    assert_eq!(body_text(metrics).await, "kubelet_fake_metric 1\n");

    // pods/exec over an upgrade: 101 passed back, then bytes both ways.
    let exec = http::Request::post(
        "/api/v1/namespaces/default/pods/web/exec?command=ls&command=-l&container=app&stdout=true&stderr=true",
    )
    .header("Connection", "Upgrade")
    .header("Upgrade", "SPDY/3.1")
    .header("X-Stream-Protocol-Version", "v4.channel.k8s.io")
    .body(vec![])
    .unwrap();
    let mut resp = raw(&s.client, exec).await;
    assert_eq!(resp.status(), 101);
    assert_eq!(
        resp.headers()["x-stream-protocol-version"],
        "v4.channel.k8s.io"
    );
    let upgraded = hyper::upgrade::on(&mut resp).await.unwrap();
    let mut io = hyper_util::rt::TokioIo::new(upgraded);
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while io.read_exact(&mut byte).await.is_ok() && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    assert_eq!(
        String::from_utf8_lossy(&line),
        "path=/exec/default/web/app?command=ls&command=%2Dl&error=1&output=1"
    );
    io.write_all(b"ping").await.unwrap();
    let mut echo = [0u8; 4];
    io.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"ping");

    // WebSocket goes through to the kubelet too: v4 (the Python client's)
    // is upgraded; kubectl's v5-only offer gets the runtime's 403, so
    // kubectl falls back to SPDY. Booleans as upstream reads them (`True`).
    let websocket = |protocols: &'static str| {
        http::Request::get(
            "/api/v1/namespaces/default/pods/web/exec?command=ls&container=app&stdout=True&stderr=false",
        )
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("Sec-WebSocket-Protocol", protocols)
        .body(vec![])
        .unwrap()
    };
    let mut ws = raw(&s.client, websocket("v4.channel.k8s.io")).await;
    assert_eq!(ws.status(), 101);
    assert_eq!(ws.headers()["sec-websocket-protocol"], "v4.channel.k8s.io");
    let upgraded = hyper::upgrade::on(&mut ws).await.unwrap();
    let mut io = hyper_util::rt::TokioIo::new(upgraded);
    let mut line = Vec::new();
    while io.read_exact(&mut byte).await.is_ok() && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    assert_eq!(
        String::from_utf8_lossy(&line),
        "path=/exec/default/web/app?command=ls&output=1"
    );
    let v5 = raw(&s.client, websocket("v5.channel.k8s.io")).await;
    assert_eq!(v5.status(), 403);
    let unscheduled = raw(
        &s.client,
        http::Request::post(
            "/api/v1/namespaces/default/pods/pending/exec?command=ls&container=app&stdout=true",
        )
        .header("Connection", "Upgrade")
        .header("Upgrade", "SPDY/3.1")
        .body(vec![])
        .unwrap(),
    )
    .await;
    assert_eq!(unscheduled.status(), 400);
    let status: Value = serde_json::from_str(&body_text(unscheduled).await).unwrap();
    assert_eq!(
        status["message"],
        "pod pending does not have a host assigned"
    );
}
