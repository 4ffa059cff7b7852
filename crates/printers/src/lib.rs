//! Server-side Table printing of built-in kinds: the columns and cells the API
//! server returns for `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`,
//! which `kubectl get` shows. Mirrors upstream's
//! `pkg/printers/internalversion/printers.go` (one printer per kind, registered
//! in `AddHandlers`), the default table of
//! `staging/src/k8s.io/apiserver/pkg/registry/rest/table.go`, and the
//! aggregator's APIService table.
//!
//! Objects are JSON (`serde_json::Value`) of their served version and may be
//! partial; a missing field prints as upstream's zero value and never panics.
//! The server always prints with `Wide: true` (upstream's
//! `pkg/printers/storage`), so cells cover every column, priority 1 included.
//! Where upstream's internal types hold a defaulted value the printer
//! dereferences (replica counts, a Service's type and port protocol), a missing
//! field reads as that default.
//!
//! This crate knows nothing of HTTP or storage: the server wraps columns and
//! cells into a `meta.k8s.io/v1` Table.

mod docs;
mod util;

mod admissionregistration;
mod apiregistration;
mod apps;
mod autoscaling;
mod batch;
mod certificates;
mod coordination;
mod core;
mod discovery;
mod events;
mod flowcontrol;
mod networking;
mod node;
mod pod;
mod policy;
mod rbac;
mod resource;
mod scheduling;
mod service;
mod storage;
mod volume;

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use util::{human_duration, translate_timestamp_since};

/// One column of a Table (upstream's `metav1.TableColumnDefinition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// Human-readable name ("Name", "Ready", "Nominated Node").
    pub name: &'static str,
    /// OpenAPI type of the cells: "string", "integer", "number", "boolean" or "date".
    pub type_: &'static str,
    /// OpenAPI format modifier: "name" for the object's name column, else "".
    pub format: &'static str,
    /// What the column shows; usually the API field documentation.
    pub description: &'static str,
    /// 0 for the normal view, 1 for columns only `-o wide` shows.
    pub priority: i32,
}

impl Column {
    /// A normal column with no format.
    pub(crate) const fn new(
        name: &'static str,
        type_: &'static str,
        description: &'static str,
    ) -> Self {
        Column {
            name,
            type_,
            format: "",
            description,
            priority: 0,
        }
    }

    /// The same column shown only by `-o wide`.
    pub(crate) const fn wide(self) -> Self {
        Column {
            priority: 1,
            ..self
        }
    }
}

/// The object's name column every table but Event's starts with.
pub(crate) const NAME: Column = Column {
    name: "Name",
    type_: "string",
    format: "name",
    description: docs::META_NAME,
    priority: 0,
};

/// The object's age column.
pub(crate) const AGE: Column = Column::new("Age", "string", docs::META_CREATED);

/// A printer for one kind: its columns and how to fill one row.
pub(crate) struct Printer {
    pub group: &'static str,
    pub kind: &'static str,
    pub columns: &'static [Column],
    pub cells: fn(&Value, DateTime<Utc>) -> Vec<Value>,
}

/// Every built-in printer, by API group (upstream's `AddHandlers`).
fn printers() -> impl Iterator<Item = &'static Printer> {
    [
        core::PRINTERS,
        service::PRINTERS,
        volume::PRINTERS,
        pod::PRINTERS,
        events::PRINTERS,
        apps::PRINTERS,
        batch::PRINTERS,
        autoscaling::PRINTERS,
        coordination::PRINTERS,
        discovery::PRINTERS,
        rbac::PRINTERS,
        policy::PRINTERS,
        networking::PRINTERS,
        storage::PRINTERS,
        scheduling::PRINTERS,
        node::PRINTERS,
        certificates::PRINTERS,
        admissionregistration::PRINTERS,
        flowcontrol::PRINTERS,
        resource::PRINTERS,
        apiregistration::PRINTERS,
    ]
    .into_iter()
    .flatten()
}

fn find(group: &str, kind: &str) -> Option<&'static Printer> {
    printers().find(|p| p.group == group && p.kind == kind)
}

/// Columns for a built-in kind; `None` when the kind has no dedicated printer
/// (the server then prints the default table: see [`default_columns`]).
pub fn columns(group: &str, kind: &str) -> Option<&'static [Column]> {
    find(group, kind).map(|p| p.columns)
}

/// One row's cells for an object of that kind, as many as [`columns`] has;
/// for a kind without a printer, the default table's cells. `now` is the
/// reference time for ages and durations.
pub fn cells(group: &str, kind: &str, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    match find(group, kind) {
        Some(p) => (p.cells)(obj, now),
        None => default_cells(obj, now),
    }
}

const DEFAULT_COLUMNS: &[Column] = &[NAME, Column::new("Created At", "date", docs::META_CREATED)];

/// The default table for kinds without a printer (upstream's
/// `defaultTableConvertor`): Name, and Created At as an RFC 3339 date.
pub fn default_columns() -> &'static [Column] {
    DEFAULT_COLUMNS
}

