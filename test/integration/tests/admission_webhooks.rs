//! Admission webhooks against a real API server and a real HTTPS webhook:
//! a mutating webhook's JSONPatch lands in the stored object, a validating
//! webhook refuses with its own status and warns through Warning headers,
//! the reviews carry the write (operation, user, object, old object, dry
//! run), namespace and object selectors choose what is sent, a webhook that
//! cannot be called fails the write unless its failure policy is Ignore,
//! configurations are validated, webhooks behind a Service are reached
//! through its endpoints, and IfNeeded webhooks are called again.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use integration::{https, TestApiServer};
use serde_json::{json, Value};

const JSON: &str = "application/json";

type Seen = Arc<Mutex<Vec<Value>>>;

/// The webhook: `/mutate` labels every object it may change `mutated:
/// "yes"` (a patch on a delete is an error); `/validate`
/// refuses objects named `forbidden` and warns about the others. Every
/// review is kept.
async fn webhook(seen: Seen) -> (u16, String) {
    https::serve(move |r: https::Request| {
        let seen = seen.clone();
        async move {
            let review: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            seen.lock().unwrap().push(json!({"path": r.path, "query": r.query, "review": review}));
            let req = &review["request"];
            let uid = req["uid"].clone();
            let name = req["object"]["metadata"]["name"].as_str().unwrap_or("").to_string();
            let response = match r.path.as_str() {
                "/mutate" if req["operation"] == "DELETE" => json!({"uid": uid, "allowed": true}),
                "/mutate" => {
                    let patch = if req["object"]["metadata"]["labels"].is_object() {
                        json!([{"op": "add", "path": "/metadata/labels/mutated", "value": "yes"}])
                    } else {
                        json!([{"op": "add", "path": "/metadata/labels", "value": {"mutated": "yes"}}])
                    };
                    let patch = base64::engine::general_purpose::STANDARD.encode(patch.to_string());
                    json!({"uid": uid, "allowed": true, "patch": patch, "patchType": "JSONPatch"})
                }
                _ if name == "forbidden" => json!({"uid": uid, "allowed": false,
                    "status": {"code": 403, "reason": "Forbidden", "message": "configmaps named forbidden are not allowed"}}),
                _ => json!({"uid": uid, "allowed": true, "warnings": [format!("validated {name}")]}),
            };
            let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response});
            (200, body.to_string())
        }
    })
    .await
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn hook(name: &str, url: &str, ca: &str, extra: Value) -> Value {
    let mut h = json!({
        "name": name,
        "clientConfig": {"url": url, "caBundle": b64(ca)},
        "rules": [{"operations": ["CREATE", "UPDATE", "DELETE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": 5,
    });
    for (k, v) in extra.as_object().unwrap() {
        h[k] = v.clone();
    }
    h
}

fn configmap(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}})
}

async fn create(s: &TestApiServer, path: &str, body: Value) -> integration::Raw {
    s.raw("POST", path, JSON, &body).await
}

