//! metrics-server end to end against a real API server on real etcd: a
//! fake kubelet (an HTTPS server in this test answering
//! `/metrics/resource` with counters that grow with the clock) is scraped,
//! and the figures are read through the API server's aggregator the way
//! `kubectl top` reads them, with authentication and the informers'
//! objects deciding what is answered.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http_body_util::BodyExt;
use integration::TestApiServer;
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::{Api, DeleteParams, PostParams};
use metrics_server::scrape::{KubeletClient, Token};
use serde_json::{json, Value};

const MEMORY: u64 = 64 << 20;

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A kubelet whose node uses a quarter core and each container a tenth,
/// measured now; returns its port.
async fn fake_kubelet(t0_ms: i64) -> u16 {
    let (port, _) = integration::https::serve(move |r: integration::https::Request| async move {
        if r.path != "/metrics/resource" {
            return (404, String::new());
        }
        let now = unix_ms();
        let secs = (now - t0_ms) as f64 / 1000.0;
        let start = t0_ms as f64 / 1000.0 - 3600.0;
        let body = format!(
            "# TYPE container_cpu_usage_seconds_total counter\n\
             container_cpu_usage_seconds_total{{container=\"app\",namespace=\"default\",pod=\"web\"}} {} {now}\n\
             container_memory_working_set_bytes{{container=\"app\",namespace=\"default\",pod=\"web\"}} {MEMORY} {now}\n\
             container_start_time_seconds{{container=\"app\",namespace=\"default\",pod=\"web\"}} {start}\n\
             node_cpu_usage_seconds_total {} {now}\n\
             node_memory_working_set_bytes {} {now}\n",
            1.0 + secs * 0.1,
            1.0 + secs * 0.25,
            MEMORY * 4,
        );
        (200, body)
    })
    .await;
    port
}

fn from<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

