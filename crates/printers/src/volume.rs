//! PersistentVolume and PersistentVolumeClaim tables of the core group
//! (upstream's `printPersistentVolume`, `printPersistentVolumeClaim`,
//! `helper.GetAccessModesAsString`).

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::util::{age, annotation, arr_at, cell, get, name, obj_at, opt_str, quantity, str_at};
use crate::{docs, Column, Printer, AGE, NAME};

pub(crate) const PRINTERS: &[Printer] = &[
    Printer {
        group: "",
        kind: "PersistentVolume",
        columns: PV_COLUMNS,
        cells: pv_cells,
    },
    Printer {
        group: "",
        kind: "PersistentVolumeClaim",
        columns: PVC_COLUMNS,
        cells: pvc_cells,
    },
];

const PV_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Capacity", "string", docs::PV_CAPACITY),
    Column::new("Access Modes", "string", docs::PV_MODES),
    Column::new("Reclaim Policy", "string", docs::PV_RECLAIM),
    Column::new("Status", "string", docs::PVS_PHASE),
    Column::new("Claim", "string", docs::PV_CLAIM),
    Column::new("StorageClass", "string", "StorageClass of the pv"),
    Column::new(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pv",
    ),
    Column::new("Reason", "string", docs::PVS_REASON),
    AGE,
    Column::new("VolumeMode", "string", docs::PV_VOLMODE).wide(),
];

const PVC_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Status", "string", docs::PVCS_PHASE),
    Column::new("Volume", "string", docs::PVC_VOLNAME),
    Column::new("Capacity", "string", docs::PVCS_CAPACITY),
    Column::new("Access Modes", "string", docs::PVCS_MODES),
    Column::new("StorageClass", "string", "StorageClass of the pvc"),
    Column::new(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pvc",
    ),
    AGE,
    Column::new("VolumeMode", "string", docs::PVC_VOLMODE).wide(),
];

/// Upstream's `helper.GetAccessModesAsString`: RWO, ROX, RWX, RWOP in that order.
pub(crate) fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| has(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// The beta annotation that predates `spec.storageClassName` and still wins over it.
const BETA_STORAGE_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

fn storage_class(obj: &Value) -> &str {
    annotation(obj, BETA_STORAGE_CLASS_ANNOTATION)
        .unwrap_or_else(|| str_at(obj, &["spec", "storageClassName"]))
}

fn pv_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let claim = match obj_at(obj, &["spec", "claimRef"]) {
        Some(_) => format!(
            "{}/{}",
            str_at(obj, &["spec", "claimRef", "namespace"]),
            str_at(obj, &["spec", "claimRef", "name"])
        ),
        None => String::new(),
    };
    let phase = match apimachinery::meta::deletion_timestamp(obj) {
        Some(_) => "Terminating",
        None => str_at(obj, &["status", "phase"]),
    };
    vec![
        cell(name(obj)),
        cell(quantity(get(obj, &["spec", "capacity", "storage"]))),
        cell(access_modes(arr_at(obj, &["spec", "accessModes"]))),
        cell(str_at(obj, &["spec", "persistentVolumeReclaimPolicy"])),
        cell(phase),
        cell(claim),
        cell(storage_class(obj)),
        cell(opt_str(obj, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>")),
        cell(str_at(obj, &["status", "reason"])),
        age(obj, now),
        cell(opt_str(obj, &["spec", "volumeMode"]).unwrap_or("<unset>")),
    ]
}

fn pvc_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let phase = match apimachinery::meta::deletion_timestamp(obj) {
        Some(_) => "Terminating",
        None => str_at(obj, &["status", "phase"]),
    };
    let volume = str_at(obj, &["spec", "volumeName"]);
    // Capacity and access modes are those of the bound volume, once there is one.
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(get(obj, &["status", "capacity", "storage"])),
            access_modes(arr_at(obj, &["status", "accessModes"])),
        )
    };
    vec![
        cell(name(obj)),
        cell(phase),
        cell(volume),
        cell(capacity),
        cell(modes),
        cell(storage_class(obj)),
        cell(opt_str(obj, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>")),
        age(obj, now),
        cell(opt_str(obj, &["spec", "volumeMode"]).unwrap_or("<unset>")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::{ago, now};
    use serde_json::json;

    fn meta(name: &str) -> Value {
        json!({"name": name, "creationTimestamp": ago(3600)})
    }

    #[test]
    fn volumes_and_claims() {
        let pv = json!({"metadata": meta("pv1"), "spec": {"capacity": {"storage": "10Gi"},
            "accessModes": ["ReadWriteMany", "ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Retain",
            "claimRef": {"namespace": "default", "name": "data"}, "storageClassName": "fast", "volumeMode": "Filesystem"},
            "status": {"phase": "Bound"}});
        assert_eq!(
            pv_cells(&pv, now()),
            [
                "pv1",
                "10Gi",
                "RWO,RWX",
                "Retain",
                "Bound",
                "default/data",
                "fast",
                "<unset>",
                "",
                "60m",
                "Filesystem"
            ]
            .map(Value::from)
            .to_vec()
        );
        let pvc = json!({"metadata": {"name": "data", "creationTimestamp": ago(60),
                "annotations": {"volume.beta.kubernetes.io/storage-class": "legacy"}},
            "spec": {"volumeName": "pv1", "storageClassName": "fast"},
            "status": {"phase": "Bound", "capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"]}});
        assert_eq!(
            pvc_cells(&pvc, now()),
            ["data", "Bound", "pv1", "10Gi", "RWO", "legacy", "<unset>", "60s", "<unset>"]
                .map(Value::from)
                .to_vec()
        );
        let pending = json!({"metadata": {"deletionTimestamp": ago(1)}, "status": {"phase": "Pending", "capacity": {"storage": "1Gi"}}});
        assert_eq!(
            pvc_cells(&pending, now())[1..5],
            ["Terminating", "", "", ""].map(Value::from)
        );
    }
}
