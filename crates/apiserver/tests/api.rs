//! In-process API server on a real etcd, driven by kube-rs (a real client
//! library) over HTTPS with an x509 client certificate.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::Client;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use serde_json::{json, Value};
use storage::etcd3::EtcdBackend;
use storage::testing::EtcdProcess;
use storage::{Cacher, Store};

struct Cluster {
    client: Client,
    _etcd: EtcdProcess,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start() -> Cluster {
    let etcd = EtcdProcess::start().expect("etcd (Debian etcd-server) must be installed");
    let dir = tempfile::tempdir().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "test-ca");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let mut sp =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = sp.signed_by(&server_key, &ca).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut cp = CertificateParams::new(Vec::<String>::new()).unwrap();
    cp.distinguished_name.push(DnType::CommonName, "jane");
    cp.distinguished_name.push(DnType::OrganizationName, "devs");
    cp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = cp.signed_by(&client_key, &ca).unwrap();
    let w = |n: &str, s: String| {
        let p = dir.path().join(n);
        std::fs::write(&p, s).unwrap();
        p
    };
    let port = free_port();
    let config = apiserver::Config {
        bind: format!("127.0.0.1:{port}").parse().unwrap(),
        advertise_address: "127.0.0.1".parse().unwrap(),
        tls_cert_file: w("server.crt", server.pem()),
        tls_key_file: w("server.key", server_key.serialize_pem()),
        client_ca_file: Some(w("ca.crt", ca.pem())),
        etcd_servers: vec![etcd.endpoint.clone()],
        etcd_prefix: "/registry".into(),
        service_cluster_ip_range: "10.0.0.0/24".into(),
        service_node_port_range: (30000, 32767),
        compaction_interval: Duration::ZERO,
        event_ttl: Duration::from_secs(3600),
        max_request_body: 3 * 1024 * 1024,
        watch_cache_history: 50,
        service_accounts: Default::default(),
        aggregator: Default::default(),
        kubelet: Default::default(),
        // No controller manager: no `default` ServiceAccounts, no untainting.
        admission: apiserver::admission::AdmissionConfig {
            disable: vec!["ServiceAccount".into(), "TaintNodesByCondition".into()],
            ..Default::default()
        },
        authorization_modes: vec![apiserver::authz::Mode::AlwaysAllow],
    };
    let backend = EtcdBackend::connect(&config.etcd_servers).await.unwrap();
    let store = Store::new(Arc::new(backend));
    let cacher = Cacher::new(store.clone(), "/registry/", config.watch_cache_history);
    let state = apiserver::ApiState::new(config, store, cacher.clone()).unwrap();
    tokio::spawn(cacher.clone().run());
    cacher.wait_ready().await;
    apiserver::bootstrap::run(&state).await.unwrap();
    tokio::spawn(apiserver::serve(state));
    let b64 = |s: String| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s);
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: t\n  cluster:\n    server: https://127.0.0.1:{port}\n    certificate-authority-data: {}\nusers:\n- name: jane\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: t\n  context: {{cluster: t, user: jane}}\ncurrent-context: t\n",
        b64(ca.pem()),
        b64(client_cert.pem()),
        b64(client_key.serialize_pem())
    );
    let kc = kube::config::Kubeconfig::from_yaml(&kubeconfig).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let client = Client::try_from(cfg).unwrap();
    // Wait for the listener with a deadline, not a fixed sleep.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout(Duration::from_secs(2), client.apiserver_version()).await {
            Ok(Ok(_)) => break,
            other => eprintln!("waiting for apiserver: {other:?}"),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "apiserver did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Cluster {
        client,
        _etcd: etcd,
        _dir: dir,
    }
}

