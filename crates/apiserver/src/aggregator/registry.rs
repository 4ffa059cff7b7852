//! What the APIServices say, as the proxy and discovery need it: per
//! group/version, the backend Service, how to trust it, its priorities,
//! whether it answered its last probe and the resources it reported.

use std::collections::BTreeMap;
use std::sync::RwLock;

use serde_json::Value;

/// One aggregated group/version (an APIService with `spec.service`).
#[derive(Debug, Clone, PartialEq)]
pub struct Remote {
    /// The APIService's name (`v1beta1.metrics.k8s.io`).
    pub name: String,
    pub group: String,
    pub version: String,
    pub namespace: String,
    pub service: String,
    pub port: i64,
    /// PEM bytes of `spec.caBundle`.
    pub ca_bundle: Vec<u8>,
    pub insecure_skip_tls_verify: bool,
    pub group_priority_minimum: i64,
    pub version_priority: i64,
    /// Whether the last probe succeeded.
    pub available: bool,
    /// The backend's `APIResourceList` from the last successful probe.
    pub discovery: Option<Value>,
}

impl Remote {
    /// From an APIService object; `None` for a local one (no `spec.service`).
    pub fn from_apiservice(obj: &Value) -> Option<Remote> {
        let spec = obj.get("spec")?;
        let svc = spec.get("service").filter(|s| s.is_object())?;
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let ca_bundle = spec
            .get("caBundle")
            .and_then(Value::as_str)
            .and_then(|b| {
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b).ok()
            })
            .unwrap_or_default();
        let available = obj
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.get("type").and_then(Value::as_str) == Some("Available")
                        && c.get("status").and_then(Value::as_str) == Some("True")
                })
            });
        Some(Remote {
            name: apimachinery::meta::name(obj).to_string(),
            group: s(spec, "group"),
            version: s(spec, "version"),
            namespace: s(svc, "namespace"),
            service: s(svc, "name"),
            port: svc.get("port").and_then(Value::as_i64).unwrap_or(443),
            ca_bundle,
            insecure_skip_tls_verify: spec
                .get("insecureSkipTLSVerify")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            group_priority_minimum: spec
                .get("groupPriorityMinimum")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            version_priority: spec
                .get("versionPriority")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            available,
            discovery: None,
        })
    }
}

/// The aggregated group/versions, keyed by (group, version).
#[derive(Debug, Default)]
pub struct Registry {
    remotes: RwLock<BTreeMap<(String, String), Remote>>,
    /// One probe at a time per APIService, so that a probe started before
    /// its backend appeared cannot write its result after a newer one.
    probing: std::sync::Mutex<BTreeMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
}

