//! flowcontrol.apiserver.k8s.io tables: FlowSchema and
//! PriorityLevelConfiguration (upstream's `printFlowSchema`,
//! `printPriorityLevelConfiguration`).

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::util::{age, arr_at, cell, get, int_at, name, obj_at, str_at};
use crate::{docs, Column, Printer, AGE, NAME};

const GROUP: &str = "flowcontrol.apiserver.k8s.io";

pub(crate) const PRINTERS: &[Printer] = &[
    Printer {
        group: GROUP,
        kind: "FlowSchema",
        columns: FLOW_SCHEMA_COLUMNS,
        cells: flow_schema_cells,
    },
    Printer {
        group: GROUP,
        kind: "PriorityLevelConfiguration",
        columns: PRIORITY_LEVEL_COLUMNS,
        cells: priority_level_cells,
    },
];

const FLOW_SCHEMA_COLUMNS: &[Column] = &[
    NAME,
    Column::new("PriorityLevel", "string", docs::FS_PL),
    Column::new("MatchingPrecedence", "string", docs::FS_PRECEDENCE),
    Column::new("DistinguisherMethod", "string", docs::FS_DISTINGUISHER),
    AGE,
    Column::new(
        "MissingPL",
        "string",
        "references a broken or non-existent PriorityLevelConfiguration",
    ),
];

const PRIORITY_LEVEL_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Type", "string", docs::PL_TYPE),
    Column::new("NominalConcurrencyShares", "string", docs::PL_NCS),
    Column::new("Queues", "string", docs::PL_QUEUES),
    Column::new("HandSize", "string", docs::PL_HANDSIZE),
    Column::new("QueueLengthLimit", "string", docs::PL_QLL),
    AGE,
];

fn flow_schema_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let distinguisher = match obj_at(obj, &["spec", "distinguisherMethod"]) {
        Some(_) => str_at(obj, &["spec", "distinguisherMethod", "type"]),
        None => "<none>",
    };
    let missing_pl = arr_at(obj, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == "Dangling")
        .map_or("?", |c| str_at(c, &["status"]));
    vec![
        cell(name(obj)),
        cell(str_at(obj, &["spec", "priorityLevelConfiguration", "name"])),
        Value::from(int_at(obj, &["spec", "matchingPrecedence"])),
        cell(distinguisher),
        age(obj, now),
        cell(missing_pl),
    ]
}

fn priority_level_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let none = || cell("<none>");
    let (mut ncs, mut queues, mut hand_size, mut queue_length_limit) =
        (none(), none(), none(), none());
    if let Some(limited) = get(obj, &["spec", "limited"]).filter(|l| l.is_object()) {
        ncs = Value::from(int_at(limited, &["nominalConcurrencyShares"]));
        if let Some(q) = get(limited, &["limitResponse", "queuing"]).filter(|q| q.is_object()) {
            queues = Value::from(int_at(q, &["queues"]));
            hand_size = Value::from(int_at(q, &["handSize"]));
            queue_length_limit = Value::from(int_at(q, &["queueLengthLimit"]));
        }
    }
    vec![
        cell(name(obj)),
        cell(str_at(obj, &["spec", "type"])),
        ncs,
        queues,
        hand_size,
        queue_length_limit,
        age(obj, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::now;
    use serde_json::json;

    #[test]
    fn flow_control_tables() {
        let fs = json!({"metadata": {"name": "system-leader-election"}, "spec": {"priorityLevelConfiguration": {"name": "leader-election"},
            "matchingPrecedence": 100, "distinguisherMethod": {"type": "ByUser"}},
            "status": {"conditions": [{"type": "Dangling", "status": "False"}]}});
        assert_eq!(
            flow_schema_cells(&fs, now()),
            vec![
                json!("system-leader-election"),
                json!("leader-election"),
                json!(100),
                json!("ByUser"),
                json!("<unknown>"),
                json!("False")
            ]
        );
        let pl = json!({"metadata": {"name": "global-default"}, "spec": {"type": "Limited", "limited": {
            "nominalConcurrencyShares": 20, "limitResponse": {"type": "Queue", "queuing": {"queues": 128, "handSize": 6, "queueLengthLimit": 50}}}}});
        assert_eq!(
            priority_level_cells(&pl, now())[1..6],
            [json!("Limited"), json!(20), json!(128), json!(6), json!(50)]
        );
        let exempt = json!({"spec": {"type": "Exempt"}});
        assert_eq!(priority_level_cells(&exempt, now())[2], json!("<none>"));
    }
}
