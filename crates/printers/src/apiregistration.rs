//! The apiregistration.k8s.io APIService table, which upstream's aggregator
//! prints itself (`kube-aggregator/pkg/registry/apiservice/etcd`'s `ConvertToTable`).

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::util::{age, arr_at, cell, name, obj_at, str_at};
use crate::{Column, Printer, AGE, NAME};

pub(crate) const PRINTERS: &[Printer] = &[Printer {
    group: "apiregistration.k8s.io",
    kind: "APIService",
    columns: API_SERVICE_COLUMNS,
    cells: api_service_cells,
}];

const API_SERVICE_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Service",
        "string",
        "The reference to the service that hosts this API endpoint.",
    ),
    Column::new("Available", "string", "Whether this service is available."),
    AGE,
];

fn api_service_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let service = match obj_at(obj, &["spec", "service"]) {
        Some(_) => format!(
            "{}/{}",
            str_at(obj, &["spec", "service", "namespace"]),
            str_at(obj, &["spec", "service", "name"])
        ),
        None => "Local".to_string(),
    };
    let available = arr_at(obj, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == "Available");
    let status = match available {
        None => "Unknown".to_string(),
        Some(c) => match (str_at(c, &["status"]), str_at(c, &["reason"])) {
            ("True", _) => "True".to_string(),
            (status, "") => status.to_string(),
            (status, reason) => format!("{status} ({reason})"),
        },
    };
    vec![cell(name(obj)), cell(service), cell(status), age(obj, now)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::{ago, now};
    use serde_json::json;

    #[test]
    fn api_service_cells_match_upstream() {
        let local = json!({"metadata": {"name": "v1.apps", "creationTimestamp": ago(600)},
            "status": {"conditions": [{"type": "Available", "status": "True", "reason": "Local"}]}});
        assert_eq!(
            api_service_cells(&local, now()),
            vec![
                json!("v1.apps"),
                json!("Local"),
                json!("True"),
                json!("10m")
            ]
        );
        let remote = json!({"metadata": {"name": "v1beta1.metrics.k8s.io"},
            "spec": {"service": {"namespace": "kube-system", "name": "metrics-server"}},
            "status": {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]}});
        assert_eq!(
            api_service_cells(&remote, now())[1..3],
            [
                json!("kube-system/metrics-server"),
                json!("False (MissingEndpoints)")
            ]
        );
        assert_eq!(
            api_service_cells(&json!({}), now())[1..3],
            [json!("Local"), json!("Unknown")]
        );
    }
}