impl Registry {
    /// The lock a probe of APIService `name` holds from its check to its
    /// status write.
    pub fn probe_lock(&self, name: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        let mut m = self.probing.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(name.to_string()).or_default().clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<(String, String), Remote>> {
        self.remotes.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<(String, String), Remote>> {
        self.remotes.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, group: &str, version: &str) -> Option<Remote> {
        self.read()
            .get(&(group.to_string(), version.to_string()))
            .cloned()
    }

    /// Every remote, for discovery.
    pub fn all(&self) -> Vec<Remote> {
        self.read().values().cloned().collect()
    }

    /// Adds or replaces a remote, keeping the last discovery of a backend
    /// that did not change.
    pub fn upsert(&self, mut r: Remote) {
        let mut m = self.write();
        let key = (r.group.clone(), r.version.clone());
        if let Some(old) = m.get(&key) {
            if old.service == r.service && old.namespace == r.namespace && old.port == r.port {
                r.discovery = old.discovery.clone();
            }
        }
        m.insert(key, r);
    }

    /// Removes the remote of an APIService by name.
    pub fn remove_named(&self, name: &str) {
        self.write().retain(|_, r| r.name != name);
    }

    /// Records a probe's outcome.
    pub fn set_probe(&self, name: &str, available: bool, discovery: Option<Value>) {
        for r in self.write().values_mut().filter(|r| r.name == name) {
            r.available = available;
            if discovery.is_some() {
                r.discovery = discovery.clone();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn remote_from_apiservice() {
        let a = json!({"metadata": {"name": "v1beta1.metrics.k8s.io"}, "spec": {
            "group": "metrics.k8s.io", "version": "v1beta1", "insecureSkipTLSVerify": true,
            "groupPriorityMinimum": 100, "versionPriority": 100,
            "service": {"namespace": "kube-system", "name": "metrics-server"}}});
        let r = Remote::from_apiservice(&a).unwrap();
        assert_eq!(
            (r.group.as_str(), r.version.as_str(), r.port),
            ("metrics.k8s.io", "v1beta1", 443)
        );
        assert!(r.insecure_skip_tls_verify && !r.available);
        let local = json!({"metadata": {"name": "v1.apps"}, "spec": {"group": "apps", "version": "v1", "service": null}});
        assert!(Remote::from_apiservice(&local).is_none());
    }
}

/// Discovery entries of the aggregated groups (upstream's aggregator
/// `apisHandler` and aggregated discovery manager).
pub mod discovery {
    use super::Remote;
    use serde_json::{json, Value};

    /// The groups with their versions, highest version priority first.
    fn groups(remotes: &[Remote]) -> Vec<(String, Vec<&Remote>)> {
        let mut out: Vec<(String, Vec<&Remote>)> = Vec::new();
        for r in remotes {
            match out.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, vs)) => vs.push(r),
                None => out.push((r.group.clone(), vec![r])),
            }
        }
        for (_, vs) in &mut out {
            vs.sort_by(|a, b| b.version_priority.cmp(&a.version_priority));
        }
        out
    }

    fn group_entry(group: &str, versions: &[&Remote]) -> Value {
        let vs: Vec<Value> = versions
            .iter()
            .map(
                |r| json!({"groupVersion": format!("{group}/{}", r.version), "version": r.version}),
            )
            .collect();
        json!({"name": group, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(Value::Null)})
    }

    /// Entries for `/apis` (APIGroupList.groups) not already in `known`.
    pub fn legacy_groups(remotes: &[Remote], known: &[String]) -> Vec<Value> {
        groups(remotes)
            .into_iter()
            .filter(|(g, _)| !known.contains(g))
            .map(|(g, vs)| group_entry(&g, &vs))
            .collect()
    }

    /// `/apis/<group>` for an aggregated group.
    pub fn group(remotes: &[Remote], group: &str) -> Option<Value> {
        let (g, vs) = groups(remotes).into_iter().find(|(g, _)| g == group)?;
        let mut v = group_entry(&g, &vs);
        v["kind"] = json!("APIGroup");
        v["apiVersion"] = json!("v1");
        Some(v)
    }

    /// APIGroupDiscovery items for the aggregated groups, from the
    /// resource lists their backends reported.
    pub fn aggregated_items(remotes: &[Remote]) -> Vec<Value> {
        groups(remotes)
            .into_iter()
            .map(|(g, vs)| {
                let versions: Vec<Value> = vs
                    .iter()
                    .map(|r| {
                        let list = r.discovery.as_ref().and_then(|d| d.get("resources")).and_then(Value::as_array);
                        json!({"version": r.version, "resources": resources_v2(&g, &r.version, list.map(Vec::as_slice).unwrap_or(&[])),
                            "freshness": if r.available { "Current" } else { "Stale" }})
                    })
                    .collect();
                json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": versions})
            })
            .collect()
    }

    fn resources_v2(group: &str, version: &str, list: &[Value]) -> Vec<Value> {
        let s = |v: &Value, k: &str| v.get(k).cloned().unwrap_or(Value::Null);
        let kind = |r: &Value| json!({"group": group, "version": version, "kind": s(r, "kind")});
        let mut out: Vec<Value> = Vec::new();
        for r in list {
            let name = r.get("name").and_then(Value::as_str).unwrap_or("");
            if name.contains('/') {
                continue;
            }
            let mut e = json!({
                "resource": name, "responseKind": kind(r),
                "scope": if r.get("namespaced").and_then(Value::as_bool).unwrap_or(false) { "Namespaced" } else { "Cluster" },
                "singularResource": s(r, "singularName"), "verbs": s(r, "verbs"),
            });
            for k in ["shortNames", "categories"] {
                if r.get(k)
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty())
                {
                    e[k] = s(r, k);
                }
            }
            let subs: Vec<Value> = list
                .iter()
                .filter_map(|sr| {
                    let n = sr.get("name").and_then(Value::as_str)?;
                    let sub = n.strip_prefix(name)?.strip_prefix('/')?;
                    Some(json!({"subresource": sub, "responseKind": kind(sr), "verbs": s(sr, "verbs")}))
                })
                .collect();
            if !subs.is_empty() {
                e["subresources"] = json!(subs);
            }
            out.push(e);
        }
        out
    }
}
