//! resource.k8s.io (dynamic resource allocation) tables: DeviceClass,
//! ResourceClaim, ResourceClaimTemplate and ResourceSlice (upstream's
//! `printDeviceClass`, `printResourceClaim`, `resourceClaimState`, ...).

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::util::{age, arr_at, cell, is_set, name, str_at};
use crate::{docs, Column, Printer, AGE, NAME};

const GROUP: &str = "resource.k8s.io";

pub(crate) const PRINTERS: &[Printer] = &[
    Printer {
        group: GROUP,
        kind: "DeviceClass",
        columns: NAME_AGE_COLUMNS,
        cells: name_age_cells,
    },
    Printer {
        group: GROUP,
        kind: "ResourceClaim",
        columns: RESOURCE_CLAIM_COLUMNS,
        cells: resource_claim_cells,
    },
    Printer {
        group: GROUP,
        kind: "ResourceClaimTemplate",
        columns: NAME_AGE_COLUMNS,
        cells: name_age_cells,
    },
    Printer {
        group: GROUP,
        kind: "ResourceSlice",
        columns: RESOURCE_SLICE_COLUMNS,
        cells: resource_slice_cells,
    },
];

const NAME_AGE_COLUMNS: &[Column] = &[NAME, AGE];

const RESOURCE_CLAIM_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "State",
        "string",
        "A summary of the current state (allocated, pending, reserved, etc.).",
    ),
    AGE,
];

const RESOURCE_SLICE_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Node", "string", docs::RS_NODE),
    Column::new("Driver", "string", docs::RS_DRIVER),
    Column::new("Pool", "string", docs::RS_POOL),
    AGE,
];

fn name_age_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![cell(name(obj)), age(obj, now)]
}

fn resource_claim_state(obj: &Value) -> String {
    let deleted = apimachinery::meta::deletion_timestamp(obj).is_some();
    let mut states = Vec::new();
    if deleted {
        states.push("deleted");
    }
    if !is_set(obj, &["status", "allocation"]) {
        if !deleted {
            states.push("pending");
        }
    } else {
        states.push("allocated");
        if !arr_at(obj, &["status", "reservedFor"]).is_empty() {
            states.push("reserved");
        }
    }
    states.join(",")
}

fn resource_claim_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        cell(name(obj)),
        cell(resource_claim_state(obj)),
        age(obj, now),
    ]
}

fn resource_slice_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        cell(name(obj)),
        cell(str_at(obj, &["spec", "nodeName"])),
        cell(str_at(obj, &["spec", "driver"])),
        cell(str_at(obj, &["spec", "pool", "name"])),
        age(obj, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::{ago, now};
    use serde_json::json;

    #[test]
    fn resource_claim_states() {
        assert_eq!(resource_claim_state(&json!({})), "pending");
        assert_eq!(
            resource_claim_state(
                &json!({"status": {"allocation": {}, "reservedFor": [{"name": "p"}]}})
            ),
            "allocated,reserved"
        );
        assert_eq!(
            resource_claim_state(&json!({"metadata": {"deletionTimestamp": ago(1)}})),
            "deleted"
        );
        let slice = json!({"metadata": {"name": "s"}, "spec": {"nodeName": "n1", "driver": "gpu.example.com", "pool": {"name": "n1"}}});
        assert_eq!(
            resource_slice_cells(&slice, now())[1..4],
            [json!("n1"), json!("gpu.example.com"), json!("n1")]
        );
    }
}
