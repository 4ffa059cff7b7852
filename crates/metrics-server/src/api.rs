//! The `metrics.k8s.io/v1beta1` objects as JSON (upstream's
//! `k8s.io/metrics` types and metrics-server's `pkg/api`): NodeMetrics and
//! PodMetrics with their lists, the Table form `kubectl get` asks for, and
//! the discovery documents.
//!
//! Usage is written like upstream: CPU as a decimal quantity of nanocores
//! (`12345678n`, canonical, so `5m` when it divides evenly), memory as a
//! binary-SI quantity of bytes (`13568Ki`), the window as Go's duration
//! text (`15.003s`), times in RFC 3339 with seconds.

use apimachinery::quantity::{Format, Quantity};
use serde_json::{json, Map, Value};

use crate::storage::Usage;

pub const GROUP: &str = "metrics.k8s.io";
pub const VERSION: &str = "v1beta1";
pub const GROUP_VERSION: &str = "metrics.k8s.io/v1beta1";

/// RFC 3339 with seconds, as `metav1.Time` marshals.
pub fn rfc3339(unix_ns: i64) -> String {
    let secs = unix_ns.div_euclid(1_000_000_000);
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// `{cpu, memory}` as upstream's ResourceList.
pub fn usage_list(u: &Usage) -> Value {
    let cpu = Quantity::from_nanos(i128::from(u.cpu_nanocores), Format::DecimalSI);
    let memory = Quantity::from_nanos(i128::from(u.memory) * 1_000_000_000, Format::BinarySI);
    json!({"cpu": cpu.to_string(), "memory": memory.to_string()})
}

fn metadata(
    name: &str,
    namespace: Option<&str>,
    labels: &Map<String, Value>,
    now_ns: i64,
) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    if let Some(ns) = namespace {
        m.insert("namespace".into(), json!(ns));
    }
    m.insert("creationTimestamp".into(), json!(rfc3339(now_ns)));
    if !labels.is_empty() {
        m.insert("labels".into(), Value::Object(labels.clone()));
    }
    Value::Object(m)
}

/// A NodeMetrics object.
pub fn node_metrics(name: &str, labels: &Map<String, Value>, u: &Usage, now_ns: i64) -> Value {
    json!({
        "kind": "NodeMetrics",
        "apiVersion": GROUP_VERSION,
        "metadata": metadata(name, None, labels, now_ns),
        "timestamp": rfc3339(u.timestamp_ns),
        "window": apimachinery::duration::format_go_duration(u.window_ns),
        "usage": usage_list(u),
    })
}

/// A PodMetrics object; `window` is the earliest container's.
pub fn pod_metrics(
    namespace: &str,
    name: &str,
    labels: &Map<String, Value>,
    containers: &[(String, Usage)],
    window: &Usage,
    now_ns: i64,
) -> Value {
    let containers: Vec<Value> = containers
        .iter()
        .map(|(c, u)| json!({"name": c, "usage": usage_list(u)}))
        .collect();
    json!({
        "kind": "PodMetrics",
        "apiVersion": GROUP_VERSION,
        "metadata": metadata(name, Some(namespace), labels, now_ns),
        "timestamp": rfc3339(window.timestamp_ns),
        "window": apimachinery::duration::format_go_duration(window.window_ns),
        "containers": containers,
    })
}

/// `NodeMetricsList`/`PodMetricsList`.
pub fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({
        "kind": format!("{kind}List"),
        "apiVersion": GROUP_VERSION,
        "metadata": {},
        "items": items,
    })
}

/// The summed usage of a PodMetrics (or a NodeMetrics' own) per resource.
fn total_usage(obj: &Value) -> Vec<(String, Quantity)> {
    let mut sums: Vec<(String, Quantity)> = vec![];
    let mut add = |usage: &Value| {
        for (k, v) in usage.as_object().into_iter().flatten() {
            let q = v.as_str().and_then(Quantity::parse).unwrap_or_default();
            match sums.iter_mut().find(|(n, _)| n == k) {
                Some((_, sum)) => sum.add(&q),
                None => sums.push((k.clone(), q)),
            }
        }
    };
    match obj.get("containers").and_then(Value::as_array) {
        Some(cs) => cs.iter().filter_map(|c| c.get("usage")).for_each(&mut add),
        None => obj.get("usage").into_iter().for_each(&mut add),
    }
    sums.sort_by(|a, b| a.0.cmp(&b.0));
    sums
}

