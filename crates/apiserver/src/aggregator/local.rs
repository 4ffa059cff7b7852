//! The APIServices of the groups this server serves itself (upstream's
//! autoregister controller with kube-apiserver's `apiVersionPriorities`):
//! `v1.`, `v1.apps`, … with no service, always Available (reason `Local`),
//! so `kubectl get apiservices` lists every group like upstream.

use serde_json::{json, Value};

use crate::state::ApiState;

/// (group, groupPriorityMinimum, versionPriority) as upstream orders them.
const PRIORITIES: &[(&str, i64, i64)] = &[
    ("", 18000, 1),
    ("apps", 17800, 15),
    ("events.k8s.io", 17750, 15),
    ("authentication.k8s.io", 17700, 15),
    ("authorization.k8s.io", 17600, 15),
    ("autoscaling", 17500, 30),
    ("batch", 17400, 15),
    ("certificates.k8s.io", 17300, 15),
    ("networking.k8s.io", 17200, 15),
    ("policy", 17100, 15),
    ("rbac.authorization.k8s.io", 17000, 15),
    ("storage.k8s.io", 16800, 15),
    ("apiextensions.k8s.io", 16700, 15),
    ("admissionregistration.k8s.io", 16700, 15),
    ("scheduling.k8s.io", 16600, 15),
    ("coordination.k8s.io", 16500, 15),
    ("node.k8s.io", 16300, 15),
    ("discovery.k8s.io", 16200, 15),
    ("flowcontrol.apiserver.k8s.io", 16100, 21),
    ("apiregistration.k8s.io", 18000, 15),
];

/// The APIService object for a local group/version.
pub fn apiservice(group: &str, version: &str, now: &str) -> Value {
    let (gp, vp) = PRIORITIES
        .iter()
        .find(|(g, _, _)| *g == group)
        .map(|(_, g, v)| (*g, *v))
        .unwrap_or((1000, 15));
    let mut spec = json!({"version": version, "groupPriorityMinimum": gp, "versionPriority": vp, "service": null});
    if !group.is_empty() {
        spec["group"] = json!(group);
    }
    json!({
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": format!("{version}.{group}"), "labels": {"kube-aggregator.kubernetes.io/automanaged": "onstart"}},
        "spec": spec,
        "status": {"conditions": [{"type": "Available", "status": "True", "lastTransitionTime": now,
            "reason": "Local", "message": "Local APIServices are always available"}]}
    })
}

/// Creates the local APIServices that do not exist yet.
pub async fn ensure(state: &ApiState) {
    let mut gvs: Vec<(String, String)> = {
        let resources = state.resources.read().unwrap_or_else(|p| p.into_inner());
        resources
            .list
            .iter()
            .filter(|d| d.custom.is_none())
            .map(|d| (d.group.clone(), d.version.clone()))
            .collect()
    };
    gvs.sort();
    gvs.dedup();
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    for (g, v) in gvs {
        let mut obj = apiservice(&g, &v, &now);
        let name = apimachinery::meta::name(&obj).to_string();
        let meta = apimachinery::meta::metadata_mut(&mut obj);
        meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        meta.insert("creationTimestamp".into(), json!(now));
        let key = format!("{}apiregistration.k8s.io/apiservices/{name}", state.prefix);
        match state.store.create(&key, obj, None).await {
            Ok(_) | Err(storage::Error::AlreadyExists { .. }) => {}
            Err(e) => tracing::warn!(apiservice = %name, error = %e, "creating local APIService"),
        }
    }
}
