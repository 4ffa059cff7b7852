//! Metadata-only reads (upstream's `as=PartialObjectMetadata[List]`), what
//! metadata informers such as metrics-server's pod informer use: get, list
//! and watch answer PartialObjectMetadata objects with the whole metadata
//! and nothing else.

use std::time::Duration;

use futures::StreamExt;
use integration::TestApiServer;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::core::PartialObjectMeta;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_list_and_watch_answer_only_metadata() {
    let s = TestApiServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "one", "labels": {"app": "x"}},
        "data": {"secret-ish": "value"}
    }))
    .unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();

    let meta: Api<PartialObjectMeta<ConfigMap>> = Api::namespaced(s.client.clone(), "default");
    let one = meta.get("one").await.unwrap();
    assert_eq!(one.metadata.labels.unwrap()["app"], "x");
    assert_eq!(one.types.as_ref().unwrap().kind, "PartialObjectMetadata");
    assert_eq!(one.types.as_ref().unwrap().api_version, "meta.k8s.io/v1");

    let list = meta.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.types.kind, "PartialObjectMetadataList");
    assert_eq!(list.items.len(), 1);
    let rv = list.metadata.resource_version.clone().unwrap();

    // The raw answer carries no data.
    let req = http::Request::get("/api/v1/namespaces/default/configmaps/one")
        .header(
            "Accept",
            "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
        )
        .body(Vec::new())
        .unwrap();
    let raw: serde_json::Value = s.client.request(req).await.unwrap();
    assert!(raw.get("data").is_none(), "{raw}");
    assert_eq!(raw["metadata"]["name"], "one");

    let mut events = meta
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    let cm2: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "two"}, "data": {"k": "v"}})).unwrap();
    cms.create(&PostParams::default(), &cm2).await.unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an event")
        .unwrap()
        .unwrap();
    match ev {
        WatchEvent::Added(o) => {
            assert_eq!(o.metadata.name.as_deref(), Some("two"));
            assert_eq!(o.types.unwrap().kind, "PartialObjectMetadata");
        }
        other => panic!("unexpected {other:?}"),
    }
}
