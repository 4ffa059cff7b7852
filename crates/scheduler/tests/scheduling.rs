//! The scheduler against a real API server (upstream's
//! `test/integration/scheduler`): pods bound to the node that fits,
//! `FailedScheduling` events and the `PodScheduled` condition in
//! upstream's form, event-driven retries, scheduling gates, profiles by
//! `schedulerName`, and pods for other schedulers left alone.
//!
//! "Stays pending" is shown without waiting for time to pass: a later pod
//! that the scheduler would have popped after the pending one is bound
//! first, so the pending pod was seen and passed over.

use std::sync::Arc;
use std::time::{Duration, Instant};

use integration::TestApiServer;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::events::v1::Event as ApiEvent;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use scheduler::metrics::{AttemptResult, SchedulerMetrics};
use scheduler::{KubeSchedulerConfiguration, Scheduler};
use serde_json::{json, Value};

const DEADLINE: Duration = Duration::from_secs(30);

async fn node(client: &kube::Client, name: &str, cpu: &str, extra: Value) {
    let api: Api<Node> = Api::all(client.clone());
    let mut n = json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}});
    merge(&mut n, extra);
    let node: Node = serde_json::from_value(n).unwrap();
    api.create(&PostParams::default(), &node).await.unwrap();
    let status = json!({"status": {"allocatable": {"cpu": cpu, "memory": "16Gi", "pods": "110"},
        "capacity": {"cpu": cpu, "memory": "16Gi", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True"}]}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

async fn pod(client: &kube::Client, name: &str, cpu: &str, spec: Value) {
    let mut p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox",
            "resources": {"requests": {"cpu": cpu}}}]}});
    merge(&mut p, json!({"spec": spec}));
    let pod: Pod = serde_json::from_value(p).unwrap();
    pods(client)
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
}

async fn priority_class(client: &kube::Client, name: &str, value: i32) {
    let api: Api<PriorityClass> = Api::all(client.clone());
    let pc = serde_json::from_value(json!({"metadata": {"name": name}, "value": value})).unwrap();
    api.create(&PostParams::default(), &pc).await.unwrap();
}

fn pods(client: &kube::Client) -> Api<Pod> {
    Api::namespaced(client.clone(), "default")
}

