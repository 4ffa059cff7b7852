//! `ServiceAccount` (upstream's `plugin/pkg/admission/serviceaccount`): a
//! pod runs as a ServiceAccount that exists (`default` unless named), gets
//! the account's image pull secrets when it names none, and — unless the pod
//! or the account turns `automountServiceAccountToken` off — a projected
//! `kube-api-access-xxxxx` volume (a bound token, the cluster's CA bundle
//! and the namespace) mounted at
//! `/var/run/secrets/kubernetes.io/serviceaccount` in every container.

use std::time::Duration;

use apimachinery::ApiError;
use async_trait::async_trait;
use serde_json::{json, Value};

use super::{Attributes, Operation, Plugin};
use crate::handlers::object::random_suffix;
use crate::state::ApiState;

/// Where in-cluster clients look for their credentials.
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The volume's name prefix (upstream's `ServiceAccountVolumeName`).
const VOLUME_PREFIX: &str = "kube-api-access-";
/// The bound token's lifetime (upstream's `WarnOnlyBoundTokenExpirationSeconds`).
const TOKEN_SECONDS: i64 = 3607;
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

pub struct ServiceAccount {
    /// How often, and how far apart, a missing `default` account is looked
    /// up again before the pod is refused: the controller manager creates
    /// it moments after its namespace.
    pub default_retries: u32,
    pub retry_interval: Duration,
}

impl Default for ServiceAccount {
    fn default() -> Self {
        Self {
            default_retries: 10,
            retry_interval: Duration::from_millis(150),
        }
    }
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

/// The projected volume upstream's plugin adds (`createVolume`).
fn api_access_volume(name: &str) -> Value {
    json!({
        "name": name,
        "projected": {
            "defaultMode": 0o644,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": TOKEN_SECONDS, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt",
                               "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace",
                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
            ]
        }
    })
}

/// Whether the token is mounted: the pod's setting wins, then the account's.
fn automount(pod: &Value, account: &Value) -> bool {
    pod.pointer("/spec/automountServiceAccountToken")
        .and_then(Value::as_bool)
        .or_else(|| {
            account
                .get("automountServiceAccountToken")
                .and_then(Value::as_bool)
        })
        .unwrap_or(true)
}

/// Adds the volume and its mounts (upstream's `mountServiceAccountToken`):
/// containers that already mount something at the path are left alone, and
/// an existing `kube-api-access-*` volume is reused.
pub fn mount_token(pod: &mut Value, generated_name: &str) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let existing = spec
        .get("volumes")
        .and_then(Value::as_array)
        .and_then(|vs| {
            vs.iter()
                .filter_map(|v| v.get("name").and_then(Value::as_str))
                .find(|n| n.starts_with(VOLUME_PREFIX))
                .map(str::to_string)
        });
    let volume = existing
        .clone()
        .unwrap_or_else(|| generated_name.to_string());
    let mount = json!({"name": volume, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
    let mut needed = false;
    for list in ["initContainers", "containers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in containers.iter_mut() {
            let Some(c) = c.as_object_mut() else { continue };
            let mounts = c
                .entry("volumeMounts")
                .or_insert_with(|| Value::Array(Vec::new()));
            if mounts.is_null() {
                *mounts = Value::Array(Vec::new());
            }
            let Some(mounts) = mounts.as_array_mut() else {
                continue;
            };
            if mounts
                .iter()
                .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(TOKEN_MOUNT_PATH))
            {
                continue;
            }
            mounts.push(mount.clone());
            needed = true;
        }
    }
    if needed && existing.is_none() {
        let volumes = spec
            .entry("volumes")
            .or_insert_with(|| Value::Array(Vec::new()));
        if !volumes.is_array() {
            *volumes = Value::Array(Vec::new());
        }
        if let Some(vs) = volumes.as_array_mut() {
            vs.push(api_access_volume(&volume));
        }
    }
}

impl ServiceAccount {
    /// The account from the cache, else from etcd, retried for `default`.
    async fn lookup(&self, state: &ApiState, ns: &str, name: &str) -> Option<Value> {
        let key = format!("{}serviceaccounts/{ns}/{name}", state.prefix);
        if let Some(v) = state.cacher.get(&key).0.and_then(|o| o.value().ok()) {
            return Some(v);
        }
        let attempts = if name == "default" {
            self.default_retries.max(1)
        } else {
            1
        };
        for i in 0..attempts {
            if i > 0 {
                tokio::time::sleep(self.retry_interval).await;
            }
            if let Ok(o) = state.store.get(&key).await {
                return Some(o.value);
            }
        }
        None
    }
}

