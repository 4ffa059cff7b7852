//! The ClusterRole aggregation controller against a real API server.

mod common;

use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, DeleteParams, PostParams};

fn role(v: serde_json::Value) -> ClusterRole {
    serde_json::from_value(v).expect("clusterrole")
}

fn verbs(r: &ClusterRole) -> Vec<String> {
    r.rules
        .iter()
        .flatten()
        .map(|p| p.verbs.join(","))
        .collect()
}

#[tokio::test]
async fn aggregated_rules_follow_the_selected_roles() {
    let c = common::start(&["clusterrole-aggregation"], |_, _| {}).await;
    let api: Api<ClusterRole> = Api::all(c.client.clone());
    let pp = PostParams::default();
    let rule =
        |verb: &str| serde_json::json!({"apiGroups": [""], "resources": ["pods"], "verbs": [verb]});
    api.create(
        &pp,
        &role(serde_json::json!({
            "metadata": {"name": "agg-test"},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg-test": "true"}}]}
        })),
    )
    .await
    .expect("create aggregated");
    for (name, v) in [
        ("agg-b", vec!["list", "get"]),
        ("agg-a", vec!["get", "watch"]),
    ] {
        api.create(
            &pp,
            &role(serde_json::json!({
                "metadata": {"name": name, "labels": {"agg-test": "true"}},
                "rules": v.iter().map(|v| rule(v)).collect::<Vec<_>>()
            })),
        )
        .await
        .expect("create part");
    }
    // Not selected.
    api.create(
        &pp,
        &role(serde_json::json!({"metadata": {"name": "agg-other"}, "rules": [rule("delete")]})),
    )
    .await
    .expect("create other");
    // agg-a's rules first (name order), agg-b's "get" not repeated.
    common::eventually("aggregated rules", || async {
        let r = api.get("agg-test").await.ok()?;
        (verbs(&r) == ["get", "watch", "list"]).then_some(())
    })
    .await;
    api.delete("agg-a", &DeleteParams::default())
        .await
        .expect("delete part");
    common::eventually("rules after a part is deleted", || async {
        let r = api.get("agg-test").await.ok()?;
        (verbs(&r) == ["list", "get"]).then_some(())
    })
    .await;
    // Hand edits are put back.
    let mut r = api.get("agg-test").await.expect("get");
    r.rules = Some(vec![]);
    api.replace("agg-test", &pp, &r).await.expect("edit");
    common::eventually("rules restored", || async {
        let r = api.get("agg-test").await.ok()?;
        (verbs(&r) == ["list", "get"]).then_some(())
    })
    .await;
}
