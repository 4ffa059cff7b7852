//! coordination.k8s.io tables: Lease and LeaseCandidate (upstream's
//! `printLease`, `printLeaseCandidate`).

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::util::{age, cell, name, str_at};
use crate::{docs, Column, Printer, AGE, NAME};

pub(crate) const PRINTERS: &[Printer] = &[
    Printer {
        group: "coordination.k8s.io",
        kind: "Lease",
        columns: LEASE_COLUMNS,
        cells: lease_cells,
    },
    Printer {
        group: "coordination.k8s.io",
        kind: "LeaseCandidate",
        columns: LEASE_CANDIDATE_COLUMNS,
        cells: lease_candidate_cells,
    },
];

const LEASE_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Holder", "string", docs::LEASE_HOLDER),
    AGE,
];

// Upstream quotes ObjectMeta docs for the version columns, which have none: "".
const LEASE_CANDIDATE_COLUMNS: &[Column] = &[
    NAME,
    Column::new("LeaseName", "string", docs::LC_LEASENAME),
    Column::new("BinaryVersion", "string", ""),
    Column::new("EmulationVersion", "string", ""),
    AGE,
];

fn lease_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        cell(name(obj)),
        cell(str_at(obj, &["spec", "holderIdentity"])),
        age(obj, now),
    ]
}

fn lease_candidate_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        cell(name(obj)),
        cell(str_at(obj, &["spec", "leaseName"])),
        cell(str_at(obj, &["spec", "binaryVersion"])),
        cell(str_at(obj, &["spec", "emulationVersion"])),
        age(obj, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::{ago, now};
    use serde_json::json;

    #[test]
    fn lease_shows_its_holder() {
        let lease = json!({"metadata": {"name": "kube-scheduler", "creationTimestamp": ago(86400)},
            "spec": {"holderIdentity": "node-1_6f2c"}});
        assert_eq!(
            lease_cells(&lease, now()),
            vec![json!("kube-scheduler"), json!("node-1_6f2c"), json!("24h")]
        );
        assert_eq!(lease_cells(&json!({}), now())[1], json!(""));
    }
}
