//! ControllerRevisions (upstream's pkg/controller/history and the
//! DaemonSet/StatefulSet `constructHistory`/`truncateHistory`): each
//! distinct pod template of a DaemonSet or StatefulSet is kept as a
//! ControllerRevision named `<owner>-<hash>`, labelled
//! `controller-revision-hash`, whose `data` is the patch that restores the
//! template (`{"spec":{"template":{…,"$patch":"replace"}}}`) and whose
//! `revision` orders them; returning to an old template reuses its
//! revision, renumbered as the newest.
//!
//! The hash is FNV-1a (32 bit) of the template's JSON and the collision
//! count, in upstream's `SafeEncodeString` alphabet; upstream hashes a Go
//! object dump, so the strings differ from upstream's.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

use crate::{is_already_exists, is_not_found, Error};

/// Upstream's `ControllerRevisionHashLabel`.
pub const CONTROLLER_REVISION_HASH: &str = "controller-revision-hash";

/// The template hash (see the module comment).
pub fn hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut h: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
    };
    let v = serde_json::to_value(template).unwrap_or(Value::Null);
    feed(v.to_string().as_bytes());
    if let Some(c) = collision_count {
        feed(&c.to_le_bytes());
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string()
        .bytes()
        .map(|d| ALPHABET[usize::from(d) % ALPHABET.len()] as char)
        .collect()
}

/// Upstream's `ControllerRevisionName`: the prefix cut to 223 characters.
pub fn revision_name(owner: &str, hash: &str) -> String {
    let prefix: String = owner.chars().take(223).collect();
    format!("{prefix}-{hash}")
}

/// The revision data for a template (upstream's `getPatch`).
pub fn template_patch(template: &PodTemplateSpec) -> Value {
    let mut t = serde_json::to_value(template).unwrap_or(Value::Null);
    if let Some(o) = t.as_object_mut() {
        o.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": t}})
}

/// The template a revision restores.
pub fn template_of(rev: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = rev.data.as_ref()?.0.get("spec")?.get("template")?.clone();
    if let Some(o) = t.as_object_mut() {
        o.remove("$patch");
    }
    serde_json::from_value(t).ok()
}

/// What an owner's revisions are built from.
pub struct Owner<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub controller_ref: OwnerReference,
    pub template: &'a PodTemplateSpec,
    pub collision_count: Option<i32>,
}

/// The outcome of [`sync_revisions`].
pub struct Revisions {
    /// The revision of the current template.
    pub update: ControllerRevision,
    /// Its hash label.
    pub hash: String,
    /// Every revision the owner has, after this sync.
    pub all: Vec<ControllerRevision>,
    /// The collision count, raised when a name was taken by other data.
    pub collision_count: Option<i32>,
}

fn revision_hash(r: &ControllerRevision) -> Option<&str> {
    r.metadata
        .labels
        .as_ref()?
        .get(CONTROLLER_REVISION_HASH)
        .map(String::as_str)
}

