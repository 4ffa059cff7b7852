//! Objects every cluster has after start-up (upstream's
//! `pkg/controlplane/controller`): the system namespaces and the `kubernetes`
//! Service with Endpoints and an EndpointSlice at the advertise address, and
//! the system PriorityClasses (upstream's
//! `scheduling/bootstrap-system-priority-classes` post-start hook).

use std::sync::Arc;

use serde_json::{json, Value};

use crate::state::ApiState;

fn base(kind: &str, api_version: &str, name: &str, namespace: Option<&str>) -> Value {
    let mut m = json!({"name": name, "uid": uuid::Uuid::new_v4().to_string(), "creationTimestamp": apimachinery::meta::now_rfc3339()});
    if let Some(ns) = namespace {
        m["namespace"] = json!(ns);
    }
    json!({"apiVersion": api_version, "kind": kind, "metadata": m})
}

async fn ensure(state: &ApiState, key: &str, obj: Value) -> Result<(), storage::Error> {
    match state.store.create(key, obj, None).await {
        Ok(_) | Err(storage::Error::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn put(state: &ApiState, key: &str, obj: Value) -> Result<(), storage::Error> {
    let wanted = obj.clone();
    state
        .store
        .guaranteed_update(key, true, &Default::default(), None, move |cur| {
            let mut v = wanted.clone();
            if let Some(cur) = cur {
                // Keep identity; replace the content we own.
                v["metadata"] = cur.value["metadata"].clone();
            }
            Ok(v)
        })
        .await
        .map(|_| ())
}

/// Creates what is missing; idempotent, safe on every start.
pub async fn run(state: &Arc<ApiState>) -> Result<(), storage::Error> {
    let p = &state.prefix;
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let mut o = base("Namespace", "v1", ns, None);
        o["metadata"]["labels"] = json!({"kubernetes.io/metadata.name": ns});
        o["spec"] = json!({"finalizers": ["kubernetes"]});
        o["status"] = json!({"phase": "Active"});
        ensure(state, &format!("{p}namespaces/{ns}"), o).await?;
    }
    let ip = state.first_service_ip().to_string();
    let port = state.config.bind.port();
    let mut svc = base("Service", "v1", "kubernetes", Some("default"));
    svc["metadata"]["labels"] = json!({"component": "apiserver", "provider": "kubernetes"});
    svc["spec"] = json!({
        "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
        "clusterIP": ip, "clusterIPs": [ip], "type": "ClusterIP", "sessionAffinity": "None",
        "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster",
    });
    svc["status"] = json!({"loadBalancer": {}});
    ensure(state, &format!("{p}services/specs/default/kubernetes"), svc).await?;
    let addr = state.config.advertise_address.to_string();
    let mut ep = base("Endpoints", "v1", "kubernetes", Some("default"));
    ep["metadata"]["labels"] = json!({"endpointslice.kubernetes.io/skip-mirror": "true"});
    ep["subsets"] = json!([{"addresses": [{"ip": addr}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]);
    put(
        state,
        &format!("{p}services/endpoints/default/kubernetes"),
        ep,
    )
    .await?;
    let mut slice = base(
        "EndpointSlice",
        "discovery.k8s.io/v1",
        "kubernetes",
        Some("default"),
    );
    slice["metadata"]["labels"] = json!({"kubernetes.io/service-name": "kubernetes", "endpointslice.kubernetes.io/managed-by": "endpointslicemirroring-controller.k8s.io"});
    slice["addressType"] = json!("IPv4");
    slice["endpoints"] = json!([{"addresses": [addr], "conditions": {"ready": true}}]);
    slice["ports"] = json!([{"name": "https", "port": port, "protocol": "TCP"}]);
    put(
        state,
        &format!("{p}endpointslices/default/kubernetes"),
        slice,
    )
    .await?;
    for (name, value, description) in api::validation::SYSTEM_PRIORITY_CLASSES {
        let mut pc = base("PriorityClass", "scheduling.k8s.io/v1", name, None);
        pc["value"] = json!(value);
        pc["description"] = json!(description);
        pc["preemptionPolicy"] = json!("PreemptLowerPriority");
        ensure(state, &format!("{p}priorityclasses/{name}"), pc).await?;
    }
    publish_authentication_info(state).await?;
    crate::authz::bootstrap::run(state).await
}

/// `kube-system/extension-apiserver-authentication` (upstream's
/// ClusterAuthenticationTrust controller): the client CA and the
/// requestheader settings extension API servers (metrics-server, …) read to
/// authenticate clients and this server's proxied requests.
async fn publish_authentication_info(state: &ApiState) -> Result<(), storage::Error> {
    let read = |p: &std::path::Path| std::fs::read_to_string(p).ok();
    let mut data = serde_json::Map::new();
    if let Some(ca) = state.config.client_ca_file.as_deref().and_then(read) {
        data.insert("client-ca-file".into(), json!(ca));
    }
    let agg = &state.config.aggregator;
    if let Some(ca) = agg.requestheader_client_ca_file.as_deref().and_then(read) {
        data.insert("requestheader-client-ca-file".into(), json!(ca));
        let list = |v: &Vec<String>| json!(serde_json::to_string(v).unwrap_or_default());
        data.insert(
            "requestheader-allowed-names".into(),
            list(&agg.requestheader_allowed_names),
        );
        data.insert(
            "requestheader-username-headers".into(),
            list(&agg.requestheader_username_headers),
        );
        data.insert(
            "requestheader-group-headers".into(),
            list(&agg.requestheader_group_headers),
        );
        data.insert(
            "requestheader-extra-headers-prefix".into(),
            list(&agg.requestheader_extra_headers_prefix),
        );
    }
    if data.is_empty() {
        return Ok(());
    }
    let mut cm = base(
        "ConfigMap",
        "v1",
        "extension-apiserver-authentication",
        Some("kube-system"),
    );
    cm["data"] = Value::Object(data);
    put(
        state,
        &format!(
            "{}configmaps/kube-system/extension-apiserver-authentication",
            state.prefix
        ),
        cm,
    )
    .await
}