/// The Table upstream's `ConvertToTable` makes: Name, one column per
/// resource of the first row (sorted), Window; each row's object as the
/// PartialObjectMetadata `includeObject=Metadata` (the default) asks for,
/// or the whole object with `Object`, or nothing with `None`.
pub fn table(items: &[Value], include_object: &str) -> Value {
    let mut columns: Vec<Value> = vec![];
    let mut names: Vec<String> = vec![];
    let mut rows = Vec::with_capacity(items.len());
    for item in items {
        let sums = total_usage(item);
        if columns.is_empty() {
            names = sums.iter().map(|(n, _)| n.clone()).collect();
            columns.push(json!({"name": "Name", "type": "string", "format": "name", "description": "Name of the resource", "priority": 0}));
            for n in &names {
                columns.push(json!({"name": n, "type": "string", "format": "quantity", "description": "", "priority": 0}));
            }
            columns.push(json!({"name": "Window", "type": "string", "format": "duration", "description": "", "priority": 0}));
        }
        let mut cells = vec![json!(apimachinery::meta::name(item))];
        for n in &names {
            let q = sums
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, q)| *q)
                .unwrap_or_default();
            cells.push(json!(q.to_string()));
        }
        let window = item
            .get("window")
            .and_then(Value::as_str)
            .and_then(|w| apimachinery::duration::parse_go_duration(w).ok())
            .map(|d| apimachinery::duration::format_go_duration(d.as_nanos() as i64))
            .unwrap_or_else(|| "0s".into());
        cells.push(json!(window));
        let mut row = json!({"cells": cells});
        match include_object {
            "None" => {}
            "Object" => row["object"] = item.clone(),
            _ => {
                row["object"] = json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": item.get("metadata").cloned().unwrap_or_else(|| json!({})),
                })
            }
        }
        rows.push(row);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// `GET /apis/metrics.k8s.io/v1beta1`.
pub fn resource_list() -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": GROUP_VERSION,
        "resources": [
            {"name": "nodes", "singularName": "", "namespaced": false, "kind": "NodeMetrics", "verbs": ["get", "list"]},
            {"name": "pods", "singularName": "", "namespaced": true, "kind": "PodMetrics", "verbs": ["get", "list"]},
        ],
    })
}

/// The group as `/apis` and `/apis/metrics.k8s.io` describe it.
pub fn api_group() -> Value {
    let v = json!({"groupVersion": GROUP_VERSION, "version": VERSION});
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": GROUP,
        "versions": [v.clone()],
        "preferredVersion": v,
    })
}

/// `GET /apis`.
pub fn api_group_list() -> Value {
    let mut g = api_group();
    if let Some(m) = g.as_object_mut() {
        m.remove("kind");
        m.remove("apiVersion");
    }
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [g]})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(cpu: u64, memory: u64) -> Usage {
        Usage {
            cpu_nanocores: cpu,
            memory,
            timestamp_ns: 1_700_000_000_500_000_000,
            window_ns: 15_003_000_000,
        }
    }

    #[test]
    fn usage_is_written_like_upstream() {
        assert_eq!(
            usage_list(&u(12_345_678, 13_893_632)),
            json!({"cpu": "12345678n", "memory": "13568Ki"})
        );
        assert_eq!(
            usage_list(&u(5_000_000, 1000)),
            json!({"cpu": "5m", "memory": "1k"})
        );
        assert_eq!(usage_list(&u(0, 0)), json!({"cpu": "0", "memory": "0"}));
    }

    #[test]
    fn node_and_pod_metrics_objects() {
        let labels: Map<String, Value> = [("app".to_string(), json!("web"))].into_iter().collect();
        let n = node_metrics(
            "n1",
            &labels,
            &u(1_000_000_000, 1 << 30),
            1_700_000_001_000_000_000,
        );
        assert_eq!(n["kind"], "NodeMetrics");
        assert_eq!(n["apiVersion"], "metrics.k8s.io/v1beta1");
        assert_eq!(n["metadata"]["labels"]["app"], "web");
        assert_eq!(n["metadata"]["creationTimestamp"], "2023-11-14T22:13:21Z");
        assert_eq!(n["timestamp"], "2023-11-14T22:13:20Z");
        assert_eq!(n["window"], "15.003s");
        assert_eq!(n["usage"], json!({"cpu": "1", "memory": "1Gi"}));
        let containers = vec![
            ("a".to_string(), u(2_000_000, 4096)),
            ("b".to_string(), u(3_000_000, 8192)),
        ];
        let p = pod_metrics(
            "default",
            "web-1",
            &Map::new(),
            &containers,
            &containers[0].1,
            0,
        );
        assert_eq!(p["metadata"]["namespace"], "default");
        assert!(p["metadata"].get("labels").is_none());
        assert_eq!(
            p["containers"][1],
            json!({"name": "b", "usage": {"cpu": "3m", "memory": "8Ki"}})
        );
        let t = table(&[p.clone()], "");
        let cols: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(cols, ["Name", "cpu", "memory", "Window"]);
        assert_eq!(
            t["rows"][0]["cells"],
            json!(["web-1", "5m", "12Ki", "15.003s"])
        );
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert!(table(&[p], "None")["rows"][0].get("object").is_none());
        assert_eq!(list("PodMetrics", vec![])["kind"], "PodMetricsList");
    }
}
