//! autoscaling/v1 HorizontalPodAutoscalers: the same objects as
//! autoscaling/v2, stored once in the v2 form (upstream's
//! `pkg/apis/autoscaling/v1/conversion.go`). v1 has one field for a CPU
//! utilization target and one for the current CPU utilization; every other
//! metric, the current metrics, the conditions and the behavior travel in
//! upstream's `autoscaling.alpha.kubernetes.io/*` annotations, written in
//! v1's metric shapes (`targetAverageUtilization`, `currentAverageValue`, …),
//! so a v1 client's round trip loses nothing.

use serde_json::{json, Map, Value};

const METRICS: &str = "autoscaling.alpha.kubernetes.io/metrics";
const CURRENT_METRICS: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
const CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
const BEHAVIOR: &str = "autoscaling.alpha.kubernetes.io/behavior";

fn take_annotation(obj: &mut Value, key: &str) -> Option<Value> {
    let anns = obj.pointer_mut("/metadata/annotations")?.as_object_mut()?;
    let text = anns.remove(key)?;
    if anns.is_empty() {
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("annotations");
        }
    }
    serde_json::from_str(text.as_str()?).ok()
}

fn put_annotation(obj: &mut Value, key: &str, value: &Value) {
    let meta = apimachinery::meta::metadata_mut(obj);
    let anns = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(a) = anns.as_object_mut() {
        a.insert(key.into(), Value::String(value.to_string()));
    }
}

/// Copies the fields of `from` named in `pairs` (from-name, to-name).
fn rename(from: &Value, pairs: &[(&str, &str)]) -> Map<String, Value> {
    let mut out = Map::new();
    for (a, b) in pairs {
        if let Some(v) = from.get(*a).filter(|v| !v.is_null()) {
            out.insert(b.to_string(), v.clone());
        }
    }
    out
}

fn metric_identifier(name: &Value, selector: Option<&Value>) -> Value {
    let mut m = json!({"name": name});
    if let Some(s) = selector.filter(|s| !s.is_null()) {
        m["selector"] = s.clone();
    }
    m
}

/// A target of `Utilization`, `AverageValue` or `Value` from v1's fields.
fn target(utilization: Option<&Value>, average: Option<&Value>, value: Option<&Value>) -> Value {
    if let Some(u) = utilization.filter(|v| !v.is_null()) {
        json!({"type": "Utilization", "averageUtilization": u})
    } else if let Some(a) = average.filter(|v| !v.is_null()) {
        json!({"type": "AverageValue", "averageValue": a})
    } else {
        json!({"type": "Value", "value": value.cloned().unwrap_or(Value::Null)})
    }
}

/// One v1 MetricSpec in the v2 shape.
fn spec_to_v2(m: &Value) -> Value {
    let t = m["type"].as_str().unwrap_or_default();
    match t {
        "Resource" | "ContainerResource" => {
            let key = if t == "Resource" {
                "resource"
            } else {
                "containerResource"
            };
            let r = &m[key];
            let mut out = rename(r, &[("name", "name"), ("container", "container")]);
            out.insert(
                "target".into(),
                target(
                    r.get("targetAverageUtilization"),
                    r.get("targetAverageValue"),
                    None,
                ),
            );
            json!({"type": t, key: out})
        }
        "Pods" => {
            let p = &m["pods"];
            json!({"type": t, "pods": {
                "metric": metric_identifier(&p["metricName"], p.get("selector")),
                "target": {"type": "AverageValue", "averageValue": p["targetAverageValue"]},
            }})
        }
        "Object" => {
            let o = &m["object"];
            json!({"type": t, "object": {
                "describedObject": o["target"],
                "metric": metric_identifier(&o["metricName"], o.get("selector")),
                "target": target(None, o.get("averageValue"), o.get("targetValue")),
            }})
        }
        "External" => {
            let e = &m["external"];
            json!({"type": t, "external": {
                "metric": metric_identifier(&e["metricName"], e.get("metricSelector")),
                "target": target(None, e.get("targetAverageValue"), e.get("targetValue")),
            }})
        }
        _ => m.clone(),
    }
}

