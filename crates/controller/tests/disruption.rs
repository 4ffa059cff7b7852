//! The disruption controller against a real API server: PodDisruptionBudget
//! status from pod readiness and the pods' controllers, the eviction
//! subresource spending what it allows, expired `disruptedPods` entries
//! dropped, and the fail-safe when a pod's controller is missing. Pods are
//! created directly with ownerReferences (no ReplicaSet controller runs)
//! and marked Ready through pods/status, as a kubelet would.

mod common;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ApiResource, DynamicObject, EvictParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

fn from<T: serde::de::DeserializeOwned>(v: Value) -> T {
    match serde_json::from_value(v) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

fn replica_set(name: &str, replicas: i32, owner: Option<&Deployment>) -> ReplicaSet {
    let refs: Vec<Value> = owner
        .map(|d| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": d.metadata.name,
                "uid": d.metadata.uid, "controller": true})
        })
        .into_iter()
        .collect();
    from(json!({
        "metadata": {"name": name, "ownerReferences": refs},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
    }))
}

fn deployment(name: &str, replicas: i32) -> Deployment {
    from(json!({
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
    }))
}

/// A pod labelled `app` and controlled by the ReplicaSet named `rs` with `uid`.
fn pod(name: &str, app: &str, rs: &str, uid: &str) -> Pod {
    from(json!({
        "metadata": {"name": name, "labels": {"app": app}, "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs, "uid": uid, "controller": true}]},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))
}

/// What a kubelet would report: the pod running, Ready or not.
async fn set_ready(pods: &Api<Pod>, name: &str, ready: bool) {
    let now = Timestamp::now().to_string();
    let status = json!({"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": if ready { "True" } else { "False" }, "lastTransitionTime": now}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("set pod readiness");
}

async fn setup(
    ns: &str,
) -> (
    common::Cluster,
    Api<ReplicaSet>,
    Api<Pod>,
    Api<PodDisruptionBudget>,
) {
    let c = common::start(&["disruption"], |_, _| {}).await;
    let nss: Api<Namespace> = Api::all(c.client.clone());
    nss.create(&PostParams::default(), &common::ns(ns))
        .await
        .expect("namespace");
    let rss = Api::namespaced(c.client.clone(), ns);
    let pods = Api::namespaced(c.client.clone(), ns);
    let pdbs = Api::namespaced(c.client.clone(), ns);
    (c, rss, pods, pdbs)
}

/// Creates `n` Ready pods `<app>-<i>` controlled by the ReplicaSet.
async fn ready_pods(pods: &Api<Pod>, rs: &ReplicaSet, n: usize) {
    let name = rs.metadata.name.clone().unwrap_or_default();
    let uid = rs.metadata.uid.clone().unwrap_or_default();
    for i in 0..n {
        let p = format!("{name}-{i}");
        pods.create(&PostParams::default(), &pod(&p, &name, &name, &uid))
            .await
            .expect("create pod");
        set_ready(pods, &p, true).await;
    }
}

/// The counts of an up-to-date status: (currentHealthy, desiredHealthy,
/// expectedPods, disruptionsAllowed) and the DisruptionAllowed reason.
fn summary(b: &PodDisruptionBudget) -> Option<((i32, i32, i32, i32), String)> {
    let s: &PodDisruptionBudgetStatus = b.status.as_ref()?;
    if s.observed_generation != b.metadata.generation {
        return None;
    }
    let reason = s
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "DisruptionAllowed")?
        .reason
        .clone();
    Some((
        (
            s.current_healthy,
            s.desired_healthy,
            s.expected_pods,
            s.disruptions_allowed,
        ),
        reason,
    ))
}

async fn wait_for(
    pdbs: &Api<PodDisruptionBudget>,
    name: &str,
    counts: (i32, i32, i32, i32),
    reason: &str,
) -> PodDisruptionBudget {
    let what = format!("pdb {name} at {counts:?} {reason}");
    common::eventually(&what, || async {
        let b = pdbs.get(name).await.ok()?;
        (summary(&b) == Some((counts, reason.to_string()))).then_some(b)
    })
    .await
}

#[tokio::test]
async fn min_available_follows_readiness_and_gates_evictions() {
    let (c, rss, pods, pdbs) = setup("pdb-min").await;
    // kube's default client retries a 429 for minutes; `kubectl drain` sees it at once.
    let evictions: Api<Pod> = Api::namespaced(
        c.server
            .client_without_retries()
            .await
            .expect("client without retries"),
        "pdb-min",
    );
    let rs = rss
        .create(&PostParams::default(), &replica_set("web", 3, None))
        .await
        .expect("replicaset");
    ready_pods(&pods, &rs, 3).await;
    pdbs.create(
        &PostParams::default(),
        &from(json!({"metadata": {"name": "web"},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}})),
    )
    .await
    .expect("pdb");
    wait_for(&pdbs, "web", (3, 2, 3, 1), "SufficientPods").await;

    // One pod unready: nothing may be disrupted, and the eviction is refused.
    set_ready(&pods, "web-1", false).await;
    wait_for(&pdbs, "web", (2, 2, 3, 0), "InsufficientPods").await;
    match evictions.evict("web-0", &EvictParams::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 429, "{s:?}"),
        other => panic!("eviction with no disruption allowed: {other:?}"),
    }

    // Ready again: one eviction goes through; the pod is gone and the
    // budget counts the two left.
    set_ready(&pods, "web-1", true).await;
    wait_for(&pdbs, "web", (3, 2, 3, 1), "SufficientPods").await;
    evictions
        .evict("web-0", &EvictParams::default())
        .await
        .expect("eviction allowed");
    let b = wait_for(&pdbs, "web", (2, 2, 2, 0), "InsufficientPods").await;
    let disrupted = b.status.and_then(|s| s.disrupted_pods).unwrap_or_default();
    assert!(
        disrupted.is_empty(),
        "deleted pod still listed: {disrupted:?}"
    );

    // A disruption recorded just now keeps its pod out of currentHealthy;
    // one older than the 2-minute timeout is dropped.
    let now = Timestamp::now();
    let old = now
        .checked_sub(SignedDuration::from_secs(180))
        .unwrap_or(now);
    let mut b = pdbs.get("web").await.expect("get pdb");
    let mut status = b.status.take().unwrap_or_default();
    status.disrupted_pods = Some(from(json!({
        "web-1": now.to_string(), "web-2": old.to_string()})));
    b.status = Some(status);
    pdbs.replace_status("web", &PostParams::default(), &b)
        .await
        .expect("record disruptions");
    let b = wait_for(&pdbs, "web", (1, 2, 2, 0), "InsufficientPods").await;
    let disrupted = b.status.and_then(|s| s.disrupted_pods).unwrap_or_default();
    assert_eq!(disrupted.keys().collect::<Vec<_>>(), ["web-1"]);
    // The pod whose eviction expired is reported, as upstream's NotDeleted Event.
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(c.client.clone(), "pdb-min");
    let note = common::eventually("the NotDeleted event", || async {
        let list = events.list(&Default::default()).await.ok()?;
        list.items.into_iter().find_map(|e| {
            let about = e.regarding.as_ref()?.name.clone()?;
            (e.reason.as_deref() == Some("NotDeleted") && about == "web-2").then_some(e.note)
        })
    })
    .await;
    assert_eq!(
        note.as_deref(),
        Some("Pod was expected by PDB pdb-min/web to be deleted but it wasn't")
    );
}

#[tokio::test]
async fn max_unavailable_percentage_uses_the_controllers_scale() {
    let (c, rss, pods, pdbs) = setup("pdb-max").await;
    let deps: Api<Deployment> = Api::namespaced(c.client.clone(), "pdb-max");
    let d = deps
        .create(&PostParams::default(), &deployment("api", 4))
        .await
        .expect("deployment");
    let rs = rss
        .create(&PostParams::default(), &replica_set("api", 4, Some(&d)))
        .await
        .expect("replicaset");
    // Three of the four pods exist, all Ready.
    ready_pods(&pods, &rs, 3).await;
    pdbs.create(
        &PostParams::default(),
        &from(json!({"metadata": {"name": "api"},
            "spec": {"maxUnavailable": "50%", "selector": {"matchLabels": {"app": "api"}}}})),
    )
    .await
    .expect("pdb");
    // Expected 4 (the Deployment's replicas), 2 may be unavailable: 2 desired.
    wait_for(&pdbs, "api", (3, 2, 4, 1), "SufficientPods").await;

    // Scaling the Deployment alone changes what is expected: 6, 3 unavailable.
    deps.patch(
        "api",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 6}})),
    )
    .await
    .expect("scale deployment");
    wait_for(&pdbs, "api", (3, 3, 6, 0), "InsufficientPods").await;

    // A pod whose controller does not exist fails the sync safely.
    pods.create(
        &PostParams::default(),
        &pod(
            "stray",
            "api",
            "missing",
            "00000000-0000-0000-0000-000000000000",
        ),
    )
    .await
    .expect("stray pod");
    set_ready(&pods, "stray", true).await;
    let failed = common::eventually("SyncFailed", || async {
        let b = pdbs.get("api").await.ok()?;
        let s = b.status.clone()?;
        let c = s
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "DisruptionAllowed" && c.reason == "SyncFailed")?
            .clone();
        Some((s.disruptions_allowed, c))
    })
    .await;
    assert_eq!(failed.0, 0);
    assert_eq!(failed.1.status, "False");
    assert!(
        failed
            .1
            .message
            .contains("found no controllers for pod \"stray\""),
        "{:?}",
        failed.1.message
    );

    // Without the stray pod the budget recovers.
    pods.delete("stray", &Default::default())
        .await
        .expect("delete stray");
    wait_for(&pdbs, "api", (3, 3, 6, 0), "InsufficientPods").await;

    // minAvailable as a percentage also uses the scale: ceil(0.34 · 6) = 3.
    pdbs.patch(
        "api",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"maxUnavailable": null, "minAvailable": "34%"}})),
    )
    .await
    .expect("switch to minAvailable");
    wait_for(&pdbs, "api", (3, 3, 6, 0), "InsufficientPods").await;
    pdbs.patch(
        "api",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"minAvailable": "30%"}})),
    )
    .await
    .expect("lower minAvailable");
    // ceil(0.3 · 6) = 2.
    wait_for(&pdbs, "api", (3, 2, 6, 1), "SufficientPods").await;

    // A pod relabelled out of the selector wakes the budget that selected it.
    pods.patch(
        "api-0",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}})),
    )
    .await
    .expect("relabel pod");
    wait_for(&pdbs, "api", (2, 2, 6, 0), "InsufficientPods").await;
}

