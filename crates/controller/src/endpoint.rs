//! The Endpoints controller (upstream's pkg/controller/endpoint/
//! endpoints_controller.go): every Service with a selector has an
//! Endpoints object listing its pods' IPs per port — ready ones as
//! `addresses`, others as `notReadyAddresses` (all ready with
//! `publishNotReadyAddresses`) — named ports resolved per pod. Services
//! without a selector are left to their owners. Also the pod-to-endpoint
//! rules the EndpointSlice controller shares.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
    ServicePort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::ResourceExt;

use crate::descriptors::ControllerFuture;
use crate::replicaset::ranking::is_ready;
use crate::{is_already_exists, is_conflict, is_not_found, ControllerContext, Error, StartError};

const NAME: &str = "endpoints-controller";
/// Label upstream puts on a headless Service's Endpoints.
pub const HEADLESS: &str = "service.kubernetes.io/headless";

/// The Service's selector, if it manages endpoints.
pub fn selector(svc: &Service) -> Option<&BTreeMap<String, String>> {
    svc.spec
        .as_ref()?
        .selector
        .as_ref()
        .filter(|s| !s.is_empty())
}

/// Pods of the namespace the Service selects.
pub fn selected_pods(pods: &Store<Pod>, svc: &Service) -> Vec<Arc<Pod>> {
    let Some(sel) = selector(svc) else {
        return Vec::new();
    };
    let ns = svc.namespace();
    pods.state()
        .into_iter()
        .filter(|p| p.namespace() == ns)
        .filter(|p| {
            let l = p.metadata.labels.clone().unwrap_or_default();
            sel.iter().all(|(k, v)| l.get(k) == Some(v))
        })
        .collect()
}

/// Services in the pod's namespace whose selector matches it.
pub fn services_for(services: &Store<Service>, pod: &Pod) -> Vec<ObjectRef<Service>> {
    let l = pod.metadata.labels.clone().unwrap_or_default();
    services
        .state()
        .into_iter()
        .filter(|s| s.namespace() == pod.namespace())
        .filter(|s| selector(s).is_some_and(|sel| sel.iter().all(|(k, v)| l.get(k) == Some(v))))
        .map(|s| ObjectRef::from_obj(&*s))
        .collect()
}

pub fn pod_ip(p: &Pod) -> Option<String> {
    p.status
        .as_ref()?
        .pod_ip
        .clone()
        .filter(|ip| !ip.is_empty())
}

pub fn is_terminal(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

/// Upstream's `FindPort`: a service port's target on this pod.
pub fn find_port(pod: &Pod, sp: &ServicePort) -> Option<i32> {
    match &sp.target_port {
        None => Some(sp.port),
        Some(IntOrString::Int(p)) => Some(*p),
        Some(IntOrString::String(name)) => pod.spec.as_ref()?.containers.iter().find_map(|c| {
            c.ports
                .as_ref()?
                .iter()
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP")
                            == sp.protocol.as_deref().unwrap_or("TCP")
                })
                .map(|p| p.container_port)
        }),
    }
}

pub fn target_ref(p: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: p.metadata.namespace.clone(),
        name: p.metadata.name.clone(),
        uid: p.metadata.uid.clone(),
        ..Default::default()
    }
}

