//! API discovery for the controllers that handle every kind (namespace
//! deletion, garbage collection): upstream's
//! `ServerPreferredResources` — each group's preferred version, without
//! subresources — with per-group failures reported instead of failing the
//! whole pass (an unavailable aggregated API must not stop namespace
//! deletion elsewhere).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResource;
use kube::api::ApiResource;

use crate::Error;

/// One resource found by discovery.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Gvr {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub kind: String,
    pub namespaced: bool,
    pub verbs: Vec<String>,
}

impl Gvr {
    /// kube-rs's dynamic-type description of this resource.
    pub fn api_resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.clone(),
            version: self.version.clone(),
            api_version: if self.group.is_empty() {
                self.version.clone()
            } else {
                format!("{}/{}", self.group, self.version)
            },
            kind: self.kind.clone(),
            plural: self.resource.clone(),
        }
    }

    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// `pods.`, `widgets.example.com`: upstream's `resource.group` spelling.
    pub fn group_resource(&self) -> String {
        format!("{}.{}", self.resource, self.group)
    }
}

/// Every resource in each group's preferred version, and the group
/// versions whose discovery failed (with the error).
pub async fn discover(client: &kube::Client) -> Result<(Vec<Gvr>, Vec<String>), Error> {
    let mut out = Vec::new();
    let mut failures = Vec::new();
    let core = client
        .list_core_api_versions()
        .await
        .map_err(Error::Discovery)?;
    for v in core.versions {
        match client.list_core_api_resources(&v).await {
            Ok(list) => collect("", &v, list.resources, &mut out),
            Err(e) => failures.push(format!("{v}: {e}")),
        }
    }
    let groups = client.list_api_groups().await.map_err(Error::Discovery)?;
    for g in groups.groups {
        let Some(pv) = g
            .preferred_version
            .or_else(|| g.versions.into_iter().next())
        else {
            continue;
        };
        match client.list_api_group_resources(&pv.group_version).await {
            Ok(list) => collect(&g.name, &pv.version, list.resources, &mut out),
            Err(e) => failures.push(format!("{}: {e}", pv.group_version)),
        }
    }
    Ok((out, failures))
}

fn collect(group: &str, version: &str, resources: Vec<APIResource>, out: &mut Vec<Gvr>) {
    for r in resources {
        if r.name.contains('/') {
            continue;
        }
        out.push(Gvr {
            group: r
                .group
                .filter(|g| !g.is_empty())
                .unwrap_or_else(|| group.to_string()),
            version: r
                .version
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| version.to_string()),
            resource: r.name,
            kind: r.kind,
            namespaced: r.namespaced,
            verbs: r.verbs,
        });
    }
}