/// One v2 MetricSpec in v1's shape.
fn spec_to_v1(m: &Value) -> Value {
    let t = m["type"].as_str().unwrap_or_default();
    match t {
        "Resource" | "ContainerResource" => {
            let key = if t == "Resource" {
                "resource"
            } else {
                "containerResource"
            };
            let r = &m[key];
            let mut out = rename(r, &[("name", "name"), ("container", "container")]);
            out.extend(rename(
                &r["target"],
                &[
                    ("averageUtilization", "targetAverageUtilization"),
                    ("averageValue", "targetAverageValue"),
                ],
            ));
            json!({"type": t, key: out})
        }
        "Pods" => {
            let p = &m["pods"];
            let mut out = rename(
                &p["metric"],
                &[("name", "metricName"), ("selector", "selector")],
            );
            out.extend(rename(
                &p["target"],
                &[("averageValue", "targetAverageValue")],
            ));
            json!({"type": t, "pods": out})
        }
        "Object" => {
            let o = &m["object"];
            let mut out = rename(o, &[("describedObject", "target")]);
            out.extend(rename(
                &o["metric"],
                &[("name", "metricName"), ("selector", "selector")],
            ));
            out.extend(rename(
                &o["target"],
                &[("value", "targetValue"), ("averageValue", "averageValue")],
            ));
            json!({"type": t, "object": out})
        }
        "External" => {
            let e = &m["external"];
            let mut out = rename(
                &e["metric"],
                &[("name", "metricName"), ("selector", "metricSelector")],
            );
            out.extend(rename(
                &e["target"],
                &[
                    ("value", "targetValue"),
                    ("averageValue", "targetAverageValue"),
                ],
            ));
            json!({"type": t, "external": out})
        }
        _ => m.clone(),
    }
}

/// One v1 MetricStatus in the v2 shape.
fn status_to_v2(m: &Value) -> Value {
    let t = m["type"].as_str().unwrap_or_default();
    match t {
        "Resource" | "ContainerResource" => {
            let key = if t == "Resource" {
                "resource"
            } else {
                "containerResource"
            };
            let r = &m[key];
            let mut out = rename(r, &[("name", "name"), ("container", "container")]);
            out.insert(
                "current".into(),
                Value::Object(rename(
                    r,
                    &[
                        ("currentAverageUtilization", "averageUtilization"),
                        ("currentAverageValue", "averageValue"),
                    ],
                )),
            );
            json!({"type": t, key: out})
        }
        "Pods" => {
            let p = &m["pods"];
            json!({"type": t, "pods": {
                "metric": metric_identifier(&p["metricName"], p.get("selector")),
                "current": rename(p, &[("currentAverageValue", "averageValue")]),
            }})
        }
        "Object" => {
            let o = &m["object"];
            json!({"type": t, "object": {
                "describedObject": o["target"],
                "metric": metric_identifier(&o["metricName"], o.get("selector")),
                "current": rename(o, &[("currentValue", "value"), ("averageValue", "averageValue")]),
            }})
        }
        "External" => {
            let e = &m["external"];
            json!({"type": t, "external": {
                "metric": metric_identifier(&e["metricName"], e.get("metricSelector")),
                "current": rename(e, &[("currentValue", "value"), ("currentAverageValue", "averageValue")]),
            }})
        }
        _ => m.clone(),
    }
}

/// One v2 MetricStatus in v1's shape.
fn status_to_v1(m: &Value) -> Value {
    let t = m["type"].as_str().unwrap_or_default();
    match t {
        "Resource" | "ContainerResource" => {
            let key = if t == "Resource" {
                "resource"
            } else {
                "containerResource"
            };
            let r = &m[key];
            let mut out = rename(r, &[("name", "name"), ("container", "container")]);
            out.extend(rename(
                &r["current"],
                &[
                    ("averageUtilization", "currentAverageUtilization"),
                    ("averageValue", "currentAverageValue"),
                ],
            ));
            json!({"type": t, key: out})
        }
        "Pods" => {
            let p = &m["pods"];
            let mut out = rename(
                &p["metric"],
                &[("name", "metricName"), ("selector", "selector")],
            );
            out.extend(rename(
                &p["current"],
                &[("averageValue", "currentAverageValue")],
            ));
            json!({"type": t, "pods": out})
        }
        "Object" => {
            let o = &m["object"];
            let mut out = rename(o, &[("describedObject", "target")]);
            out.extend(rename(
                &o["metric"],
                &[("name", "metricName"), ("selector", "selector")],
            ));
            out.extend(rename(
                &o["current"],
                &[("value", "currentValue"), ("averageValue", "averageValue")],
            ));
            json!({"type": t, "object": out})
        }
        "External" => {
            let e = &m["external"];
            let mut out = rename(
                &e["metric"],
                &[("name", "metricName"), ("selector", "metricSelector")],
            );
            out.extend(rename(
                &e["current"],
                &[
                    ("value", "currentValue"),
                    ("averageValue", "currentAverageValue"),
                ],
            ));
            json!({"type": t, "external": out})
        }
        _ => m.clone(),
    }
}