/// Creates probe configmaps (dry run) until `done` holds for the answer:
/// the configurations are followed through the watch cache.
async fn wait_for(
    s: &TestApiServer,
    ns: &str,
    probe: Value,
    done: impl Fn(&integration::Raw) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = create(
            s,
            &format!("/api/v1/namespaces/{ns}/configmaps?dryRun=All"),
            probe.clone(),
        )
        .await;
        if done(&r) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "webhooks never applied: {} {}",
            r.code,
            r.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_mutate_validate_and_see_the_request() {
    let s = TestApiServer::start().await;
    let seen: Seen = Arc::default();
    let (port, ca) = webhook(seen.clone()).await;
    for (ns, labels) in [("hooked", json!({"webhooks": "on"})), ("plain", json!({}))] {
        let r = create(&s, "/api/v1/namespaces", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}})).await;
        assert_eq!(r.code, 201, "{}", r.body);
    }
    let on = json!({"matchLabels": {"webhooks": "on"}});
    let r = create(&s, "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "label"},
        "webhooks": [hook("label.example.com", &format!("https://127.0.0.1:{port}/mutate"), &ca, json!({
            "namespaceSelector": on,
            "objectSelector": {"matchExpressions": [{"key": "skip", "operator": "DoesNotExist"}]},
        }))],
    })).await;
    assert_eq!(r.code, 201, "{}", r.body);
    // Upstream's defaults.
    let w = &r.body["webhooks"][0];
    assert_eq!(w["failurePolicy"], "Fail");
    assert_eq!(w["matchPolicy"], "Equivalent");
    assert_eq!(w["reinvocationPolicy"], "Never");
    assert_eq!(w["rules"][0]["scope"], "*");
    let r = create(&s, "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "deny"},
        "webhooks": [hook("deny.example.com", &format!("https://127.0.0.1:{port}/validate"), &ca, json!({"namespaceSelector": on}))],
    })).await;
    assert_eq!(r.code, 201, "{}", r.body);
    wait_for(&s, "hooked", configmap("probe", json!({})), |r| {
        r.code == 201 && r.body["metadata"]["labels"]["mutated"] == "yes" && !r.warnings.is_empty()
    })
    .await;
    wait_for(&s, "hooked", configmap("forbidden", json!({})), |r| {
        r.code == 403
    })
    .await;
    seen.lock().unwrap().clear();

    // Mutated, stored, warned about.
    let r = create(
        &s,
        "/api/v1/namespaces/hooked/configmaps",
        configmap("ok", json!({"app": "web"})),
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.body);
    assert_eq!(
        r.body["metadata"]["labels"],
        json!({"app": "web", "mutated": "yes"})
    );
    assert_eq!(r.warnings, ["299 - \"validated ok\""]);
    let got = s
        .raw(
            "GET",
            "/api/v1/namespaces/hooked/configmaps/ok",
            JSON,
            &Value::Null,
        )
        .await;
    assert_eq!(got.body["metadata"]["labels"]["mutated"], "yes");
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[0]["path"], "/mutate");
        assert_eq!(seen[0]["query"], "timeout=5s");
        let q = &seen[0]["review"]["request"];
        assert_eq!(q["operation"], "CREATE");
        assert_eq!(
            q["kind"],
            json!({"group": "", "version": "v1", "kind": "ConfigMap"})
        );
        assert_eq!(
            q["resource"],
            json!({"group": "", "version": "v1", "resource": "configmaps"})
        );
        assert_eq!(q["namespace"], "hooked");
        assert_eq!(q["name"], "ok");
        assert_eq!(q["userInfo"]["username"], "admin");
        assert_eq!(q["userInfo"]["groups"][0], "system:masters");
        assert_eq!(q["dryRun"], false);
        assert_eq!(q["options"]["kind"], "CreateOptions");
        assert!(q["oldObject"].is_null());
        // The validating webhook sees the mutated object.
        let v = &seen[1]["review"]["request"];
        assert_eq!(seen[1]["path"], "/validate");
        assert_eq!(v["object"]["metadata"]["labels"]["mutated"], "yes");
    }

    // Refused with the webhook's code and message.
    let r = create(
        &s,
        "/api/v1/namespaces/hooked/configmaps",
        configmap("forbidden", json!({})),
    )
    .await;
    assert_eq!(r.code, 403, "{}", r.body);
    assert_eq!(r.body["reason"], "Forbidden");
    assert_eq!(
        r.body["message"],
        "admission webhook \"deny.example.com\" denied the request: configmaps named forbidden are not allowed"
    );
    assert_eq!(
        s.raw(
            "GET",
            "/api/v1/namespaces/hooked/configmaps/forbidden",
            JSON,
            &Value::Null
        )
        .await
        .code,
        404
    );
    // Each call is counted under upstream's metric names.
    let metrics = s
        .client
        .request_text(http::Request::get("/metrics").body(Vec::new()).unwrap())
        .await
        .unwrap();
    for line in [
        "apiserver_admission_webhook_request_total{name=\"deny.example.com\",operation=\"CREATE\",type=\"validating\",code=\"403\",rejected=\"true\"}",
        "apiserver_admission_webhook_admission_duration_seconds_count{name=\"label.example.com\",operation=\"CREATE\",type=\"admit\",rejected=\"false\"}",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }

    // The namespace selector: nothing is sent for the other namespace.
    seen.lock().unwrap().clear();
    let r = create(
        &s,
        "/api/v1/namespaces/plain/configmaps",
        configmap("forbidden", json!({})),
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.body);
    assert!(r.body["metadata"]["labels"].get("mutated").is_none());
    assert!(seen.lock().unwrap().is_empty());

    // The object selector: the mutating webhook skips labelled objects.
    let r = create(
        &s,
        "/api/v1/namespaces/hooked/configmaps",
        configmap("skipped", json!({"skip": "1"})),
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.body);
    assert_eq!(r.body["metadata"]["labels"], json!({"skip": "1"}));

    // Updates and deletes: the old object goes along.
    seen.lock().unwrap().clear();
    let mut cm = got.body.clone();
    cm["data"] = json!({"k": "v"});
    let r = s
        .raw("PUT", "/api/v1/namespaces/hooked/configmaps/ok", JSON, &cm)
        .await;
    assert_eq!(r.code, 200, "{}", r.body);
    let r = s
        .raw(
            "DELETE",
            "/api/v1/namespaces/hooked/configmaps/ok?dryRun=All",
            JSON,
            &Value::Null,
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.body);
    let seen = seen.lock().unwrap().clone();
    let ops: Vec<(&str, &str)> = seen
        .iter()
        .map(|s| {
            (
                s["path"].as_str().unwrap(),
                s["review"]["request"]["operation"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            ("/mutate", "UPDATE"),
            ("/validate", "UPDATE"),
            ("/mutate", "DELETE"),
            ("/validate", "DELETE")
        ]
    );
    assert_eq!(
        seen[1]["review"]["request"]["oldObject"]["data"],
        Value::Null
    );
    assert_eq!(seen[1]["review"]["request"]["object"]["data"]["k"], "v");
    let del = &seen[3]["review"]["request"];
    assert!(del["object"].is_null());
    assert_eq!(del["oldObject"]["metadata"]["name"], "ok");
    assert_eq!(del["dryRun"], true);
    assert_eq!(del["options"]["kind"], "DeleteOptions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_webhooks_follow_the_failure_policy() {
    let s = TestApiServer::start().await;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("https://127.0.0.1:{closed}/validate");
    let r = create(&s, "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "gone"},
        "webhooks": [hook("gone.example.com", &url, "", json!({
            "objectSelector": {"matchLabels": {"policy": "fail"}},
        })), hook("ignored.example.com", &url, "", json!({"failurePolicy": "Ignore"}))],
    })).await;
    assert_eq!(r.code, 201, "{}", r.body);
    wait_for(
        &s,
        "default",
        configmap("x", json!({"policy": "fail"})),
        |r| r.code == 500,
    )
    .await;
    let r = create(
        &s,
        "/api/v1/namespaces/default/configmaps",
        configmap("x", json!({"policy": "fail"})),
    )
    .await;
    assert_eq!(r.code, 500, "{}", r.body);
    assert_eq!(r.body["reason"], "InternalError");
    let message = r.body["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "Internal error occurred: failed calling webhook \"gone.example.com\": failed to call webhook: Post \"https://127.0.0.1:{closed}/validate?timeout=5s\": dial tcp 127.0.0.1:{closed}: connect: connection refused"
        )),
        "{message}"
    );
    // Only the Ignore webhook matches: its failure is passed over.
    let r = create(
        &s,
        "/api/v1/namespaces/default/configmaps",
        configmap("y", json!({})),
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.body);
    // The configurations themselves are never sent to webhooks.
    let r = create(&s, "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "all"},
        "webhooks": [hook("all.example.com", &url, "", json!({"rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}]}))],
    })).await;
    assert_eq!(r.code, 201, "{}", r.body);
    wait_for(&s, "default", configmap("z", json!({})), |r| r.code == 500).await;
    let r = s
        .raw(
            "DELETE",
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/all",
            JSON,
            &Value::Null,
        )
        .await;
    assert_eq!(r.code, 200, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configurations_are_validated() {
    let s = TestApiServer::start().await;
    let r = create(&s, "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "bad"},
        "webhooks": [hook("short.name", "http://127.0.0.1/x", "", json!({"sideEffects": "Some", "timeoutSeconds": 60}))],
    })).await;
    assert_eq!(r.code, 422, "{}", r.body);
    assert_eq!(r.body["reason"], "Invalid");
    let causes: Vec<&str> = r.body["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        causes,
        [
            "webhooks[0].name",
            "webhooks[0].sideEffects",
            "webhooks[0].timeoutSeconds",
            "webhooks[0].clientConfig.url"
        ]
    );
    assert!(r.body["message"].as_str().unwrap().starts_with(
        "ValidatingWebhookConfiguration.admissionregistration.k8s.io \"bad\" is invalid: "
    ));
}

/// Webhooks behind a Service (reached through its Endpoints with
/// `--enable-aggregator-routing`, the name checked being
/// `<service>.<namespace>.svc`), and reinvocation: `first` (IfNeeded) is
/// called again after `second` changed the object, and sees the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_webhooks_and_reinvocation() {
    let s = TestApiServer::start_with(|c| c.aggregator.enable_aggregator_routing = true).await;
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let names = vec!["hook.hooks.svc".to_string()];
    let (port, ca) = https::serve_for(names, move |r: https::Request| {
        let log = log.clone();
        async move {
            let review: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            log.lock().unwrap().push(json!({"path": r.path}));
            let req = &review["request"];
            let meta = &req["object"]["metadata"];
            let has_label = |l: &str| meta["labels"].get(l).is_some();
            let labels_op = |l: &str| {
                if meta["labels"].is_object() {
                    json!({"op": "add", "path": format!("/metadata/labels/{l}"), "value": "1"})
                } else {
                    json!({"op": "add", "path": "/metadata/labels", "value": {l: "1"}})
                }
            };
            let patch = match r.path.as_str() {
                "/first" if !has_label("a") => json!([labels_op("a")]),
                "/first" if has_label("b") && meta["annotations"].get("a-saw-b").is_none() => {
                    json!([{"op": "add", "path": "/metadata/annotations", "value": {"a-saw-b": "yes"}}])
                }
                "/second" if !has_label("b") => json!([labels_op("b")]),
                _ => json!([]),
            };
            let mut response = json!({"uid": req["uid"], "allowed": true});
            if patch.as_array().is_some_and(|p| !p.is_empty()) {
                response["patch"] = json!(b64(&patch.to_string()));
                response["patchType"] = json!("JSONPatch");
            }
            let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response});
            (200, body.to_string())
        }
    })
    .await;
    let r = create(
        &s,
        "/api/v1/namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "hooks"}}),
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.body);
    let r = create(
        &s,
        "/api/v1/namespaces/hooks/services",
        json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "hook"}, "spec": {"ports": [{"port": 443, "targetPort": port}]}}),
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.body);
    let r = create(&s, "/api/v1/namespaces/hooks/endpoints", json!({"apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "hook"}, "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": port}]}]})).await;
    assert_eq!(r.code, 201, "{}", r.body);
    let svc = |path: &str| json!({"service": {"namespace": "hooks", "name": "hook", "path": path}, "caBundle": b64(&ca)});
    let only_default = json!({"matchLabels": {"kubernetes.io/metadata.name": "default"}});
    let r = create(&s, "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "pair"},
        "webhooks": [
            hook("first.example.com", "", "", json!({"clientConfig": svc("/first"), "reinvocationPolicy": "IfNeeded", "namespaceSelector": only_default})),
            hook("second.example.com", "", "", json!({"clientConfig": svc("/second"), "namespaceSelector": only_default})),
        ],
    })).await;
    assert_eq!(r.code, 201, "{}", r.body);
    assert_eq!(
        r.body["webhooks"][0]["clientConfig"]["service"]["port"],
        443
    );
    wait_for(&s, "default", configmap("probe", json!({})), |r| {
        r.code == 201 && r.body["metadata"]["labels"]["b"] == "1"
    })
    .await;
    seen.lock().unwrap().clear();
    let r = create(
        &s,
        "/api/v1/namespaces/default/configmaps",
        configmap("pair", json!({})),
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.body);
    assert_eq!(r.body["metadata"]["labels"], json!({"a": "1", "b": "1"}));
    assert_eq!(r.body["metadata"]["annotations"], json!({"a-saw-b": "yes"}));
    let paths: Vec<Value> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s["path"].clone())
        .collect();
    assert_eq!(paths, [json!("/first"), json!("/second"), json!("/first")]);
    // A webhook whose Service does not exist fails with the resolver's reason.
    let r = create(&s, "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "missing"},
        "webhooks": [hook("missing.example.com", "", "", json!({
            "clientConfig": {"service": {"namespace": "hooks", "name": "missing", "path": "/x"}},
            "namespaceSelector": only_default,
        }))],
    }))
    .await;
    assert_eq!(r.code, 201, "{}", r.body);
    wait_for(&s, "default", configmap("after", json!({})), |r| {
        r.code == 500
    })
    .await;
    let r = create(
        &s,
        "/api/v1/namespaces/default/configmaps",
        configmap("after", json!({})),
    )
    .await;
    assert_eq!(
        r.body["message"],
        "Internal error occurred: failed calling webhook \"missing.example.com\": failed to call webhook: Post \"https://missing.hooks.svc:443/x?timeout=5s\": service/missing in \"hooks\" is not present"
    );
}
