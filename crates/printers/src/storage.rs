//! storage.k8s.io tables: StorageClass, CSIDriver, CSINode,
//! CSIStorageCapacity, VolumeAttachment and VolumeAttributesClass (upstream's
//! `printStorageClass`, `printCSIDriver`, ...).

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::util::{age, annotation, arr_at, cell, get, len_at, name, opt_bool, opt_str, str_at};
use crate::{docs, Column, Printer, AGE, NAME};

const GROUP: &str = "storage.k8s.io";

pub(crate) const PRINTERS: &[Printer] = &[
    Printer {
        group: GROUP,
        kind: "StorageClass",
        columns: STORAGE_CLASS_COLUMNS,
        cells: storage_class_cells,
    },
    Printer {
        group: GROUP,
        kind: "CSIDriver",
        columns: CSI_DRIVER_COLUMNS,
        cells: csi_driver_cells,
    },
    Printer {
        group: GROUP,
        kind: "CSINode",
        columns: CSI_NODE_COLUMNS,
        cells: csi_node_cells,
    },
    Printer {
        group: GROUP,
        kind: "CSIStorageCapacity",
        columns: CSI_STORAGE_CAPACITY_COLUMNS,
        cells: csi_storage_capacity_cells,
    },
    Printer {
        group: GROUP,
        kind: "VolumeAttachment",
        columns: VOLUME_ATTACHMENT_COLUMNS,
        cells: volume_attachment_cells,
    },
    Printer {
        group: GROUP,
        kind: "VolumeAttributesClass",
        columns: VOLUME_ATTRIBUTES_CLASS_COLUMNS,
        cells: volume_attributes_class_cells,
    },
];

const STORAGE_CLASS_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Provisioner", "string", docs::SC_PROVISIONER),
    Column::new("ReclaimPolicy", "string", docs::SC_RECLAIM),
    Column::new("VolumeBindingMode", "string", docs::SC_BINDING),
    Column::new("AllowVolumeExpansion", "string", docs::SC_EXPANSION),
    AGE,
];

const CSI_DRIVER_COLUMNS: &[Column] = &[
    NAME,
    Column::new("AttachRequired", "boolean", docs::CSID_ATTACH),
    Column::new("PodInfoOnMount", "boolean", docs::CSID_PODINFO),
    Column::new("StorageCapacity", "boolean", docs::CSID_CAPACITY),
    Column::new("TokenRequests", "string", docs::CSID_TOKENS),
    Column::new("RequiresRepublish", "boolean", docs::CSID_REPUBLISH),
    Column::new("Modes", "string", docs::CSID_MODES),
    AGE,
];

const CSI_NODE_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Drivers",
        "integer",
        "Drivers indicates the number of CSI drivers registered on the node",
    ),
    AGE,
];

const CSI_STORAGE_CAPACITY_COLUMNS: &[Column] = &[
    NAME,
    Column::new("StorageClassName", "string", docs::CSISC_CLASS),
    Column::new("Capacity", "string", docs::CSISC_CAPACITY),
];

const VOLUME_ATTACHMENT_COLUMNS: &[Column] = &[
    NAME,
    // Upstream gives this column the "name" format too.
    Column {
        format: "name",
        ..Column::new("Attacher", "string", docs::VA_ATTACHER)
    },
    Column::new("PV", "string", docs::VA_PV),
    Column::new("Node", "string", docs::VA_NODE),
    Column::new("Attached", "boolean", docs::VA_ATTACHED),
    AGE,
];

const VOLUME_ATTRIBUTES_CLASS_COLUMNS: &[Column] = &[
    NAME,
    Column::new("DriverName", "string", docs::VAC_DRIVER),
    AGE,
];

/// Annotations marking the cluster's default class ("true").
const IS_DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
const BETA_IS_DEFAULT_CLASS: &str = "storageclass.beta.kubernetes.io/is-default-class";
const IS_DEFAULT_VOLUME_ATTRIBUTES_CLASS: &str =
    "volumeattributesclass.alpha.kubernetes.io/is-default-class";

fn storage_class_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let is_default = [IS_DEFAULT_CLASS, BETA_IS_DEFAULT_CLASS]
        .iter()
        .any(|a| annotation(obj, a) == Some("true"));
    let display = if is_default {
        format!("{} (default)", name(obj))
    } else {
        name(obj).to_string()
    };
    vec![
        cell(display),
        cell(str_at(obj, &["provisioner"])),
        cell(opt_str(obj, &["reclaimPolicy"]).unwrap_or("Delete")),
        cell(opt_str(obj, &["volumeBindingMode"]).unwrap_or("Immediate")),
        Value::from(opt_bool(obj, &["allowVolumeExpansion"]).unwrap_or(false)),
        age(obj, now),
    ]
}