fn is_cpu_utilization(m: &Value, field: &str) -> Option<Value> {
    (m["type"] == "Resource" && m["resource"]["name"] == "cpu")
        .then(|| m["resource"][field]["averageUtilization"].clone())
        .filter(|u| u.is_number())
}

/// autoscaling/v1 → the stored autoscaling/v2 form.
pub fn v1_to_v2(mut v: Value) -> Value {
    let other = take_annotation(&mut v, METRICS);
    let current_other = take_annotation(&mut v, CURRENT_METRICS);
    let conditions = take_annotation(&mut v, CONDITIONS);
    let behavior = take_annotation(&mut v, BEHAVIOR);
    v["apiVersion"] = json!("autoscaling/v2");
    if let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut) {
        let cpu = spec.remove("targetCPUUtilizationPercentage");
        let mut metrics: Vec<Value> = other
            .as_ref()
            .and_then(Value::as_array)
            .map(|ms| ms.iter().map(spec_to_v2).collect())
            .unwrap_or_default();
        if let Some(u) = cpu.filter(Value::is_number) {
            metrics.push(json!({"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": u}}}));
        }
        if !metrics.is_empty() {
            spec.insert("metrics".into(), Value::Array(metrics));
        }
        if let Some(b) = behavior {
            spec.insert("behavior".into(), b);
        }
    }
    if let Some(status) = v.get_mut("status").and_then(Value::as_object_mut) {
        let cpu = status.remove("currentCPUUtilizationPercentage");
        let mut current: Vec<Value> = current_other
            .as_ref()
            .and_then(Value::as_array)
            .map(|ms| ms.iter().map(status_to_v2).collect())
            .unwrap_or_default();
        if let Some(u) = cpu.filter(Value::is_number) {
            current.push(json!({"type": "Resource", "resource": {"name": "cpu",
                "current": {"averageUtilization": u}}}));
        }
        if !current.is_empty() {
            status.insert("currentMetrics".into(), Value::Array(current));
        }
        if let Some(c) = conditions {
            status.insert("conditions".into(), c);
        }
    }
    let mut typed = crate::decode::round_trip::<
        k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler,
    >(v.clone(), crate::defaults::hpa)
    .map(|d| d.value)
    .unwrap_or(v);
    if typed
        .get("status")
        .is_some_and(|s| s.as_object().is_some_and(Map::is_empty))
    {
        if let Some(m) = typed.as_object_mut() {
            m.remove("status");
        }
    }
    typed
}

/// The stored autoscaling/v2 form → autoscaling/v1.
pub fn v2_to_v1(mut v: Value) -> Value {
    v["apiVersion"] = json!("autoscaling/v1");
    let mut annotations: Vec<(&str, Value)> = vec![];
    if let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut) {
        let metrics = spec.remove("metrics");
        let mut other = vec![];
        for m in metrics
            .as_ref()
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match is_cpu_utilization(m, "target") {
                Some(u) if !spec.contains_key("targetCPUUtilizationPercentage") => {
                    spec.insert("targetCPUUtilizationPercentage".into(), u);
                }
                _ => other.push(spec_to_v1(m)),
            }
        }
        if !other.is_empty() {
            annotations.push((METRICS, Value::Array(other)));
        }
        if let Some(b) = spec.remove("behavior").filter(|b| !b.is_null()) {
            annotations.push((BEHAVIOR, b));
        }
    }
    if let Some(status) = v.get_mut("status").and_then(Value::as_object_mut) {
        let current = status.remove("currentMetrics");
        let mut other = vec![];
        for m in current
            .as_ref()
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match is_cpu_utilization(m, "current") {
                Some(u) if !status.contains_key("currentCPUUtilizationPercentage") => {
                    status.insert("currentCPUUtilizationPercentage".into(), u);
                }
                _ => other.push(status_to_v1(m)),
            }
        }
        if !other.is_empty() {
            annotations.push((CURRENT_METRICS, Value::Array(other)));
        }
        if let Some(c) = status
            .remove("conditions")
            .filter(|c| c.as_array().is_some_and(|a| !a.is_empty()))
        {
            annotations.push((CONDITIONS, c));
        }
        status.entry("currentReplicas").or_insert(json!(0));
    }
    for (k, a) in annotations {
        put_annotation(&mut v, k, &a);
    }
    v
}

