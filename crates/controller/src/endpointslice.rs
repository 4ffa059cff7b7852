//! The EndpointSlice controller (upstream's pkg/controller/endpointslice:
//! endpointslice_controller.go, reconciler.go, utils.go): every Service
//! with a selector has EndpointSlices (owned by it, labelled
//! `kubernetes.io/service-name` and managed-by this controller) listing its
//! pods with `ready`/`serving`/`terminating` conditions, one group of
//! slices per address type and resolved port set, at most 100 endpoints a
//! slice; a Service with no endpoints keeps one empty placeholder slice.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::ResourceExt;

use crate::descriptors::ControllerFuture;
use crate::endpoint::{
    find_port, is_terminal, pod_ip, selected_pods, selector, services_for, target_ref, HEADLESS,
};
use crate::replicaset::ranking::is_ready;
use crate::{is_conflict, is_not_found, ControllerContext, Error, StartError};

const NAME: &str = "endpointslice-controller";
pub const SERVICE_NAME: &str = "kubernetes.io/service-name";
pub const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// Upstream's `--max-endpoints-per-slice` default.
pub const MAX_ENDPOINTS: usize = 100;

struct Ctx {
    client: kube::Client,
    pods: Store<Pod>,
    slices: Store<EndpointSlice>,
}

fn owned_slices(slices: &Store<EndpointSlice>, svc: &Service) -> Vec<Arc<EndpointSlice>> {
    slices
        .state()
        .into_iter()
        .filter(|s| s.namespace() == svc.namespace())
        .filter(|s| {
            let l = s.metadata.labels.clone().unwrap_or_default();
            l.get(SERVICE_NAME) == Some(&svc.name_any())
                && l.get(MANAGED_BY).map(String::as_str) == Some(CONTROLLER_NAME)
        })
        .collect()
}

/// Upstream's `startEndpointSliceController`.
pub fn start(ctx: &ControllerContext) -> Result<ControllerFuture, StartError> {
    let services = ctx.informers.informer::<Service>();
    let pods = ctx.informers.informer::<Pod>();
    let slices = ctx.informers.informer::<EndpointSlice>();
    let svc_store = services.store();
    let slice_store = slices.store();
    let pod_mapper = move |pod: Arc<Pod>| {
        let mut refs: HashSet<ObjectRef<Service>> =
            services_for(&svc_store, &pod).into_iter().collect();
        let uid = pod.metadata.uid.clone();
        for s in slice_store
            .state()
            .iter()
            .filter(|s| s.namespace() == pod.namespace())
        {
            if s.endpoints
                .iter()
                .any(|e| e.target_ref.as_ref().and_then(|t| t.uid.clone()) == uid)
            {
                if let Some(svc) = s.metadata.labels.as_ref().and_then(|l| l.get(SERVICE_NAME)) {
                    refs.insert(ObjectRef::new(svc).within(&s.namespace().unwrap_or_default()));
                }
            }
        }
        refs
    };
    let controller = Controller::for_shared_stream(services.subscribe(), services.store())
        .owns_shared_stream(slices.subscribe())
        .watches_shared_stream(pods.subscribe(), pod_mapper)
        .with_config(kube::runtime::controller::Config::default().concurrency(5));
    let c = Arc::new(Ctx {
        client: ctx.client.clone(),
        pods: pods.store(),
        slices: slices.store(),
    });
    Ok(Box::pin(crate::runner::drive(
        NAME,
        controller,
        ctx.metrics.clone(),
        c,
        reconcile,
    )))
}

type Group = (String, Vec<(String, i32, String)>);

/// The desired slices' contents: per (address type, ports), endpoints sorted by address.
pub fn desired(svc: &Service, pods: &[Arc<Pod>]) -> BTreeMap<Group, Vec<Endpoint>> {
    let spec = svc.spec.clone().unwrap_or_default();
    let publish = spec.publish_not_ready_addresses.unwrap_or(false);
    let ports = spec.ports.clone().unwrap_or_default();
    let mut out: BTreeMap<Group, BTreeMap<String, Endpoint>> = BTreeMap::new();
    for p in pods {
        let Some(ip) = pod_ip(p) else { continue };
        if is_terminal(p) {
            continue;
        }
        let terminating = p.metadata.deletion_timestamp.is_some();
        let ready = is_ready(p);
        let resolved: Vec<(String, i32, String)> = ports
            .iter()
            .filter_map(|sp| {
                Some((
                    sp.name.clone().unwrap_or_default(),
                    find_port(p, sp)?,
                    sp.protocol.clone().unwrap_or_else(|| "TCP".into()),
                ))
            })
            .collect();
        let family = if ip.contains(':') { "IPv6" } else { "IPv4" };
        let ep = Endpoint {
            addresses: vec![ip.clone()],
            conditions: Some(EndpointConditions {
                ready: Some(publish || (ready && !terminating)),
                serving: Some(publish || ready),
                terminating: Some(terminating),
            }),
            node_name: p.spec.as_ref().and_then(|s| s.node_name.clone()),
            target_ref: Some(target_ref(p)),
            ..Default::default()
        };
        out.entry((family.to_string(), resolved))
            .or_default()
            .insert(ip, ep);
    }
    out.into_iter()
        .map(|(k, v)| (k, v.into_values().collect()))
        .collect()
}

