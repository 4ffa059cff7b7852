//! Static pods (upstream's `pkg/kubelet/config/file.go`, `config/common.go`
//! and `pod/mirror_client.go`): pods from the manifests in
//! `--pod-manifest-path` (`staticPodPath`), read again every 20 s, run by
//! this kubelet without the API server, and shown there as mirror pods.
//!
//! A manifest's pod is named `<name>-<node>`, lives in `default` unless it
//! says otherwise, is bound to this node, tolerates every NoExecute taint
//! and gets the API's defaults; its UID is a hash of the manifest, the
//! node and the file, so the same file is the same pod across restarts,
//! and any change to it is a new pod. Its mirror pod carries the
//! `kubernetes.io/config.mirror` annotation with that hash and the Node as
//! controlling owner; the kubelet writes the static pod's status to it,
//! recreates it when it is deleted or stale, and deletes it when the
//! manifest goes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, PostParams, Preconditions};
use kube::Api;

pub const SOURCE_ANNOTATION: &str = "kubernetes.io/config.source";
pub const HASH_ANNOTATION: &str = "kubernetes.io/config.hash";
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// How often the directory is read (upstream's `fileCheckFrequency`); an
/// inotify watch ([`crate::dir_watch`]) reads it at once on a change.
pub const CHECK_FREQUENCY: Duration = Duration::from_secs(20);

/// 128 bits of FNV-1a (two 64-bit lanes with different offsets): a stable
/// hash, the same in every build, as the UID must be.
fn hash128(data: &[u8]) -> String {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut lanes = [0xcbf2_9ce4_8422_2325_u64, 0x6c62_272e_07bb_0142_u64];
    for (i, lane) in lanes.iter_mut().enumerate() {
        for &b in data {
            *lane ^= u64::from(b) ^ (i as u64);
            *lane = lane.wrapping_mul(PRIME);
        }
    }
    format!("{:016x}{:016x}", lanes[0], lanes[1])
}

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// Whether `pod` is a mirror pod (an API object standing for a static pod).
pub fn is_mirror(pod: &Pod) -> bool {
    annotation(pod, MIRROR_ANNOTATION).is_some()
}

/// The hash a mirror pod stands for (its static pod's UID).
pub fn mirror_hash(pod: &Pod) -> Option<&str> {
    annotation(pod, MIRROR_ANNOTATION)
}

/// Upstream's `applyDefaults` for a pod from `file` on `node`.
pub fn apply_defaults(mut pod: Pod, node: &str, file: &Path) -> Pod {
    let canonical = serde_json::to_vec(&pod).unwrap_or_default();
    let mut hashed = canonical;
    hashed.extend_from_slice(format!("host:{node}file:{}", file.display()).as_bytes());
    let uid = pod
        .metadata
        .uid
        .clone()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| hash128(&hashed));
    let name = pod.metadata.name.clone().unwrap_or_default();
    pod.metadata.name = Some(format!("{name}-{node}"));
    if pod.metadata.namespace.as_deref().is_none_or(str::is_empty) {
        pod.metadata.namespace = Some("default".into());
    }
    pod.metadata.uid = Some(uid.clone());
    let annotations = pod.metadata.annotations.get_or_insert_with(BTreeMap::new);
    annotations.insert(HASH_ANNOTATION.into(), uid);
    annotations.insert(SOURCE_ANNOTATION.into(), "file".into());
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.node_name = Some(node.into());
    spec.tolerations
        .get_or_insert_with(Vec::new)
        .push(Toleration {
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            ..Default::default()
        });
    api::defaults::pod(&mut pod);
    pod.status = Some(k8s_openapi::api::core::v1::PodStatus {
        phase: Some("Pending".into()),
        ..Default::default()
    });
    pod
}

/// One manifest: a Pod in YAML or JSON.
fn read_manifest(path: &Path, node: &str) -> Result<Pod, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let pod: Pod = serde_yaml::from_str(&text).map_err(|e| e.to_string())?;
    if pod.metadata.name.as_deref().is_none_or(str::is_empty) {
        return Err("the pod has no name".into());
    }
    Ok(apply_defaults(pod, node, path))
}

/// Every pod in `dir` (files starting with `.` skipped, as upstream's);
/// a file that cannot be read or parsed is logged and skipped.
pub fn read_dir(dir: &Path, node: &str) -> Vec<Pod> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            tracing::debug!(path = %dir.display(), error = %e, "reading the static pod path");
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    files.sort();
    let mut pods = Vec::new();
    for f in files {
        match read_manifest(&f, node) {
            Ok(p) => pods.push(p),
            Err(e) => {
                tracing::warn!(path = %f.display(), error = %e, "could not read a static pod manifest")
            }
        }
    }
    pods
}

