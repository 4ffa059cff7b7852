//! The ClusterRole aggregation controller (upstream's
//! pkg/controller/clusterroleaggregation/clusterroleaggregation_controller.go):
//! a ClusterRole with an `aggregationRule` gets as `rules` the union of the
//! rules of every ClusterRole matched by any of its `clusterRoleSelectors`.
//!
//! Upstream's order: selectors in order; per selector the matching
//! ClusterRoles sorted by name (the aggregated role itself skipped); their
//! rules in order, a rule appended only if an equal one is not there yet.
//! Any ClusterRole change requeues every aggregated ClusterRole (upstream's
//! `enqueue`). The write is an update guarded by resourceVersion (upstream
//! applies with server-side apply and falls back to update).

use std::sync::Arc;

use apimachinery::labels::Selector;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::ResourceExt;

use crate::descriptors::ControllerFuture;
use crate::{is_conflict, is_not_found, ControllerContext, Error, StartError};

const NAME: &str = "clusterrole-aggregation-controller";

struct Ctx {
    client: kube::Client,
    roles: Store<ClusterRole>,
}

/// Upstream's `startClusterRoleAggregationController`.
pub fn start(ctx: &ControllerContext) -> Result<ControllerFuture, StartError> {
    let roles = ctx.informers.informer::<ClusterRole>();
    let store = roles.store();
    let controller = Controller::for_shared_stream(roles.subscribe(), roles.store())
        .watches_shared_stream(roles.subscribe(), move |_changed: Arc<ClusterRole>| {
            store
                .state()
                .into_iter()
                .filter(|r| r.aggregation_rule.is_some())
                .map(|r| ObjectRef::from_obj(&*r))
                .collect::<Vec<_>>()
        });
    let c = Arc::new(Ctx {
        client: ctx.client.clone(),
        roles: roles.store(),
    });
    Ok(Box::pin(crate::runner::drive(
        NAME,
        controller,
        ctx.metrics.clone(),
        c,
        reconcile,
    )))
}

/// The rules an aggregated ClusterRole should have, from the given set of
/// ClusterRoles (upstream's loop in `syncClusterRole`). `None` when the role
/// has no aggregation rule.
pub fn aggregated_rules(role: &ClusterRole, all: &[Arc<ClusterRole>]) -> Option<Vec<PolicyRule>> {
    let rule = role.aggregation_rule.as_ref()?;
    let mut out: Vec<PolicyRule> = Vec::new();
    for sel in rule.cluster_role_selectors.iter().flatten() {
        let Some(selector) = serde_json::to_value(sel)
            .ok()
            .and_then(|v| Selector::from_label_selector(&v).ok())
        else {
            // Upstream returns the error and retries; an invalid selector
            // stays invalid, so it selects nothing here.
            continue;
        };
        let mut matched: Vec<&Arc<ClusterRole>> = all
            .iter()
            .filter(|r| selector.matches(r.labels()))
            .collect();
        matched.sort_by_key(|r| r.name_any());
        for r in matched {
            if r.name_any() == role.name_any() {
                continue;
            }
            for rule in r.rules.iter().flatten() {
                if !out.contains(rule) {
                    out.push(rule.clone());
                }
            }
        }
    }
    Some(out)
}

async fn reconcile(role: Arc<ClusterRole>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let all = ctx.roles.state();
    let Some(rules) = aggregated_rules(&role, &all) else {
        return Ok(Action::await_change());
    };
    if role.rules.clone().unwrap_or_default() == rules {
        return Ok(Action::await_change());
    }
    let name = role.name_any();
    let mut updated = (*role).clone();
    updated.rules = Some(rules);
    let api: Api<ClusterRole> = Api::all(ctx.client.clone());
    match api.replace(&name, &PostParams::default(), &updated).await {
        Ok(_) => {
            tracing::info!(clusterrole = %name, "aggregated rules updated");
            Ok(Action::await_change())
        }
        // Deleted meanwhile, or our copy is stale: the watch brings the news.
        Err(e) if is_not_found(&e) => Ok(Action::await_change()),
        Err(e) if is_conflict(&e) => Err(Error::Pending(format!("clusterrole {name}: conflict"))),
        Err(e) => Err(Error::api("update", format!("clusterrole {name}"))(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(v: serde_json::Value) -> Arc<ClusterRole> {
        Arc::new(serde_json::from_value(v).expect("clusterrole"))
    }

    #[test]
    fn union_in_selector_then_name_order_without_duplicates() {
        let agg = role(serde_json::json!({
            "metadata": {"name": "agg", "labels": {"a": "1"}},
            "aggregationRule": {"clusterRoleSelectors": [
                {"matchLabels": {"a": "1"}}, {"matchLabels": {"b": "1"}}]}
        }));
        let r = |verb: &str| serde_json::json!({"apiGroups": [""], "resources": ["pods"], "verbs": [verb]});
        let all = vec![
            agg.clone(),
            role(
                serde_json::json!({"metadata": {"name": "z", "labels": {"a": "1"}}, "rules": [r("get")]}),
            ),
            role(
                serde_json::json!({"metadata": {"name": "m", "labels": {"a": "1", "b": "1"}}, "rules": [r("list"), r("get")]}),
            ),
            role(
                serde_json::json!({"metadata": {"name": "c", "labels": {"b": "1"}}, "rules": [r("watch")]}),
            ),
            role(serde_json::json!({"metadata": {"name": "x"}, "rules": [r("delete")]})),
        ];
        let got = aggregated_rules(&agg, &all).expect("aggregated");
        let verbs: Vec<&str> = got.iter().map(|p| p.verbs[0].as_str()).collect();
        assert_eq!(verbs, ["list", "get", "watch"]);
        assert_eq!(aggregated_rules(&all[1], &all), None);
    }
}
