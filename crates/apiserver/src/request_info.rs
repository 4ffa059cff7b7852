//! What a request asks for (upstream's `endpoints/request/requestinfo.go`).

/// The parsed path and verb of a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    pub is_resource: bool,
    pub verb: String,
    pub api_prefix: String,
    pub group: String,
    pub version: String,
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    /// Path segments after the api prefix.
    pub parts: Vec<String>,
}

/// Parses `/api/v1/namespaces/ns/pods/name/status` and the like; `watch`
/// is whether `?watch=true` was given.
pub fn parse(method: &str, path: &str, watch: bool) -> RequestInfo {
    let mut info = RequestInfo {
        verb: method.to_lowercase(),
        ..Default::default()
    };
    let segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let mut rest: &[String] = &segs;
    match rest.first().map(String::as_str) {
        Some("api") => {
            info.api_prefix = "api".into();
            rest = &rest[1..];
        }
        Some("apis") => {
            info.api_prefix = "apis".into();
            rest = &rest[1..];
            match rest.first() {
                Some(g) => {
                    info.group = g.clone();
                    rest = &rest[1..];
                }
                None => return info,
            }
        }
        _ => return info,
    }
    match rest.first() {
        Some(v) => {
            info.version = v.clone();
            rest = &rest[1..];
        }
        None => return info,
    }
    info.parts = rest.to_vec();
    if rest.is_empty() {
        return info;
    }
    info.is_resource = true;
    let mut watch = watch;
    if rest[0] == "watch" {
        watch = true;
        rest = &rest[1..];
    }
    if rest.first().map(String::as_str) == Some("namespaces") && rest.len() > 1 {
        if rest.len() > 2 && !["status", "finalize"].contains(&rest[2].as_str()) {
            info.namespace = rest[1].clone();
            rest = &rest[2..];
        }
        // Otherwise `/namespaces/x[/status]` is the namespace object itself.
    }
    if !rest.is_empty() {
        info.resource = rest[0].clone();
        if rest.len() > 1 {
            info.name = rest[1].clone();
        }
        if rest.len() > 2 {
            info.subresource = rest[2..].join("/");
        }
    }
    info.verb = match (method, info.name.is_empty()) {
        ("GET" | "HEAD", true) if watch => "watch",
        ("GET" | "HEAD", true) => "list",
        ("GET" | "HEAD", false) if watch => "watch",
        ("GET" | "HEAD", false) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "deletecollection",
        ("DELETE", false) => "delete",
        (other, _) => {
            return RequestInfo {
                verb: other.to_lowercase(),
                ..info
            }
        }
    }
    .into();
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstream_paths() {
        let i = parse("GET", "/api/v1/namespaces/default/pods/web/status", false);
        assert_eq!(
            (
                i.verb.as_str(),
                i.namespace.as_str(),
                i.resource.as_str(),
                i.name.as_str(),
                i.subresource.as_str()
            ),
            ("get", "default", "pods", "web", "status")
        );
        let i = parse("GET", "/apis/apps/v1/deployments", true);
        assert_eq!(
            (i.verb.as_str(), i.group.as_str(), i.resource.as_str()),
            ("watch", "apps", "deployments")
        );
        let i = parse("DELETE", "/api/v1/namespaces/kube-system/configmaps", false);
        assert_eq!(i.verb, "deletecollection");
        let i = parse("GET", "/api/v1/namespaces/kube-system", false);
        assert_eq!(
            (i.resource.as_str(), i.name.as_str(), i.namespace.as_str()),
            ("namespaces", "kube-system", "")
        );
        let i = parse("GET", "/api/v1/watch/namespaces/a/pods", false);
        assert_eq!((i.verb.as_str(), i.namespace.as_str()), ("watch", "a"));
        let i = parse("PUT", "/api/v1/namespaces/a/finalize", false);
        assert_eq!(
            (i.resource.as_str(), i.name.as_str(), i.subresource.as_str()),
            ("namespaces", "a", "finalize")
        );
        assert!(!parse("GET", "/apis/apps", false).is_resource);
        assert!(!parse("GET", "/healthz", false).is_resource);
    }
}