async fn wait_pod(client: &kube::Client, name: &str, what: &str, f: impl Fn(&Pod) -> bool) -> Pod {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(p) = pods(client).get(name).await {
            if f(&p) {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {name} {what}: {:?}",
                p.status
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn node_name(p: &Pod) -> Option<&str> {
    p.spec.as_ref()?.node_name.as_deref()
}

async fn wait_bound(client: &kube::Client, name: &str) -> String {
    let p = wait_pod(client, name, "to be bound", |p| node_name(p).is_some()).await;
    node_name(&p).unwrap_or_default().to_string()
}

fn scheduled_condition(p: &Pod) -> Option<(String, String, String)> {
    let c = p
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "PodScheduled")?;
    Some((
        c.status.clone(),
        c.reason.clone().unwrap_or_default(),
        c.message.clone().unwrap_or_default(),
    ))
}

async fn events_for(client: &kube::Client, pod: &str, reason: &str) -> Vec<ApiEvent> {
    let api: Api<ApiEvent> = Api::namespaced(client.clone(), "default");
    api.list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(pod))
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect()
}

async fn wait_event(client: &kube::Client, pod: &str, reason: &str) -> ApiEvent {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(e) = events_for(client, pod, reason).await.into_iter().next() {
            return e;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for a {reason} event for {pod}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn start(s: &TestApiServer, config: &KubeSchedulerConfiguration) -> Arc<Scheduler> {
    scheduler::start(
        s.client.clone(),
        config,
        Arc::new(SchedulerMetrics::default()),
    )
    .unwrap()
}

const TAINT: &str =
    r#"{"spec": {"taints": [{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}]}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binds_pods_where_resources_taints_and_affinity_allow() {
    let s = TestApiServer::start().await;
    let c = &s.client;
    node(c, "small", "1", json!({})).await;
    node(c, "tainted", "8", serde_json::from_str(TAINT).unwrap()).await;
    node(
        c,
        "big",
        "8",
        json!({"metadata": {"labels": {"zone": "b"}}}),
    )
    .await;
    let sched = start(&s, &KubeSchedulerConfiguration::defaulted());

    pod(c, "needs-cpu", "2", json!({})).await;
    assert_eq!(
        wait_bound(c, "needs-cpu").await,
        "big",
        "small lacks cpu, tainted is not tolerated"
    );

    pod(c, "tolerant", "2", json!({"nodeSelector": {"kubernetes.io/hostname": "tainted"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoSchedule"}]})).await;
    assert_eq!(wait_bound(c, "tolerant").await, "tainted");

    pod(c, "affine", "100m", json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
        {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["b"]}]}]}}}})).await;
    assert_eq!(wait_bound(c, "affine").await, "small");

    let ev = wait_event(c, "needs-cpu", "Scheduled").await;
    assert_eq!(
        ev.note.as_deref(),
        Some("Successfully assigned default/needs-cpu to big")
    );
    assert_eq!(ev.type_.as_deref(), Some("Normal"));
    assert_eq!(
        sched
            .metrics
            .attempts(AttemptResult::Scheduled, "default-scheduler"),
        3
    );
    // The cache holds the bound pods with their requests.
    let deadline = Instant::now() + DEADLINE;
    while sched.with_cache(|c| c.pod_count()) < 3
        || sched.with_cache(|c| c.is_assumed("default/affine"))
    {
        assert!(
            Instant::now() < deadline,
            "cache did not confirm the bindings"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unschedulable_pod_reports_why_and_is_retried_when_a_node_appears() {
    let s = TestApiServer::start().await;
    let c = &s.client;
    node(c, "tainted", "8", serde_json::from_str(TAINT).unwrap()).await;
    node(c, "small1", "1", json!({})).await;
    node(c, "small2", "1", json!({})).await;
    let sched = start(&s, &KubeSchedulerConfiguration::defaulted());

    pod(c, "big-pod", "2", json!({})).await;
    let want = "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: infra}, 2 Insufficient cpu. \
        preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod..";
    let p = wait_pod(c, "big-pod", "to be marked unschedulable", |p| {
        scheduled_condition(p).is_some()
    })
    .await;
    assert_eq!(
        scheduled_condition(&p),
        Some(("False".into(), "Unschedulable".into(), want.into()))
    );
    let ev = wait_event(c, "big-pod", "FailedScheduling").await;
    assert_eq!(ev.note.as_deref(), Some(want));
    assert_eq!(ev.type_.as_deref(), Some("Warning"));
    assert!(node_name(&p).is_none());
    let attempts = sched
        .metrics
        .attempts(AttemptResult::Unschedulable, "default-scheduler");
    assert!(attempts >= 1);

    // The pod waits for an event its rejecting plugins registered for: a new node.
    node(c, "big", "4", json!({})).await;
    assert_eq!(wait_bound(c, "big-pod").await, "big");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gated_pod_stays_pending_until_its_gates_are_removed() {
    let s = TestApiServer::start().await;
    let c = &s.client;
    node(c, "n1", "4", json!({})).await;
    let sched = start(&s, &KubeSchedulerConfiguration::defaulted());

    pod(
        c,
        "gated",
        "100m",
        json!({"schedulingGates": [{"name": "example.com/quota"}]}),
    )
    .await;
    pod(c, "later", "100m", json!({})).await;
    assert_eq!(wait_bound(c, "later").await, "n1");
    let p = pods(c).get("gated").await.unwrap();
    assert!(node_name(&p).is_none(), "the gated pod was not scheduled");
    assert_eq!(sched.queue.pending().gated, 1);
    assert!(
        events_for(c, "gated", "FailedScheduling").await.is_empty(),
        "gated pods are not attempted"
    );

    let patch = json!({"spec": {"schedulingGates": null}});
    pods(c)
        .patch("gated", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    assert_eq!(wait_bound(c, "gated").await, "n1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_are_chosen_by_scheduler_name_and_unknown_names_are_ignored() {
    let s = TestApiServer::start().await;
    let c = &s.client;
    node(c, "tainted", "8", serde_json::from_str(TAINT).unwrap()).await;
    let config = KubeSchedulerConfiguration::parse(
        "test.yaml",
        r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
- schedulerName: taint-blind
  plugins:
    filter:
      disabled:
      - name: TaintToleration
"#,
    )
    .unwrap();
    let sched = start(&s, &config);

    pod(c, "other", "100m", json!({"schedulerName": "someone-else"})).await;
    pod(c, "default-one", "100m", json!({})).await;
    pod(
        c,
        "blind-one",
        "100m",
        json!({"schedulerName": "taint-blind"}),
    )
    .await;
    assert_eq!(
        wait_bound(c, "blind-one").await,
        "tainted",
        "the taint-blind profile ignores taints"
    );
    let p = wait_pod(c, "default-one", "to be marked unschedulable", |p| {
        scheduled_condition(p).is_some()
    })
    .await;
    assert_eq!(
        scheduled_condition(&p).map(|c| c.1),
        Some("Unschedulable".into())
    );
    assert!(node_name(&p).is_none());

    let other = pods(c).get("other").await.unwrap();
    assert!(node_name(&other).is_none());
    assert!(
        scheduled_condition(&other).is_none(),
        "a pod for another scheduler is left alone"
    );
    assert!(!sched.queue.contains("default/other"));
    assert!(events_for(c, "other", "FailedScheduling").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_nodes_and_pods_free_their_room() {
    let s = TestApiServer::start().await;
    let c = &s.client;
    node(c, "n1", "1", json!({})).await;
    let _sched = start(&s, &KubeSchedulerConfiguration::defaulted());
    pod(c, "first", "800m", json!({})).await;
    assert_eq!(wait_bound(c, "first").await, "n1");
    pod(c, "second", "800m", json!({})).await;
    let p = wait_pod(c, "second", "to be marked unschedulable", |p| {
        scheduled_condition(p).is_some()
    })
    .await;
    assert_eq!(
        scheduled_condition(&p).map(|c| c.2),
        Some(
            "0/1 nodes are available: 1 Insufficient cpu. \
             preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.."
                .into()
        )
    );
    // Deleting the bound pod (an AssignedPod delete event) makes room.
    pods(c)
        .delete(
            "first",
            &kube::api::DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(wait_bound(c, "second").await, "n1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_higher_priority_pod_preempts_and_is_nominated() {
    let s = TestApiServer::start().await;
    let c = &s.client;
    node(c, "n1", "2", json!({})).await;
    let _sched = start(&s, &KubeSchedulerConfiguration::defaulted());
    // The Priority admission plugin turns the class names into spec.priority.
    priority_class(c, "low", 1).await;
    priority_class(c, "high", 100).await;
    pod(c, "low", "1500m", json!({"priorityClassName": "low"})).await;
    assert_eq!(wait_bound(c, "low").await, "n1");

    pod(c, "high", "1500m", json!({"priorityClassName": "high"})).await;
    let p = wait_pod(c, "high", "to be nominated", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            == Some("n1")
    })
    .await;
    assert!(node_name(&p).is_none());
    // The victim is being deleted; play the kubelet and finish the deletion.
    let deadline = Instant::now() + DEADLINE;
    loop {
        match pods(c).get_opt("low").await.unwrap() {
            None => break,
            Some(v) if v.metadata.deletion_timestamp.is_some() => {
                let _ = pods(c)
                    .delete(
                        "low",
                        &kube::api::DeleteParams {
                            grace_period_seconds: Some(0),
                            ..Default::default()
                        },
                    )
                    .await;
            }
            Some(_) => assert!(Instant::now() < deadline, "the victim was not deleted"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(wait_bound(c, "high").await, "n1");
}

async fn labelled_pod(client: &kube::Client, name: &str, app: &str, spec: Value) {
    let mut p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "100m"}}}]}});
    merge(&mut p, json!({"spec": spec}));
    let pod: Pod = serde_json::from_value(p).unwrap();
    pods(client)
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anti_affinity_and_topology_spread_place_pods_apart() {
    let s = TestApiServer::start().await;
    let c = &s.client;
    for (n, zone) in [("n1", "a"), ("n2", "a"), ("n3", "b")] {
        node(
            c,
            n,
            "4",
            json!({"metadata": {"labels": {"topology.kubernetes.io/zone": zone}}}),
        )
        .await;
    }
    let _sched = start(&s, &KubeSchedulerConfiguration::defaulted());

    let anti = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "topology.kubernetes.io/zone"}]}}});
    labelled_pod(c, "web-1", "web", anti.clone()).await;
    let first = wait_bound(c, "web-1").await;
    labelled_pod(c, "web-2", "web", anti.clone()).await;
    let second = wait_bound(c, "web-2").await;
    assert!(
        (first == "n3") != (second == "n3"),
        "one per zone: {first}, {second}"
    );
    labelled_pod(c, "web-3", "web", anti).await;
    let p = wait_pod(c, "web-3", "to be marked unschedulable", |p| {
        scheduled_condition(p).is_some()
    })
    .await;
    assert_eq!(
        scheduled_condition(&p).map(|c| c.2),
        Some(
            "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. \
             preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.."
                .into()
        )
    );

    let spread = json!({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
        "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "spread"}}}]});
    let mut zones = std::collections::BTreeMap::new();
    for i in 0..4 {
        let name = format!("spread-{i}");
        labelled_pod(c, &name, "spread", spread.clone()).await;
        let n = wait_bound(c, &name).await;
        *zones.entry(if n == "n3" { "b" } else { "a" }).or_insert(0) += 1;
    }
    assert_eq!(
        zones.into_iter().collect::<Vec<_>>(),
        vec![("a", 2), ("b", 2)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_pin_pods_and_delayed_claims_get_the_selected_node() {
    use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
    use k8s_openapi::api::storage::v1::StorageClass;
    let s = TestApiServer::start().await;
    let c = &s.client;
    node(c, "n1", "4", json!({})).await;
    node(c, "n2", "4", json!({})).await;
    let create = |v: Value| v;
    let sc: StorageClass = serde_json::from_value(create(json!({"metadata": {"name": "wffc"},
        "provisioner": "csi.example.com", "volumeBindingMode": "WaitForFirstConsumer"})))
    .unwrap();
    Api::<StorageClass>::all(c.clone())
        .create(&PostParams::default(), &sc)
        .await
        .unwrap();
    let pv: PersistentVolume = serde_json::from_value(json!({"metadata": {"name": "local-n2"},
        "spec": {"storageClassName": "local", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"},
            "hostPath": {"path": "/tmp/x"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions":
                [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["n2"]}]}]}}}})).unwrap();
    Api::<PersistentVolume>::all(c.clone())
        .create(&PostParams::default(), &pv)
        .await
        .unwrap();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.clone(), "default");
    for (name, class, volume) in [
        ("bound", "local", Some("local-n2")),
        ("delayed", "wffc", None),
    ] {
        let pvc: PersistentVolumeClaim = serde_json::from_value(json!({"metadata": {"name": name},
            "spec": {"storageClassName": class, "accessModes": ["ReadWriteOnce"], "volumeName": volume,
                "resources": {"requests": {"storage": "1Gi"}}}})).unwrap();
        pvcs.create(&PostParams::default(), &pvc).await.unwrap();
    }
    let _sched = start(&s, &KubeSchedulerConfiguration::defaulted());
    let vol = |claim: &str| json!({"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": claim}}]});
    pod(c, "with-local", "100m", vol("bound")).await;
    assert_eq!(
        wait_bound(c, "with-local").await,
        "n2",
        "the PV's node affinity pins the pod"
    );
    pod(c, "with-delayed", "100m", vol("delayed")).await;
    let node = wait_bound(c, "with-delayed").await;
    let claim = pvcs.get("delayed").await.unwrap();
    let selected = claim
        .metadata
        .annotations
        .unwrap_or_default()
        .get("volume.kubernetes.io/selected-node")
        .cloned();
    assert_eq!(
        selected,
        Some(node),
        "the provisioner is told where the pod went"
    );
    pod(c, "no-claim", "100m", vol("nope")).await;
    let p = wait_pod(c, "no-claim", "to be marked unschedulable", |p| {
        scheduled_condition(p).is_some()
    })
    .await;
    assert!(
        scheduled_condition(&p).is_some_and(|c| c
            .2
            .starts_with("0/2 nodes are available: persistentvolumeclaim \"nope\" not found.")),
        "{:?}",
        scheduled_condition(&p)
    );
}
