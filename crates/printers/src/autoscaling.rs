//! The HorizontalPodAutoscaler table (upstream's `printHorizontalPodAutoscaler`
//! and `formatHPAMetrics`).
//!
//! Metrics are read in the autoscaling/v2 shape; an autoscaling/v1 object's
//! `targetCPUUtilizationPercentage` reads as the single CPU utilization metric
//! upstream's conversion to the internal type makes of it.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::util::{age, arr_at, cell, get, int_at, name, opt_int, quantity_ptr, str_at};
use crate::{docs, Column, Printer, AGE, NAME};

pub(crate) const PRINTERS: &[Printer] = &[Printer {
    group: "autoscaling",
    kind: "HorizontalPodAutoscaler",
    columns: HPA_COLUMNS,
    cells: hpa_cells,
}];

const HPA_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Reference", "string", docs::HPA_REF),
    Column::new("Targets", "string", docs::HPA_METRICS),
    Column::new("MinPods", "string", docs::HPA_MIN),
    Column::new("MaxPods", "string", docs::HPA_MAX),
    Column::new("Replicas", "string", docs::HPAS_CURRENT),
    AGE,
];

/// Spec and status metrics, converting the autoscaling/v1 CPU fields when present.
fn metrics(obj: &Value) -> (Vec<Value>, Vec<Value>) {
    let specs = arr_at(obj, &["spec", "metrics"]).to_vec();
    let statuses = arr_at(obj, &["status", "currentMetrics"]).to_vec();
    if !specs.is_empty() {
        return (specs, statuses);
    }
    let Some(target) = opt_int(obj, &["spec", "targetCPUUtilizationPercentage"]) else {
        return (specs, statuses);
    };
    let spec = json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}});
    let statuses = match opt_int(obj, &["status", "currentCPUUtilizationPercentage"]) {
        Some(current) => vec![
            json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": current}}}),
        ],
        None => Vec::new(),
    };
    (vec![spec], statuses)
}

/// `current/target` of a Resource or ContainerResource metric.
fn resource_metric(spec: &Value, status: Option<&Value>) -> String {
    let resource = str_at(spec, &["name"]);
    if let Some(target) = get(spec, &["target", "averageValue"]).filter(|v| !v.is_null()) {
        let current = status.map_or("<unknown>".to_string(), |s| {
            quantity_ptr(get(s, &["current", "averageValue"]))
        });
        return format!("{resource}: {current}/{}", quantity_ptr(Some(target)));
    }
    let current = status
        .and_then(|s| opt_int(s, &["current", "averageUtilization"]))
        .map_or("<unknown>".to_string(), |u| format!("{u}%"));
    let target = opt_int(spec, &["target", "averageUtilization"])
        .map_or("<auto>".to_string(), |u| format!("{u}%"));
    format!("{resource}: {current}/{target}")
}

/// `current/target` of an Object or External metric, "(avg)" for average targets.
fn value_metric(spec: &Value, status: Option<&Value>) -> String {
    if let Some(target) = get(spec, &["target", "averageValue"]).filter(|v| !v.is_null()) {
        let current = status
            .and_then(|s| get(s, &["current", "averageValue"]).filter(|v| !v.is_null()))
            .map_or("<unknown>".to_string(), |v| quantity_ptr(Some(v)));
        return format!("{current}/{} (avg)", quantity_ptr(Some(target)));
    }
    let current = status.map_or("<unknown>".to_string(), |s| {
        quantity_ptr(get(s, &["current", "value"]))
    });
    format!(
        "{current}/{}",
        quantity_ptr(get(spec, &["target", "value"]))
    )
}

