//! Impersonation (upstream's `endpoints/filters/impersonation.go`,
//! `kubectl --as/--as-group/--as-uid`): `Impersonate-User`,
//! `Impersonate-Group`, `Impersonate-Uid` and `Impersonate-Extra-<key>`
//! make the request act as another user once the requester may
//! `impersonate` each of them; the headers are then removed.

use apimachinery::ApiError;
use component_base::authn::User;
use http::HeaderMap;

use super::Attributes;
use crate::state::ApiState;

const USER: &str = "impersonate-user";
const GROUP: &str = "impersonate-group";
const UID: &str = "impersonate-uid";
const EXTRA_PREFIX: &str = "impersonate-extra-";

fn values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect()
}

/// The user the request acts as: `requester` when it impersonates no one.
pub fn apply(state: &ApiState, headers: &mut HeaderMap, requester: User) -> Result<User, ApiError> {
    let names = values(headers, USER);
    let groups = values(headers, GROUP);
    let uids = values(headers, UID);
    let mut extra: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (k, v) in headers.iter() {
        if let Some(key) = k.as_str().strip_prefix(EXTRA_PREFIX) {
            let key = percent_encoding::percent_decode_str(key)
                .decode_utf8_lossy()
                .to_lowercase();
            if let Ok(v) = v.to_str() {
                extra.entry(key).or_default().push(v.to_string());
            }
        }
    }
    if names.is_empty() {
        if !groups.is_empty() || !uids.is_empty() || !extra.is_empty() {
            return Err(ApiError::internal(
                "Internal error occurred: requested impersonation of groups, uid or extra without impersonating a user",
            ));
        }
        return Ok(requester);
    }
    let name = names[0].clone();
    let ask = |verb: &str, group: &str, resource: &str, subresource: &str, ns: &str, n: &str| {
        let a = Attributes {
            user: &requester,
            verb,
            resource_request: true,
            namespace: ns,
            api_group: group,
            resource,
            subresource,
            name: n,
            path: "",
        };
        super::check(state, &a)
    };
    let service_account = name
        .strip_prefix("system:serviceaccount:")
        .and_then(|r| r.split_once(':'));
    match service_account {
        Some((ns, sa)) => ask("impersonate", "", "serviceaccounts", "", ns, sa)?,
        None => ask("impersonate", "", "users", "", "", &name)?,
    }
    for g in &groups {
        ask("impersonate", "", "groups", "", "", g)?;
    }
    for u in &uids {
        ask("impersonate", "authentication.k8s.io", "uids", "", "", u)?;
    }
    for (k, vs) in &extra {
        for v in vs {
            ask(
                "impersonate",
                "authentication.k8s.io",
                "userextras",
                k,
                "",
                v,
            )?;
        }
    }
    let mut acting_groups = groups.clone();
    if groups.is_empty() {
        if let Some((ns, _)) = service_account {
            acting_groups = vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
            ];
        }
    }
    if name == "system:anonymous" {
        if !acting_groups.iter().any(|g| g == "system:unauthenticated") {
            acting_groups.push("system:unauthenticated".into());
        }
    } else if !acting_groups
        .iter()
        .any(|g| g == "system:authenticated" || g == "system:unauthenticated")
    {
        acting_groups.push("system:authenticated".into());
    }
    let remove: Vec<http::HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("impersonate-"))
        .cloned()
        .collect();
    for k in remove {
        headers.remove(k);
    }
    tracing::debug!(requester = %requester.name, acting_as = %name, "impersonating");
    Ok(User {
        name,
        uid: uids.first().cloned().unwrap_or_default(),
        groups: acting_groups,
        extra,
    })
}
