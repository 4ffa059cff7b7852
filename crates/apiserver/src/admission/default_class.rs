//! The plugins that give a new object the cluster's default class:
//! `DefaultStorageClass` (upstream's
//! `plugin/pkg/admission/storage/storageclass/setdefault`) for a
//! PersistentVolumeClaim that names no StorageClass (the field absent, not
//! `""`; default = annotated `storageclass.kubernetes.io/is-default-class:
//! "true"`) and `DefaultIngressClass` (upstream's
//! `plugin/pkg/admission/network/defaultingressclass`) for an Ingress with
//! neither `ingressClassName` nor the `kubernetes.io/ingress.class`
//! annotation (default = `ingressclass.kubernetes.io/is-default-class`).
//! With several defaults the newest wins, ties by name, as upstream does.

use apimachinery::ApiError;
use async_trait::async_trait;
use serde_json::{json, Value};

use super::{Attributes, Operation, Plugin};
use crate::state::ApiState;

const STORAGE_DEFAULT: [&str; 2] = [
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
];
const INGRESS_DEFAULT: [&str; 1] = ["ingressclass.kubernetes.io/is-default-class"];

pub struct DefaultStorageClass;
pub struct DefaultIngressClass;

fn is_default(class: &Value, annotations: &[&str]) -> bool {
    annotations.iter().any(|a| {
        class
            .pointer("/metadata/annotations")
            .and_then(|m| m.get(*a))
            .and_then(Value::as_str)
            == Some("true")
    })
}

/// The default class's name among `classes`: newest creationTimestamp,
/// then the name first in order (upstream's `GetDefaultClass`).
pub fn choose_default<'a>(
    classes: impl IntoIterator<Item = &'a Value>,
    annotations: &[&str],
) -> Option<String> {
    let meta = |c: &'a Value, f: &str| {
        c.pointer(&format!("/metadata/{f}"))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    classes
        .into_iter()
        .filter(|c| is_default(c, annotations))
        .max_by(|a, b| {
            // RFC 3339 in UTC orders as text; the smaller name wins a tie.
            meta(a, "creationTimestamp")
                .cmp(meta(b, "creationTimestamp"))
                .then_with(|| meta(b, "name").cmp(meta(a, "name")))
        })
        .map(|c| meta(c, "name").to_string())
}

#[async_trait]
impl Plugin for DefaultStorageClass {
    fn name(&self) -> &'static str {
        "DefaultStorageClass"
    }

    async fn admit(
        &self,
        state: &ApiState,
        a: &Attributes<'_>,
        pvc: &mut Value,
    ) -> Result<(), ApiError> {
        if a.operation != Operation::Create || !a.is("", "persistentvolumeclaims") {
            return Ok(());
        }
        let Some(spec) = pvc.get_mut("spec").and_then(Value::as_object_mut) else {
            return Ok(());
        };
        if spec.get("storageClassName").is_some_and(|c| !c.is_null()) {
            return Ok(());
        }
        if let Some(name) = cluster_default(state, "storageclasses", &STORAGE_DEFAULT) {
            tracing::debug!(class = %name, claim = %a.name, "defaulting storage class");
            spec.insert("storageClassName".into(), json!(name));
        }
        Ok(())
    }
}

/// The default among the cached classes of `resource` (cluster-scoped).
fn cluster_default(state: &ApiState, resource: &str, annotations: &[&str]) -> Option<String> {
    let prefix = format!("{}{resource}/", state.prefix);
    let (items, _) = state
        .cacher
        .list(&prefix, &|o| super::contains(&o.json, b"is-default-class"));
    let classes: Vec<Value> = items.iter().filter_map(|o| o.value().ok()).collect();
    choose_default(&classes, annotations)
}

#[async_trait]
impl Plugin for DefaultIngressClass {
    fn name(&self) -> &'static str {
        "DefaultIngressClass"
    }

    async fn admit(
        &self,
        state: &ApiState,
        a: &Attributes<'_>,
        ingress: &mut Value,
    ) -> Result<(), ApiError> {
        if a.operation != Operation::Create || !a.is("networking.k8s.io", "ingresses") {
            return Ok(());
        }
        let annotated = ingress
            .pointer("/metadata/annotations/kubernetes.io~1ingress.class")
            .is_some();
        let named = ingress
            .pointer("/spec/ingressClassName")
            .is_some_and(|c| !c.is_null());
        if annotated || named {
            return Ok(());
        }
        if let Some(name) = cluster_default(state, "ingressclasses", &INGRESS_DEFAULT) {
            if let Some(spec) = ingress.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("ingressClassName".into(), json!(name));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(name: &str, created: &str, default: Option<&str>) -> Value {
        let mut c = json!({"metadata": {"name": name, "creationTimestamp": created}});
        if let Some(v) = default {
            c["metadata"]["annotations"] =
                json!({"storageclass.kubernetes.io/is-default-class": v});
        }
        c
    }

    #[test]
    fn the_newest_default_wins_then_the_first_name() {
        let classes = [
            class("old", "2026-01-01T00:00:00Z", Some("true")),
            class("new", "2026-02-01T00:00:00Z", Some("true")),
            class(
                "newer-but-not-default",
                "2026-03-01T00:00:00Z",
                Some("false"),
            ),
            class("plain", "2026-04-01T00:00:00Z", None),
        ];
        assert_eq!(
            choose_default(&classes, &STORAGE_DEFAULT).as_deref(),
            Some("new")
        );
        let tie = [
            class("b", "2026-02-01T00:00:00Z", Some("true")),
            class("a", "2026-02-01T00:00:00Z", Some("true")),
        ];
        assert_eq!(choose_default(&tie, &STORAGE_DEFAULT).as_deref(), Some("a"));
        assert_eq!(choose_default(&classes[2..], &STORAGE_DEFAULT), None);
        let beta = json!({"metadata": {"name": "beta", "annotations":
            {"storageclass.beta.kubernetes.io/is-default-class": "true"}}});
        assert_eq!(
            choose_default([&beta], &STORAGE_DEFAULT).as_deref(),
            Some("beta")
        );
        assert_eq!(choose_default([&beta], &INGRESS_DEFAULT), None);
    }
}
