//! The Event table, for core/v1 Events and events.k8s.io/v1 Events alike
//! (upstream prints both from the internal core Event with `printEvent`).
//!
//! events.k8s.io/v1 names the fields differently (`regarding`, `note`,
//! `deprecatedFirstTimestamp`, ...); [`EventView`] reads either shape the way
//! upstream's conversion to the internal type does.
//!
//! Upstream's Event table is the one table not led by Name: Last Seen comes
//! first and Name is the last, wide-only column.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::util::{cell, get, opt_int, opt_str, str_at, translate_timestamp_since};
use crate::{docs, Column, Printer};

pub(crate) const PRINTERS: &[Printer] = &[
    Printer {
        group: "",
        kind: "Event",
        columns: EVENT_COLUMNS,
        cells: core_event_cells,
    },
    Printer {
        group: "events.k8s.io",
        kind: "Event",
        columns: EVENT_COLUMNS,
        cells: events_event_cells,
    },
];

const EVENT_COLUMNS: &[Column] = &[
    Column::new("Last Seen", "string", docs::EV_LAST),
    Column::new("Type", "string", docs::EV_TYPE),
    Column::new("Reason", "string", docs::EV_REASON),
    Column::new("Object", "string", docs::EV_OBJECT),
    Column::new("Subobject", "string", docs::OREF_FIELDPATH).wide(),
    Column::new("Source", "string", docs::EV_SOURCE).wide(),
    Column::new("Message", "string", docs::EV_MESSAGE),
    Column::new("First Seen", "string", docs::EV_FIRST).wide(),
    Column::new("Count", "string", docs::EV_COUNT).wide(),
    crate::NAME.wide(),
];

/// The fields of an Event the table shows, read from either API shape.
struct EventView<'a> {
    name: &'a str,
    type_: &'a str,
    reason: &'a str,
    message: &'a str,
    object: &'a Value,
    source_component: &'a str,
    source_host: &'a str,
    reporting_controller: &'a str,
    reporting_instance: &'a str,
    first_timestamp: Option<&'a str>,
    last_timestamp: Option<&'a str>,
    event_time: Option<&'a str>,
    count: i64,
    series: Option<&'a Value>,
}

impl<'a> EventView<'a> {
    fn core(obj: &'a Value) -> Self {
        EventView {
            name: crate::util::name(obj),
            type_: str_at(obj, &["type"]),
            reason: str_at(obj, &["reason"]),
            message: str_at(obj, &["message"]),
            object: get(obj, &["involvedObject"]).unwrap_or(&Value::Null),
            source_component: str_at(obj, &["source", "component"]),
            source_host: str_at(obj, &["source", "host"]),
            reporting_controller: str_at(obj, &["reportingComponent"]),
            reporting_instance: str_at(obj, &["reportingInstance"]),
            first_timestamp: opt_str(obj, &["firstTimestamp"]),
            last_timestamp: opt_str(obj, &["lastTimestamp"]),
            event_time: opt_str(obj, &["eventTime"]),
            count: opt_int(obj, &["count"]).unwrap_or(0),
            series: get(obj, &["series"]).filter(|s| s.is_object()),
        }
    }

    fn events_v1(obj: &'a Value) -> Self {
        EventView {
            name: crate::util::name(obj),
            type_: str_at(obj, &["type"]),
            reason: str_at(obj, &["reason"]),
            message: str_at(obj, &["note"]),
            object: get(obj, &["regarding"]).unwrap_or(&Value::Null),
            source_component: str_at(obj, &["deprecatedSource", "component"]),
            source_host: str_at(obj, &["deprecatedSource", "host"]),
            reporting_controller: str_at(obj, &["reportingController"]),
            reporting_instance: str_at(obj, &["reportingInstance"]),
            first_timestamp: opt_str(obj, &["deprecatedFirstTimestamp"]),
            last_timestamp: opt_str(obj, &["deprecatedLastTimestamp"]),
            event_time: opt_str(obj, &["eventTime"]),
            count: opt_int(obj, &["deprecatedCount"]).unwrap_or(0),
            series: get(obj, &["series"]).filter(|s| s.is_object()),
        }
    }
}