async fn raw(
    client: &Client,
    method: &str,
    path: &str,
    accept: &str,
    ct: &str,
    body: &str,
) -> (u16, Value) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("Accept", accept)
        .header("Content-Type", ct)
        .body(body.as_bytes().to_vec())
        .unwrap();
    let resp = client
        .send(req.map(kube::client::Body::from))
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_watch_and_errors_like_upstream() {
    let c = start().await;
    let client = c.client.clone();
    assert_eq!(client.apiserver_version().await.unwrap().minor, "33");

    // Bootstrap objects.
    let nss: Api<Namespace> = Api::all(client.clone());
    let names: Vec<String> = nss
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    for want in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(names.contains(&want.to_string()), "{want} in {names:?}");
    }
    let svc: Api<Service> = Api::namespaced(client.clone(), "default");
    assert_eq!(
        svc.get("kubernetes")
            .await
            .unwrap()
            .spec
            .unwrap()
            .cluster_ip
            .as_deref(),
        Some("10.0.0.1")
    );

    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "t"}})).unwrap(),
    )
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "t");
    let pod: Pod = serde_json::from_value(json!({"metadata": {"generateName": "web-", "labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})).unwrap();
    let created = pods.create(&PostParams::default(), &pod).await.unwrap();
    let name = created.metadata.name.clone().unwrap();
    assert!(name.starts_with("web-") && name.len() == 9, "{name}");
    let spec = created.spec.clone().unwrap();
    assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
    assert_eq!(
        spec.containers[0].image_pull_policy.as_deref(),
        Some("Always")
    );
    assert_eq!(
        created.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Pending")
    );
    assert_eq!(
        created.status.as_ref().and_then(|s| s.qos_class.as_deref()),
        Some("BestEffort")
    );

    // Selectors, from etcd and from the watch cache.
    let lp = ListParams::default()
        .labels("app=web")
        .fields("status.phase=Pending");
    assert_eq!(pods.list(&lp).await.unwrap().items.len(), 1);
    assert_eq!(
        pods.list(&ListParams::default().labels("app!=web"))
            .await
            .unwrap()
            .items
            .len(),
        0
    );
    // resourceVersion=0 is served by the watch cache, which may lag a moment.
    let mut seen = 0;
    for _ in 0..50 {
        let cached = pods
            .list(&ListParams::default().labels("app in (web)").match_any())
            .await
            .unwrap();
        seen = cached.items.len();
        if seen == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, 1);
    let bad = pods
        .list(&ListParams::default().fields("spec.bogus=x"))
        .await
        .unwrap_err();
    assert!(
        matches!(bad, kube::Error::Api(ref s) if s.code == 400),
        "{bad:?}"
    );

    // Optimistic concurrency: a stale resourceVersion is a 409 Conflict.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "t");
    let cm = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"a": "1"}}))
                .unwrap(),
        )
        .await
        .unwrap();
    let mut newer = cm.clone();
    newer.data = Some([("a".to_string(), "2".to_string())].into());
    cms.replace("c", &PostParams::default(), &newer)
        .await
        .unwrap();
    let err = cms
        .replace("c", &PostParams::default(), &cm)
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "Conflict"),
        "{err:?}"
    );
    let dup = cms.create(&PostParams::default(), &cm).await.unwrap_err();
    assert!(
        matches!(dup, kube::Error::Api(ref s) if s.code == 409 && s.reason == "AlreadyExists"),
        "{dup:?}"
    );

    // Patches: merge and strategic (containers merged by name).
    let p = cms
        .patch(
            "c",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"b": "3"}})),
        )
        .await
        .unwrap();
    assert_eq!(p.data.unwrap().len(), 2);
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "t");
    let d: Deployment = serde_json::from_value(json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "a", "image": "x:1"}, {"name": "b", "image": "y:1"}]}}}})).unwrap();
    let d = deps.create(&PostParams::default(), &d).await.unwrap();
    assert_eq!(d.metadata.generation, Some(1));
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(1));
    let d2 = deps.patch("d", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "y:2"}]}}}}))).await.unwrap();
    let cs = d2.spec.unwrap().template.spec.unwrap().containers;
    assert_eq!((cs.len(), cs[1].image.as_deref()), (2, Some("y:2")));
    assert_eq!(d2.metadata.generation, Some(2));
    // Status is not written through the main resource.
    let d3 = deps
        .patch(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(d3.status.and_then(|s| s.replicas), None);
    let st = deps
        .patch_status(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(st.status.and_then(|s| s.replicas), Some(5));
    // Scale subresource.
    let sc = deps
        .patch_scale(
            "d",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(sc.spec.and_then(|s| s.replicas), Some(4));

    // Watch from a resourceVersion sees later changes in order.
    let rv = cms
        .get("c")
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = cms
        .watch(&WatchParams::default().timeout(10), &rv)
        .await
        .unwrap()
        .boxed();
    cms.patch(
        "c",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"z": "9"}})),
    )
    .await
    .unwrap();
    cms.delete("c", &DeleteParams::default()).await.unwrap();
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WatchEvent::Modified(_) => kinds.push("MODIFIED"),
            WatchEvent::Deleted(_) => kinds.push("DELETED"),
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(kinds, vec!["MODIFIED", "DELETED"]);
    let gone = cms.get("c").await.unwrap_err();
    assert!(
        matches!(gone, kube::Error::Api(ref s) if s.code == 404 && s.message == "configmaps \"c\" not found"),
        "{gone:?}"
    );

    // A watch from a compacted/too-old revision is a 200 with an ERROR event carrying 410.
    // The cache keeps 50 events here: push the first revisions out of its history.
    for i in 0..60 {
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": format!("h{i}")}})).unwrap(),
        )
        .await
        .unwrap();
    }
    let (code, ev) = raw(
        &client,
        "GET",
        "/api/v1/namespaces/t/configmaps?watch=true&resourceVersion=2&timeoutSeconds=5",
        "application/json",
        "application/json",
        "",
    )
    .await;
    assert_eq!(
        (
            code,
            ev["type"].as_str(),
            ev["object"]["code"].as_i64(),
            ev["object"]["reason"].as_str()
        ),
        (200, Some("ERROR"), Some(410), Some("Expired"))
    );

    // Bad input gets upstream's Status.
    let (code, s) = raw(
        &client,
        "POST",
        "/api/v1/namespaces/t/configmaps",
        "application/json",
        "application/json",
        "{not json",
    )
    .await;
    assert_eq!((code, s["reason"].as_str()), (400, Some("BadRequest")));
    let (code, s) = raw(
        &client,
        "POST",
        "/api/v1/namespaces/t/configmaps",
        "application/json",
        "text/plain",
        "{}",
    )
    .await;
    assert_eq!(
        (code, s["reason"].as_str()),
        (415, Some("UnsupportedMediaType"))
    );
    let (code, _) = raw(
        &client,
        "GET",
        "/api/v1/namespaces/t/configmaps",
        "text/html",
        "application/json",
        "",
    )
    .await;
    assert_eq!(code, 406);
    let (code, s) = raw(&client, "POST", "/api/v1/namespaces/t/pods", "application/json", "application/json", r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"Bad_Name"},"spec":{"containers":[]}}"#).await;
    assert_eq!((code, s["reason"].as_str()), (422, Some("Invalid")));
    let fields: Vec<&str> = s["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["field"].as_str())
        .collect();
    assert_eq!(fields, vec!["metadata.name", "spec.containers"]);
    let big = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"a":"{}"}}}}"#,
        "x".repeat(4 * 1024 * 1024)
    );
    let (code, _) = raw(
        &client,
        "POST",
        "/api/v1/namespaces/t/configmaps",
        "application/json",
        "application/json",
        &big,
    )
    .await;
    assert_eq!(code, 413);
    let (code, s) = raw(
        &client,
        "POST",
        "/api/v1/namespaces/t/configmaps?fieldValidation=Strict",
        "application/json",
        "application/json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"s"},"bogus":1}"#,
    )
    .await;
    assert_eq!(
        (code, s["message"].as_str()),
        (400, Some("strict decoding error: unknown field \"bogus\""))
    );
    let laughs = "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
    let (code, _) = raw(
        &client,
        "POST",
        "/api/v1/namespaces/t/configmaps",
        "application/json",
        "application/yaml",
        laughs,
    )
    .await;
    assert_eq!(code, 400);
    let (code, s) = raw(
        &client,
        "GET",
        "/apis/nope/v1/things",
        "application/json",
        "application/json",
        "",
    )
    .await;
    assert_eq!((code, s["kind"].as_str()), (404, Some("Status")));

    // Server-side printing.
    let (code, t) = raw(
        &client,
        "GET",
        "/apis/apps/v1/namespaces/t/deployments",
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        "application/json",
        "",
    )
    .await;
    assert_eq!(code, 200);
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        &cols[..5],
        &["Name", "Ready", "Up-to-date", "Available", "Age"]
    );
    assert_eq!(t["rows"][0]["cells"][1], "0/4");

    // Discovery, aggregated and legacy.
    let (code, agg) = raw(
        &client,
        "GET",
        "/apis",
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
        "application/json",
        "",
    )
    .await;
    assert_eq!(
        (code, agg["kind"].as_str()),
        (200, Some("APIGroupDiscoveryList"))
    );
    let (_, core) = raw(
        &client,
        "GET",
        "/api/v1",
        "application/json",
        "application/json",
        "",
    )
    .await;
    let pods_res = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "pods")
        .unwrap()
        .clone();
    assert_eq!(pods_res["shortNames"], json!(["po"]));

    // Deletion: finalizers hold the object with a deletionTimestamp until removed.
    let fin = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "f", "finalizers": ["example.com/x"]}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    assert!(fin.metadata.deletion_timestamp.is_none());
    cms.delete("f", &DeleteParams::default()).await.unwrap();
    assert!(cms
        .get("f")
        .await
        .unwrap()
        .metadata
        .deletion_timestamp
        .is_some());
    cms.patch(
        "f",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(matches!(cms.get("f").await.unwrap_err(), kube::Error::Api(ref s) if s.code == 404));

    // Creating in a missing namespace is a 404 for the namespace.
    let in_missing: Api<ConfigMap> = Api::namespaced(client.clone(), "missing");
    let fresh: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "m"}})).unwrap();
    let e = in_missing
        .create(&PostParams::default(), &fresh)
        .await
        .unwrap_err();
    assert!(
        matches!(e, kube::Error::Api(ref s) if s.code == 404 && s.message.contains("namespaces \"missing\" not found")),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_tracks_owners_and_conflicts() {
    let c = start().await;
    let deploys: Api<Deployment> = Api::namespaced(c.client.clone(), "default");
    let config = |replicas: i32, image: &str| -> Deployment {
        serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "ssa", "labels": {"team": "a"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "ssa"}},
                "template": {"metadata": {"labels": {"app": "ssa"}},
                    "spec": {"containers": [{"name": "web", "image": image}]}}}
        }))
        .unwrap()
    };
    let pp = |m: &str| PatchParams::apply(m);
    // Create by apply: the applier owns what it sent, with an Apply entry.
    let d = deploys
        .patch("ssa", &pp("alice"), &Patch::Apply(config(1, "nginx")))
        .await
        .unwrap();
    let mf = d.metadata.managed_fields.clone().unwrap();
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0].manager.as_deref(), Some("alice"));
    assert_eq!(mf[0].operation.as_deref(), Some("Apply"));
    let fields = serde_json::to_value(&mf[0].fields_v1).unwrap();
    assert_eq!(fields["f:spec"]["f:replicas"], json!({}));
    assert!(fields["f:spec"]["f:template"]["f:spec"]["f:containers"]
        .get("k:{\"name\":\"web\"}")
        .is_some());
    // Defaulted fields belong to nobody.
    assert!(fields["f:spec"].get("f:strategy").is_none());

    // Another applier changing replicas conflicts, naming owner and field.
    let e = deploys
        .patch("ssa", &pp("bob"), &Patch::Apply(config(3, "nginx")))
        .await
        .unwrap_err();
    let kube::Error::Api(s) = e else {
        panic!("{e:?}")
    };
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        s.message,
        "Apply failed with 1 conflict: conflict with \"alice\": .spec.replicas"
    );
    // Same values are shared without conflict; force takes a field over.
    deploys
        .patch("ssa", &pp("bob").force(), &Patch::Apply(config(3, "nginx")))
        .await
        .unwrap();
    let d = deploys.get("ssa").await.unwrap();
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(3));
    let owners = |d: &Deployment, m: &str| -> Value {
        let e = d
            .metadata
            .managed_fields
            .as_ref()
            .unwrap()
            .iter()
            .find(|e| e.manager.as_deref() == Some(m))
            .cloned()
            .unwrap();
        serde_json::to_value(e.fields_v1).unwrap()
    };
    assert!(owners(&d, "alice")["f:spec"].get("f:replicas").is_none());
    assert_eq!(owners(&d, "bob")["f:spec"]["f:replicas"], json!({}));

    // An update by "editor" moves the image it changed to editor.
    let mut edited = d.clone();
    edited
        .spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .containers[0]
        .image = Some("nginx:2".into());
    let d = deploys
        .replace(
            "ssa",
            &PostParams {
                field_manager: Some("editor".into()),
                ..Default::default()
            },
            &edited,
        )
        .await
        .unwrap();
    let editor = owners(&d, "editor");
    assert_eq!(
        editor["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]["f:image"],
        json!({})
    );
    let mf = d.metadata.managed_fields.as_ref().unwrap();
    assert!(mf.iter().any(
        |e| e.manager.as_deref() == Some("editor") && e.operation.as_deref() == Some("Update")
    ));

    // An applier dropping a field nobody else owns removes it.
    let mut without_label = config(3, "nginx");
    without_label.metadata.labels = None;
    let mut only_alice: Deployment = without_label.clone();
    only_alice.spec.as_mut().unwrap().replicas = None;
    deploys
        .patch("ssa", &pp("bob").force(), &Patch::Apply(without_label))
        .await
        .unwrap();
    let d = deploys
        .patch("ssa", &pp("alice").force(), &Patch::Apply(only_alice))
        .await
        .unwrap();
    assert!(d.metadata.labels.unwrap_or_default().get("team").is_none());
    assert_eq!(d.spec.unwrap().replicas, Some(3), "bob still owns replicas");
}
