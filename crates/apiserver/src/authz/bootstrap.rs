//! The `rbac/bootstrap-roles` post-start hook (upstream's
//! `pkg/registry/rbac/rest` `PostStartHook` and `reconciliation`): with the
//! RBAC mode on, every default role and binding of [`super::policy`] is
//! created when missing, and one still annotated
//! `rbac.authorization.kubernetes.io/autoupdate: "true"` (or without the
//! annotation) gets back the rules, subjects, labels and annotations it
//! lacks. Additions only: what an administrator added stays.

use serde_json::{json, Value};

use super::rbac::GROUP;
use crate::state::ApiState;

const AUTOUPDATE: &str = "rbac.authorization.kubernetes.io/autoupdate";

fn array_union(cur: &mut Value, field: &str, wanted: &Value) -> bool {
    let Some(want) = wanted.get(field).and_then(Value::as_array) else {
        return false;
    };
    if !cur.get(field).is_some_and(Value::is_array) {
        cur[field] = json!([]);
    }
    let have = cur[field].as_array_mut().expect("just made an array");
    let mut changed = false;
    for w in want {
        if !have.contains(w) {
            have.push(w.clone());
            changed = true;
        }
    }
    changed
}

fn map_union(cur: &mut Value, field: &str, wanted: &Value) -> bool {
    let Some(want) = wanted
        .pointer(&format!("/metadata/{field}"))
        .and_then(Value::as_object)
    else {
        return false;
    };
    let meta = apimachinery::meta::metadata_mut(cur);
    let have = meta.entry(field).or_insert_with(|| json!({}));
    if !have.is_object() {
        *have = json!({});
    }
    let have = have.as_object_mut().expect("just made an object");
    let mut changed = false;
    for (k, v) in want {
        if !have.contains_key(k) {
            have.insert(k.clone(), v.clone());
            changed = true;
        }
    }
    changed
}

/// What `cur` must gain to hold everything `wanted` has; None when it
/// already does or is not to be updated.
fn reconcile(cur: &Value, wanted: &Value) -> Option<Value> {
    let auto = cur
        .pointer(&format!(
            "/metadata/annotations/{}",
            AUTOUPDATE.replace('/', "~1")
        ))
        .and_then(Value::as_str);
    if auto == Some("false") {
        return None;
    }
    let mut next = cur.clone();
    let mut changed = map_union(&mut next, "labels", wanted);
    changed |= map_union(&mut next, "annotations", wanted);
    changed |= array_union(&mut next, "rules", wanted);
    changed |= array_union(&mut next, "subjects", wanted);
    if let Some(agg) = wanted.get("aggregationRule") {
        if !next.get("aggregationRule").is_some_and(Value::is_object) {
            next["aggregationRule"] = json!({});
        }
        changed |= array_union(&mut next["aggregationRule"], "clusterRoleSelectors", agg);
    }
    changed.then_some(next)
}

async fn ensure(state: &ApiState, plural: &str, wanted: Value) -> Result<(), storage::Error> {
    let Some(def) = state.resource(GROUP, "v1", plural) else {
        return Ok(());
    };
    let key = state.object_key(
        &def,
        apimachinery::meta::namespace(&wanted),
        apimachinery::meta::name(&wanted),
    );
    let mut fresh = wanted.clone();
    fresh["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
    fresh["metadata"]["creationTimestamp"] = json!(apimachinery::meta::now_rfc3339());
    match state.store.create(&key, fresh, None).await {
        Ok(_) => return Ok(()),
        Err(storage::Error::AlreadyExists { .. }) => {}
        Err(e) => return Err(e),
    }
    let cur = state.store.get(&key).await?;
    if reconcile(&cur.value, &wanted).is_none() {
        return Ok(());
    }
    state
        .store
        .guaranteed_update(&key, false, &Default::default(), None, move |cur| {
            let cur = cur.ok_or_else(|| storage::Error::NotFound { key: String::new() })?;
            Ok(reconcile(&cur.value, &wanted).unwrap_or_else(|| cur.value.clone()))
        })
        .await
        .map(|_| ())
}

/// Creates or completes the default policy; idempotent.
pub async fn run(state: &ApiState) -> Result<(), storage::Error> {
    if !state.authorizer.has(super::Mode::Rbac) {
        return Ok(());
    }
    let p = super::policy::bootstrap();
    for (plural, objects) in [
        ("clusterroles", p.cluster_roles),
        ("clusterrolebindings", p.cluster_role_bindings),
        ("roles", p.roles),
        ("rolebindings", p.role_bindings),
    ] {
        for o in objects {
            ensure(state, plural, o).await?;
        }
    }
    tracing::info!("RBAC bootstrap policy in place");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciling_adds_what_is_missing_and_keeps_additions() {
        let wanted = json!({"metadata": {"name": "r", "labels": {"a": "1"}, "annotations": {AUTOUPDATE: "true"}},
            "rules": [{"verbs": ["get"]}, {"verbs": ["list"]}]});
        let cur = json!({"metadata": {"name": "r", "labels": {"a": "changed", "b": "2"}},
            "rules": [{"verbs": ["get"]}, {"verbs": ["extra"]}]});
        let next = reconcile(&cur, &wanted).expect("changed");
        assert_eq!(
            next["rules"],
            json!([{"verbs": ["get"]}, {"verbs": ["extra"]}, {"verbs": ["list"]}])
        );
        assert_eq!(
            next["metadata"]["labels"],
            json!({"a": "changed", "b": "2"})
        );
        assert_eq!(next["metadata"]["annotations"][AUTOUPDATE], "true");
        assert!(reconcile(&next, &wanted).is_none());
        let mut frozen = cur.clone();
        frozen["metadata"]["annotations"] = json!({AUTOUPDATE: "false"});
        assert!(reconcile(&frozen, &wanted).is_none());
    }
}
