//! The policy PodDisruptionBudget table (upstream's `printPodDisruptionBudget`).

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::util::{age, cell, get, int_at, int_or_string, name};
use crate::{Column, Printer, AGE, NAME};

pub(crate) const PRINTERS: &[Printer] = &[Printer {
    group: "policy",
    kind: "PodDisruptionBudget",
    columns: PDB_COLUMNS,
    cells: pdb_cells,
}];

const PDB_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Min Available",
        "string",
        "The minimum number of pods that must be available.",
    ),
    Column::new(
        "Max Unavailable",
        "string",
        "The maximum number of pods that may be unavailable.",
    ),
    Column::new(
        "Allowed Disruptions",
        "integer",
        "Calculated number of pods that may be disrupted at this time.",
    ),
    AGE,
];

fn pdb_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let bound = |field: &str| {
        get(obj, &["spec", field])
            .filter(|v| !v.is_null())
            .map_or("N/A".to_string(), int_or_string)
    };
    vec![
        cell(name(obj)),
        cell(bound("minAvailable")),
        cell(bound("maxUnavailable")),
        Value::from(int_at(obj, &["status", "disruptionsAllowed"])),
        age(obj, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::now;
    use serde_json::json;

    #[test]
    fn pdb_cells_match_upstream() {
        let pdb = json!({"metadata": {"name": "web"}, "spec": {"minAvailable": 2}, "status": {"disruptionsAllowed": 1}});
        assert_eq!(
            pdb_cells(&pdb, now()),
            vec![
                json!("web"),
                json!("2"),
                json!("N/A"),
                json!(1),
                json!("<unknown>")
            ]
        );
        let pct = json!({"spec": {"maxUnavailable": "25%"}});
        assert_eq!(
            pdb_cells(&pct, now())[1..4],
            [json!("N/A"), json!("25%"), json!(0)]
        );
    }
}
