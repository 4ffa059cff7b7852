//! The kubelet's volumes (upstream's `pkg/kubelet/volumemanager` in small,
//! with the plugins of `pkg/volume/{emptydir,hostpath,configmap,secret,
//! downwardapi,projected,local}`): before a pod's containers start, every
//! volume is set up under `<root>/pods/<uid>/volumes/kubernetes.io~<plugin>/<name>`
//! (hostPath and PV-backed claims use the host's path); each sync writes the
//! ConfigMap, Secret, downward API and token contents again through the
//! atomic writer, so running pods see updates. When the pod is removed its
//! directory is unmounted and removed.
//!
//! Secret, downward API and projected volumes sit on a tmpfs as upstream's
//! do (they wrap a memory-backed emptyDir); when mounting is impossible the
//! files stay on the node's disk and a warning says so.

pub mod atomic_writer;
pub mod host_path;
pub mod mount;
pub mod ownership;
pub mod projection;
pub mod subpath;
pub mod token;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolume, PersistentVolumeClaim, Pod, Secret, Volume,
};
use kube::Api;

use crate::kuberuntime::container::{ConfigError, ContainerSettings};
use crate::kuberuntime::labels::{pod_name, pod_namespace, pod_uid};
use crate::kuberuntime::quantity;
use atomic_writer::{AtomicWriter, Payload};
use projection::{aggregate, downward_api_payload, key_payload, KeySource, DEFAULT_MODE};
use token::{TokenManager, TokenSpec};

/// What setting up a pod's volumes gave: each volume's host path, or why it
/// could not be set up (upstream's `MountVolume.SetUp failed` cause).
#[derive(Debug, Clone, Default)]
pub struct PodVolumes {
    pub paths: HashMap<String, PathBuf>,
    pub errors: BTreeMap<String, String>,
    /// Things worth an event that did not stop the volume (a tmpfs that
    /// could not be mounted).
    pub warnings: Vec<String>,
}

impl PodVolumes {
    /// The host path of the pod's volume `name`.
    pub fn host_path(&self, name: &str) -> Result<&Path, ConfigError> {
        if let Some(e) = self.errors.get(name) {
            return Err(ConfigError::Mount(e.clone()));
        }
        self.paths
            .get(name)
            .map(PathBuf::as_path)
            .ok_or_else(|| ConfigError::Volume(name.into()))
    }
}

/// A UID that is safe as one path element.
fn safe_uid(uid: &str) -> Option<&str> {
    (!uid.is_empty() && uid != "." && uid != ".." && !uid.contains('/') && !uid.contains('\0'))
        .then_some(uid)
}

/// Sets volumes up and tears them down.
pub struct VolumeManager {
    client: kube::Client,
    root_dir: PathBuf,
    /// The node's capacity, for `resourceFieldRef` defaults.
    settings: ContainerSettings,
    pub tokens: TokenManager,
}

/// Which kind of directory a plugin needs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Medium {
    Disk,
    Memory(Option<u64>),
}

impl VolumeManager {
    pub fn new(client: kube::Client, root_dir: PathBuf, settings: ContainerSettings) -> Self {
        Self {
            client,
            root_dir,
            settings,
            tokens: TokenManager::default(),
        }
    }

    fn pods_dir(&self) -> PathBuf {
        self.root_dir.join("pods")
    }

