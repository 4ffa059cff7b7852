//! The StatefulSet controller against a real API server (upstream's
//! test/integration/statefulset). No kubelet runs: the test marks pods
//! Running and Ready through pods/status, and checks the ordering
//! guarantees at every step.

mod common;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

fn from<T: serde::de::DeserializeOwned>(v: Value) -> T {
    match serde_json::from_value(v) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

fn statefulset(name: &str, replicas: i32, extra: Value) -> StatefulSet {
    let mut spec = json!({
        "replicas": replicas, "serviceName": "svc",
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "c", "image": "busybox:1",
                "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
        "volumeClaimTemplates": [{"metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
    });
    if let (Some(s), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(extra.clone());
    }
    from(json!({"metadata": {"name": name}, "spec": spec}))
}

struct Env {
    _cluster: common::Cluster,
    sets: Api<StatefulSet>,
    pods: Api<Pod>,
    claims: Api<PersistentVolumeClaim>,
}

async fn setup(ns: &str) -> Env {
    let c = common::start(&["statefulset"], |_, _| {}).await;
    let nss: Api<Namespace> = Api::all(c.client.clone());
    nss.create(&PostParams::default(), &common::ns(ns))
        .await
        .expect("namespace");
    Env {
        sets: Api::namespaced(c.client.clone(), ns),
        pods: Api::namespaced(c.client.clone(), ns),
        claims: Api::namespaced(c.client.clone(), ns),
        _cluster: c,
    }
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn image(p: &Pod) -> String {
    p.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

/// Ordinal → pod, live ones only.
async fn live(env: &Env, app: &str) -> BTreeMap<i32, Pod> {
    env.pods
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| {
            let o = p
                .metadata
                .labels
                .as_ref()?
                .get("apps.kubernetes.io/pod-index")?
                .parse()
                .ok()?;
            Some((o, p))
        })
        .collect()
}

async fn mark_ready(env: &Env, p: &Pod) {
    let now = jiff::Timestamp::now().to_string();
    let status = json!({"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": now}]}});
    let name = p.metadata.name.clone().unwrap_or_default();
    let _ = env
        .pods
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await;
}

fn rolled_out(s: &StatefulSet) -> bool {
    let Some(st) = &s.status else { return false };
    let spec = s.spec.as_ref();
    let want = spec.and_then(|s| s.replicas).unwrap_or(1);
    let partition = spec
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0);
    let updated = if partition > 0 {
        st.updated_replicas.unwrap_or(0) >= want - partition
    } else {
        st.update_revision == st.current_revision
    };
    // What `kubectl rollout status sts` checks.
    st.observed_generation >= s.metadata.generation
        && st.ready_replicas.unwrap_or(0) >= want
        && st.replicas == want
        && updated
}

/// Plays the kubelet (one pod Ready at a time) until the set is rolled
/// out, calling `check` on the live pods before each step.
async fn drive(env: &Env, name: &str, mut check: impl FnMut(&BTreeMap<i32, Pod>)) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {name} to roll out"
        );
        let pods = live(env, name).await;
        check(&pods);
        if let Some(p) = pods.values().find(|p| !is_ready(p)) {
            mark_ready(env, p).await;
            continue;
        }
        if env
            .sets
            .get(name)
            .await
            .ok()
            .is_some_and(|s| rolled_out(&s))
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn set_image(env: &Env, name: &str, image: &str) {
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}});
    env.sets
        .patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("set image");
}

async fn claim_names(env: &Env) -> Vec<String> {
    let mut n: Vec<String> = env
        .claims
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    n.sort();
    n
}

fn images(pods: &BTreeMap<i32, Pod>) -> Vec<String> {
    pods.values().map(image).collect()
}

