//! `pods/proxy`, `services/proxy` and `nodes/proxy` (upstream's
//! `ResourceLocation` of the pod, service and node storages and
//! `ProxyREST`): the name may carry a scheme and a port
//! (`https:web:8443`); the rest of the path and the query go to the pod's
//! IP, one of the Service's ready endpoints that really is a pod, or the
//! node's kubelet.

use std::sync::Arc;

use apimachinery::{ApiError, GroupResource};
use http::{Request, Response};
use hyper::body::Incoming;
use serde_json::Value;

use super::connect::Connect;
use crate::backend::{self, Target};
use crate::request_info::RequestInfo;
use crate::response::Body;
use crate::state::ApiState;

/// Upstream's `SplitSchemeNamePort`: `name`, `name:port`, `scheme:name:port`.
pub fn split_scheme_name_port(id: &str) -> Option<(String, String, String)> {
    let parts: Vec<&str> = id.split(':').collect();
    let (scheme, name, port) = match parts.as_slice() {
        [name] => ("", *name, ""),
        [name, port] => ("", *name, *port),
        [scheme, name, port] => (*scheme, *name, *port),
        _ => return None,
    };
    if name.is_empty() || !matches!(scheme, "" | "http" | "https") {
        return None;
    }
    Some((scheme.to_string(), name.to_string(), port.to_string()))
}

/// The path after `…/<name>/proxy`, as sent, with the raw query.
fn rest_of(req: &Request<Incoming>, namespaced: bool) -> String {
    let skip = if namespaced { 7 } else { 5 };
    let path = req.uri().path();
    let rest: Vec<&str> = path.split('/').skip(skip + 1).collect();
    let mut out = format!("/{}", rest.join("/"));
    if let Some(q) = req.uri().query() {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn insecure_tls() -> Option<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(backend::AcceptAny(provider)))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Some(Arc::new(cfg))
}

fn cached(state: &ApiState, key: &str) -> Option<Value> {
    state.cacher.get(key).0.and_then(|o| o.value().ok())
}

fn join_host_port(ip: &str, port: &str) -> String {
    match (ip.contains(':'), port.is_empty()) {
        (true, true) => format!("[{ip}]"),
        (true, false) => format!("[{ip}]:{port}"),
        (false, true) => ip.to_string(),
        (false, false) => format!("{ip}:{port}"),
    }
}

fn global_unicast(ip: &str) -> bool {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => {
            !(v4.is_loopback()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified())
        }
        Ok(std::net::IpAddr::V6(v6)) => {
            !(v6.is_loopback() || v6.is_multicast() || v6.is_unspecified())
                && (v6.segments()[0] & 0xffc0) != 0xfe80
        }
        Err(_) => false,
    }
}

fn pod_location(state: &ApiState, ns: &str, id: &str, rest: String) -> Result<Target, ApiError> {
    let gr = GroupResource::new("", "pods");
    let (scheme, name, mut port) = split_scheme_name_port(id)
        .ok_or_else(|| ApiError::bad_request(format!("invalid pod request {id:?}")))?;
    let pod = cached(state, &format!("{}pods/{ns}/{name}", state.prefix))
        .ok_or_else(|| ApiError::not_found(&gr, &name))?;
    if port.is_empty() {
        port = pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find_map(|c| c.pointer("/ports/0/containerPort").and_then(Value::as_i64))
            .map(|p| p.to_string())
            .unwrap_or_default();
    }
    let ip = pod
        .pointer("/status/podIP")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !global_unicast(ip) {
        return Err(ApiError::bad_request("address not allowed"));
    }
    Ok(Target {
        authority: join_host_port(ip, if port.is_empty() { "80" } else { &port }),
        tls: if scheme == "https" {
            insecure_tls()
        } else {
            None
        },
        path_and_query: rest,
    })
}

/// Whether `addr` is an endpoint address backed by a pod with that IP
/// (upstream's `isValidAddress`: services/proxy never goes elsewhere).
fn is_pod_address(state: &ApiState, addr: &Value) -> bool {
    let ip = addr.get("ip").and_then(Value::as_str).unwrap_or("");
    let Some(target) = addr.get("targetRef") else {
        return false;
    };
    if target.get("kind").and_then(Value::as_str) != Some("Pod") {
        return false;
    }
    let ns = target
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let name = target.get("name").and_then(Value::as_str).unwrap_or("");
    cached(state, &format!("{}pods/{ns}/{name}", state.prefix))
        .and_then(|p| {
            p.pointer("/status/podIPs")
                .and_then(Value::as_array)
                .map(|ips| {
                    ips.iter()
                        .any(|i| i.get("ip").and_then(Value::as_str) == Some(ip))
                })
        })
        .unwrap_or(false)
}

