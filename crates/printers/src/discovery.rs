//! The discovery.k8s.io EndpointSlice table (upstream's `printEndpointSlice`,
//! `formatDiscoveryPorts`, `formatDiscoveryEndpoints`).

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::util::{age, arr_at, cell, list_with_more, name, opt_int, opt_str, str_at};
use crate::{docs, Column, Printer, AGE, NAME};

pub(crate) const PRINTERS: &[Printer] = &[Printer {
    group: "discovery.k8s.io",
    kind: "EndpointSlice",
    columns: ENDPOINT_SLICE_COLUMNS,
    cells: endpoint_slice_cells,
}];

const ENDPOINT_SLICE_COLUMNS: &[Column] = &[
    NAME,
    Column::new("AddressType", "string", docs::EPS_ADDRESS_TYPE),
    Column::new("Ports", "string", docs::EPS_PORTS),
    Column::new("Endpoints", "string", docs::EPS_ENDPOINTS),
    AGE,
];

const MAX: usize = 3;

/// Up to three items of `items`, with the "+ N more..." tail upstream prints.
fn first_three(items: impl Iterator<Item = String>) -> String {
    let mut list = Vec::new();
    let mut more = false;
    let mut count = 0;
    for item in items {
        if list.len() < MAX {
            list.push(item);
        } else if list.len() == MAX {
            more = true;
        }
        count += 1;
    }
    list_with_more(&list, more, count, MAX)
}

fn endpoint_slice_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let ports = arr_at(obj, &["ports"])
        .iter()
        .map(|p| match opt_int(p, &["port"]) {
            Some(n) => n.to_string(),
            None => opt_str(p, &["name"]).unwrap_or("*").to_string(),
        });
    let addresses = arr_at(obj, &["endpoints"])
        .iter()
        .flat_map(|e| arr_at(e, &["addresses"]))
        .map(|a| a.as_str().unwrap_or("").to_string());
    vec![
        cell(name(obj)),
        cell(str_at(obj, &["addressType"])),
        cell(first_three(ports)),
        cell(first_three(addresses)),
        age(obj, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::now;
    use serde_json::json;

    #[test]
    fn endpoint_slice_cells_match_upstream() {
        let slice = json!({"metadata": {"name": "web-abc"}, "addressType": "IPv4",
            "ports": [{"port": 80}, {"name": "metrics"}, {}],
            "endpoints": [{"addresses": ["10.0.0.1", "10.0.0.2"]}, {"addresses": ["10.0.0.3"]}, {"addresses": ["10.0.0.4"]}]});
        assert_eq!(
            endpoint_slice_cells(&slice, now()),
            vec![
                json!("web-abc"),
                json!("IPv4"),
                json!("80,metrics,*"),
                json!("10.0.0.1,10.0.0.2,10.0.0.3 + 1 more..."),
                json!("<unknown>")
            ]
        );
        let empty = endpoint_slice_cells(&json!({"addressType": "IPv6"}), now());
        assert_eq!(empty[2..4], [json!("<unset>"), json!("<unset>")]);
    }
}