fn slice_ports(ports: &[(String, i32, String)]) -> Option<Vec<EndpointPort>> {
    Some(
        ports
            .iter()
            .map(|(name, port, protocol)| EndpointPort {
                name: Some(name.clone()),
                port: Some(*port),
                protocol: Some(protocol.clone()),
                app_protocol: None,
            })
            .collect(),
    )
}

fn labels(svc: &Service) -> BTreeMap<String, String> {
    let mut l = svc.metadata.labels.clone().unwrap_or_default();
    l.insert(SERVICE_NAME.into(), svc.name_any());
    l.insert(MANAGED_BY.into(), CONTROLLER_NAME.into());
    if svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None") {
        l.insert(HEADLESS.into(), String::new());
    }
    l
}

async fn reconcile(svc: Arc<Service>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if selector(&svc).is_none() || svc.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = svc.namespace().unwrap_or_default();
    let api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), &ns);
    let mut want: Vec<(String, Option<Vec<EndpointPort>>, Vec<Endpoint>)> = Vec::new();
    for ((family, ports), eps) in desired(&svc, &selected_pods(&ctx.pods, &svc)) {
        for chunk in eps.chunks(MAX_ENDPOINTS) {
            want.push((family.clone(), slice_ports(&ports), chunk.to_vec()));
        }
    }
    if want.is_empty() {
        // Upstream's placeholder slice.
        want.push(("IPv4".into(), None, Vec::new()));
    }
    let wanted_labels = labels(&svc);
    let mut existing = owned_slices(&ctx.slices, &svc);
    let owner = OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: svc.name_any(),
        uid: svc.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    for (family, ports, endpoints) in want {
        let same_shape = existing
            .iter()
            .position(|s| {
                s.address_type == family
                    && s.ports == ports
                    && s.endpoints == endpoints
                    && s.metadata.labels.as_ref() == Some(&wanted_labels)
            })
            .or_else(|| {
                existing
                    .iter()
                    .position(|s| s.address_type == family && s.ports == ports)
            })
            .or_else(|| existing.iter().position(|s| s.address_type == family));
        match same_shape.map(|i| existing.remove(i)) {
            Some(cur)
                if cur.ports == ports
                    && cur.endpoints == endpoints
                    && cur.metadata.labels.as_ref() == Some(&wanted_labels) => {}
            Some(cur) => {
                let mut s = (*cur).clone();
                s.ports = ports;
                s.endpoints = endpoints;
                s.metadata.labels = Some(wanted_labels.clone());
                match api.replace(&s.name_any(), &PostParams::default(), &s).await {
                    Ok(_) => {}
                    Err(e) if is_conflict(&e) || is_not_found(&e) => {
                        return Err(Error::Pending(format!(
                            "endpointslice {ns}/{} changed; retrying",
                            s.name_any()
                        )))
                    }
                    Err(e) => {
                        return Err(Error::api(
                            "update",
                            format!("endpointslice {ns}/{}", s.name_any()),
                        )(e))
                    }
                }
            }
            None => {
                let s = EndpointSlice {
                    metadata: ObjectMeta {
                        generate_name: Some(format!("{}-", svc.name_any())),
                        labels: Some(wanted_labels.clone()),
                        owner_references: Some(vec![owner.clone()]),
                        ..Default::default()
                    },
                    address_type: family,
                    endpoints,
                    ports,
                };
                match api.create(&PostParams::default(), &s).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(st))
                        if st.code == 403 && st.message.contains("being terminated") => {}
                    Err(e) => {
                        return Err(Error::api(
                            "create",
                            format!("endpointslice for service {ns}/{}", svc.name_any()),
                        )(e))
                    }
                }
            }
        }
    }
    for s in existing {
        match api.delete(&s.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                return Err(Error::api(
                    "delete",
                    format!("endpointslice {ns}/{}", s.name_any()),
                )(e))
            }
        }
    }
    Ok(Action::await_change())
}
