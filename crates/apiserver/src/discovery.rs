//! Discovery documents (upstream's `endpoints/discovery`): the legacy `/api`,
//! `/apis`, `/api/v1`, `/apis/<g>/<v>` documents and aggregated discovery
//! (`apidiscovery.k8s.io` v2 and v2beta1) that kubectl asks for first.

use api::ResourceDef;
use serde_json::{json, Value};

use crate::negotiation::DiscoveryVersion;
use crate::state::Resources;

fn sub_verbs(sub: &str) -> Vec<&'static str> {
    match sub {
        "status" | "scale" | "approval" => vec!["get", "patch", "update"],
        "binding" | "eviction" | "token" => vec!["create"],
        "ephemeralcontainers" => vec!["get", "patch", "update"],
        "log" => vec!["get"],
        "exec" | "attach" | "portforward" => vec!["create", "get"],
        "proxy" => vec!["create", "delete", "get", "patch", "update"],
        "finalize" => vec!["update"],
        _ => vec!["get"],
    }
}

fn sub_kind(def: &ResourceDef, sub: &str) -> (String, String, String) {
    match sub {
        "scale" => ("autoscaling".into(), "v1".into(), "Scale".into()),
        "binding" => ("".into(), "v1".into(), "Binding".into()),
        "eviction" => ("policy".into(), "v1".into(), "Eviction".into()),
        "token" => (
            "authentication.k8s.io".into(),
            "v1".into(),
            "TokenRequest".into(),
        ),
        "exec" => ("".into(), "v1".into(), "PodExecOptions".into()),
        "attach" => ("".into(), "v1".into(), "PodAttachOptions".into()),
        "portforward" => ("".into(), "v1".into(), "PodPortForwardOptions".into()),
        "proxy" => ("".into(), "v1".into(), format!("{}ProxyOptions", def.kind)),
        "log" => ("".into(), "v1".into(), "Pod".into()),
        _ => (def.group.clone(), def.version.clone(), def.kind.clone()),
    }
}

/// The `APIResourceList` of one group/version.
pub fn resource_list(resources: &Resources, group: &str, version: &str) -> Option<Value> {
    let defs: Vec<_> = resources
        .list
        .iter()
        .filter(|d| d.group == group && d.version == version)
        .collect();
    if defs.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for d in defs {
        let mut r = json!({
            "name": d.plural, "singularName": d.singular, "namespaced": d.namespaced(), "kind": d.kind,
            "verbs": d.verbs,
        });
        if !d.short_names.is_empty() {
            r["shortNames"] = json!(d.short_names);
        }
        if !d.categories.is_empty() {
            r["categories"] = json!(d.categories);
        }
        if d.stored() {
            r["storageVersionHash"] = json!(storage_hash(d));
        }
        out.push(r);
        for s in &d.subresources {
            let (g, v, k) = sub_kind(d, s);
            let mut sr = json!({"name": format!("{}/{s}", d.plural), "singularName": "", "namespaced": d.namespaced(), "kind": k, "verbs": sub_verbs(s)});
            if g != d.group || v != d.version {
                sr["group"] = json!(g);
                sr["version"] = json!(v);
            }
            out.push(sr);
        }
    }
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": apimachinery::resource::api_version(group, version), "resources": out}),
    )
}

fn storage_hash(d: &ResourceDef) -> String {
    // A stable short hash of the storage version, as upstream's storageVersionHash.
    let mut h: u64 = 1469598103934665603;
    for b in format!("{}/{}/{}", d.group, d.version, d.kind).bytes() {
        h = (h ^ b as u64).wrapping_mul(1099511628211);
    }
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(&h.to_be_bytes()[..8])
}

fn versions_of(resources: &Resources, group: &str) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for d in resources.list.iter().filter(|d| d.group == group) {
        if !v.contains(&d.version) {
            v.push(d.version.clone());
        }
    }
    v
}

/// `/api`.
pub fn core_versions(server_address: &str) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]})
}

fn group_entry(resources: &Resources, group: &str) -> Value {
    let versions: Vec<Value> = versions_of(resources, group)
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": versions, "preferredVersion": versions.first().cloned().unwrap_or(Value::Null)})
}

/// `/apis`.
pub fn group_list(resources: &Resources) -> Value {
    let groups: Vec<Value> = resources
        .groups()
        .iter()
        .filter(|g| !g.is_empty())
        .map(|g| group_entry(resources, g))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`.
pub fn group(resources: &Resources, group: &str) -> Option<Value> {
    if !resources.groups().iter().any(|g| g == group) || group.is_empty() {
        return None;
    }
    let mut g = group_entry(resources, group);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    Some(g)
}

/// The aggregated discovery document for `/api` (core) or `/apis` (the rest).
pub fn aggregated(resources: &Resources, core: bool, version: DiscoveryVersion) -> Value {
    let api_version = match version {
        DiscoveryVersion::V2 => "apidiscovery.k8s.io/v2",
        DiscoveryVersion::V2Beta1 => "apidiscovery.k8s.io/v2beta1",
    };
    let items: Vec<Value> = resources
        .groups()
        .iter()
        .filter(|g| g.is_empty() == core)
        .map(|g| {
            let versions: Vec<Value> = versions_of(resources, g)
                .iter()
                .map(|v| {
                    let res: Vec<Value> = resources
                        .list
                        .iter()
                        .filter(|d| &d.group == g && &d.version == v)
                        .map(|d| {
                            let subs: Vec<Value> = d
                                .subresources
                                .iter()
                                .map(|s| {
                                    let (sg, sv, sk) = sub_kind(d, s);
                                    json!({"subresource": s, "responseKind": {"group": sg, "version": sv, "kind": sk}, "verbs": sub_verbs(s)})
                                })
                                .collect();
                            let mut r = json!({
                                "resource": d.plural,
                                "responseKind": {"group": d.group, "version": d.version, "kind": d.kind},
                                "scope": if d.namespaced() { "Namespaced" } else { "Cluster" },
                                "singularResource": d.singular,
                                "verbs": d.verbs,
                            });
                            if !d.short_names.is_empty() {
                                r["shortNames"] = json!(d.short_names);
                            }
                            if !d.categories.is_empty() {
                                r["categories"] = json!(d.categories);
                            }
                            if !subs.is_empty() {
                                r["subresources"] = json!(subs);
                            }
                            r
                        })
                        .collect();
                    json!({"version": v, "resources": res, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items})
}

/// `/version`, for the served Kubernetes version.
pub fn version() -> Value {
    let (maj, min, patch) = api::KUBERNETES_VERSION;
    json!({
        "major": maj.to_string(), "minor": min.to_string(), "gitVersion": format!("v{maj}.{min}.{patch}"),
        "gitCommit": env!("CARGO_PKG_VERSION"), "gitTreeState": "clean", "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "rust", "compiler": "rustc", "platform": format!("{}/{}", std::env::consts::OS, match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a }),
    })
}
