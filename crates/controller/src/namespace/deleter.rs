//! Removing a namespace's content (upstream's pkg/controller/namespace/
//! deletion/namespaced_resources_deleter.go and status_condition_utils.go):
//! discovery of every namespaced kind that can be deleted (custom resources
//! and aggregated APIs included), a DELETE of each collection with
//! Background propagation, a LIST of what remains, and the namespace
//! conditions saying how it went.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::ResourceExt;

use super::{spec_finalizers, FINALIZER};
use crate::discovery::{discover, Gvr};
use crate::{is_conflict, is_not_found, Error};

/// What one pass over the namespace's content found.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Group versions whose discovery failed.
    pub discovery_failures: Vec<String>,
    /// Resources whose deletion or listing failed, with the error.
    pub content_failures: Vec<String>,
    /// Remaining objects per `resource.group`.
    pub remaining_resources: BTreeMap<String, usize>,
    /// Remaining objects per finalizer they carry.
    pub remaining_finalizers: BTreeMap<String, usize>,
    /// Upstream's estimate of how long remaining content takes to go (the
    /// longest pod grace period left).
    pub estimate_seconds: u64,
    first_error: Option<String>,
}

impl Outcome {
    pub fn remaining(&self) -> bool {
        !self.remaining_resources.is_empty()
    }

    /// An error to retry with backoff when discovery or deletion failed.
    pub fn failure(&self) -> Option<Error> {
        self.first_error.clone().map(Error::Pending)
    }
}

/// Upstream's `deleteAllContent`: one pass over every resource.
pub async fn delete_all_content(client: &kube::Client, namespace: &str) -> Outcome {
    let mut outcome = Outcome::default();
    let gvrs = match discover(client).await {
        Ok((gvrs, failures)) => {
            // Upstream: ServerPreferredNamespacedResources with the delete verb.
            let gvrs: Vec<Gvr> = gvrs
                .into_iter()
                .filter(|g| g.namespaced && g.supports("delete"))
                .collect();
            if !failures.is_empty() {
                outcome.first_error = Some(format!("discovery failed: {}", failures.join(", ")));
            }
            outcome.discovery_failures = failures;
            gvrs
        }
        Err(e) => {
            outcome.discovery_failures.push(e.to_string());
            outcome.first_error = Some(e.to_string());
            return outcome;
        }
    };
    for gvr in gvrs {
        if let Err(e) = delete_resource(client, namespace, &gvr, &mut outcome).await {
            let msg = format!("{}: {e}", gvr.group_resource());
            outcome.first_error.get_or_insert_with(|| msg.clone());
            outcome.content_failures.push(msg);
        }
    }
    outcome
}

async fn delete_resource(
    client: &kube::Client,
    namespace: &str,
    gvr: &Gvr,
    outcome: &mut Outcome,
) -> Result<(), kube::Error> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &gvr.api_resource());
    let background = DeleteParams::background();
    if gvr.supports("deletecollection") {
        match api
            .delete_collection(&background, &ListParams::default())
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    if !gvr.supports("list") {
        return Ok(());
    }
    let items = match api.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(e) => return Err(e),
    };
    if items.is_empty() {
        return Ok(());
    }
    if !gvr.supports("deletecollection") {
        for item in &items {
            if item.metadata.deletion_timestamp.is_some() {
                continue;
            }
            match api.delete(&item.name_any(), &background).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }
    *outcome
        .remaining_resources
        .entry(gvr.group_resource())
        .or_default() += items.len();
    for item in &items {
        for f in item.finalizers() {
            *outcome.remaining_finalizers.entry(f.clone()).or_default() += 1;
        }
        if gvr.group.is_empty() && gvr.resource == "pods" {
            let grace = item
                .metadata
                .deletion_grace_period_seconds
                .and_then(|g| u64::try_from(g).ok())
                .unwrap_or(0);
            outcome.estimate_seconds = outcome.estimate_seconds.max(grace);
        }
    }
    Ok(())
}