#[async_trait]
impl Plugin for ServiceAccount {
    fn name(&self) -> &'static str {
        "ServiceAccount"
    }

    async fn admit(
        &self,
        state: &ApiState,
        a: &Attributes<'_>,
        obj: &mut Value,
    ) -> Result<(), ApiError> {
        if a.operation != Operation::Create || !a.is("", "pods") {
            return Ok(());
        }
        if str_at(
            obj,
            &format!(
                "/metadata/annotations/{}",
                MIRROR_ANNOTATION.replace('/', "~1")
            ),
        )
        .is_some()
        {
            if str_at(obj, "/spec/serviceAccountName").is_some_and(|s| !s.is_empty()) {
                return Err(a.forbidden("a mirror pod may not reference service accounts"));
            }
            let secret_volume = obj
                .pointer("/spec/volumes")
                .and_then(Value::as_array)
                .is_some_and(|vs| vs.iter().any(|v| v.get("secret").is_some()));
            if secret_volume {
                return Err(a.forbidden("a mirror pod may not reference secrets"));
            }
            return Ok(());
        }
        let name = str_at(obj, "/spec/serviceAccountName")
            .filter(|s| !s.is_empty())
            .unwrap_or("default")
            .to_string();
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("serviceAccountName".into(), json!(name));
            // The deprecated alias follows the real field.
            spec.insert("serviceAccount".into(), json!(name));
        }
        let Some(account) = self.lookup(state, a.namespace, &name).await else {
            return Err(a.forbidden(format_args!(
                "error looking up service account {}/{name}: serviceaccount \"{name}\" not found",
                a.namespace
            )));
        };
        if automount(obj, &account) {
            mount_token(obj, &format!("{VOLUME_PREFIX}{}", random_suffix()));
        }
        let has_pull_secrets = obj
            .pointer("/spec/imagePullSecrets")
            .and_then(Value::as_array)
            .is_some_and(|l| !l.is_empty());
        let account_secrets = account
            .get("imagePullSecrets")
            .and_then(Value::as_array)
            .filter(|l| !l.is_empty());
        if let (false, Some(secrets)) = (has_pull_secrets, account_secrets) {
            obj["spec"]["imagePullSecrets"] = Value::Array(secrets.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_container_mounts_one_projected_volume() {
        let mut pod = json!({"spec": {
            "initContainers": [{"name": "init"}],
            "containers": [{"name": "a"},
                           {"name": "b", "volumeMounts": [{"name": "own", "mountPath": TOKEN_MOUNT_PATH}]}]
        }});
        mount_token(&mut pod, "kube-api-access-abcde");
        let spec = &pod["spec"];
        assert_eq!(
            spec["volumes"],
            json!([api_access_volume("kube-api-access-abcde")])
        );
        let want = json!([{"name": "kube-api-access-abcde", "readOnly": true, "mountPath": TOKEN_MOUNT_PATH}]);
        assert_eq!(spec["initContainers"][0]["volumeMounts"], want);
        assert_eq!(spec["containers"][0]["volumeMounts"], want);
        assert_eq!(
            spec["containers"][1]["volumeMounts"],
            json!([{"name": "own", "mountPath": TOKEN_MOUNT_PATH}])
        );
        let v = &spec["volumes"][0]["projected"];
        assert_eq!(v["defaultMode"], 420);
        assert_eq!(
            v["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            3607
        );
        assert_eq!(v["sources"][1]["configMap"]["name"], "kube-root-ca.crt");
        assert_eq!(
            v["sources"][2]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"],
            "metadata.namespace"
        );
    }

    #[test]
    fn an_existing_api_access_volume_is_reused_and_nothing_is_added_when_unneeded() {
        let mut pod = json!({"spec": {
            "volumes": [{"name": "kube-api-access-zzzzz", "projected": {"sources": []}}],
            "containers": [{"name": "a"}]
        }});
        mount_token(&mut pod, "kube-api-access-new00");
        assert_eq!(pod["spec"]["volumes"].as_array().unwrap().len(), 1);
        assert_eq!(
            pod["spec"]["containers"][0]["volumeMounts"][0]["name"],
            "kube-api-access-zzzzz"
        );
        let mut all_own = json!({"spec": {"containers": [
            {"name": "a", "volumeMounts": [{"name": "x", "mountPath": TOKEN_MOUNT_PATH}]}]}});
        mount_token(&mut all_own, "kube-api-access-new00");
        assert!(all_own["spec"].get("volumes").is_none());
    }

    #[test]
    fn automount_prefers_the_pod_then_the_account() {
        let off = json!({"automountServiceAccountToken": false});
        let on = json!({"automountServiceAccountToken": true});
        assert!(automount(&json!({"spec": {}}), &json!({})));
        assert!(!automount(&json!({"spec": {}}), &off));
        assert!(automount(
            &json!({"spec": {"automountServiceAccountToken": true}}),
            &off
        ));
        assert!(!automount(
            &json!({"spec": {"automountServiceAccountToken": false}}),
            &on
        ));
    }
}