/// The mirror pod for `pod`, owned by the Node `node_uid`.
pub fn mirror_of(pod: &Pod, node: &str, node_uid: &str) -> Pod {
    let mut m = pod.clone();
    m.status = None;
    m.metadata.uid = None;
    m.metadata.resource_version = None;
    let hash = annotation(pod, HASH_ANNOTATION)
        .unwrap_or_default()
        .to_string();
    m.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(MIRROR_ANNOTATION.into(), hash);
    m.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "Node".into(),
        name: node.into(),
        uid: node_uid.into(),
        controller: Some(true),
        block_owner_deletion: None,
    }]);
    m
}

type Key = (String, String);

fn key(pod: &Pod) -> Key {
    (
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.name.clone().unwrap_or_default(),
    )
}

/// The static pods of this node and their mirror pods in the API server.
pub struct StaticPods {
    dir: PathBuf,
    node: String,
    client: kube::Client,
    /// By UID.
    pods: HashMap<String, Pod>,
    /// The mirror pods the pod watch shows, by namespace and name.
    mirrors: HashMap<Key, Pod>,
    /// Mirror pods being written, so that one change is not made twice.
    busy: Arc<Mutex<HashSet<Key>>>,
}

impl StaticPods {
    pub fn new(dir: PathBuf, node: String, client: kube::Client) -> Self {
        Self {
            dir,
            node,
            client,
            pods: HashMap::new(),
            mirrors: HashMap::new(),
            busy: Default::default(),
        }
    }

    /// Reads the directory again: the pods that are new (or changed: a new
    /// UID) and the UIDs that are gone.
    pub fn refresh(&mut self) -> (Vec<Pod>, Vec<String>) {
        let found: HashMap<String, Pod> = read_dir(&self.dir, &self.node)
            .into_iter()
            .filter_map(|p| p.metadata.uid.clone().map(|u| (u, p)))
            .collect();
        let added = found
            .iter()
            .filter(|(uid, _)| !self.pods.contains_key(*uid))
            .map(|(_, p)| p.clone())
            .collect();
        let removed = self
            .pods
            .keys()
            .filter(|uid| !found.contains_key(*uid))
            .cloned()
            .collect();
        self.pods = found;
        (added, removed)
    }

    /// Whether `uid` is a static pod's.
    pub fn contains(&self, uid: &str) -> bool {
        self.pods.contains_key(uid)
    }

    pub fn uids(&self) -> impl Iterator<Item = &String> {
        self.pods.keys()
    }

    /// A mirror pod from the watch; when it is a new object, the UID of the
    /// static pod it stands for (whose status must be written to it anew).
    pub fn mirror_seen(&mut self, pod: Pod) -> Option<String> {
        let k = key(&pod);
        let fresh = self.mirrors.get(&k).map(|m| &m.metadata.uid) != Some(&pod.metadata.uid);
        let uid = mirror_hash(&pod)
            .filter(|h| fresh && self.pods.contains_key(*h))
            .map(str::to_string);
        self.mirrors.insert(k, pod);
        uid
    }

    pub fn mirror_gone(&mut self, pod: &Pod) {
        self.mirrors.remove(&key(pod));
    }

    /// A new listing of the pods follows.
    pub fn forget_mirrors(&mut self) {
        self.mirrors.clear();
    }

    /// Makes the mirror pods match the static pods: missing ones created,
    /// stale or deleting ones replaced, orphaned ones deleted (upstream's
    /// `syncPod` mirror handling and `HandlePodCleanups`). The API calls run
    /// in the background; what fails is tried again at the next reconcile.
    pub fn reconcile(&self) {
        let mut work: Vec<(Key, Option<Pod>, Option<Pod>)> = Vec::new();
        for pod in self.pods.values() {
            let k = key(pod);
            match self.mirrors.get(&k) {
                None => work.push((k, None, Some(pod.clone()))),
                Some(m)
                    if mirror_hash(m) != pod.metadata.uid.as_deref()
                        || m.metadata.deletion_timestamp.is_some() =>
                {
                    work.push((k, Some(m.clone()), Some(pod.clone())))
                }
                Some(_) => {}
            }
        }
        let wanted: HashSet<Key> = self.pods.values().map(key).collect();
        for (k, m) in &self.mirrors {
            let ours = m.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(&self.node);
            if ours && !wanted.contains(k) {
                work.push((k.clone(), Some(m.clone()), None));
            }
        }
        for (k, stale, wanted) in work {
            if !self
                .busy
                .lock()
                .map(|mut b| b.insert(k.clone()))
                .unwrap_or(false)
            {
                continue;
            }
            let (client, node, busy) = (self.client.clone(), self.node.clone(), self.busy.clone());
            tokio::spawn(async move {
                if let Err(e) = replace_mirror(&client, &node, stale, wanted).await {
                    tracing::warn!(pod = %format!("{}/{}", k.0, k.1), error = %e, "updating a mirror pod failed");
                }
                if let Ok(mut b) = busy.lock() {
                    b.remove(&k);
                }
            });
        }
    }
}

