//! The default admission plugins, on as in a real cluster: ServiceAccount,
//! DefaultTolerationSeconds, TaintNodesByCondition, NamespaceLifecycle,
//! Priority, DefaultStorageClass, LimitRanger, RuntimeClass and
//! DefaultIngressClass.

use integration::TestApiServer;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn api_error(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.message),
        other => panic!("expected a Status, got {other}"),
    }
}

fn pod(name: &str, extra: serde_json::Value) -> Pod {
    let mut spec = json!({"containers": [{"name": "app", "image": "busybox"}]});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

/// Creates `make(n)` for n = 1, 2, … until `applied` holds for the result
/// (or 10 s pass) and returns the last one: the plugins read the watch
/// cache, which may lag an object written a moment ago.
async fn create_until<K, Fut>(mut make: impl FnMut(usize) -> Fut, applied: impl Fn(&K) -> bool) -> K
where
    Fut: std::future::Future<Output = K>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let got = make(attempt).await;
        if applied(&got) || std::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_admission_plugins_shape_pods_and_nodes() {
    let s = TestApiServer::start_with(|c| c.admission = Default::default()).await;
    let namespaces: Api<Namespace> = Api::all(s.client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "adm"}})).unwrap(),
        )
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "adm");

    // No controller manager here: the `default` account is missing.
    let (code, message) = api_error(
        pods.create(&PostParams::default(), &pod("early", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 403);
    assert_eq!(
        message,
        "pods \"early\" is forbidden: error looking up service account adm/default: serviceaccount \"default\" not found"
    );

    let accounts: Api<ServiceAccount> = Api::namespaced(s.client.clone(), "adm");
    accounts
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "default"},
                "imagePullSecrets": [{"name": "regcred"}]}))
            .unwrap(),
        )
        .await
        .unwrap();
    accounts
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "quiet"}, "automountServiceAccountToken": false}),
            )
            .unwrap(),
        )
        .await
        .unwrap();

    let web = pods
        .create(&PostParams::default(), &pod("web", json!({})))
        .await
        .unwrap();
    let spec = web.spec.unwrap();
    assert_eq!(spec.service_account_name.as_deref(), Some("default"));
    assert_eq!(spec.service_account.as_deref(), Some("default"));
    assert_eq!(spec.image_pull_secrets.unwrap()[0].name.as_str(), "regcred");
    let volumes = spec.volumes.unwrap();
    assert_eq!(volumes.len(), 1);
    let volume = &volumes[0];
    assert!(
        volume.name.starts_with("kube-api-access-"),
        "{}",
        volume.name
    );
    assert_eq!(volume.name.len(), "kube-api-access-".len() + 5);
    let sources = volume.projected.as_ref().unwrap().sources.as_ref().unwrap();
    let token = sources[0].service_account_token.as_ref().unwrap();
    assert_eq!(
        (token.path.as_str(), token.expiration_seconds),
        ("token", Some(3607))
    );
    let mounts = spec.containers[0].volume_mounts.as_ref().unwrap();
    assert_eq!(
        (
            mounts[0].name.as_str(),
            mounts[0].mount_path.as_str(),
            mounts[0].read_only
        ),
        (
            volume.name.as_str(),
            "/var/run/secrets/kubernetes.io/serviceaccount",
            Some(true)
        )
    );
    let tolerations: Vec<_> = spec
        .tolerations
        .unwrap()
        .into_iter()
        .map(|t| {
            (
                t.key.unwrap_or_default(),
                t.operator.unwrap_or_default(),
                t.effect.unwrap_or_default(),
                t.toleration_seconds,
            )
        })
        .collect();
    assert_eq!(
        tolerations,
        [
            (
                "node.kubernetes.io/not-ready".to_string(),
                "Exists".to_string(),
                "NoExecute".to_string(),
                Some(300)
            ),
            (
                "node.kubernetes.io/unreachable".to_string(),
                "Exists".to_string(),
                "NoExecute".to_string(),
                Some(300)
            ),
        ]
    );

    // An account that opts out gets no token; a missing named one is refused at once.
    let quiet = pods
        .create(
            &PostParams::default(),
            &pod("quiet", json!({"serviceAccountName": "quiet"})),
        )
        .await
        .unwrap();
    assert!(quiet.spec.unwrap().volumes.unwrap_or_default().is_empty());
    let (code, message) = api_error(
        pods.create(
            &PostParams::default(),
            &pod("ghost", json!({"serviceAccountName": "ghost"})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        (code, message.as_str()),
        (
            403,
            "pods \"ghost\" is forbidden: error looking up service account adm/ghost: serviceaccount \"ghost\" not found"
        )
    );

    // Server-side apply that creates a pod goes through admission too, and
    // one naming a missing account is refused like a POST.
    let applied = pods
        .patch(
            "applied",
            &PatchParams::apply("test"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "applied"},
                "spec": {"containers": [{"name": "app", "image": "busybox"}]}})),
        )
        .await
        .unwrap();
    let spec = applied.spec.unwrap();
    assert_eq!(spec.service_account_name.as_deref(), Some("default"));
    assert!(spec.volumes.unwrap()[0]
        .name
        .starts_with("kube-api-access-"));
    assert_eq!(spec.tolerations.unwrap().len(), 2);
    let (code, message) = api_error(
        pods.patch(
            "ghost",
            &PatchParams::apply("test"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "ghost"},
                "spec": {"serviceAccountName": "ghost",
                    "containers": [{"name": "app", "image": "busybox"}]}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        (code, message.as_str()),
        (
            403,
            "pods \"ghost\" is forbidden: error looking up service account adm/ghost: serviceaccount \"ghost\" not found"
        )
    );

    // TaintNodesByCondition: a node is born not-ready for scheduling.
    let nodes: Api<Node> = Api::all(s.client.clone());
    let node = nodes
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "n1"}})).unwrap(),
        )
        .await
        .unwrap();
    let taints = node.spec.unwrap().taints.unwrap();
    assert_eq!(taints.len(), 1);
    assert_eq!(
        (taints[0].key.as_str(), taints[0].effect.as_str()),
        ("node.kubernetes.io/not-ready", "NoSchedule")
    );

    // NamespaceLifecycle: nothing new in a namespace that is not there, and
    // the system namespaces stay.
    let nowhere: Api<Pod> = Api::namespaced(s.client.clone(), "nowhere");
    let (code, message) = api_error(
        nowhere
            .create(&PostParams::default(), &pod("p", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (code, message.as_str()),
        (404, "namespaces \"nowhere\" not found")
    );
    let (code, message) = api_error(
        namespaces
            .delete("kube-system", &DeleteParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (code, message.as_str()),
        (
            403,
            "namespaces \"kube-system\" is forbidden: this namespace may not be deleted"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_classes_give_pods_their_priority() {
    use k8s_openapi::api::scheduling::v1::PriorityClass;
    let s = TestApiServer::start().await;
    let classes: Api<PriorityClass> = Api::all(s.client.clone());
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    let class = |name: &str, value: i64, extra: serde_json::Value| {
        let mut pc = json!({"metadata": {"name": name}, "value": value});
        if let (Some(p), Some(e)) = (pc.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        serde_json::from_value::<PriorityClass>(pc).unwrap()
    };

    // The system classes exist from the start.
    let node_critical = classes.get("system-node-critical").await.unwrap();
    assert_eq!(node_critical.value, 2_000_001_000);
    assert_eq!(
        node_critical.preemption_policy.as_deref(),
        Some("PreemptLowerPriority")
    );

    // Without a default class: priority 0 and upstream's default policy.
    let plain = pods
        .create(&PostParams::default(), &pod("plain", json!({})))
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(plain.priority, Some(0));
    assert_eq!(
        plain.preemption_policy.as_deref(),
        Some("PreemptLowerPriority")
    );
    assert_eq!(plain.priority_class_name, None);

    let pp = PostParams::default();
    classes
        .create(
            &pp,
            &class("batch", 10, json!({"preemptionPolicy": "Never"})),
        )
        .await
        .unwrap();
    classes
        .create(&pp, &class("fallback", 5, json!({"globalDefault": true})))
        .await
        .unwrap();
    let named = pods
        .create(&pp, &pod("named", json!({"priorityClassName": "batch"})))
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(named.priority, Some(10));
    assert_eq!(named.preemption_policy.as_deref(), Some("Never"));
    let critical = pods
        .create(
            &pp,
            &pod(
                "critical",
                json!({"priorityClassName": "system-cluster-critical"}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(critical.spec.unwrap().priority, Some(2_000_000_000));

    // A pod without a class gets the global default (the cache may lag the
    // create by a moment).
    let defaulted = create_until(
        |n| {
            let (pods, pp) = (&pods, &pp);
            async move {
                let p = pod(&format!("defaulted-{n}"), json!({}));
                pods.create(pp, &p).await.unwrap().spec.unwrap()
            }
        },
        |spec| spec.priority_class_name.is_some(),
    )
    .await;
    assert_eq!(defaulted.priority_class_name.as_deref(), Some("fallback"));
    assert_eq!(defaulted.priority, Some(5));

    // Refusals, worded like upstream's.
    let (code, message) = api_error(
        pods.create(&pp, &pod("ghost", json!({"priorityClassName": "nope"})))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (code, message.as_str()),
        (
            403,
            "pods \"ghost\" is forbidden: no PriorityClass with name nope was found"
        )
    );
    let (code, message) = api_error(
        pods.create(
            &pp,
            &pod(
                "forged",
                json!({"priorityClassName": "batch", "priority": 99}),
            ),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(code, 403);
    assert_eq!(
        message,
        "pods \"forged\" is forbidden: the integer value of priority (99) must not be provided in pod spec; \
         priority admission controller computed 10 from the given PriorityClass name"
    );
    // The same value as the class computes is accepted.
    pods.create(
        &pp,
        &pod(
            "honest",
            json!({"priorityClassName": "batch", "priority": 10}),
        ),
    )
    .await
    .unwrap();
    let (code, message) = api_error(
        classes
            .create(
                &pp,
                &class("second-default", 1, json!({"globalDefault": true})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (code, message.as_str()),
        (
            403,
            "priorityclasses.scheduling.k8s.io \"second-default\" is forbidden: PriorityClass fallback is already marked as default. Only one default can exist"
        )
    );

    // Validation: reserved names, the user maximum, immutable values.
    let (code, message) = api_error(
        classes
            .create(&pp, &class("system-mine", 1, json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 422);
    assert!(
        message.contains(
            "priority class names with 'system-' prefix are reserved for system use only"
        ),
        "{message}"
    );
    let (code, message) = api_error(
        classes
            .create(&pp, &class("huge", 1_000_000_001, json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 422);
    assert!(
        message.contains(
            "value: Forbidden: maximum allowed value of a user defined priority is 1000000000"
        ),
        "{message}"
    );
    let (code, message) = api_error(
        classes
            .patch(
                "batch",
                &PatchParams::default(),
                &Patch::Merge(json!({"value": 11})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 422);
    assert!(
        message.contains("value: Forbidden: may not be changed in an update."),
        "{message}"
    );

    // An update that leaves priority out keeps what creation computed.
    let mut replaced = pods.get("named").await.unwrap();
    if let Some(spec) = replaced.spec.as_mut() {
        spec.priority = None;
        spec.preemption_policy = None;
    }
    let replaced = pods
        .replace("named", &pp, &replaced)
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(replaced.priority, Some(10));
    assert_eq!(replaced.preemption_policy.as_deref(), Some("Never"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_without_a_class_get_the_default_storage_class() {
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    use k8s_openapi::api::storage::v1::StorageClass;
    let s = TestApiServer::start().await;
    let classes: Api<StorageClass> = Api::all(s.client.clone());
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(s.client.clone(), "default");
    let pp = PostParams::default();
    let claim = |name: &str, class: Option<&str>| {
        let mut c = json!({"metadata": {"name": name}, "spec": {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}}});
        if let Some(class) = class {
            c["spec"]["storageClassName"] = json!(class);
        }
        serde_json::from_value::<PersistentVolumeClaim>(c).unwrap()
    };
    let class_of = |c: PersistentVolumeClaim| c.spec.unwrap().storage_class_name;

    // No default class yet: the field stays unset.
    let none = claims.create(&pp, &claim("none", None)).await.unwrap();
    assert_eq!(class_of(none), None);

    classes
        .create(
            &pp,
            &serde_json::from_value(json!({"metadata": {"name": "standard", "annotations":
                {"storageclass.kubernetes.io/is-default-class": "true"}},
                "provisioner": "k8s.io/minikube-hostpath"}))
            .unwrap(),
        )
        .await
        .unwrap();
    let defaulted = create_until(
        |n| {
            let (claims, pp, c) = (&claims, &pp, claim(&format!("claim-{n}"), None));
            async move { class_of(claims.create(pp, &c).await.unwrap()) }
        },
        Option::is_some,
    )
    .await;
    assert_eq!(defaulted.as_deref(), Some("standard"));
    // An explicit class, even "", is kept.
    let empty = claims.create(&pp, &claim("empty", Some(""))).await.unwrap();
    assert_eq!(class_of(empty).as_deref(), Some(""));
    let fast = claims
        .create(&pp, &claim("fast", Some("fast")))
        .await
        .unwrap();
    assert_eq!(class_of(fast).as_deref(), Some("fast"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_ranges_default_and_bound_pods_and_claims() {
    use k8s_openapi::api::core::v1::{LimitRange, PersistentVolumeClaim};
    let s = TestApiServer::start().await;
    let ranges: Api<LimitRange> = Api::namespaced(s.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(s.client.clone(), "default");
    let pp = PostParams::default();
    let range = ranges
        .create(
            &pp,
            &serde_json::from_value(json!({"metadata": {"name": "bounds"}, "spec": {"limits": [
                {"type": "Container", "max": {"cpu": "1"}, "defaultRequest": {"cpu": "100m"}},
                {"type": "PersistentVolumeClaim", "max": {"storage": "5Gi"}}]}}))
            .unwrap(),
        )
        .await
        .unwrap();
    // LimitRange defaulting: the default limit falls back to the max.
    let item = &range.spec.unwrap().limits[0];
    assert_eq!(item.default.as_ref().unwrap()["cpu"].0, "1");

    // Creates race the watch cache by a moment: retry until the range applies.
    let defaulted = create_until(
        |n| {
            let (pods, pp, p) = (&pods, &pp, pod(&format!("sized-{n}"), json!({})));
            async move { pods.create(pp, &p).await.unwrap() }
        },
        |p: &Pod| {
            p.metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key("kubernetes.io/limit-ranger"))
        },
    )
    .await;
    assert_eq!(
        defaulted.metadata.annotations.unwrap()["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: cpu request for container app; cpu limit for container app"
    );
    let resources = defaulted.spec.unwrap().containers[0]
        .resources
        .clone()
        .unwrap();
    assert_eq!(resources.requests.unwrap()["cpu"].0, "100m");
    assert_eq!(resources.limits.unwrap()["cpu"].0, "1");
    // The QoS class counts what the plugin added.
    assert_eq!(
        defaulted.status.unwrap().qos_class.as_deref(),
        Some("Burstable")
    );

    let (code, message) = api_error(
        pods.create(
            &pp,
            &pod(
                "greedy",
                json!({"containers": [{"name": "app", "image": "busybox",
                    "resources": {"limits": {"cpu": "2"}}}]}),
            ),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        (code, message.as_str()),
        (
            403,
            "pods \"greedy\" is forbidden: maximum cpu usage per Container is 1, but limit is 2"
        )
    );

    let claim = |name: &str, size: &str| {
        serde_json::from_value::<PersistentVolumeClaim>(json!({"metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}}))
        .unwrap()
    };
    claims.create(&pp, &claim("fits", "1Gi")).await.unwrap();
    let (code, message) = api_error(
        claims
            .create(&pp, &claim("huge", "50Gi"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (code, message.as_str()),
        (
            403,
            "persistentvolumeclaims \"huge\" is forbidden: maximum storage usage per PersistentVolumeClaim is 5Gi, but request is 50Gi"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_classes_give_pods_overhead_and_scheduling() {
    use k8s_openapi::api::node::v1::RuntimeClass;
    let s = TestApiServer::start().await;
    let classes: Api<RuntimeClass> = Api::all(s.client.clone());
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    let pp = PostParams::default();
    classes
        .create(
            &pp,
            &serde_json::from_value(json!({"metadata": {"name": "sandboxed"}, "handler": "runc",
                "overhead": {"podFixed": {"cpu": "250m", "memory": "64Mi"}},
                "scheduling": {"nodeSelector": {"sandbox": "yes"},
                    "tolerations": [{"key": "sandbox", "operator": "Exists", "effect": "NoSchedule"}]}}))
            .unwrap(),
        )
        .await
        .unwrap();
    let spec = pods
        .create(&pp, &pod("boxed", json!({"runtimeClassName": "sandboxed"})))
        .await
        .unwrap()
        .spec
        .unwrap();
    let overhead = spec.overhead.unwrap();
    assert_eq!(
        (overhead["cpu"].0.as_str(), overhead["memory"].0.as_str()),
        ("250m", "64Mi")
    );
    assert_eq!(spec.node_selector.unwrap()["sandbox"], "yes");
    assert!(spec
        .tolerations
        .unwrap()
        .iter()
        .any(|t| t.key.as_deref() == Some("sandbox")));

    let (code, message) = api_error(
        pods.create(&pp, &pod("lost", json!({"runtimeClassName": "nope"})))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (code, message.as_str()),
        (
            403,
            "pods \"lost\" is forbidden: pod rejected: RuntimeClass \"nope\" not found"
        )
    );
    let (code, message) = api_error(
        pods.create(
            &pp,
            &pod(
                "clash",
                json!({"runtimeClassName": "sandboxed", "nodeSelector": {"sandbox": "no"}}),
            ),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        (code, message.as_str()),
        (
            403,
            "pods \"clash\" is forbidden: conflict: runtimeClass.scheduling.nodeSelector[sandbox] = yes; pod.spec.nodeSelector[sandbox] = no"
        )
    );
    let (code, message) = api_error(
        pods.create(&pp, &pod("fat", json!({"overhead": {"cpu": "1"}})))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (code, message.as_str()),
        (
            403,
            "pods \"fat\" is forbidden: pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingresses_without_a_class_get_the_default_ingress_class() {
    use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
    let s = TestApiServer::start().await;
    let classes: Api<IngressClass> = Api::all(s.client.clone());
    let ingresses: Api<Ingress> = Api::namespaced(s.client.clone(), "default");
    let pp = PostParams::default();
    classes
        .create(
            &pp,
            &serde_json::from_value(json!({"metadata": {"name": "nginx", "annotations":
                {"ingressclass.kubernetes.io/is-default-class": "true"}},
                "spec": {"controller": "k8s.io/ingress-nginx"}}))
            .unwrap(),
        )
        .await
        .unwrap();
    let ingress = |name: &str, extra: serde_json::Value| {
        let mut i = json!({"metadata": {"name": name}, "spec": {"defaultBackend":
            {"service": {"name": "web", "port": {"number": 80}}}}});
        if let (Some(m), Some(e)) = (i.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                m.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value::<Ingress>(i).unwrap()
    };
    let class_of = |i: Ingress| i.spec.unwrap().ingress_class_name;
    let defaulted = create_until(
        |n| {
            let (ingresses, pp, i) = (&ingresses, &pp, ingress(&format!("web-{n}"), json!({})));
            async move { class_of(ingresses.create(pp, &i).await.unwrap()) }
        },
        Option::is_some,
    )
    .await;
    assert_eq!(defaulted.as_deref(), Some("nginx"));
    // The legacy annotation counts as a choice.
    let annotated = ingresses
        .create(
            &pp,
            &ingress(
                "legacy",
                json!({"metadata": {"name": "legacy", "annotations": {"kubernetes.io/ingress.class": "traefik"}}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(class_of(annotated), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_quotas_refuse_what_exceeds_them_and_charge_the_rest() {
    use k8s_openapi::api::core::v1::{ConfigMap, ResourceQuota};
    let s = TestApiServer::start().await;
    let quotas: Api<ResourceQuota> = Api::namespaced(s.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(s.client.clone(), "default");
    let cms: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    let pp = PostParams::default();
    // No controller manager here: the status it would write is written by hand.
    for (name, hard, used) in [
        (
            "compute",
            json!({"pods": "2", "requests.cpu": "1"}),
            json!({"pods": "0", "requests.cpu": "0"}),
        ),
        (
            "objects",
            json!({"configmaps": "2"}),
            json!({"configmaps": "1"}),
        ),
    ] {
        quotas
            .create(
                &pp,
                &serde_json::from_value(
                    json!({"metadata": {"name": name}, "spec": {"hard": hard}}),
                )
                .unwrap(),
            )
            .await
            .unwrap();
        quotas
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"hard": hard, "used": used}})),
            )
            .await
            .unwrap();
    }
    let sized = |name: &str, cpu: &str| {
        pod(
            name,
            json!({"containers": [{"name": "app", "image": "busybox",
                "resources": {"requests": {"cpu": cpu}}}]}),
        )
    };
    // The cache may lag the status write by a moment: the first pod is
    // charged once the plugin sees the quota's status.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut attempt = 0;
    loop {
        attempt += 1;
        pods.create(&pp, &sized(&format!("one-{attempt}"), "500m"))
            .await
            .unwrap();
        let used = quotas
            .get("compute")
            .await
            .unwrap()
            .status
            .unwrap()
            .used
            .unwrap();
        if used["pods"].0 != "0" || std::time::Instant::now() > deadline {
            assert_eq!(
                (used["pods"].0.as_str(), used["requests.cpu"].0.as_str()),
                ("1", "500m")
            );
            break;
        }
        // Not charged: that pod does not count; remove it.
        pods.delete(&format!("one-{attempt}"), &DeleteParams::default())
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let (code, message) = api_error(
        pods.create(&pp, &pod("unsized", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (code, message.as_str()),
        (403, "pods \"unsized\" is forbidden: failed quota: compute: must specify requests.cpu for: app")
    );
    pods.create(&pp, &sized("two", "500m")).await.unwrap();
    let (code, message) = api_error(pods.create(&pp, &sized("three", "100m")).await.unwrap_err());
    assert_eq!(
        (code, message.as_str()),
        (
            403,
            "pods \"three\" is forbidden: exceeded quota: compute, requested: pods=1,requests.cpu=100m, used: pods=2,requests.cpu=1, limited: pods=2,requests.cpu=1"
        )
    );

    // A dry run is checked but not charged; object counts by legacy name.
    let cm = |name: &str| {
        serde_json::from_value::<ConfigMap>(json!({"metadata": {"name": name}})).unwrap()
    };
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    cms.create(&dry, &cm("probe")).await.unwrap();
    assert_eq!(
        quotas
            .get("objects")
            .await
            .unwrap()
            .status
            .unwrap()
            .used
            .unwrap()["configmaps"]
            .0,
        "1"
    );
    cms.create(&pp, &cm("last")).await.unwrap();
    let (code, message) = api_error(cms.create(&pp, &cm("extra")).await.unwrap_err());
    assert_eq!(
        (code, message.as_str()),
        (
            403,
            "configmaps \"extra\" is forbidden: exceeded quota: objects, requested: configmaps=1, used: configmaps=2, limited: configmaps=2"
        )
    );
}