/// Cells of the default table. The creation time is printed as a date, not an
/// age, so `now` is unused; an unset time prints as Go's zero time.
pub fn default_cells(obj: &Value, _now: DateTime<Utc>) -> Vec<Value> {
    let created = util::opt_str(obj, &["metadata", "creationTimestamp"])
        .and_then(util::parse_time)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string());
    vec![util::cell(util::name(obj)), util::cell(created)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::now;
    use serde_json::json;
    use std::collections::HashSet;

    #[test]
    fn the_built_in_kinds_have_printers() {
        let kinds = [
            ("", "Pod"),
            ("", "PodTemplate"),
            ("", "Node"),
            ("", "Namespace"),
            ("", "Service"),
            ("", "Endpoints"),
            ("", "ConfigMap"),
            ("", "Secret"),
            ("", "ServiceAccount"),
            ("", "Event"),
            ("", "PersistentVolume"),
            ("", "PersistentVolumeClaim"),
            ("", "ReplicationController"),
            ("", "ResourceQuota"),
            ("", "ComponentStatus"),
            ("apps", "Deployment"),
            ("apps", "ReplicaSet"),
            ("apps", "StatefulSet"),
            ("apps", "DaemonSet"),
            ("apps", "ControllerRevision"),
            ("batch", "Job"),
            ("batch", "CronJob"),
            ("autoscaling", "HorizontalPodAutoscaler"),
            ("coordination.k8s.io", "Lease"),
            ("discovery.k8s.io", "EndpointSlice"),
            ("events.k8s.io", "Event"),
            ("rbac.authorization.k8s.io", "RoleBinding"),
            ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
            ("policy", "PodDisruptionBudget"),
            ("networking.k8s.io", "Ingress"),
            ("networking.k8s.io", "IngressClass"),
            ("networking.k8s.io", "NetworkPolicy"),
            ("storage.k8s.io", "StorageClass"),
            ("storage.k8s.io", "CSIDriver"),
            ("storage.k8s.io", "CSINode"),
            ("storage.k8s.io", "VolumeAttachment"),
            ("scheduling.k8s.io", "PriorityClass"),
            ("node.k8s.io", "RuntimeClass"),
            ("certificates.k8s.io", "CertificateSigningRequest"),
            ("apiregistration.k8s.io", "APIService"),
        ];
        for (group, kind) in kinds {
            assert!(columns(group, kind).is_some(), "{group}/{kind}");
        }
    }

    #[test]
    fn cells_dispatch_by_group_and_kind() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}, "status": {"phase": "Pending"}});
        let row = cells("", "Pod", &pod, now());
        assert_eq!(row.len(), columns("", "Pod").map_or(0, <[Column]>::len));
        assert_eq!(row[..3], [json!("p"), json!("0/1"), json!("Pending")]);
        // Same kind name, other group: a custom resource gets the default table.
        assert_eq!(cells("example.com", "Pod", &pod, now()).len(), 2);
    }

    #[test]
    fn registrations_are_unique() {
        let mut seen = HashSet::new();
        for p in printers() {
            assert!(
                seen.insert((p.group, p.kind)),
                "duplicate printer for {}/{}",
                p.group,
                p.kind
            );
        }
    }

    #[test]
    fn every_printer_fills_every_column_even_for_empty_objects() {
        let partials = [
            json!({}),
            json!(null),
            json!({"metadata": {"name": "x"}, "spec": 3, "status": []}),
        ];
        for p in printers() {
            for obj in &partials {
                let row = (p.cells)(obj, now());
                assert_eq!(row.len(), p.columns.len(), "{}/{}", p.group, p.kind);
            }
        }
    }

    #[test]
    fn every_table_has_a_name_column_with_name_format() {
        for p in printers() {
            let names: Vec<_> = p.columns.iter().filter(|c| c.name == "Name").collect();
            assert_eq!(names.len(), 1, "{}/{}", p.group, p.kind);
            assert_eq!(names[0].format, "name", "{}/{}", p.group, p.kind);
            // Upstream's Event table leads with Last Seen; every other table with Name.
            if p.kind != "Event" {
                assert_eq!(p.columns[0], NAME, "{}/{}", p.group, p.kind);
            }
        }
    }

    #[test]
    fn kinds_without_printers_use_the_default_table() {
        for (group, kind) in [
            ("", "LimitRange"),
            ("rbac.authorization.k8s.io", "Role"),
            ("rbac.authorization.k8s.io", "ClusterRole"),
            ("apiextensions.k8s.io", "CustomResourceDefinition"),
            ("example.com", "Widget"),
        ] {
            assert!(columns(group, kind).is_none(), "{group}/{kind}");
        }
        let obj =
            json!({"metadata": {"name": "limits", "creationTimestamp": "2024-05-01T11:00:00Z"}});
        assert_eq!(
            cells("", "LimitRange", &obj, now()),
            vec![json!("limits"), json!("2024-05-01T11:00:00Z")]
        );
        assert_eq!(
            default_cells(&json!({}), now()),
            vec![json!(""), json!("0001-01-01T00:00:00Z")]
        );
        let cols = default_columns();
        assert_eq!((cols[1].name, cols[1].type_), ("Created At", "date"));
    }
}