fn service_location(
    state: &ApiState,
    ns: &str,
    id: &str,
    rest: String,
) -> Result<Target, ApiError> {
    let (scheme, name, mut port) = split_scheme_name_port(id)
        .ok_or_else(|| ApiError::bad_request(format!("invalid service request {id:?}")))?;
    let svc = cached(
        state,
        &format!("{}services/specs/{ns}/{name}", state.prefix),
    )
    .ok_or_else(|| ApiError::not_found(&GroupResource::new("", "services"), &name))?;
    if let Ok(number) = port.parse::<i64>() {
        port = svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| p.get("port").and_then(Value::as_i64) == Some(number))
            .map(|p| {
                p.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            })
            .ok_or_else(|| {
                ApiError::service_unavailable(format!(
                    "no service port {number} found for service {name:?}"
                ))
            })?;
    }
    let eps = cached(
        state,
        &format!("{}services/endpoints/{ns}/{name}", state.prefix),
    );
    let subsets = eps
        .as_ref()
        .and_then(|e| e.get("subsets"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if subsets.is_empty() {
        return Err(ApiError::service_unavailable(format!(
            "no endpoints available for service {name:?}"
        )));
    }
    for ss in &subsets {
        let Some(p) = ss
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| p.get("name").and_then(Value::as_str).unwrap_or("") == port)
            .and_then(|p| p.get("port").and_then(Value::as_i64))
        else {
            continue;
        };
        let address = ss
            .get("addresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|a| is_pod_address(state, a));
        if let Some(ip) = address.and_then(|a| a.get("ip")).and_then(Value::as_str) {
            return Ok(Target {
                authority: join_host_port(ip, &p.to_string()),
                tls: if scheme == "https" {
                    insecure_tls()
                } else {
                    None
                },
                path_and_query: rest,
            });
        }
    }
    Err(ApiError::service_unavailable(format!(
        "no endpoints available for service {id:?}"
    )))
}

fn node_location(state: &ApiState, id: &str, rest: String) -> Result<Target, ApiError> {
    let (scheme, name, port) = split_scheme_name_port(id)
        .ok_or_else(|| ApiError::bad_request(format!("invalid node request {id:?}")))?;
    let kubelet = super::node_authority(state, &name)?;
    let kubelet_port = kubelet.rsplit_once(':').map(|(_, p)| p).unwrap_or("");
    if port.is_empty() || port == kubelet_port {
        return Ok(Target {
            authority: kubelet,
            tls: Some(state.kubelet_tls.clone()),
            path_and_query: rest,
        });
    }
    let host = kubelet.rsplit_once(':').map(|(h, _)| h).unwrap_or(&kubelet);
    Ok(Target {
        authority: format!("{host}:{port}"),
        tls: if scheme == "https" {
            insecure_tls()
        } else {
            None
        },
        path_and_query: rest,
    })
}

/// Serves a proxy request.
pub async fn serve(
    state: &Arc<ApiState>,
    kind: Connect,
    info: &RequestInfo,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let target = match kind {
        Connect::PodProxy => pod_location(state, &info.namespace, &info.name, rest_of(&req, true))?,
        Connect::ServiceProxy => {
            service_location(state, &info.namespace, &info.name, rest_of(&req, true))?
        }
        _ => node_location(state, &info.name, rest_of(&req, false))?,
    };
    let resp = backend::forward(&target, req, &[]).await.map_err(|e| {
        tracing::info!(error = %e, "proxying failed");
        ApiError::service_unavailable(format!("error trying to reach service: {e}"))
    })?;
    // Proxied answers pass through as they are, errors included.
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_scheme_and_port_like_upstream() {
        let s = |id| split_scheme_name_port(id);
        assert_eq!(s("web"), Some(("".into(), "web".into(), "".into())));
        assert_eq!(s("web:80"), Some(("".into(), "web".into(), "80".into())));
        assert_eq!(
            s("https:web:https"),
            Some(("https".into(), "web".into(), "https".into()))
        );
        assert_eq!(s("ftp:web:21"), None);
        assert_eq!(s(":80"), None);
        assert_eq!(s("a:b:c:d"), None);
    }

    #[test]
    fn only_routable_pod_addresses_are_proxied_to() {
        assert!(global_unicast("10.88.0.5"));
        assert!(!global_unicast("127.0.0.1"));
        assert!(!global_unicast("169.254.169.254"));
        assert!(!global_unicast(""));
        assert_eq!(join_host_port("fd00::1", "80"), "[fd00::1]:80");
    }
}