#[tokio::test]
async fn ordered_ready_identities_claims_rolling_update_partition_and_scale_down() {
    let env = setup("sts-ordered").await;
    env.sets
        .create(&PostParams::default(), &statefulset("web", 3, json!({})))
        .await
        .expect("create");
    // OrderedReady: the pods present are always 0..n, all but the last Ready.
    drive(&env, "web", |pods| {
        let ords: Vec<i32> = pods.keys().copied().collect();
        let prefix: Vec<i32> = (0..i32::try_from(ords.len()).unwrap_or(0)).collect();
        assert_eq!(ords, prefix, "pods out of order");
        let unready = pods.values().filter(|p| !is_ready(p)).count();
        assert!(unready <= 1, "{unready} pods starting at once");
    })
    .await;
    let pods = live(&env, "web").await;
    for (o, p) in &pods {
        let name = format!("web-{o}");
        assert_eq!(p.metadata.name.as_deref(), Some(name.as_str()));
        let labels = p.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get("statefulset.kubernetes.io/pod-name"),
            Some(&name)
        );
        let spec = p.spec.clone().unwrap_or_default();
        assert_eq!(
            (spec.hostname.as_deref(), spec.subdomain.as_deref()),
            (Some(name.as_str()), Some("svc"))
        );
        let claim = spec
            .volumes
            .unwrap_or_default()
            .into_iter()
            .find(|v| v.name == "data")
            .and_then(|v| v.persistent_volume_claim)
            .map(|c| c.claim_name);
        assert_eq!(claim, Some(format!("data-web-{o}")));
    }
    assert_eq!(
        claim_names(&env).await,
        ["data-web-0", "data-web-1", "data-web-2"]
    );
    let s = env.sets.get("web").await.expect("get");
    let st = s.status.clone().unwrap_or_default();
    assert_eq!(
        (
            st.replicas,
            st.ready_replicas,
            st.current_replicas,
            st.updated_replicas,
            st.available_replicas
        ),
        (3, Some(3), Some(3), Some(3), Some(3))
    );
    let first_revision = st.current_revision.clone().expect("currentRevision");
    assert_eq!(st.update_revision.as_ref(), Some(&first_revision));

    // RollingUpdate: replaced from the highest ordinal, one at a time.
    set_image(&env, "web", "busybox:2").await;
    let mut order = Vec::new();
    drive(&env, "web", |pods| {
        for (o, p) in pods {
            if image(p) == "busybox:2" && !order.contains(o) {
                order.push(*o);
            }
        }
        let down = 3 - pods.values().filter(|p| is_ready(p)).count();
        assert!(down <= 1, "{down} pods down during the update");
    })
    .await;
    assert_eq!(order, [2, 1, 0]);
    let st = env
        .sets
        .get("web")
        .await
        .expect("get")
        .status
        .unwrap_or_default();
    assert_eq!(st.current_revision, st.update_revision);
    assert_ne!(st.current_revision.as_ref(), Some(&first_revision));

    // A partition: only ordinals at or above it are updated.
    env.sets
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}})),
        )
        .await
        .expect("partition");
    set_image(&env, "web", "busybox:3").await;
    drive(&env, "web", |_| {}).await;
    assert_eq!(
        images(&live(&env, "web").await),
        ["busybox:2", "busybox:2", "busybox:3"]
    );
    let st = env
        .sets
        .get("web")
        .await
        .expect("get")
        .status
        .unwrap_or_default();
    assert_eq!(
        (st.updated_replicas, st.current_replicas),
        (Some(1), Some(2))
    );
    assert_ne!(st.current_revision, st.update_revision);

    // Scale down: the highest ordinal first; claims are retained.
    env.sets
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": 1}})),
        )
        .await
        .expect("scale");
    common::eventually("web scaled to 1", || async {
        let pods = live(&env, "web").await;
        (pods.keys().copied().collect::<Vec<_>>() == [0]).then_some(())
    })
    .await;
    assert_eq!(
        claim_names(&env).await,
        ["data-web-0", "data-web-1", "data-web-2"]
    );
}

#[tokio::test]
async fn parallel_on_delete_and_claims_deleted_on_scale_down() {
    let env = setup("sts-parallel").await;
    let extra = json!({"podManagementPolicy": "Parallel", "updateStrategy": {"type": "OnDelete"},
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Delete"}});
    env.sets
        .create(&PostParams::default(), &statefulset("db", 3, extra))
        .await
        .expect("create");
    // Parallel: all pods at once, none of them Ready.
    common::eventually("three pods at once", || async {
        let pods = live(&env, "db").await;
        (pods.len() == 3 && pods.values().all(|p| !is_ready(p))).then_some(())
    })
    .await;
    drive(&env, "db", |_| {}).await;

    // OnDelete: a new template replaces nothing until a pod is deleted.
    set_image(&env, "db", "busybox:2").await;
    common::eventually("new update revision", || async {
        let s = env.sets.get("db").await.ok()?;
        let st = s.status?;
        (st.observed_generation >= s.metadata.generation && st.updated_replicas.unwrap_or(0) == 0)
            .then_some(())
    })
    .await;
    assert_eq!(
        images(&live(&env, "db").await),
        ["busybox:1", "busybox:1", "busybox:1"]
    );
    env.pods
        .delete("db-1", &DeleteParams::default())
        .await
        .expect("delete pod");
    common::eventually("db-1 recreated from the update revision", || async {
        let pods = live(&env, "db").await;
        (images(&pods) == ["busybox:1", "busybox:2", "busybox:1"]).then_some(())
    })
    .await;

    // whenScaled: Delete removes the claims of the pods scaled away.
    env.sets
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": 1}})),
        )
        .await
        .expect("scale");
    common::eventually("claims of db-1 and db-2 deleted", || async {
        let names: Vec<String> = env
            .claims
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .filter(|c| c.metadata.deletion_timestamp.is_none())
            .filter_map(|c| c.metadata.name)
            .collect();
        (names == ["data-db-0"] && live(&env, "db").await.len() == 1).then_some(())
    })
    .await;
}

#[tokio::test]
async fn orphans_are_adopted_and_pods_that_stop_matching_released() {
    let env = setup("sts-adopt").await;
    let orphan: Pod = from(
        json!({"metadata": {"name": "solo-0", "labels": {"app": "solo"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:0"}]}}),
    );
    let orphan = env
        .pods
        .create(&PostParams::default(), &orphan)
        .await
        .expect("orphan");
    let extra = json!({"updateStrategy": {"type": "OnDelete"}});
    let sts = env
        .sets
        .create(&PostParams::default(), &statefulset("solo", 1, extra))
        .await
        .expect("create");
    let sts_uid = sts.metadata.uid.clone().expect("uid");
    let controller_uid = |p: &Pod| {
        p.metadata
            .owner_references
            .iter()
            .flatten()
            .find(|r| r.controller == Some(true))
            .map(|r| r.uid.clone())
    };
    common::eventually("solo-0 adopted", || async {
        let p = env.pods.get("solo-0").await.ok()?;
        (p.metadata.uid == orphan.metadata.uid && controller_uid(&p).as_ref() == Some(&sts_uid))
            .then_some(())
    })
    .await;
    env.pods
        .patch(
            "solo-0",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"app": "other"}}})),
        )
        .await
        .expect("relabel");
    common::eventually("solo-0 released", || async {
        let p = env.pods.get("solo-0").await.ok()?;
        (p.metadata.uid == orphan.metadata.uid && controller_uid(&p).is_none()).then_some(())
    })
    .await;
}