/// The namespace conditions for an outcome, in upstream's order, status
/// `True` where something is wrong.
pub fn conditions(outcome: &Outcome) -> Vec<(String, bool, &'static str, String)> {
    let list = |m: &BTreeMap<String, usize>, fmt: fn(&str, usize) -> String| {
        m.iter()
            .map(|(k, n)| fmt(k, *n))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = Vec::new();
    let d = &outcome.discovery_failures;
    out.push(if d.is_empty() {
        cond(
            "NamespaceDeletionDiscoveryFailure",
            false,
            "ResourcesDiscovered",
            "All resources successfully discovered".into(),
        )
    } else {
        cond(
            "NamespaceDeletionDiscoveryFailure",
            true,
            "DiscoveryFailed",
            format!(
                "Discovery failed for some groups, {} failing: {}",
                d.len(),
                d.join(", ")
            ),
        )
    });
    out.push(cond(
        "NamespaceDeletionGroupVersionParsingFailure",
        false,
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed".into(),
    ));
    let c = &outcome.content_failures;
    out.push(if c.is_empty() {
        cond(
            "NamespaceDeletionContentFailure",
            false,
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization".into(),
        )
    } else {
        cond(
            "NamespaceDeletionContentFailure",
            true,
            "ContentDeletionFailed",
            format!(
                "Failed to delete all resource types, {} remaining: {}",
                c.len(),
                c.join(", ")
            ),
        )
    });
    out.push(if outcome.remaining_resources.is_empty() {
        cond(
            "NamespaceContentRemaining",
            false,
            "ContentRemoved",
            "All content successfully removed".into(),
        )
    } else {
        cond(
            "NamespaceContentRemaining",
            true,
            "SomeResourcesRemain",
            format!(
                "Some resources are remaining: {}",
                list(&outcome.remaining_resources, |k, n| format!(
                    "{k} has {n} resource instances"
                ))
            ),
        )
    });
    out.push(if outcome.remaining_finalizers.is_empty() {
        cond(
            "NamespaceFinalizersRemaining",
            false,
            "ContentHasNoFinalizers",
            "All content-preserving finalizers finished".into(),
        )
    } else {
        cond(
            "NamespaceFinalizersRemaining",
            true,
            "SomeFinalizersRemain",
            format!(
                "Some content in the namespace has finalizers remaining: {}",
                list(&outcome.remaining_finalizers, |k, n| format!(
                    "{k} in {n} resource instances"
                ))
            ),
        )
    });
    out
}

fn cond(
    t: &str,
    status: bool,
    reason: &'static str,
    message: String,
) -> (String, bool, &'static str, String) {
    (t.to_string(), status, reason, message)
}

/// The namespace's conditions merged with an outcome: unchanged ones keep
/// their transition time. `None` when nothing changed.
pub fn merged_conditions(
    ns: &Namespace,
    outcome: &Outcome,
    now: Timestamp,
) -> Option<Vec<NamespaceCondition>> {
    let old = ns
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut changed = false;
    let mut new: Vec<NamespaceCondition> = old
        .iter()
        .filter(|c| {
            !c.type_.starts_with("NamespaceDeletion")
                && !c.type_.starts_with("NamespaceContent")
                && !c.type_.starts_with("NamespaceFinalizers")
        })
        .cloned()
        .collect();
    for (t, status, reason, message) in conditions(outcome) {
        let status = if status { "True" } else { "False" }.to_string();
        let prev = old.iter().find(|c| c.type_ == t);
        let same = prev.is_some_and(|p| {
            p.status == status
                && p.reason.as_deref() == Some(reason)
                && p.message.as_deref() == Some(message.as_str())
        });
        if !same {
            changed = true;
        }
        let transition = match prev {
            Some(p) if p.status == status => p.last_transition_time.clone(),
            _ => Some(Time(now)),
        };
        new.push(NamespaceCondition {
            type_: t,
            status,
            reason: Some(reason.into()),
            message: Some(message),
            last_transition_time: transition,
        });
    }
    changed.then_some(new)
}

/// Writes the conditions through `namespaces/{name}/status` when they changed.
pub async fn update_conditions(
    client: &kube::Client,
    ns: &Namespace,
    outcome: &Outcome,
) -> Result<(), Error> {
    let Some(conds) = merged_conditions(ns, outcome, Timestamp::now()) else {
        return Ok(());
    };
    let name = ns.name_any();
    let mut updated = ns.clone();
    let status = updated.status.get_or_insert_with(Default::default);
    status.conditions = Some(conds);
    if status.phase.as_deref() != Some("Terminating") {
        status.phase = Some("Terminating".into());
    }
    let api: Api<Namespace> = Api::all(client.clone());
    match api
        .replace_status(&name, &PostParams::default(), &updated)
        .await
    {
        Ok(_) => Ok(()),
        // A newer version is on its way through the watch; that reconcile writes them.
        Err(e) if is_conflict(&e) || is_not_found(&e) => Ok(()),
        Err(e) => Err(Error::api("update status of", format!("namespace {name}"))(
            e,
        )),
    }
}

/// Removes this controller's finalizer through `namespaces/{name}/finalize`.
pub async fn finalize(client: &kube::Client, ns: &Namespace) -> Result<(), Error> {
    let name = ns.name_any();
    let api: Api<Namespace> = Api::all(client.clone());
    let mut updated = ns.clone();
    let rest: Vec<String> = spec_finalizers(ns)
        .into_iter()
        .filter(|f| f != FINALIZER)
        .collect();
    updated.spec.get_or_insert_with(Default::default).finalizers = Some(rest);
    match api
        .replace_subresource("finalize", &name, &PostParams::default(), &updated)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) if is_conflict(&e) => Err(Error::Pending(format!(
            "namespace {name} changed while finalizing"
        ))),
        Err(e) => Err(Error::api("finalize", format!("namespace {name}"))(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_outcome_has_all_conditions_false() {
        let c = conditions(&Outcome::default());
        let types: Vec<_> = c.iter().map(|c| (c.0.as_str(), c.1, c.2)).collect();
        assert_eq!(
            types,
            vec![
                (
                    "NamespaceDeletionDiscoveryFailure",
                    false,
                    "ResourcesDiscovered"
                ),
                (
                    "NamespaceDeletionGroupVersionParsingFailure",
                    false,
                    "ParsedGroupVersions"
                ),
                ("NamespaceDeletionContentFailure", false, "ContentDeleted"),
                ("NamespaceContentRemaining", false, "ContentRemoved"),
                (
                    "NamespaceFinalizersRemaining",
                    false,
                    "ContentHasNoFinalizers"
                ),
            ]
        );
    }

    #[test]
    fn remaining_content_and_finalizers_read_like_upstream() {
        let mut o = Outcome::default();
        o.remaining_resources.insert("pods.".into(), 2);
        o.remaining_resources
            .insert("widgets.example.com".into(), 1);
        o.remaining_finalizers.insert("example.com/hold".into(), 1);
        let c = conditions(&o);
        assert_eq!(c[3].3, "Some resources are remaining: pods. has 2 resource instances, widgets.example.com has 1 resource instances");
        assert_eq!(c[4].3, "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances");
        assert!(c[3].1 && c[4].1);
    }

    #[test]
    fn unchanged_conditions_are_not_rewritten() {
        let o = Outcome::default();
        let now = Timestamp::now();
        let mut ns = Namespace::default();
        let first = merged_conditions(&ns, &o, now);
        assert!(first.is_some());
        ns.status = Some(k8s_openapi::api::core::v1::NamespaceStatus {
            conditions: first,
            ..Default::default()
        });
        assert!(merged_conditions(&ns, &o, now).is_none());
    }
}