/// Field selectors name the same fields in both versions.
pub fn field_label(label: &str) -> Option<&'static str> {
    match label {
        "metadata.name" => Some("metadata.name"),
        "metadata.namespace" => Some("metadata.namespace"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v1_cpu_target_is_a_v2_resource_metric_and_back() {
        let v1 = json!({
            "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 50},
        });
        let v2 = v1_to_v2(v1.clone());
        assert_eq!(v2["apiVersion"], "autoscaling/v2");
        assert_eq!(
            v2["spec"]["metrics"],
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}])
        );
        assert!(v2["spec"].get("targetCPUUtilizationPercentage").is_none());
        assert_eq!(v2_to_v1(v2), v1);
    }

    #[test]
    fn no_target_defaults_to_80_percent_and_min_one() {
        let v2 = v1_to_v2(
            json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "w"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "w"}, "maxReplicas": 3}}),
        );
        assert_eq!(
            v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            80
        );
        assert_eq!(v2["spec"]["minReplicas"], 1);
        assert_eq!(v2_to_v1(v2)["spec"]["targetCPUUtilizationPercentage"], 80);
    }

    #[test]
    fn other_metrics_status_and_conditions_travel_in_annotations() {
        let v2 = json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "minReplicas": 1, "maxReplicas": 5,
                     "metrics": [
                        {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}},
                        {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}},
                        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
                     ],
                     "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max",
                                  "policies": [{"type": "Pods", "value": 1, "periodSeconds": 30}]}}},
            "status": {"currentReplicas": 2, "desiredReplicas": 3,
                       "currentMetrics": [
                          {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 90, "averageValue": "90m"}}},
                          {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "50Mi"}}},
                       ],
                       "conditions": [{"type": "AbleToScale", "status": "True", "reason": "SucceededRescale"}]},
        });
        let v1 = v2_to_v1(v2.clone());
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 60);
        assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 90);
        let ann = |k: &str| -> Value {
            serde_json::from_str(v1["metadata"]["annotations"][k].as_str().unwrap()).unwrap()
        };
        assert_eq!(
            ann(METRICS),
            json!([{"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "100Mi"}},
                   {"type": "Pods", "pods": {"metricName": "qps", "targetAverageValue": "10"}}])
        );
        assert_eq!(
            ann(CURRENT_METRICS),
            json!([{"type": "Resource", "resource": {"name": "memory", "currentAverageValue": "50Mi"}}])
        );
        assert_eq!(ann(CONDITIONS)[0]["reason"], "SucceededRescale");
        assert_eq!(ann(BEHAVIOR)["scaleDown"]["stabilizationWindowSeconds"], 60);
        // Back to v2: the same metrics (annotation ones first, as upstream),
        // the CPU current figure, the conditions and behavior.
        let back = v1_to_v2(v1);
        assert!(back["metadata"].get("annotations").is_none());
        assert_eq!(back["spec"]["metrics"][0], v2["spec"]["metrics"][0]);
        assert_eq!(back["spec"]["metrics"][1], v2["spec"]["metrics"][1]);
        assert_eq!(back["spec"]["metrics"][2], v2["spec"]["metrics"][2]);
        assert_eq!(
            back["spec"]["behavior"]["scaleDown"],
            v2["spec"]["behavior"]["scaleDown"]
        );
        assert_eq!(
            back["spec"]["behavior"]["scaleUp"]["selectPolicy"], "Max",
            "behavior defaulted"
        );
        assert_eq!(
            back["status"]["currentMetrics"][1]["resource"]["current"]["averageUtilization"],
            90
        );
        assert_eq!(back["status"]["conditions"], v2["status"]["conditions"]);
    }
}