/// Upstream's `formatHPAMetrics`: at most two metrics, then "+ N more...".
fn format_metrics(specs: &[Value], statuses: &[Value]) -> String {
    const MAX: usize = 2;
    if specs.is_empty() {
        return "<none>".to_string();
    }
    let mut list: Vec<String> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        // The status of the same index, when it has the part this metric type reads.
        let status = |part: &str| {
            statuses
                .get(i)
                .and_then(|s| get(s, &[part]))
                .filter(|p| p.is_object())
        };
        let empty = Value::Null;
        let part = |field: &str| get(spec, &[field]).unwrap_or(&empty);
        let text = match str_at(spec, &["type"]) {
            "External" => value_metric(part("external"), status("external")),
            "Object" => value_metric(part("object"), status("object")),
            "Pods" => {
                let current = status("pods").map_or("<unknown>".to_string(), |s| {
                    quantity_ptr(get(s, &["current", "averageValue"]))
                });
                format!(
                    "{current}/{}",
                    quantity_ptr(get(part("pods"), &["target", "averageValue"]))
                )
            }
            "Resource" => resource_metric(part("resource"), status("resource")),
            "ContainerResource" => {
                resource_metric(part("containerResource"), status("containerResource"))
            }
            _ => "<unknown type>".to_string(),
        };
        list.push(text);
    }
    let count = list.len();
    if count > MAX {
        list.truncate(MAX);
        return format!("{} + {} more...", list.join(", "), count - MAX);
    }
    list.join(", ")
}

fn hpa_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        str_at(obj, &["spec", "scaleTargetRef", "kind"]),
        str_at(obj, &["spec", "scaleTargetRef", "name"])
    );
    let (specs, statuses) = metrics(obj);
    let min_pods =
        opt_int(obj, &["spec", "minReplicas"]).map_or("<unset>".to_string(), |m| m.to_string());
    vec![
        cell(name(obj)),
        cell(reference),
        cell(format_metrics(&specs, &statuses)),
        cell(min_pods),
        Value::from(int_at(obj, &["spec", "maxReplicas"])),
        Value::from(int_at(obj, &["status", "currentReplicas"])),
        age(obj, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::now;

    #[test]
    fn hpa_cells_match_upstream() {
        let hpa = json!({"metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 10,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "500Mi"}}}]},
            "status": {"currentReplicas": 3, "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 45, "averageValue": "90m"}}}]}});
        assert_eq!(
            hpa_cells(&hpa, now()),
            vec![
                json!("web"),
                json!("Deployment/web"),
                json!("cpu: 45%/80%, memory: <unknown>/500Mi"),
                json!("2"),
                json!(10),
                json!(3),
                json!("<unknown>")
            ]
        );
    }

    #[test]
    fn metric_formats() {
        let specs = [
            json!({"type": "Pods", "pods": {"target": {"type": "AverageValue", "averageValue": "1k"}}}),
            json!({"type": "Object", "object": {"target": {"type": "Value", "value": "10"}}}),
            json!({"type": "External", "external": {"target": {"type": "AverageValue", "averageValue": "30"}}}),
        ];
        let statuses = [
            json!({"type": "Pods", "pods": {"current": {"averageValue": "850"}}}),
            json!({"type": "Object", "object": {"current": {"value": "7"}}}),
        ];
        assert_eq!(format_metrics(&specs[..2], &statuses), "850/1k, 7/10");
        assert_eq!(
            format_metrics(&specs, &statuses),
            "850/1k, 7/10 + 1 more..."
        );
        assert_eq!(format_metrics(&specs[2..], &[]), "<unknown>/30 (avg)");
        assert_eq!(
            format_metrics(&[json!({"type": "Bogus"})], &[]),
            "<unknown type>"
        );
        assert_eq!(
            format_metrics(
                &[
                    json!({"type": "ContainerResource", "containerResource": {"name": "cpu", "target": {}}})
                ],
                &[]
            ),
            "cpu: <unknown>/<auto>"
        );
        assert_eq!(format_metrics(&[], &[]), "<none>");
    }

    #[test]
    fn autoscaling_v1_cpu_target() {
        let v1 = json!({"spec": {"scaleTargetRef": {"kind": "ReplicaSet", "name": "rs"}, "maxReplicas": 4,
            "targetCPUUtilizationPercentage": 50}, "status": {"currentCPUUtilizationPercentage": 20}});
        let row = hpa_cells(&v1, now());
        assert_eq!(
            row[1..5],
            [
                json!("ReplicaSet/rs"),
                json!("cpu: 20%/50%"),
                json!("<unset>"),
                json!(4)
            ]
        );
    }
}