/// Upstream's `constructHistory` on the owner's revisions (from the cache):
/// finds or creates the current template's revision, makes it the newest,
/// and answers the collision count to store in status.
pub async fn sync_revisions(
    client: &kube::Client,
    owner: &Owner<'_>,
    mut revisions: Vec<ControllerRevision>,
) -> Result<Revisions, Error> {
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), owner.namespace);
    let data = template_patch(owner.template);
    let max = revisions.iter().map(|r| r.revision).max().unwrap_or(0);
    let mut collision_count = owner.collision_count;
    if let Some(i) = revisions
        .iter()
        .position(|r| r.data.as_ref().map(|d| &d.0) == Some(&data))
    {
        let existing = revisions[i].clone();
        let hash = revision_hash(&existing).unwrap_or_default().to_string();
        let update = if existing.revision < max
            || revisions.iter().filter(|r| r.revision == max).count() > 1
        {
            let name = existing.metadata.name.clone().unwrap_or_default();
            let patch = json!({"revision": max + 1});
            let r = api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(Error::api(
                    "update",
                    format!("controllerrevision {}/{name}", owner.namespace),
                ))?;
            revisions[i] = r.clone();
            r
        } else {
            existing
        };
        return Ok(Revisions {
            update,
            hash,
            all: revisions,
            collision_count,
        });
    }
    loop {
        let hash = hash(owner.template, collision_count);
        let name = revision_name(owner.name, &hash);
        let mut labels: BTreeMap<String, String> = owner
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        labels.insert(CONTROLLER_REVISION_HASH.into(), hash.clone());
        let rev = ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(owner.namespace.to_string()),
                labels: Some(labels),
                owner_references: Some(vec![owner.controller_ref.clone()]),
                ..Default::default()
            },
            data: Some(RawExtension(data.clone())),
            revision: max + 1,
        };
        match api.create(&PostParams::default(), &rev).await {
            Ok(r) => {
                revisions.push(r.clone());
                return Ok(Revisions {
                    update: r,
                    hash,
                    all: revisions,
                    collision_count,
                });
            }
            Err(e) if is_already_exists(&e) => {
                let existing = api.get_opt(&name).await.map_err(Error::api(
                    "get",
                    format!("controllerrevision {}/{name}", owner.namespace),
                ))?;
                let ours = existing.as_ref().is_some_and(|r| {
                    r.metadata
                        .owner_references
                        .iter()
                        .flatten()
                        .any(|o| o.uid == owner.controller_ref.uid)
                        && r.data.as_ref().map(|d| &d.0) == Some(&data)
                });
                if let (true, Some(r)) = (ours, existing) {
                    // Our own revision, not yet in the cache.
                    revisions.push(r.clone());
                    return Ok(Revisions {
                        update: r,
                        hash,
                        all: revisions,
                        collision_count,
                    });
                }
                // A hash collision: try the next name.
                collision_count = Some(collision_count.unwrap_or(0).saturating_add(1));
            }
            Err(e) => {
                return Err(Error::api(
                    "create",
                    format!("controllerrevision {}/{name}", owner.namespace),
                )(e))
            }
        }
    }
}

/// Upstream's `truncateHistory`: revisions beyond the history limit that
/// no live pod uses (by hash) and that are not `keep`, oldest first, are deleted.
pub async fn truncate(
    client: &kube::Client,
    namespace: &str,
    revisions: &[ControllerRevision],
    in_use: &[&str],
    keep: &[&str],
    limit: i32,
) -> Result<(), Error> {
    let mut old: Vec<&ControllerRevision> = revisions
        .iter()
        .filter(|r| {
            let name = r.metadata.name.as_deref().unwrap_or_default();
            let hash = revision_hash(r).unwrap_or_default();
            !keep.contains(&name) && !in_use.contains(&hash) && !in_use.contains(&name)
        })
        .collect();
    let excess = old
        .len()
        .saturating_sub(usize::try_from(limit).unwrap_or(0));
    if excess == 0 {
        return Ok(());
    }
    old.sort_by_key(|r| r.revision);
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), namespace);
    for r in old.into_iter().take(excess) {
        let name = r.metadata.name.clone().unwrap_or_default();
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                return Err(Error::api(
                    "delete",
                    format!("controllerrevision {namespace}/{name}"),
                )(e))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_names_and_patches() {
        let t: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "a"}},
            "spec": {"containers": [{"name": "c", "image": "i:1"}]}
        }))
        .unwrap_or_default();
        let mut t2 = t.clone();
        if let Some(s) = t2.spec.as_mut() {
            s.containers[0].image = Some("i:2".into());
        }
        assert_eq!(hash(&t, None), hash(&t.clone(), None));
        assert_ne!(hash(&t, None), hash(&t2, None));
        assert_ne!(hash(&t, None), hash(&t, Some(1)));
        assert!(hash(&t, None)
            .chars()
            .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        assert_eq!(revision_name("ds", "abc"), "ds-abc");
        assert_eq!(revision_name(&"x".repeat(300), "h").len(), 225);
        let p = template_patch(&t);
        assert_eq!(p["spec"]["template"]["$patch"], "replace");
        let rev = ControllerRevision {
            data: Some(RawExtension(p)),
            ..Default::default()
        };
        assert_eq!(template_of(&rev), Some(t));
    }
}
