//! ClusterIP and NodePort allocation for Services (upstream's
//! `registry/core/service/ipallocator` and `portallocator`), from the set of
//! Services in storage, serialised by a lock in this server.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use apimachinery::field::FieldError;
use apimachinery::{meta, ApiError};
use serde_json::{json, Value};
use storage::ListOptions;

use crate::state::ApiState;

async fn used(state: &ApiState) -> Result<(HashSet<Ipv4Addr>, HashSet<i64>), ApiError> {
    let prefix = format!("{}services/specs/", state.prefix);
    let all = |_: &Value| true;
    let list = state
        .store
        .list(&prefix, &ListOptions::default(), &all)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut ips = HashSet::new();
    let mut ports = HashSet::new();
    for s in list.items {
        if let Some(ip) = s
            .value
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .and_then(|i| i.parse().ok())
        {
            ips.insert(ip);
        }
        for p in s
            .value
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(n) = p.get("nodePort").and_then(Value::as_i64) {
                ports.insert(n);
            }
        }
    }
    Ok((ips, ports))
}

fn invalid(obj: &Value, errs: Vec<FieldError>) -> ApiError {
    ApiError::invalid("Service", "", meta::name(obj), &errs)
}

/// Fills `spec.clusterIP(s)`, `ipFamilies` and node ports of a new Service.
pub async fn allocate(state: &ApiState, svc: &mut Value) -> Result<(), ApiError> {
    let _guard = state.service_ips.lock().unwrap_or_else(|p| p.into_inner());
    // The lock is std's and never held across an await: take the snapshot first.
    drop(_guard);
    let (ips, ports) = used(state).await?;
    let _guard = state.service_ips.lock().unwrap_or_else(|p| p.into_inner());
    let ty = svc
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    if ty == "ExternalName" {
        return Ok(());
    }
    let (base, bits) = state.service_net;
    let size = 1u32 << (32 - bits as u32);
    let base_n = u32::from(base);
    let requested = svc
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let ip = match requested.as_str() {
        "None" => None,
        "" => {
            let offset = 1 + rand::random::<u32>() % (size - 2);
            let found = (0..size - 2)
                .map(|i| Ipv4Addr::from(base_n + 1 + (offset - 1 + i) % (size - 2)))
                .find(|ip| !ips.contains(ip) && u32::from(*ip) != base_n + 1);
            Some(found.ok_or_else(|| {
                ApiError::internal("failed to allocate a serviceIP: range is full")
            })?)
        }
        s => {
            let ip: Ipv4Addr = s.parse().map_err(|_| {
                invalid(
                    svc,
                    vec![FieldError::invalid_str(
                        "spec.clusterIPs[0]",
                        s,
                        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                    )],
                )
            })?;
            let n = u32::from(ip);
            if n <= base_n || n >= base_n + size - 1 {
                return Err(invalid(svc, vec![FieldError::invalid_str("spec.clusterIPs[0]", s, &format!("failed to allocate IP {s}: the provided IP ({s}) is not in the valid range. The range of valid IPs is {}/{bits}", base))]));
            }
            if ips.contains(&ip) {
                return Err(invalid(
                    svc,
                    vec![FieldError::invalid_str(
                        "spec.clusterIPs[0]",
                        s,
                        &format!("failed to allocate IP {s}: provided IP is already allocated"),
                    )],
                ));
            }
            Some(ip)
        }
    };
    let spec = &mut svc["spec"];
    match ip {
        Some(ip) => {
            spec["clusterIP"] = json!(ip.to_string());
            spec["clusterIPs"] = json!([ip.to_string()]);
        }
        None => {
            spec["clusterIP"] = json!("None");
            spec["clusterIPs"] = json!(["None"]);
        }
    }
    spec["ipFamilies"] = json!(["IPv4"]);
    if spec.get("ipFamilyPolicy").is_none() {
        spec["ipFamilyPolicy"] = json!("SingleStack");
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        let (lo, hi) = state.config.service_node_port_range;
        let mut taken = ports;
        if let Some(list) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for (i, p) in list.iter_mut().enumerate() {
                match p.get("nodePort").and_then(Value::as_i64) {
                    Some(n) if n != 0 => {
                        if n < lo as i64 || n > hi as i64 || !taken.insert(n) {
                            return Err(ApiError::invalid(
                                "Service",
                                "",
                                "",
                                &[FieldError::invalid(
                                    format!("spec.ports[{i}].nodePort"),
                                    &json!(n),
                                    if taken.contains(&n) {
                                        "provided port is already allocated".to_string()
                                    } else {
                                        format!("provided port is not in the valid range. The range of valid ports is {lo}-{hi}")
                                    },
                                )],
                            ));
                        }
                    }
                    _ => {
                        let span = (hi - lo + 1) as i64;
                        let start = rand::random::<u32>() as i64 % span;
                        let n = (0..span)
                            .map(|k| lo as i64 + (start + k) % span)
                            .find(|n| !taken.contains(n))
                            .ok_or_else(|| ApiError::internal("range is full"))?;
                        taken.insert(n);
                        p["nodePort"] = json!(n);
                    }
                }
            }
        }
    }
    Ok(())
}
