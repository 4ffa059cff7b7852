//! The Endpoints and EndpointSlice controllers against a real API server:
//! named target ports resolved per pod, readiness, relabelled and deleted
//! pods dropped, Endpoints removed with their Service.

mod common;

use k8s_openapi::api::core::v1::{Endpoints, Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    match serde_json::from_value(v) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

async fn pod_with_ip(pods: &Api<Pod>, name: &str, ip: &str, ready: bool) {
    let p: Pod = from(json!({"metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "busybox", "ports": [{"name": "http", "containerPort": 8080}]}]}}));
    pods.create(&PostParams::default(), &p)
        .await
        .expect("create pod");
    set_status(pods, name, ip, ready).await;
}

async fn set_status(pods: &Api<Pod>, name: &str, ip: &str, ready: bool) {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let status = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "conditions": [
        {"type": "Ready", "status": if ready { "True" } else { "False" }, "lastTransitionTime": now}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("pod status");
}

/// (ready ips, not-ready ips, ports) of the Endpoints.
async fn endpoints(
    eps: &Api<Endpoints>,
) -> Option<(Vec<String>, Vec<String>, Vec<(Option<String>, i32)>)> {
    let e = eps.get_opt("web").await.ok()??;
    let mut ready = Vec::new();
    let mut not_ready = Vec::new();
    let mut ports = Vec::new();
    for s in e.subsets.unwrap_or_default() {
        ready.extend(s.addresses.unwrap_or_default().into_iter().map(|a| a.ip));
        not_ready.extend(
            s.not_ready_addresses
                .unwrap_or_default()
                .into_iter()
                .map(|a| a.ip),
        );
        ports.extend(
            s.ports
                .unwrap_or_default()
                .into_iter()
                .map(|p| (p.name, p.port)),
        );
    }
    ready.sort();
    not_ready.sort();
    Some((ready, not_ready, ports))
}

/// (ip, ready) of every endpoint in the Service's slices.
async fn slice_endpoints(slices: &Api<EndpointSlice>) -> Option<Vec<(String, bool)>> {
    let list = slices
        .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
        .await
        .ok()?;
    let mut out: Vec<(String, bool)> = list
        .items
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .map(|e| {
            (
                e.addresses[0].clone(),
                e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(false),
            )
        })
        .collect();
    out.sort();
    Some(out)
}

#[tokio::test]
async fn endpoints_and_slices_follow_pods() {
    let c = common::start(&["endpoint", "endpointslice"], |_, _| {}).await;
    let nss: Api<Namespace> = Api::all(c.client.clone());
    nss.create(&PostParams::default(), &common::ns("ep"))
        .await
        .expect("namespace");
    let svcs: Api<Service> = Api::namespaced(c.client.clone(), "ep");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "ep");
    let eps: Api<Endpoints> = Api::namespaced(c.client.clone(), "ep");
    let slices: Api<EndpointSlice> = Api::namespaced(c.client.clone(), "ep");
    let svc: Service = from(json!({"metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}));
    svcs.create(&PostParams::default(), &svc)
        .await
        .expect("create service");
    // Without pods: an empty Endpoints and a placeholder slice.
    common::eventually("empty endpoints", || async {
        endpoints(&eps)
            .await
            .filter(|(r, n, _)| r.is_empty() && n.is_empty())
    })
    .await;
    common::eventually("a placeholder slice", || async {
        slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
            .await
            .ok()?
            .items
            .into_iter()
            .find(|s| s.endpoints.is_empty())
    })
    .await;

    pod_with_ip(&pods, "a", "10.1.0.5", false).await;
    pod_with_ip(&pods, "b", "10.1.0.6", true).await;
    let (_, _, ports) = common::eventually("one ready and one unready address", || async {
        endpoints(&eps)
            .await
            .filter(|(r, n, _)| r == &["10.1.0.6"] && n == &["10.1.0.5"])
    })
    .await;
    assert_eq!(
        ports,
        vec![(Some("http".to_string()), 8080)],
        "the named target port is resolved"
    );
    common::eventually("slice conditions", || async {
        slice_endpoints(&slices).await.filter(|e| {
            e == &[
                ("10.1.0.5".to_string(), false),
                ("10.1.0.6".to_string(), true),
            ]
        })
    })
    .await;
    let s = slices
        .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
        .await
        .expect("list")
        .items;
    let with_eps: Vec<&EndpointSlice> = s.iter().filter(|s| !s.endpoints.is_empty()).collect();
    assert_eq!(with_eps.len(), 1);
    assert_eq!(
        with_eps[0].ports.as_ref().and_then(|p| p[0].port),
        Some(8080)
    );
    assert_eq!(
        with_eps[0]
            .metadata
            .owner_references
            .as_ref()
            .map(|o| o[0].kind.as_str()),
        Some("Service")
    );

    // Readiness, relabelling and deletion.
    set_status(&pods, "a", "10.1.0.5", true).await;
    common::eventually("both ready", || async {
        endpoints(&eps)
            .await
            .filter(|(r, n, _)| r.len() == 2 && n.is_empty())
    })
    .await;
    pods.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"labels": {"app": "other"}}})),
    )
    .await
    .expect("relabel");
    pods.delete(
        "b",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .expect("delete");
    common::eventually("no addresses left", || async {
        endpoints(&eps)
            .await
            .filter(|(r, n, _)| r.is_empty() && n.is_empty())
    })
    .await;
    common::eventually("no slice endpoints left", || async {
        slice_endpoints(&slices).await.filter(|e| e.is_empty())
    })
    .await;

    svcs.delete("web", &DeleteParams::default())
        .await
        .expect("delete service");
    common::eventually("endpoints removed with the service", || async {
        eps.get_opt("web").await.ok()?.is_none().then_some(())
    })
    .await;
}
