//! One contract suite for every storage backend: the in-memory one and a real
//! etcd process. Each case runs against both.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use storage::backend::{Backend, WatchItem};
use storage::cacher::WatchStart;
use storage::etcd3::EtcdBackend;
use storage::memory::MemoryBackend;
use storage::testing::EtcdProcess;
use storage::{Cacher, Error, EventType, ListOptions, Preconditions, Store};

fn pod(name: &str, ns: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}"), "labels": {"app": name}}, "spec": {"nodeName": ""}})
}

fn key(name: &str) -> String {
    format!("/registry/pods/default/{name}")
}

async fn backends() -> Vec<(&'static str, Arc<dyn Backend>, Option<EtcdProcess>)> {
    let etcd = EtcdProcess::start().expect("etcd must be installed for the storage contract tests");
    let backend = EtcdBackend::connect(&[etcd.endpoint.clone()])
        .await
        .expect("connect to etcd");
    vec![
        ("memory", Arc::new(MemoryBackend::new()), None),
        ("etcd", Arc::new(backend), Some(etcd)),
    ]
}

#[tokio::test]
async fn create_get_and_conflicts() {
    for (name, backend, _etcd) in backends().await {
        let store = Store::new(backend);
        let created = store
            .create(&key("a"), pod("a", "default"), None)
            .await
            .unwrap();
        assert!(created.revision > 0, "{name}");
        assert_eq!(
            created.value["metadata"]["resourceVersion"],
            created.revision.to_string(),
            "{name}"
        );
        let got = store.get(&key("a")).await.unwrap();
        assert_eq!(got, created, "{name}");
        assert!(
            matches!(
                store.create(&key("a"), pod("a", "default"), None).await,
                Err(Error::AlreadyExists { .. })
            ),
            "{name}"
        );
        assert!(
            matches!(
                store.get(&key("missing")).await,
                Err(Error::NotFound { .. })
            ),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guaranteed_update_retries_and_checks_preconditions() {
    for (name, backend, _etcd) in backends().await {
        let store = Store::new(backend);
        let created = store
            .create(&key("u"), pod("u", "default"), None)
            .await
            .unwrap();
        // An unchanged result is not written.
        let same = store
            .guaranteed_update(&key("u"), false, &Preconditions::default(), None, |cur| {
                Ok(cur.unwrap().value.clone())
            })
            .await
            .unwrap();
        assert_eq!(same.revision, created.revision, "{name}");
        // A concurrent write between read and CAS makes the update retry on fresh state.
        let mut calls = 0;
        let racing = store.clone();
        let updated = store
            .guaranteed_update(&key("u"), false, &Preconditions::default(), None, |cur| {
                calls += 1;
                let mut v = cur.unwrap().value.clone();
                if calls == 1 {
                    let racing = racing.clone();
                    // Another writer changes the object between our read and our write.
                    tokio::task::block_in_place(|| {
                        tokio::runtime::Handle::current().block_on(racing.guaranteed_update(
                            &key("u"),
                            false,
                            &Preconditions::default(),
                            None,
                            |c| {
                                let mut w = c.unwrap().value.clone();
                                w["metadata"]["labels"]["racer"] = json!("yes");
                                Ok(w)
                            },
                        ))
                    })
                    .unwrap();
                }
                v["spec"]["nodeName"] = json!("node-1");
                Ok(v)
            })
            .await
            .unwrap();
        assert_eq!(calls, 2, "{name}: retried once");
        assert_eq!(
            updated.value["metadata"]["labels"]["racer"], "yes",
            "{name}"
        );
        assert_eq!(updated.value["spec"]["nodeName"], "node-1", "{name}");
        let stale = Preconditions {
            resource_version: Some(created.revision.to_string()),
            uid: None,
        };
        let r = store
            .guaranteed_update(&key("u"), false, &stale, None, |c| {
                Ok(c.unwrap().value.clone())
            })
            .await;
        assert!(matches!(r, Err(Error::Conflict { .. })), "{name}");
        let r = store
            .guaranteed_update(&key("nope"), false, &Preconditions::default(), None, |c| {
                Ok(c.unwrap().value.clone())
            })
            .await;
        assert!(matches!(r, Err(Error::NotFound { .. })), "{name}");
        let made = store
            .guaranteed_update(&key("new"), true, &Preconditions::default(), None, |c| {
                assert!(c.is_none());
                Ok(pod("new", "default"))
            })
            .await;
        assert!(made.is_ok(), "{name}");
    }
}

#[tokio::test]
async fn delete_with_preconditions() {
    for (name, backend, _etcd) in backends().await {
        let store = Store::new(backend);
        store
            .create(&key("d"), pod("d", "default"), None)
            .await
            .unwrap();
        let wrong = Preconditions {
            uid: Some("other".into()),
            resource_version: None,
        };
        assert!(
            matches!(
                store.delete(&key("d"), &wrong, |_| Ok(())).await,
                Err(Error::Conflict { .. })
            ),
            "{name}"
        );
        let right = Preconditions {
            uid: Some("uid-d".into()),
            resource_version: None,
        };
        let last = store.delete(&key("d"), &right, |_| Ok(())).await.unwrap();
        assert_eq!(last.value["metadata"]["name"], "d", "{name}");
        assert!(
            matches!(
                store.delete(&key("d"), &right, |_| Ok(())).await,
                Err(Error::NotFound { .. })
            ),
            "{name}"
        );
    }
}

#[tokio::test]
async fn paginated_lists_are_consistent_snapshots() {
    for (name, backend, _etcd) in backends().await {
        let store = Store::new(backend.clone());
        for i in 0..5 {
            store
                .create(
                    &key(&format!("p{i}")),
                    pod(&format!("p{i}"), "default"),
                    None,
                )
                .await
                .unwrap();
        }
        store
            .create("/registry/pods/other/x", pod("x", "other"), None)
            .await
            .unwrap();
        let all = |_: &Value| true;
        let first = store
            .list(
                "/registry/pods/default/",
                &ListOptions {
                    limit: 2,
                    ..Default::default()
                },
                &all,
            )
            .await
            .unwrap();
        assert_eq!(first.items.len(), 2, "{name}");
        let token = first.continue_token.clone().expect("more pages");
        // A change after the first page is not seen by the rest of the list.
        store
            .guaranteed_update(&key("p4"), false, &Preconditions::default(), None, |c| {
                let mut v = c.unwrap().value.clone();
                v["spec"]["nodeName"] = json!("changed");
                Ok(v)
            })
            .await
            .unwrap();
        let mut names: Vec<String> = first
            .items
            .iter()
            .map(|o| o.value["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        let mut token = Some(token);
        while let Some(t) = token {
            let page = store
                .list(
                    "/registry/pods/default/",
                    &ListOptions {
                        limit: 2,
                        continue_token: Some(t),
                        ..Default::default()
                    },
                    &all,
                )
                .await
                .unwrap();
            assert_eq!(page.revision, first.revision, "{name}: same snapshot");
            for o in &page.items {
                assert_ne!(o.value["spec"]["nodeName"], "changed", "{name}");
                names.push(o.value["metadata"]["name"].as_str().unwrap().to_string());
            }
            token = page.continue_token;
        }
        assert_eq!(names, vec!["p0", "p1", "p2", "p3", "p4"], "{name}");
        let only_p3 = |v: &Value| v["metadata"]["name"] == "p3";
        let filtered = store
            .list(
                "/registry/pods/",
                &ListOptions {
                    limit: 1,
                    ..Default::default()
                },
                &only_p3,
            )
            .await
            .unwrap();
        assert_eq!(filtered.items.len(), 1, "{name}");
        assert_eq!(store.count("/registry/pods/").await.unwrap(), 6, "{name}");
        // Compacting past the snapshot expires its continue token.
        let rev = backend.current_revision().await.unwrap();
        backend.compact(rev).await.unwrap();
        let r = store
            .list(
                "/registry/pods/default/",
                &ListOptions {
                    limit: 2,
                    continue_token: first.continue_token.clone(),
                    ..Default::default()
                },
                &all,
            )
            .await;
        assert!(matches!(r, Err(Error::Expired { .. })), "{name}: {r:?}");
        let bad = store
            .list(
                "/registry/pods/default/",
                &ListOptions {
                    limit: 2,
                    continue_token: Some("garbage".into()),
                    ..Default::default()
                },
                &all,
            )
            .await;
        assert!(matches!(bad, Err(Error::Api(_))), "{name}");
    }
}

#[tokio::test]
async fn backend_watch_delivers_changes_with_previous_values() {
    for (name, backend, _etcd) in backends().await {
        let store = Store::new(backend.clone());
        let a = store
            .create(&key("w"), pod("w", "default"), None)
            .await
            .unwrap();
        let mut stream = backend.watch("/registry/pods/", a.revision).await.unwrap();
        store
            .delete(&key("w"), &Preconditions::default(), |_| Ok(()))
            .await
            .unwrap();
        let mut seen = Vec::new();
        while seen.len() < 2 {
            match tokio::time::timeout(Duration::from_secs(5), stream.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap()
            {
                WatchItem::Event(e) => seen.push(e),
                WatchItem::Progress(_) => {}
            }
        }
        assert!(seen[0].is_create, "{name}");
        assert!(seen[1].prev_value.is_some(), "{name}");
        assert!(seen[1].revision > seen[0].revision, "{name}");
    }
}

#[tokio::test]
async fn cacher_serves_lists_and_watches_with_resource_version_semantics() {
    for (name, backend, _etcd) in backends().await {
        let store = Store::new(backend.clone());
        store
            .create(&key("c0"), pod("c0", "default"), None)
            .await
            .unwrap();
        let cacher = Cacher::new(store.clone(), "/registry/", 3);
        cacher.register(
            "/registry/pods/",
            Some(|v: &Value| {
                vec![(
                    "spec.nodeName",
                    v["spec"]["nodeName"].as_str().unwrap_or("").to_string(),
                )]
            }),
        );
        tokio::spawn(cacher.clone().run());
        cacher.wait_ready().await;
        let (items, _) = cacher.list("/registry/pods/", &|_| true);
        assert_eq!(items.len(), 1, "{name}");
        assert_eq!(
            items[0].field("spec.nodeName").as_deref(),
            Some(""),
            "{name}"
        );

        let w = cacher
            .watch("/registry/pods/", "/registry/pods/", WatchStart::Now)
            .unwrap();
        assert_eq!(w.initial.len(), 1, "{name}");
        let mut live = w.live;
        let c1 = store
            .create(&key("c1"), pod("c1", "default"), None)
            .await
            .unwrap();
        let ev = tokio::time::timeout(Duration::from_secs(5), live.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ev.kind, EventType::Added, "{name}");
        assert_eq!(ev.revision, c1.revision, "{name}");
        cacher.wait_until_fresh(c1.revision).await.unwrap();
        // An object leaving a selector is a DELETED for that watcher.
        store
            .guaranteed_update(&key("c1"), false, &Preconditions::default(), None, |c| {
                let mut v = c.unwrap().value.clone();
                v["spec"]["nodeName"] = json!("n1");
                Ok(v)
            })
            .await
            .unwrap();
        let ev = tokio::time::timeout(Duration::from_secs(5), live.recv())
            .await
            .unwrap()
            .unwrap();
        let unscheduled =
            |o: &storage::CachedObject| o.field("spec.nodeName").as_deref() == Some("");
        let (kind, obj) = ev.filtered(&unscheduled).expect("transition is visible");
        assert_eq!(kind, EventType::Deleted, "{name}");
        assert_eq!(obj.revision, ev.revision, "{name}");
        // Resuming from a known revision replays history; too old is Expired.
        let resumed = cacher
            .watch(
                "/registry/pods/",
                "/registry/pods/",
                WatchStart::After(c1.revision),
            )
            .unwrap();
        assert_eq!(resumed.initial.len(), 1, "{name}");
        for i in 2..8 {
            store
                .create(
                    &key(&format!("c{i}")),
                    pod(&format!("c{i}"), "default"),
                    None,
                )
                .await
                .unwrap();
        }
        let rev = backend.current_revision().await.unwrap();
        cacher.wait_until_fresh(rev).await.unwrap();
        assert!(
            matches!(
                cacher.watch(
                    "/registry/pods/",
                    "/registry/pods/",
                    WatchStart::After(c1.revision)
                ),
                Err(Error::Expired { .. })
            ),
            "{name}"
        );
        assert!(
            matches!(
                cacher.wait_until_fresh(rev + 1000).await,
                Err(Error::TooLargeResourceVersion { .. })
            ),
            "{name}"
        );
    }
}

/// A list larger than gRPC's default 4 MiB message limit still works (the
/// watch cache's initial sync and unpaginated LISTs depend on it).
#[tokio::test]
async fn lists_larger_than_four_mebibytes() {
    for (name, backend, _etcd) in backends().await {
        let store = Store::new(backend.clone());
        let filler = "x".repeat(900 * 1024);
        for i in 0..6 {
            let mut p = pod(&format!("big{i}"), "default");
            p["metadata"]["annotations"] = json!({"filler": filler});
            store
                .create(&key(&format!("big{i}")), p, None)
                .await
                .unwrap();
        }
        let all = |_: &Value| true;
        let list = store
            .list("/registry/pods/default/", &ListOptions::default(), &all)
            .await
            .unwrap_or_else(|e| panic!("{name}: list of 5.4 MB: {e}"));
        assert_eq!(list.items.len(), 6, "{name}");
    }
}

/// `list_bytes` and `get_bytes` serve what `list` and `get` decode, with
/// the resourceVersion spliced in, filtered or not.
#[tokio::test]
async fn byte_reads_match_decoded_reads() {
    for (name, backend, _etcd) in backends().await {
        let store = Store::new(backend.clone());
        for i in 0..3 {
            store
                .create(
                    &key(&format!("b{i}")),
                    pod(&format!("b{i}"), "default"),
                    None,
                )
                .await
                .unwrap();
        }
        let all = |_: &Value| true;
        let decoded = store
            .list("/registry/pods/default/", &ListOptions::default(), &all)
            .await
            .unwrap();
        let raw = store
            .list_bytes("/registry/pods/default/", &ListOptions::default(), None)
            .await
            .unwrap();
        let parsed: Vec<Value> = raw
            .items
            .iter()
            .map(|b| serde_json::from_slice(b).unwrap())
            .collect();
        let values: Vec<Value> = decoded.items.iter().map(|o| o.value.clone()).collect();
        assert_eq!(parsed, values, "{name}");
        assert!(parsed.iter().all(|v| v["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|r| !r.is_empty())));
        let only_b1 = |v: &Value| v["metadata"]["name"] == "b1";
        let one = store
            .list_bytes(
                "/registry/pods/default/",
                &ListOptions::default(),
                Some(&only_b1),
            )
            .await
            .unwrap();
        assert_eq!(one.items.len(), 1, "{name}");
        let got: Value =
            serde_json::from_slice(&store.get_bytes(&key("b1")).await.unwrap()).unwrap();
        assert_eq!(got, store.get(&key("b1")).await.unwrap().value, "{name}");
    }
}

/// Keys written with a lease go when it expires: how Events honour
/// `--event-ttl` (the store attaches a reused lease to every TTL'd write).
#[tokio::test]
async fn leased_keys_expire() {
    for (name, backend, _etcd) in backends().await {
        let lease = backend.grant_lease(2).await.unwrap();
        assert!(lease != 0, "{name}");
        let data = bytes::Bytes::from(serde_json::to_vec(&pod("ev", "default")).unwrap());
        backend
            .create(&key("ev"), data.clone(), lease)
            .await
            .unwrap();
        backend.create(&key("kept"), data, 0).await.unwrap();
        let store = Store::new(backend.clone());
        assert!(
            store.get(&key("ev")).await.is_ok(),
            "{name}: present before expiry"
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            match store.get(&key("ev")).await {
                Err(Error::NotFound { .. }) => break,
                _ if std::time::Instant::now() > deadline => {
                    panic!("{name}: leased key still there after 15 s")
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        assert!(
            store.get(&key("kept")).await.is_ok(),
            "{name}: a key without a lease stays"
        );
    }
}