async fn raw(client: &kube::Client, path: &str, accept: &str) -> (u16, Value) {
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

/// Polls `path` until `ok` holds for the answer.
async fn until(client: &kube::Client, path: &str, ok: impl Fn(u16, &Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, body) = raw(client, path, "application/json").await;
        if ok(code, &body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{path}: {code} {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn cpu_nanos(v: &Value) -> f64 {
    let q = apimachinery::quantity::Quantity::parse(v.as_str().unwrap()).unwrap();
    q.nanos() as f64
}

/// A plain HTTPS GET to the metrics server itself, with optional headers.
async fn direct(port: u16, path: &str, bearer: Option<&str>) -> (u16, String) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(component_base::proxy::AcceptAny(provider)))
        .with_no_client_auth();
    let target = component_base::proxy::Target {
        authority: format!("127.0.0.1:{port}"),
        tls: Some(Arc::new(tls)),
        path_and_query: path.into(),
    };
    let headers: Vec<_> = bearer
        .map(|t| {
            (
                http::header::AUTHORIZATION,
                format!("Bearer {t}").parse().unwrap(),
            )
        })
        .into_iter()
        .collect();
    let (status, body) = component_base::proxy::get(&target, &headers, 1 << 20)
        .await
        .unwrap();
    (status.as_u16(), String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_figures_are_served_through_the_aggregator() {
    let s = TestApiServer::start().await;
    let t0 = unix_ms();
    let kubelet_port = fake_kubelet(t0).await;

    let nodes: Api<Node> = Api::all(s.client.clone());
    nodes
        .create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": "n1", "labels": {"zone": "a"}},
                "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                           "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}}}})),
        )
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    pods.create(
        &PostParams::default(),
        &from(
            json!({"metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": "busybox"}]}}),
        ),
    )
    .await
    .unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let kubelet_tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(component_base::proxy::AcceptAny(provider)))
        .with_no_client_auth();
    let config = metrics_server::run::Config {
        resolution: Duration::from_secs(1),
        kubelet: KubeletClient {
            tls: Arc::new(kubelet_tls),
            port: 1,
            use_node_status_port: true,
            address_types: vec!["InternalIP".into()],
            timeout: Duration::from_secs(1),
            token: Token::None,
        },
        node_selector: String::new(),
        serving: component_base::serving::SecureServingOptions {
            bind_address: "127.0.0.1".parse().unwrap(),
            secure_port: Some(0),
            tls_cert_file: None,
            tls_private_key_file: None,
        },
        addr: "127.0.0.1:0".parse().unwrap(),
        always_allow_paths: vec!["/healthz".into(), "/readyz".into(), "/livez".into()],
    };
    let registry = Arc::new(component_base::metrics::Metrics::default());
    let (addr, serve) = metrics_server::run::start(config, s.new_client().await.unwrap(), registry)
        .await
        .unwrap();
    tokio::spawn(serve);

    // Behind the aggregator like the add-on: an APIService, then its Service
    // and Endpoints. The Endpoints' arrival probes it again at once (the
    // periodic probe is 30 s away).
    let apis: Api<APIService> = Api::all(s.client.clone());
    apis.create(&PostParams::default(), &from(json!({"metadata": {"name": "v1beta1.metrics.k8s.io"},
        "spec": {"group": "metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100, "versionPriority": 100,
                 "insecureSkipTLSVerify": true, "service": {"namespace": "kube-system", "name": "metrics-server", "port": 443}}}))).await.unwrap();
    let svcs: Api<Service> = Api::namespaced(s.client.clone(), "kube-system");
    svcs.create(
        &PostParams::default(),
        &from(json!({"metadata": {"name": "metrics-server"},
        "spec": {"ports": [{"name": "https", "port": 443, "targetPort": "https"}]}})),
    )
    .await
    .unwrap();
    let eps: Api<Endpoints> = Api::namespaced(s.client.clone(), "kube-system");
    eps.create(&PostParams::default(), &from(json!({"metadata": {"name": "metrics-server"},
        "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": addr.port()}]}]}))).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let a = apis.get("v1beta1.metrics.k8s.io").await.unwrap();
        let c = serde_json::to_value(&a.status).unwrap()["conditions"][0].clone();
        if c["status"] == "True" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the APIService stayed unavailable: {c}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Ready once two scrapes are stored.
    let deadline = Instant::now() + Duration::from_secs(30);
    while direct(addr.port(), "/readyz", None).await.0 != 200 {
        assert!(
            Instant::now() < deadline,
            "never ready: {:?}",
            direct(addr.port(), "/readyz?verbose", None).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(direct(addr.port(), "/livez", None).await.0, 200);

    let list = until(&s.client, "/apis/metrics.k8s.io/v1beta1/nodes", |c, b| {
        c == 200 && b["items"].as_array().is_some_and(|i| !i.is_empty())
    })
    .await;
    assert_eq!(list["kind"], "NodeMetricsList");
    let n1 = &list["items"][0];
    assert_eq!(n1["metadata"]["name"], "n1");
    assert_eq!(n1["metadata"]["labels"]["zone"], "a");
    assert_eq!(n1["usage"]["memory"], "256Mi");
    let cpu = cpu_nanos(&n1["usage"]["cpu"]);
    assert!(
        (cpu - 250e6).abs() < 2.5e6,
        "node cpu {cpu}n, want about 250m"
    );
    let window = apimachinery::duration::parse_go_duration(n1["window"].as_str().unwrap()).unwrap();
    assert!(
        window >= Duration::from_millis(500) && window <= Duration::from_secs(5),
        "{window:?}"
    );

    let pm = until(
        &s.client,
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dweb",
        |c, b| c == 200 && b["items"].as_array().is_some_and(|i| !i.is_empty()),
    )
    .await;
    let web = &pm["items"][0];
    assert_eq!(web["kind"], "PodMetrics");
    assert_eq!(web["containers"][0]["name"], "app");
    assert_eq!(web["containers"][0]["usage"]["memory"], "64Mi");
    let cpu = cpu_nanos(&web["containers"][0]["usage"]["cpu"]);
    assert!(
        (cpu - 100e6).abs() < 1e6,
        "container cpu {cpu}n, want about 100m"
    );
    let (code, none) = raw(
        &s.client,
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Ddb",
        "application/json",
    )
    .await;
    assert_eq!(
        (code, none["items"].as_array().map(Vec::len)),
        (200, Some(0))
    );

    // kubectl get's Table.
    let (code, table) = raw(
        &s.client,
        "/apis/metrics.k8s.io/v1beta1/nodes",
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    )
    .await;
    assert_eq!(code, 200, "{table}");
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["rows"][0]["cells"][0], "n1");

    // Errors are upstream's Status objects.
    let (code, e) = raw(
        &s.client,
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/nope",
        "application/json",
    )
    .await;
    assert_eq!((code, e["reason"].as_str()), (404, Some("NotFound")), "{e}");

    // Credentials are checked: a token the API server does not know is 401.
    let (code, body) = direct(
        addr.port(),
        "/apis/metrics.k8s.io/v1beta1/nodes",
        Some("not-a-token"),
    )
    .await;
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("Unauthorized"), "{body}");

    // A deleted pod's metrics go with it.
    pods.delete("web", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    until(
        &s.client,
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web",
        |c, _| c == 404,
    )
    .await;

    // The scraper's own figures.
    let (code, metrics) = direct(addr.port(), "/metrics", None).await;
    assert_eq!(code, 200);
    assert!(
        metrics.contains("metrics_server_kubelet_request_total{success=\"true\"}"),
        "{metrics}"
    );
}