/// A namespaced `Gadget` kind with the scale subresource, and a
/// `Gizmo` kind without one; returns once discovery lists both.
async fn custom_kinds(client: &kube::Client) -> ApiResource {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (plural, kind, scale) in [("gadgets", "Gadget", true), ("gizmos", "Gizmo", false)] {
        let mut version = json!({"name": "v1", "served": true, "storage": true,
            "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}});
        if scale {
            version["subresources"] = json!({"scale": {
                "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}});
        }
        let crd: CustomResourceDefinition = from(json!({
            "metadata": {"name": format!("{plural}.example.com")},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": plural, "singular": kind.to_lowercase(), "kind": kind, "listKind": format!("{kind}List")},
                "versions": [version]}
        }));
        crds.create(&PostParams::default(), &crd)
            .await
            .expect("create crd");
    }
    common::eventually("the custom kinds in discovery", || async {
        let res = client
            .list_api_group_resources("example.com/v1")
            .await
            .ok()?;
        let names: Vec<&str> = res.resources.iter().map(|r| r.name.as_str()).collect();
        (names.contains(&"gadgets/scale") && names.contains(&"gizmos")).then_some(())
    })
    .await;
    ApiResource {
        group: "example.com".into(),
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        kind: "Gadget".into(),
        plural: "gadgets".into(),
    }
}

/// A pod labelled `app` controlled by the given custom object.
fn custom_pod(name: &str, app: &str, owner: &DynamicObject, kind: &str) -> Pod {
    from(json!({
        "metadata": {"name": name, "labels": {"app": app}, "ownerReferences": [
            {"apiVersion": "example.com/v1", "kind": kind, "name": owner.metadata.name,
                "uid": owner.metadata.uid, "controller": true}]},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))
}

#[tokio::test]
async fn a_custom_controller_counts_through_its_scale_subresource() {
    let (c, _rss, pods, pdbs) = setup("pdb-custom").await;
    let gadget = custom_kinds(&c.client).await;
    let gadgets: Api<DynamicObject> = Api::namespaced_with(c.client.clone(), "pdb-custom", &gadget);
    let g: DynamicObject = from(json!({"apiVersion": "example.com/v1", "kind": "Gadget",
        "metadata": {"name": "g"}, "spec": {"replicas": 5}}));
    let g = gadgets
        .create(&PostParams::default(), &g)
        .await
        .expect("gadget");
    for i in 0..2 {
        let name = format!("g-{i}");
        pods.create(
            &PostParams::default(),
            &custom_pod(&name, "g", &g, "Gadget"),
        )
        .await
        .expect("pod");
        set_ready(&pods, &name, true).await;
    }
    pdbs.create(
        &PostParams::default(),
        &from(json!({"metadata": {"name": "g"},
            "spec": {"maxUnavailable": 3, "selector": {"matchLabels": {"app": "g"}}}})),
    )
    .await
    .expect("pdb");
    // Expected 5 from gadgets/g/scale, 2 desired, 2 healthy.
    wait_for(&pdbs, "g", (2, 2, 5, 0), "InsufficientPods").await;

    // A kind without the scale subresource fails the sync with upstream's message.
    let gizmo = ApiResource {
        kind: "Gizmo".into(),
        plural: "gizmos".into(),
        ..gadget
    };
    let gizmos: Api<DynamicObject> = Api::namespaced_with(c.client.clone(), "pdb-custom", &gizmo);
    let z: DynamicObject = from(json!({"apiVersion": "example.com/v1", "kind": "Gizmo",
        "metadata": {"name": "z"}}));
    let z = gizmos
        .create(&PostParams::default(), &z)
        .await
        .expect("gizmo");
    pods.create(&PostParams::default(), &custom_pod("z-0", "g", &z, "Gizmo"))
        .await
        .expect("gizmo pod");
    let message = common::eventually("SyncFailed for the gizmo", || async {
        let b = pdbs.get("g").await.ok()?;
        let s = b.status?;
        s.conditions?
            .into_iter()
            .find(|c| c.type_ == "DisruptionAllowed" && c.reason == "SyncFailed")
            .map(|c| c.message)
    })
    .await;
    assert_eq!(
        message,
        "gizmos.example.com does not implement the scale subresource"
    );
}

fn disruption_target(p: &Pod) -> Option<(String, Option<String>)> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "DisruptionTarget")
        .map(|c| (c.status.clone(), c.reason.clone()))
}

#[tokio::test]
async fn a_stale_disruption_target_condition_is_reset_after_two_minutes() {
    let start = Timestamp::now();
    let clock = controller::clock::FakeClock::new(start);
    let c2 = clock.clone();
    let c = common::start(&["disruption"], move |_, cfg| cfg.clock = c2).await;
    let nss: Api<Namespace> = Api::all(c.client.clone());
    nss.create(&PostParams::default(), &common::ns("pdb-stale"))
        .await
        .expect("namespace");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "pdb-stale");
    for (name, reason) in [
        ("evicted", "EvictionByEvictionAPI"),
        ("kubelet", "TerminationByKubelet"),
    ] {
        pods.create(
            &PostParams::default(),
            &from(json!({"metadata": {"name": name},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}})),
        )
        .await
        .expect("pod");
        let status = json!({"status": {"phase": "Running", "conditions": [
            {"type": "DisruptionTarget", "status": "True", "reason": reason,
                "lastTransitionTime": start.to_string()}]}});
        pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .expect("mark pod as a disruption target");
    }
    // Past the 2-minute timeout, nothing deleted the pod: the condition goes False.
    clock.set(
        start
            .checked_add(SignedDuration::from_secs(130))
            .unwrap_or(start),
    );
    common::eventually("the stale condition reset", || async {
        let p = pods.get("evicted").await.ok()?;
        (disruption_target(&p) == Some(("False".into(), None))).then_some(())
    })
    .await;
    // The kubelet's own condition is never stale.
    let p = pods.get("kubelet").await.expect("get pod");
    assert_eq!(
        disruption_target(&p),
        Some(("True".into(), Some("TerminationByKubelet".into())))
    );
}