    /// Sets every volume of the pod up (again); failures are per volume.
    pub async fn setup(&self, pod: &Pod) -> PodVolumes {
        let mut out = PodVolumes::default();
        let Some(uid) = safe_uid(pod_uid(pod)) else {
            return out;
        };
        let pod_dir = self.pods_dir().join(uid);
        let volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_ref());
        for v in volumes.into_iter().flatten() {
            match self.setup_volume(pod, &pod_dir, v, &mut out.warnings).await {
                Ok(p) => {
                    out.paths.insert(v.name.clone(), p);
                }
                Err(e) => {
                    tracing::info!(pod = %crate::kuberuntime::labels::pod_desc(pod), volume = %v.name, error = %e, "volume set-up failed");
                    out.errors.insert(v.name.clone(), e);
                }
            }
        }
        out
    }

    /// `<pod>/volumes/kubernetes.io~<plugin>/<name>`, created (and for
    /// memory, mounted) when new.
    fn plugin_dir(
        &self,
        pod_dir: &Path,
        plugin: &str,
        name: &str,
        medium: Medium,
        warnings: &mut Vec<String>,
    ) -> Result<PathBuf, String> {
        let dir = pod_dir
            .join("volumes")
            .join(format!("kubernetes.io~{plugin}"))
            .join(name);
        let fresh = !dir.exists();
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        if let Medium::Memory(size) = medium {
            if fresh {
                if let Err(e) = mount::mount_tmpfs(&dir, size) {
                    let msg = format!("volume {name:?}: mounting a tmpfs failed ({e}), its files are kept on the node's disk");
                    tracing::warn!(volume = %name, error = %e, "tmpfs mount failed, using a directory");
                    warnings.push(msg);
                }
            }
        }
        Ok(dir)
    }

    async fn setup_volume(
        &self,
        pod: &Pod,
        pod_dir: &Path,
        v: &Volume,
        warnings: &mut Vec<String>,
    ) -> Result<PathBuf, String> {
        let name = v.name.as_str();
        if let Some(ed) = &v.empty_dir {
            let medium = if ed.medium.as_deref() == Some("Memory") {
                let size = ed
                    .size_limit
                    .as_ref()
                    .and_then(quantity::parse)
                    .filter(|s| *s > 0.0)
                    .map(|s| s as u64);
                Medium::Memory(size)
            } else {
                Medium::Disk
            };
            let fresh = !pod_dir
                .join("volumes/kubernetes.io~empty-dir")
                .join(name)
                .exists();
            let dir = self.plugin_dir(pod_dir, "empty-dir", name, medium, warnings)?;
            if fresh {
                // World-writable like upstream's emptyDir, whatever the umask;
                // the fsGroup once, at set-up, as upstream's SetUpAt.
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
                    .map_err(|e| format!("chmod {}: {e}", dir.display()))?;
                apply_fs_group(pod, &dir, ownership::Access::ReadWrite)?;
            }
            return Ok(dir);
        }
        if let Some(hp) = &v.host_path {
            let path = PathBuf::from(&hp.path);
            host_path::check_type(&path, hp.type_.as_deref())?;
            return Ok(path);
        }
        if let Some(cm) = &v.config_map {
            let dir = self.plugin_dir(pod_dir, "configmap", name, Medium::Disk, warnings)?;
            let default_mode = cm.default_mode.map_or(DEFAULT_MODE, |m| m as u32 & 0o7777);
            let payload = self
                .config_map_payload(
                    pod,
                    &cm.name,
                    cm.items.as_deref().unwrap_or_default(),
                    default_mode,
                    cm.optional == Some(true),
                )
                .await?;
            write(&dir, &payload)?;
            apply_read_only_fs_group(pod, &dir)?;
            return Ok(dir);
        }
        if let Some(s) = &v.secret {
            let dir = self.plugin_dir(pod_dir, "secret", name, Medium::Memory(None), warnings)?;
            let default_mode = s.default_mode.map_or(DEFAULT_MODE, |m| m as u32 & 0o7777);
            let secret = s.secret_name.clone().unwrap_or_default();
            let payload = self
                .secret_payload(
                    pod,
                    &secret,
                    s.items.as_deref().unwrap_or_default(),
                    default_mode,
                    s.optional == Some(true),
                )
                .await?;
            write(&dir, &payload)?;
            apply_read_only_fs_group(pod, &dir)?;
            return Ok(dir);
        }
        if let Some(d) = &v.downward_api {
            let dir = self.plugin_dir(
                pod_dir,
                "downward-api",
                name,
                Medium::Memory(None),
                warnings,
            )?;
            let default_mode = d.default_mode.map_or(DEFAULT_MODE, |m| m as u32 & 0o7777);
            let payload = downward_api_payload(
                pod,
                d.items.as_deref().unwrap_or_default(),
                default_mode,
                &self.settings,
            )?;
            write(&dir, &payload)?;
            apply_read_only_fs_group(pod, &dir)?;
            return Ok(dir);
        }
        if let Some(p) = &v.projected {
            let dir =
                self.plugin_dir(pod_dir, "projected", name, Medium::Memory(None), warnings)?;
            let default_mode = p.default_mode.map_or(DEFAULT_MODE, |m| m as u32 & 0o7777);
            let payload = self.projected_payload(pod, p, default_mode).await?;
            write(&dir, &payload)?;
            apply_read_only_fs_group(pod, &dir)?;
            return Ok(dir);
        }
        if let Some(c) = &v.persistent_volume_claim {
            return self.claim_path(pod, &c.claim_name).await;
        }
        Err("unsupported volume type".into())
    }

    async fn config_map_payload(
        &self,
        pod: &Pod,
        name: &str,
        items: &[k8s_openapi::api::core::v1::KeyToPath],
        default_mode: u32,
        optional: bool,
    ) -> Result<Payload, String> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), pod_namespace(pod));
        let data = match api.get_opt(name).await.map_err(|e| e.to_string())? {
            Some(cm) => {
                let mut data: BTreeMap<String, Vec<u8>> = cm
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.into_bytes()))
                    .collect();
                for (k, v) in cm.binary_data.unwrap_or_default() {
                    data.insert(k, v.0);
                }
                data
            }
            None if optional => BTreeMap::new(),
            None => return Err(format!("configmap {name:?} not found")),
        };
        key_payload(KeySource::ConfigMap, &data, items, default_mode, optional)
    }

    async fn secret_payload(
        &self,
        pod: &Pod,
        name: &str,
        items: &[k8s_openapi::api::core::v1::KeyToPath],
        default_mode: u32,
        optional: bool,
    ) -> Result<Payload, String> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), pod_namespace(pod));
        let data = match api.get_opt(name).await.map_err(|e| e.to_string())? {
            Some(s) => {
                let mut data: BTreeMap<String, Vec<u8>> = s
                    .string_data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.into_bytes()))
                    .collect();
                for (k, v) in s.data.unwrap_or_default() {
                    data.insert(k, v.0);
                }
                data
            }
            None if optional => BTreeMap::new(),
            None => return Err(format!("secret {name:?} not found")),
        };
        key_payload(KeySource::Secret, &data, items, default_mode, optional)
    }

    /// A projected volume's files from all its sources (upstream's
    /// `projected.collectData`); every source is tried, errors aggregated.
    async fn projected_payload(
        &self,
        pod: &Pod,
        p: &k8s_openapi::api::core::v1::ProjectedVolumeSource,
        default_mode: u32,
    ) -> Result<Payload, String> {
        let mut out = Payload::new();
        let mut errors = Vec::new();
        for s in p.sources.iter().flatten() {
            let part = if let Some(cm) = &s.config_map {
                self.config_map_payload(
                    pod,
                    &cm.name,
                    cm.items.as_deref().unwrap_or_default(),
                    default_mode,
                    cm.optional == Some(true),
                )
                .await
            } else if let Some(sec) = &s.secret {
                self.secret_payload(
                    pod,
                    &sec.name,
                    sec.items.as_deref().unwrap_or_default(),
                    default_mode,
                    sec.optional == Some(true),
                )
                .await
            } else if let Some(d) = &s.downward_api {
                downward_api_payload(
                    pod,
                    d.items.as_deref().unwrap_or_default(),
                    default_mode,
                    &self.settings,
                )
            } else if let Some(t) = &s.service_account_token {
                let account = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.service_account_name.as_deref())
                    .filter(|n| !n.is_empty())
                    .unwrap_or("default");
                let spec = TokenSpec {
                    namespace: pod_namespace(pod),
                    account,
                    audience: t.audience.as_deref().filter(|a| !a.is_empty()),
                    expiration_seconds: t.expiration_seconds.unwrap_or(3600),
                    pod_name: pod_name(pod),
                    pod_uid: pod_uid(pod),
                };
                self.tokens.get(&self.client, &spec).await.map(|token| {
                    Payload::from([(
                        t.path.clone(),
                        atomic_writer::FileProjection {
                            data: token.into_bytes(),
                            mode: default_mode,
                        },
                    )])
                })
            } else {
                Err("unsupported projected volume source".into())
            };
            match part {
                Ok(files) => out.extend(files),
                Err(e) => errors.push(e),
            }
        }
        aggregate(errors).map(|()| out)
    }

    /// The host path of a claim bound to a hostPath or local
    /// PersistentVolume.
    async fn claim_path(&self, pod: &Pod, claim: &str) -> Result<PathBuf, String> {
        let ns = pod_namespace(pod);
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(self.client.clone(), ns);
        let pvc = claims
            .get_opt(claim)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("persistentvolumeclaim {claim:?} not found"))?;
        let pv_name = pvc
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| format!("PVC {ns}/{claim} has non-bound phase"))?;
        let pvs: Api<PersistentVolume> = Api::all(self.client.clone());
        let pv = pvs
            .get_opt(&pv_name)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("persistentvolume {pv_name:?} not found"))?;
        let spec = pv.spec.unwrap_or_default();
        if let Some(hp) = spec.host_path {
            let path = PathBuf::from(&hp.path);
            host_path::check_type(&path, hp.type_.as_deref())?;
            return Ok(path);
        }
        if let Some(local) = spec.local {
            let path = PathBuf::from(&local.path);
            if !path.exists() {
                return Err(format!("path {:?} does not exist", local.path));
            }
            return Ok(path);
        }
        Err(format!(
            "persistentvolume {pv_name:?}: only hostPath and local volumes are supported"
        ))
    }

    /// Unmounts and removes `<root>/pods/<uid>` and forgets the pod's tokens.
    pub fn teardown(&self, uid: &str) {
        let Some(uid) = safe_uid(uid) else { return };
        self.tokens.delete_for_pod(uid);
        let dir = self.pods_dir().join(uid);
        if !dir.exists() {
            return;
        }
        mount::unmount_all_under(&dir);
        // Never descend into something still mounted (a subPath bind of a
        // hostPath would lose the host's files).
        if let Ok(canon) = dir.canonicalize() {
            if let Some(m) = mount::mount_points().iter().find(|m| m.starts_with(&canon)) {
                tracing::error!(pod_uid = %uid, mount = %m.display(), "still mounted, keeping the pod directory");
                return;
            }
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => tracing::debug!(pod_uid = %uid, "pod directory removed"),
            Err(e) => {
                tracing::warn!(pod_uid = %uid, dir = %dir.display(), error = %e, "removing the pod directory")
            }
        }
    }

    /// Removes the directories of pods this node no longer has (upstream's
    /// `cleanupOrphanedPodDirs`).
    pub fn cleanup_orphaned_pod_dirs(&self, known: &HashSet<String>) {
        let Ok(entries) = std::fs::read_dir(self.pods_dir()) else {
            return;
        };
        for e in entries.flatten() {
            let uid = e.file_name().to_string_lossy().into_owned();
            if !known.contains(&uid) {
                tracing::info!(pod_uid = %uid, "removing the directory of an orphaned pod");
                self.teardown(&uid);
            }
        }
    }
}

/// The pod's `fsGroup` on a volume, with its change policy.
fn apply_fs_group(pod: &Pod, dir: &Path, access: ownership::Access) -> Result<(), String> {
    let Some((gid, policy)) = ownership::pod_fs_group(pod) else {
        return Ok(());
    };
    ownership::set_volume_ownership(dir, gid, policy, access)
        .map_err(|e| format!("applying fsGroup {gid} to {}: {e}", dir.display()))
}

/// ConfigMap, Secret, downward API and projected contents are rewritten on
/// every sync, so the group is applied every time, whatever the policy
/// (upstream passes no policy for these plugins).
fn apply_read_only_fs_group(pod: &Pod, dir: &Path) -> Result<(), String> {
    let Some((gid, _)) = ownership::pod_fs_group(pod) else {
        return Ok(());
    };
    ownership::set_volume_ownership(
        dir,
        gid,
        ownership::ChangePolicy::Always,
        ownership::Access::ReadOnly,
    )
    .map_err(|e| format!("applying fsGroup {gid} to {}: {e}", dir.display()))
}

fn write(dir: &Path, payload: &Payload) -> Result<(), String> {
    AtomicWriter::new(dir)
        .write(payload)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