fn headless(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

/// The subsets for a Service (upstream's syncService and RepackSubsets):
/// one subset per distinct port set, addresses sorted.
pub fn subsets(svc: &Service, pods: &[Arc<Pod>]) -> Vec<EndpointSubset> {
    let spec = svc.spec.clone().unwrap_or_default();
    let publish = spec.publish_not_ready_addresses.unwrap_or(false);
    let ports = spec.ports.clone().unwrap_or_default();
    // port set → (ready, not ready) addresses
    type Addrs = (
        BTreeMap<String, EndpointAddress>,
        BTreeMap<String, EndpointAddress>,
    );
    let mut groups: BTreeMap<Vec<(String, i32, String)>, Addrs> = BTreeMap::new();
    for p in pods {
        let Some(ip) = pod_ip(p) else { continue };
        if is_terminal(p) || p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let addr = EndpointAddress {
            ip: ip.clone(),
            node_name: p.spec.as_ref().and_then(|s| s.node_name.clone()),
            target_ref: Some(target_ref(p)),
            hostname: None,
        };
        let resolved: Vec<(String, i32, String)> = if ports.is_empty() && headless(svc) {
            Vec::new()
        } else {
            ports
                .iter()
                .filter_map(|sp| {
                    Some((
                        sp.name.clone().unwrap_or_default(),
                        find_port(p, sp)?,
                        sp.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    ))
                })
                .collect()
        };
        if resolved.is_empty() && !ports.is_empty() {
            continue;
        }
        let g = groups.entry(resolved).or_default();
        if publish || is_ready(p) {
            g.0.insert(ip, addr);
        } else {
            g.1.insert(ip, addr);
        }
    }
    groups
        .into_iter()
        .map(|(ports, (ready, not_ready))| EndpointSubset {
            addresses: (!ready.is_empty()).then(|| ready.into_values().collect()),
            not_ready_addresses: (!not_ready.is_empty()).then(|| not_ready.into_values().collect()),
            ports: (!ports.is_empty()).then(|| {
                ports
                    .into_iter()
                    .map(|(name, port, protocol)| EndpointPort {
                        name: (!name.is_empty()).then_some(name),
                        port,
                        protocol: Some(protocol),
                        app_protocol: None,
                    })
                    .collect()
            }),
        })
        .collect()
}

struct Ctx {
    client: kube::Client,
    pods: Store<Pod>,
    endpoints: Store<Endpoints>,
}

/// Upstream's `startEndpointsController`.
pub fn start(ctx: &ControllerContext) -> Result<ControllerFuture, StartError> {
    let services = ctx.informers.informer::<Service>();
    let pods = ctx.informers.informer::<Pod>();
    let endpoints = ctx.informers.informer::<Endpoints>();
    let svc_store = services.store();
    let ep_store = endpoints.store();
    // A pod wakes the Services selecting it now and those listing it (it may have stopped matching).
    let pod_mapper = move |pod: Arc<Pod>| {
        let mut refs: HashSet<ObjectRef<Service>> =
            services_for(&svc_store, &pod).into_iter().collect();
        let uid = pod.metadata.uid.clone();
        for ep in ep_store
            .state()
            .iter()
            .filter(|e| e.namespace() == pod.namespace())
        {
            let lists = ep.subsets.iter().flatten().any(|s| {
                s.addresses
                    .iter()
                    .chain(s.not_ready_addresses.iter())
                    .flatten()
                    .any(|a| a.target_ref.as_ref().and_then(|t| t.uid.clone()) == uid)
            });
            if lists {
                refs.insert(
                    ObjectRef::new(&ep.name_any()).within(&ep.namespace().unwrap_or_default()),
                );
            }
        }
        refs
    };
    let controller = Controller::for_shared_stream(services.subscribe(), services.store())
        .watches_shared_stream(pods.subscribe(), pod_mapper)
        .watches_shared_stream(endpoints.subscribe(), |ep: Arc<Endpoints>| {
            Some(ObjectRef::new(&ep.name_any()).within(&ep.namespace().unwrap_or_default()))
        })
        .with_config(kube::runtime::controller::Config::default().concurrency(5));
    let c = Arc::new(Ctx {
        client: ctx.client.clone(),
        pods: pods.store(),
        endpoints: endpoints.store(),
    });
    // A deleted Service takes its Endpoints with it (upstream's deleteService).
    let deletions = services.subscribe();
    let store = services.store();
    let client = ctx.client.clone();
    let cleanup = deletions.for_each(move |svc| {
        let gone = store.get(&ObjectRef::from_obj(&*svc)).is_none();
        let client = client.clone();
        async move {
            if gone && selector(&svc).is_some() {
                let api: Api<Endpoints> = Api::namespaced(client, &svc.namespace().unwrap_or_default());
                if let Err(e) = api.delete(&svc.name_any(), &DeleteParams::default()).await {
                    if !is_not_found(&e) {
                        tracing::warn!(controller = NAME, service = %svc.name_any(), error = %e, "deleting endpoints failed");
                    }
                }
            }
        }
    });
    let run = crate::runner::drive(NAME, controller, ctx.metrics.clone(), c, reconcile);
    Ok(Box::pin(async move {
        tokio::join!(run, cleanup);
    }))
}

async fn reconcile(svc: Arc<Service>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if selector(&svc).is_none() || svc.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = svc.namespace().unwrap_or_default();
    let name = svc.name_any();
    let subsets = subsets(&svc, &selected_pods(&ctx.pods, &svc));
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    if headless(&svc) {
        labels.insert(HEADLESS.into(), String::new());
    } else {
        labels.remove(HEADLESS);
    }
    let api: Api<Endpoints> = Api::namespaced(ctx.client.clone(), &ns);
    let subsets_opt = (!subsets.is_empty()).then_some(subsets);
    match ctx.endpoints.get(&ObjectRef::new(&name).within(&ns)) {
        Some(cur)
            if cur.subsets == subsets_opt
                && cur.metadata.labels.clone().unwrap_or_default() == labels => {}
        Some(cur) => {
            let mut ep = (*cur).clone();
            ep.subsets = subsets_opt;
            ep.metadata.labels = Some(labels);
            match api.replace(&name, &PostParams::default(), &ep).await {
                Ok(_) => {}
                Err(e) if is_conflict(&e) || is_not_found(&e) => {
                    return Err(Error::Pending(format!(
                        "endpoints {ns}/{name} changed; retrying"
                    )))
                }
                Err(e) => return Err(Error::api("update", format!("endpoints {ns}/{name}"))(e)),
            }
        }
        None => {
            let ep = Endpoints {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    labels: Some(labels),
                    ..Default::default()
                },
                subsets: subsets_opt,
            };
            match api.create(&PostParams::default(), &ep).await {
                Ok(_) => {}
                Err(e) if is_already_exists(&e) => {
                    return Err(Error::Pending(format!(
                        "endpoints {ns}/{name} appeared; retrying"
                    )))
                }
                Err(kube::Error::Api(s))
                    if s.code == 403 && s.message.contains("being terminated") => {}
                Err(e) => return Err(Error::api("create", format!("endpoints {ns}/{name}"))(e)),
            }
        }
    }
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        match serde_json::from_value(v) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        }
    }

    fn pod(name: &str, ip: &str, ready: bool, port_name: &str, port: i32) -> Arc<Pod> {
        Arc::new(from(serde_json::json!({
            "metadata": {"name": name, "uid": name},
            "spec": {"containers": [{"name": "c", "ports": [{"name": port_name, "containerPort": port}]}]},
            "status": {"podIP": ip, "phase": "Running",
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
        })))
    }

    #[test]
    fn named_ports_split_subsets_and_readiness_picks_the_list() {
        let svc: Service = from(serde_json::json!({"spec": {"selector": {"a": "b"},
            "ports": [{"name": "web", "port": 80, "targetPort": "http"}]}}));
        let pods = [
            pod("a", "10.0.0.1", true, "http", 8080),
            pod("b", "10.0.0.2", false, "http", 9090),
            pod("c", "10.0.0.3", true, "other", 1),
        ];
        let s = subsets(&svc, &pods);
        assert_eq!(
            s.len(),
            2,
            "two port sets; the pod without the named port is left out"
        );
        assert_eq!(s[0].ports.as_ref().map(|p| p[0].port), Some(8080));
        assert_eq!(
            s[0].addresses.as_ref().map(|a| a[0].ip.as_str()),
            Some("10.0.0.1")
        );
        assert_eq!(
            s[1].not_ready_addresses.as_ref().map(|a| a[0].ip.as_str()),
            Some("10.0.0.2")
        );
        let publish: Service = from(
            serde_json::json!({"spec": {"selector": {"a": "b"}, "publishNotReadyAddresses": true,
            "ports": [{"port": 80, "targetPort": 9090}]}}),
        );
        let s = subsets(&publish, &pods[1..2]);
        assert_eq!(s[0].addresses.as_ref().map(|a| a.len()), Some(1));
    }
}
