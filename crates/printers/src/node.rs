//! The node.k8s.io RuntimeClass table (upstream's `printRuntimeClass`).

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::util::{age, cell, name, str_at};
use crate::{Column, Printer, AGE, NAME};

pub(crate) const PRINTERS: &[Printer] = &[Printer {
    group: "node.k8s.io",
    kind: "RuntimeClass",
    columns: RUNTIME_CLASS_COLUMNS,
    cells: runtime_class_cells,
}];

// Upstream quotes ObjectMeta's (absent) "handler" doc: the description is empty.
const RUNTIME_CLASS_COLUMNS: &[Column] = &[NAME, Column::new("Handler", "string", ""), AGE];

fn runtime_class_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        cell(name(obj)),
        cell(str_at(obj, &["handler"])),
        age(obj, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::now;
    use serde_json::json;

    #[test]
    fn runtime_class_shows_handler() {
        let rc = json!({"metadata": {"name": "gvisor"}, "handler": "runsc"});
        assert_eq!(
            runtime_class_cells(&rc, now()),
            vec![json!("gvisor"), json!("runsc"), json!("<unknown>")]
        );
    }
}
