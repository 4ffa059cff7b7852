//! Reading metrics through the API server (upstream's
//! `podautoscaler/metrics/client.go`): `metrics.k8s.io/v1beta1` PodMetrics
//! for Resource and ContainerResource metrics, `custom.metrics.k8s.io/
//! v1beta2` values for Pods metrics, each as milli-units per pod.

use std::time::Duration;

use apimachinery::labels::Selector;
use jiff::Timestamp;
use serde_json::Value;

use super::replicas::{milli, PodMetric, PodMetrics};

async fn get(client: &kube::Client, path: &str) -> Result<Value, String> {
    let req = http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    client
        .request::<Value>(req)
        .await
        .map_err(|e| e.to_string())
}

fn timestamp(v: &Value) -> Timestamp {
    v.as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

fn window(v: &Value) -> Duration {
    v.as_str()
        .and_then(|w| apimachinery::duration::parse_go_duration(w).ok())
        .unwrap_or_default()
}

fn query(selector: &Selector) -> String {
    let text = selector.to_string();
    if text.is_empty() {
        return String::new();
    }
    format!(
        "?labelSelector={}",
        percent_encoding::utf8_percent_encode(&text, percent_encoding::NON_ALPHANUMERIC)
    )
}

/// Upstream's `GetResourceMetric`: each pod's usage of `resource` summed
/// over its containers (a pod missing it in one container is left out), or
/// one container's.
pub async fn resource(
    client: &kube::Client,
    namespace: &str,
    selector: &Selector,
    resource: &str,
    container: Option<&str>,
) -> Result<PodMetrics, String> {
    let path = format!(
        "/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods{}",
        query(selector)
    );
    let list = get(client, &path)
        .await
        .map_err(|e| format!("unable to fetch metrics from resource metrics API: {e}"))?;
    let items = list["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return Err("no metrics returned from resource metrics API".into());
    }
    pod_metrics(&items, resource, container)
}

/// The milli-usage per pod of a PodMetrics list.
pub fn pod_metrics(
    items: &[Value],
    resource: &str,
    container: Option<&str>,
) -> Result<PodMetrics, String> {
    let mut out = PodMetrics::new();
    for m in items {
        let name = apimachinery::meta::name(m).to_string();
        let containers = m["containers"].as_array().cloned().unwrap_or_default();
        let usage = |c: &Value| c["usage"][resource].as_str().and_then(milli);
        let value = match container {
            Some(want) => {
                let Some(c) = containers.iter().find(|c| c["name"] == want) else {
                    continue;
                };
                Some(usage(c).ok_or_else(|| {
                    format!(
                        "failed to get container metrics: failed to get resource {resource} for container {want} in pod {}/{name}",
                        apimachinery::meta::namespace(m)
                    )
                })?)
            }
            None if containers.is_empty() => None,
            None => containers
                .iter()
                .map(usage)
                .try_fold(0i64, |sum, u| u.map(|u| sum + u)),
        };
        if let Some(value) = value {
            out.insert(
                name,
                PodMetric {
                    timestamp: timestamp(&m["timestamp"]),
                    window: window(&m["window"]),
                    value,
                },
            );
        }
    }
    Ok(out)
}

/// Upstream's `GetRawMetric` for a Pods metric from the custom metrics API.
pub async fn pods(
    client: &kube::Client,
    namespace: &str,
    selector: &Selector,
    metric: &str,
    metric_selector: Option<&Value>,
) -> Result<PodMetrics, String> {
    let mut path = format!(
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/{namespace}/pods/*/{metric}{}",
        query(selector)
    );
    if let Some(ms) = metric_selector {
        let sel = Selector::from_label_selector(ms)?;
        let text = sel.to_string();
        if !text.is_empty() {
            path.push(if path.contains('?') { '&' } else { '?' });
            path.push_str("metricLabelSelector=");
            path.push_str(
                &percent_encoding::utf8_percent_encode(&text, percent_encoding::NON_ALPHANUMERIC)
                    .to_string(),
            );
        }
    }
    let list = get(client, &path)
        .await
        .map_err(|e| format!("unable to fetch metrics from custom metrics API: {e}"))?;
    let items = list["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return Err("no metrics returned from custom metrics API".into());
    }
    let mut out = PodMetrics::new();
    for m in &items {
        let name = m["describedObject"]["name"].as_str().unwrap_or_default();
        let Some(value) = m["value"].as_str().and_then(milli) else {
            continue;
        };
        let secs = m["windowSeconds"].as_u64().unwrap_or(60);
        out.insert(
            name.to_string(),
            PodMetric {
                timestamp: timestamp(&m["timestamp"]),
                window: Duration::from_secs(secs),
                value,
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_metrics_sum_containers_and_skip_incomplete_pods() {
        let items = vec![
            json!({"metadata": {"name": "a", "namespace": "n"}, "timestamp": "2026-01-01T00:00:00Z", "window": "15s",
                   "containers": [{"name": "x", "usage": {"cpu": "100m", "memory": "1Mi"}},
                                  {"name": "y", "usage": {"cpu": "250000000n", "memory": "1Mi"}}]}),
            json!({"metadata": {"name": "b", "namespace": "n"}, "containers": [{"name": "x", "usage": {"memory": "1Mi"}}]}),
            json!({"metadata": {"name": "c", "namespace": "n"}, "containers": []}),
        ];
        let m = pod_metrics(&items, "cpu", None).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m["a"].value, 350);
        assert_eq!(m["a"].window, Duration::from_secs(15));
        let only_y = pod_metrics(&items, "cpu", Some("y")).unwrap();
        assert_eq!(only_y["a"].value, 250);
        assert!(
            pod_metrics(&items, "cpu", Some("x")).is_err(),
            "b's x has no cpu"
        );
    }
}
