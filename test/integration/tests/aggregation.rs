//! API aggregation end to end: an extension API server (a small HTTPS
//! server in this test, behind a Service and its Endpoints) registered by an
//! APIService becomes Available, is listed in discovery, and receives
//! proxied requests carrying the caller's identity in front-proxy headers
//! and not its credentials.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use integration::TestApiServer;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::{Api, PostParams};
use serde_json::{json, Value};

/// Serves metrics.k8s.io/v1beta1 discovery and echoes request headers.
async fn extension_server() -> (u16, String) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["ext.default.svc".into()]).unwrap();
    let pem = cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
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
                let svc = hyper::service::service_fn(
                    |req: http::Request<hyper::body::Incoming>| async move {
                        let body = if req.uri().path() == "/apis/metrics.k8s.io/v1beta1" {
                            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "metrics.k8s.io/v1beta1",
                            "resources": [{"name": "pods", "singularName": "", "namespaced": true, "kind": "PodMetrics", "verbs": ["get", "list"]},
                                          {"name": "nodes", "singularName": "", "namespaced": false, "kind": "NodeMetrics", "verbs": ["get", "list"]}]})
                        } else {
                            let h = |n: &str| -> Vec<String> {
                                req.headers()
                                    .get_all(n)
                                    .iter()
                                    .filter_map(|v| v.to_str().ok())
                                    .map(str::to_string)
                                    .collect()
                            };
                            json!({"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {},
                            "items": [], "path": req.uri().path(), "user": h("x-remote-user"),
                            "groups": h("x-remote-group"), "authorization": h("authorization")})
                        };
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::from(body.to_string()),
                        )))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (port, pem)
}

fn post<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

async fn raw_get(client: &kube::Client, path: &str, accept: &str) -> (u16, Value) {
    let req = http::Request::get(path)
        .header("Accept", accept)
        .body(Vec::new())
        .unwrap();
    let resp = client
        .send(req.map(kube::client::Body::from))
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn condition(api: &Api<APIService>, name: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let a = api.get(name).await.unwrap();
        let c = serde_json::to_value(&a.status).unwrap()["conditions"][0].clone();
        if c["status"] == want {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never became Available={want}: {c}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiservice_is_probed_listed_and_proxied_with_the_callers_identity() {
    let s = TestApiServer::start().await;
    let (port, ca) = extension_server().await;
    let svcs: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(s.client.clone(), "default");
    svcs.create(
        &PostParams::default(),
        &post(json!({"metadata": {"name": "ext"},
        "spec": {"ports": [{"name": "https", "port": 443, "targetPort": 8443}]}})),
    )
    .await
    .unwrap();
    let eps: Api<k8s_openapi::api::core::v1::Endpoints> =
        Api::namespaced(s.client.clone(), "default");
    eps.create(&PostParams::default(), &post(json!({"metadata": {"name": "ext"},
        "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": port}]}]}))).await.unwrap();

    // Extension servers learn whom to trust from this ConfigMap.
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(s.client.clone(), "kube-system");
    let auth = cms.get("extension-apiserver-authentication").await.unwrap();
    assert_eq!(
        auth.data.unwrap_or_default().get("client-ca-file"),
        Some(&std::fs::read_to_string(&s.ca_file).unwrap())
    );

    let apis: Api<APIService> = Api::all(s.client.clone());
    // The built-in groups have local APIServices.
    let local = condition(&apis, "v1.apps", "True").await;
    assert_eq!(local["reason"], "Local");

    let b64 = |s: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s);
    apis.create(&PostParams::default(), &post(json!({"metadata": {"name": "v1beta1.metrics.k8s.io"},
        "spec": {"group": "metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100, "versionPriority": 100,
                 "caBundle": b64(&ca), "service": {"namespace": "default", "name": "ext", "port": 443}}}))).await.unwrap();
    let c = condition(&apis, "v1beta1.metrics.k8s.io", "True").await;
    assert_eq!(c["reason"], "Passed");

    // Proxied with the caller's identity, without its credentials.
    let (code, body) = raw_get(
        &s.client,
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
        "application/json",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body["path"],
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods"
    );
    assert_eq!(body["user"], json!(["admin"]));
    assert_eq!(
        body["groups"],
        json!(["system:masters", "system:authenticated"])
    );
    assert_eq!(body["authorization"], json!([]));

    // Listed in legacy and aggregated discovery.
    let (_, groups) = raw_get(&s.client, "/apis", "application/json").await;
    assert!(groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["name"] == "metrics.k8s.io"));
    let (_, g) = raw_get(&s.client, "/apis/metrics.k8s.io", "application/json").await;
    assert_eq!(
        g["preferredVersion"]["groupVersion"],
        "metrics.k8s.io/v1beta1"
    );
    let (_, agg) = raw_get(
        &s.client,
        "/apis",
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
    )
    .await;
    let item = agg["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["metadata"]["name"] == "metrics.k8s.io")
        .cloned()
        .unwrap();
    let res: Vec<&str> = item["versions"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["resource"].as_str())
        .collect();
    assert_eq!(res, ["pods", "nodes"]);
    assert_eq!(item["versions"][0]["resources"][0]["scope"], "Namespaced");

    // A backend whose Service does not exist is not available, with upstream's reason.
    apis.create(&PostParams::default(), &post(json!({"metadata": {"name": "v1.missing.example.com"},
        "spec": {"group": "missing.example.com", "version": "v1", "groupPriorityMinimum": 100, "versionPriority": 100,
                 "insecureSkipTLSVerify": true, "service": {"namespace": "default", "name": "nope"}}}))).await.unwrap();
    let c = condition(&apis, "v1.missing.example.com", "False").await;
    assert_eq!(c["reason"], "ServiceNotFound");
    assert_eq!(c["message"], "service/nope in \"default\" is not present");
    let plain = s.client_without_retries().await.unwrap();
    let (code, body) = raw_get(
        &plain,
        "/apis/missing.example.com/v1/things",
        "application/json",
    )
    .await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (503, Some("ServiceUnavailable")),
        "{body}"
    );
}