fn is_unset(ts: Option<&str>) -> bool {
    ts.and_then(crate::util::parse_time).is_none()
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() {
        b
    } else {
        a
    }
}

fn event_cells(e: EventView<'_>, now: DateTime<Utc>) -> Vec<Value> {
    let first_seen = if is_unset(e.first_timestamp) {
        translate_timestamp_since(e.event_time, now)
    } else {
        translate_timestamp_since(e.first_timestamp, now)
    };
    let mut last_seen = if is_unset(e.last_timestamp) {
        first_seen.clone()
    } else {
        translate_timestamp_since(e.last_timestamp, now)
    };
    let mut count = e.count;
    if let Some(series) = e.series {
        last_seen = translate_timestamp_since(opt_str(series, &["lastObservedTime"]), now);
        count = opt_int(series, &["count"]).unwrap_or(0);
    } else if count == 0 {
        // Singleton events of the new API carry no count.
        count = 1;
    }

    let kind = str_at(e.object, &["kind"]).to_lowercase();
    let object_name = str_at(e.object, &["name"]);
    let target = if object_name.is_empty() {
        kind
    } else {
        format!("{kind}/{object_name}")
    };

    let component = first_non_empty(e.source_component, e.reporting_controller);
    let instance = first_non_empty(e.source_host, e.reporting_instance);
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };

    vec![
        cell(last_seen),
        cell(e.type_),
        cell(e.reason),
        cell(target),
        cell(str_at(e.object, &["fieldPath"])),
        cell(source),
        cell(e.message.trim()),
        cell(first_seen),
        Value::from(count),
        cell(e.name),
    ]
}

fn core_event_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    event_cells(EventView::core(obj), now)
}

fn events_event_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    event_cells(EventView::events_v1(obj), now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::{ago, now};
    use serde_json::json;

    #[test]
    fn core_event_cells_match_upstream() {
        let ev = json!({
            "metadata": {"name": "web.17a"},
            "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{c}"},
            "reason": "BackOff", "type": "Warning", "message": "Back-off restarting failed container\n",
            "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": ago(3600), "lastTimestamp": ago(30), "count": 12
        });
        assert_eq!(
            core_event_cells(&ev, now()),
            vec![
                json!("30s"),
                json!("Warning"),
                json!("BackOff"),
                json!("pod/web"),
                json!("spec.containers{c}"),
                json!("kubelet, node-1"),
                json!("Back-off restarting failed container"),
                json!("60m"),
                json!(12),
                json!("web.17a")
            ]
        );
    }

    #[test]
    fn new_api_events_use_event_time_series_and_reporting_fields() {
        let ev = json!({
            "metadata": {"name": "x"},
            "regarding": {"kind": "Node"},
            "reason": "Starting", "type": "Normal", "note": "started",
            "reportingController": "kube-proxy", "reportingInstance": "",
            "eventTime": "2024-05-01T11:58:00.000000Z"
        });
        let row = events_event_cells(&ev, now());
        assert_eq!(
            row[..4],
            [
                json!("2m"),
                json!("Normal"),
                json!("Starting"),
                json!("node")
            ]
        );
        assert_eq!(
            row[5..],
            [
                json!("kube-proxy"),
                json!("started"),
                json!("2m"),
                json!(1),
                json!("x")
            ]
        );

        let series =
            json!({"eventTime": ago(600), "series": {"count": 4, "lastObservedTime": ago(10)}});
        let row = events_event_cells(&series, now());
        assert_eq!(
            (row[0].clone(), row[7].clone(), row[8].clone()),
            (json!("10s"), json!("10m"), json!(4))
        );

        let empty = core_event_cells(&json!({}), now());
        assert_eq!(
            (empty[0].clone(), empty[3].clone(), empty[8].clone()),
            (json!("<unknown>"), json!(""), json!(1))
        );
    }
}