/// Deletes `stale` (grace 0, its UID as precondition) and creates the
/// mirror of `wanted`.
async fn replace_mirror(
    client: &kube::Client,
    node: &str,
    stale: Option<Pod>,
    wanted: Option<Pod>,
) -> Result<(), kube::Error> {
    if let Some(m) = stale {
        let api: Api<Pod> = Api::namespaced(
            client.clone(),
            m.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: m.metadata.uid.clone(),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api
            .delete(m.metadata.name.as_deref().unwrap_or(""), &dp)
            .await
        {
            Ok(_) => tracing::info!(pod = ?m.metadata.name, "deleted a mirror pod"),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(pod) = wanted {
        let node_uid = Api::<Node>::all(client.clone())
            .get(node)
            .await?
            .metadata
            .uid
            .unwrap_or_default();
        let mirror = mirror_of(&pod, node, &node_uid);
        let api: Api<Pod> = Api::namespaced(
            client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        match api.create(&PostParams::default(), &mirror).await {
            Ok(_) => tracing::info!(pod = ?pod.metadata.name, "created a mirror pod"),
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(dir: &Path, file: &str, text: &str) -> PathBuf {
        let p = dir.join(file);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn manifests_become_node_bound_defaulted_pods() {
        let dir = tempfile::tempdir().unwrap();
        manifest(
            dir.path(),
            "web.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: c, image: busybox}]\n",
        );
        manifest(dir.path(), ".hidden.yaml", "not: [a pod");
        manifest(dir.path(), "broken.yaml", "spec: [");
        manifest(
            dir.path(),
            "other.json",
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"db","namespace":"kube-system"},"spec":{"containers":[{"name":"c","image":"busybox:1"}]}}"#,
        );
        let pods = read_dir(dir.path(), "n1");
        let names: Vec<_> = pods
            .iter()
            .map(|p| {
                (
                    p.metadata.namespace.clone().unwrap(),
                    p.metadata.name.clone().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("kube-system".to_string(), "db-n1".to_string()),
                ("default".to_string(), "web-n1".to_string())
            ]
        );
        let web = &pods[1];
        let uid = web.metadata.uid.clone().unwrap();
        assert_eq!(uid.len(), 32);
        assert_eq!(annotation(web, HASH_ANNOTATION), Some(uid.as_str()));
        assert_eq!(annotation(web, SOURCE_ANNOTATION), Some("file"));
        let spec = web.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("n1"));
        assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
        assert_eq!(
            spec.containers[0].image_pull_policy.as_deref(),
            Some("Always")
        );
        let t = spec.tolerations.as_ref().unwrap();
        assert!(t.iter().any(|t| t.operator.as_deref() == Some("Exists")
            && t.effect.as_deref() == Some("NoExecute")
            && t.key.is_none()));
        // The same file is the same pod; a changed file a new one.
        assert_eq!(read_dir(dir.path(), "n1")[1].metadata.uid, web.metadata.uid);
        manifest(
            dir.path(),
            "web.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: c, image: busybox:2}]\n",
        );
        assert_ne!(read_dir(dir.path(), "n1")[1].metadata.uid, web.metadata.uid);
        assert_ne!(read_dir(dir.path(), "n2")[1].metadata.uid, web.metadata.uid);
    }

    #[test]
    fn mirror_pods_point_at_their_static_pod_and_node() {
        let dir = tempfile::tempdir().unwrap();
        manifest(
            dir.path(),
            "web.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: c, image: busybox}]\n",
        );
        let pod = &read_dir(dir.path(), "n1")[0];
        let m = mirror_of(pod, "n1", "node-uid");
        assert!(is_mirror(&m) && !is_mirror(pod));
        assert_eq!(mirror_hash(&m), pod.metadata.uid.as_deref());
        assert!(m.metadata.uid.is_none() && m.status.is_none());
        let owner = &m.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("Node", "n1", "node-uid")
        );
        assert_eq!(owner.controller, Some(true));
    }
}