fn csi_driver_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let flag = |field: &str, default: bool| {
        Value::from(opt_bool(obj, &["spec", field]).unwrap_or(default))
    };
    let token_requests = match get(obj, &["spec", "tokenRequests"]).and_then(Value::as_array) {
        Some(requests) => requests
            .iter()
            .map(|t| str_at(t, &["audience"]))
            .collect::<Vec<_>>()
            .join(","),
        None => "<unset>".to_string(),
    };
    let modes: Vec<&str> = arr_at(obj, &["spec", "volumeLifecycleModes"])
        .iter()
        .map(|m| m.as_str().unwrap_or(""))
        .collect();
    let modes = if modes.is_empty() {
        "<none>".to_string()
    } else {
        modes.join(",")
    };
    vec![
        cell(name(obj)),
        flag("attachRequired", true),
        flag("podInfoOnMount", false),
        flag("storageCapacity", false),
        cell(token_requests),
        flag("requiresRepublish", false),
        cell(modes),
        age(obj, now),
    ]
}

fn csi_node_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        cell(name(obj)),
        Value::from(len_at(obj, &["spec", "drivers"])),
        age(obj, now),
    ]
}

fn csi_storage_capacity_cells(obj: &Value, _now: DateTime<Utc>) -> Vec<Value> {
    let capacity = match get(obj, &["capacity"]) {
        None | Some(Value::Null) => "<unset>".to_string(),
        some => crate::util::quantity(some),
    };
    vec![
        cell(name(obj)),
        cell(str_at(obj, &["storageClassName"])),
        cell(capacity),
    ]
}

fn volume_attachment_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        cell(name(obj)),
        cell(str_at(obj, &["spec", "attacher"])),
        cell(str_at(obj, &["spec", "source", "persistentVolumeName"])),
        cell(str_at(obj, &["spec", "nodeName"])),
        Value::from(opt_bool(obj, &["status", "attached"]).unwrap_or(false)),
        age(obj, now),
    ]
}

fn volume_attributes_class_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let display = if annotation(obj, IS_DEFAULT_VOLUME_ATTRIBUTES_CLASS) == Some("true") {
        format!("{} (default)", name(obj))
    } else {
        name(obj).to_string()
    };
    vec![
        cell(display),
        cell(str_at(obj, &["driverName"])),
        age(obj, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::now;
    use serde_json::json;

    #[test]
    fn storage_class_defaults_and_default_marker() {
        let sc = json!({"metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"});
        assert_eq!(
            storage_class_cells(&sc, now()),
            vec![
                json!("standard (default)"),
                json!("rancher.io/local-path"),
                json!("Delete"),
                json!("WaitForFirstConsumer"),
                json!(false),
                json!("<unknown>")
            ]
        );
    }

    #[test]
    fn csi_tables() {
        let driver = json!({"metadata": {"name": "csi.example.com"}, "spec": {"attachRequired": false,
            "tokenRequests": [{"audience": "vault"}, {"audience": "gcp"}], "volumeLifecycleModes": ["Persistent", "Ephemeral"]}});
        assert_eq!(
            csi_driver_cells(&driver, now()),
            vec![
                json!("csi.example.com"),
                json!(false),
                json!(false),
                json!(false),
                json!("vault,gcp"),
                json!(false),
                json!("Persistent,Ephemeral"),
                json!("<unknown>")
            ]
        );
        let bare = csi_driver_cells(&json!({}), now());
        assert_eq!(
            (bare[1].clone(), bare[4].clone(), bare[6].clone()),
            (json!(true), json!("<unset>"), json!("<none>"))
        );
        let node = json!({"metadata": {"name": "n1"}, "spec": {"drivers": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(csi_node_cells(&node, now())[1], json!(2));
        let cap =
            json!({"metadata": {"name": "c"}, "storageClassName": "fast", "capacity": "100Gi"});
        assert_eq!(
            csi_storage_capacity_cells(&cap, now()),
            vec![json!("c"), json!("fast"), json!("100Gi")]
        );
        assert_eq!(
            csi_storage_capacity_cells(&json!({}), now())[2],
            json!("<unset>")
        );
    }

    #[test]
    fn volume_attachment_cells_match_upstream() {
        let va = json!({"metadata": {"name": "csi-123"}, "spec": {"attacher": "csi.example.com", "nodeName": "n1",
            "source": {"persistentVolumeName": "pv-1"}}, "status": {"attached": true}});
        assert_eq!(
            volume_attachment_cells(&va, now()),
            vec![
                json!("csi-123"),
                json!("csi.example.com"),
                json!("pv-1"),
                json!("n1"),
                json!(true),
                json!("<unknown>")
            ]
        );
    }
}
