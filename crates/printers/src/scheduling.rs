//! The scheduling.k8s.io PriorityClass table (upstream's `printPriorityClass`).

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::util::{age, cell, int_at, name, opt_bool, str_at};
use crate::{docs, Column, Printer, AGE, NAME};

pub(crate) const PRINTERS: &[Printer] = &[Printer {
    group: "scheduling.k8s.io",
    kind: "PriorityClass",
    columns: PRIORITY_CLASS_COLUMNS,
    cells: priority_class_cells,
}];

const PRIORITY_CLASS_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Value", "integer", docs::PC_VALUE),
    Column::new("Global-Default", "boolean", docs::PC_DEFAULT),
    AGE,
    // Upstream registers this column without priority but fills it only when wide.
    Column::new("PreemptionPolicy", "string", docs::PC_PREEMPT),
];

fn priority_class_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        cell(name(obj)),
        Value::from(int_at(obj, &["value"])),
        Value::from(opt_bool(obj, &["globalDefault"]).unwrap_or(false)),
        age(obj, now),
        cell(str_at(obj, &["preemptionPolicy"])),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::now;
    use serde_json::json;

    #[test]
    fn priority_class_cells_match_upstream() {
        let pc = json!({"metadata": {"name": "system-node-critical"}, "value": 2000001000, "preemptionPolicy": "PreemptLowerPriority"});
        assert_eq!(
            priority_class_cells(&pc, now()),
            vec![
                json!("system-node-critical"),
                json!(2000001000),
                json!(false),
                json!("<unknown>"),
                json!("PreemptLowerPriority")
            ]
        );
    }
}
