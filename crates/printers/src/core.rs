//! Tables of the core group other than Pod, Event, Service and volumes: Node,
//! Namespace, ConfigMap, Secret, ServiceAccount, ReplicationController,
//! ResourceQuota and ComponentStatus (upstream's `printNode`, `printSecret`, ...
//! in `pkg/printers/internalversion/printers.go`). LimitRange has no printer
//! upstream and gets the default table.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::util::{
    age, arr_at, cell, container_cells, format_labels, get, int_at, len_at, name, obj_at, opt_int,
    or, quantity, str_at,
};
use crate::{docs, Column, Printer, AGE, NAME};

pub(crate) const PRINTERS: &[Printer] = &[
    Printer {
        group: "",
        kind: "ComponentStatus",
        columns: COMPONENT_STATUS_COLUMNS,
        cells: component_status_cells,
    },
    Printer {
        group: "",
        kind: "Node",
        columns: NODE_COLUMNS,
        cells: node_cells,
    },
    Printer {
        group: "",
        kind: "Namespace",
        columns: NAMESPACE_COLUMNS,
        cells: namespace_cells,
    },
    Printer {
        group: "",
        kind: "ConfigMap",
        columns: CONFIG_MAP_COLUMNS,
        cells: config_map_cells,
    },
    Printer {
        group: "",
        kind: "Secret",
        columns: SECRET_COLUMNS,
        cells: secret_cells,
    },
    Printer {
        group: "",
        kind: "ServiceAccount",
        columns: SERVICE_ACCOUNT_COLUMNS,
        cells: service_account_cells,
    },
    Printer {
        group: "",
        kind: "ReplicationController",
        columns: RC_COLUMNS,
        cells: rc_cells,
    },
    Printer {
        group: "",
        kind: "ResourceQuota",
        columns: RESOURCE_QUOTA_COLUMNS,
        cells: resource_quota_cells,
    },
];

const NODE_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Status", "string", "The status of the node"),
    Column::new("Roles", "string", "The roles of the node"),
    AGE,
    Column::new("Version", "string", docs::NSI_KUBELET),
    Column::new("Internal-IP", "string", docs::NODE_ADDRESSES).wide(),
    Column::new("External-IP", "string", docs::NODE_ADDRESSES).wide(),
    Column::new("OS-Image", "string", docs::NSI_OS).wide(),
    Column::new("Kernel-Version", "string", docs::NSI_KERNEL).wide(),
    Column::new("Container-Runtime", "string", docs::NSI_CRI).wide(),
];

const NAMESPACE_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Status", "string", "The status of the namespace"),
    AGE,
];

const CONFIG_MAP_COLUMNS: &[Column] = &[NAME, Column::new("Data", "string", docs::CM_DATA), AGE];

const SECRET_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Type", "string", docs::SECRET_TYPE),
    Column::new("Data", "string", docs::SECRET_DATA),
    AGE,
];

const SERVICE_ACCOUNT_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Secrets", "string", docs::SA_SECRETS),
    AGE,
];

const RC_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Desired", "integer", docs::RC_REPLICAS),
    Column::new("Current", "integer", docs::RCS_REPLICAS),
    Column::new("Ready", "integer", docs::RCS_READY),
    AGE,
    Column::new("Containers", "string", docs::CONTAINERS).wide(),
    Column::new("Images", "string", docs::IMAGES).wide(),
    Column::new("Selector", "string", docs::RC_SELECTOR).wide(),
];

const RESOURCE_QUOTA_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Request", "string", "Request represents a minimum amount of cpu/memory that a container may consume."),
    Column::new(
        "Limit",
        "string",
        "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
    ),
    AGE,
];

const COMPONENT_STATUS_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Status", "string", "Status of the component conditions"),
    Column::new("Message", "string", "Message of the component conditions"),
    Column::new("Error", "string", "Error of the component conditions"),
];

/// Label prefix naming a node role (`node-role.kubernetes.io/control-plane`).
const LABEL_NODE_ROLE_PREFIX: &str = "node-role.kubernetes.io/";
/// Older label whose value names the node's role.
const NODE_LABEL_ROLE: &str = "kubernetes.io/role";

fn node_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // Only the Ready condition is shown; a later duplicate wins, as with upstream's map.
    let mut status: Vec<&str> = match arr_at(obj, &["status", "conditions"])
        .iter()
        .rev()
        .find(|c| str_at(c, &["type"]) == "Ready")
    {
        Some(c) if str_at(c, &["status"]) == "True" => vec!["Ready"],
        Some(_) => vec!["NotReady"],
        None => vec!["Unknown"],
    };
    if get(obj, &["spec", "unschedulable"]).and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled");
    }

    let mut roles = BTreeSet::new();
    for (k, v) in apimachinery::meta::labels(obj).into_iter().flatten() {
        if let Some(role) = k
            .strip_prefix(LABEL_NODE_ROLE_PREFIX)
            .filter(|r| !r.is_empty())
        {
            roles.insert(role);
        } else if k == NODE_LABEL_ROLE {
            if let Some(role) = v.as_str().filter(|r| !r.is_empty()) {
                roles.insert(role);
            }
        }
    }
    let roles = roles.into_iter().collect::<Vec<_>>().join(",");

    let address = |type_: &str| {
        arr_at(obj, &["status", "addresses"])
            .iter()
            .find(|a| str_at(a, &["type"]) == type_)
            .map_or("<none>", |a| str_at(a, &["address"]))
    };
    let info = |field: &str| or(str_at(obj, &["status", "nodeInfo", field]), "<unknown>");
    vec![
        cell(name(obj)),
        cell(status.join(",")),
        cell(or(&roles, "<none>")),
        age(obj, now),
        cell(str_at(obj, &["status", "nodeInfo", "kubeletVersion"])),
        cell(address("InternalIP")),
        cell(address("ExternalIP")),
        cell(info("osImage")),
        cell(info("kernelVersion")),
        cell(info("containerRuntimeVersion")),
    ]
}

fn namespace_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        cell(name(obj)),
        cell(str_at(obj, &["status", "phase"])),
        age(obj, now),
    ]
}

fn config_map_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let data = len_at(obj, &["data"]) + len_at(obj, &["binaryData"]);
    vec![cell(name(obj)), Value::from(data), age(obj, now)]
}

fn secret_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // The internal Secret merges write-only stringData into data.
    let keys: BTreeSet<&str> = ["data", "stringData"]
        .iter()
        .filter_map(|f| obj_at(obj, &[f]))
        .flat_map(|m| m.keys().map(String::as_str))
        .collect();
    vec![
        cell(name(obj)),
        cell(str_at(obj, &["type"])),
        Value::from(keys.len()),
        age(obj, now),
    ]
}

fn service_account_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        cell(name(obj)),
        Value::from(len_at(obj, &["secrets"])),
        age(obj, now),
    ]
}

fn rc_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = container_cells(arr_at(obj, &["spec", "template", "spec", "containers"]));
    vec![
        cell(name(obj)),
        Value::from(opt_int(obj, &["spec", "replicas"]).unwrap_or(1)),
        Value::from(int_at(obj, &["status", "replicas"])),
        Value::from(int_at(obj, &["status", "readyReplicas"])),
        age(obj, now),
        names,
        images,
        cell(format_labels(obj_at(obj, &["spec", "selector"]))),
    ]
}

fn resource_quota_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let hard: BTreeMap<&str, &Value> = obj_at(obj, &["status", "hard"])
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let mut requests = Vec::new();
    let mut limits = Vec::new();
    for (resource, hard_qty) in hard {
        let used = quantity(get(obj, &["status", "used", resource]));
        let entry = format!("{resource}: {used}/{}", quantity(Some(hard_qty)));
        match resource.split_once('.') {
            Some(("limits", _)) => limits.push(entry),
            _ => requests.push(entry),
        }
    }
    vec![
        cell(name(obj)),
        cell(requests.join(", ")),
        cell(limits.join(", ")),
        age(obj, now),
    ]
}

fn component_status_cells(obj: &Value, _now: DateTime<Utc>) -> Vec<Value> {
    let healthy = arr_at(obj, &["conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == "Healthy");
    let (status, message, error) = match healthy {
        Some(c) => (
            if str_at(c, &["status"]) == "True" {
                "Healthy"
            } else {
                "Unhealthy"
            },
            str_at(c, &["message"]),
            str_at(c, &["error"]),
        ),
        None => ("Unknown", "", ""),
    };
    vec![cell(name(obj)), cell(status), cell(message), cell(error)]
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
    fn node_cells_match_upstream() {
        let ready = json!({"metadata": {"name": "n1", "creationTimestamp": ago(86400 * 10),
                "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/": "x", "kubernetes.io/role": "master"}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.1"}],
                "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "Debian", "kernelVersion": "6.1", "containerRuntimeVersion": "containerd://2.0"}}});
        assert_eq!(
            node_cells(&ready, now()),
            vec![
                json!("n1"),
                json!("Ready,SchedulingDisabled"),
                json!("control-plane,master"),
                json!("10d"),
                json!("v1.33.0"),
                json!("10.0.0.1"),
                json!("<none>"),
                json!("Debian"),
                json!("6.1"),
                json!("containerd://2.0")
            ]
        );
        let not_ready = json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
        assert_eq!(
            node_cells(&not_ready, now())[1..3],
            [json!("NotReady"), json!("<none>")]
        );
        assert_eq!(node_cells(&json!({}), now())[1], json!("Unknown"));
        assert_eq!(node_cells(&json!({}), now())[7], json!("<unknown>"));
    }

    #[test]
    fn config_data_counts() {
        let cm = json!({"metadata": meta("cm"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
        assert_eq!(
            config_map_cells(&cm, now()),
            vec![json!("cm"), json!(3), json!("60m")]
        );
        let secret = json!({"metadata": meta("s"), "type": "Opaque", "data": {"a": "MQ=="}, "stringData": {"a": "1", "b": "2"}});
        assert_eq!(
            secret_cells(&secret, now()),
            vec![json!("s"), json!("Opaque"), json!(2), json!("60m")]
        );
        let sa = json!({"metadata": meta("default"), "secrets": [{"name": "t"}]});
        assert_eq!(
            service_account_cells(&sa, now()),
            vec![json!("default"), json!(1), json!("60m")]
        );
    }

    #[test]
    fn replication_controller_and_quota() {
        let rc = json!({"metadata": meta("rc"), "spec": {"replicas": 3, "selector": {"app": "x"},
            "template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
            "status": {"replicas": 3, "readyReplicas": 2}});
        assert_eq!(
            rc_cells(&rc, now()),
            vec![
                json!("rc"),
                json!(3),
                json!(3),
                json!(2),
                json!("60m"),
                json!("c"),
                json!("nginx"),
                json!("app=x")
            ]
        );
        let quota = json!({"metadata": meta("q"), "status": {
            "hard": {"requests.cpu": "1", "limits.memory": "2Gi", "pods": "10", "limits.cpu": "2"},
            "used": {"requests.cpu": "500m", "pods": "3"}}});
        assert_eq!(
            resource_quota_cells(&quota, now()),
            vec![
                json!("q"),
                json!("pods: 3/10, requests.cpu: 500m/1"),
                json!("limits.cpu: 0/2, limits.memory: 0/2Gi"),
                json!("60m")
            ]
        );
    }

    #[test]
    fn namespace_and_component_status() {
        let ns = json!({"metadata": meta("kube-system"), "status": {"phase": "Active"}});
        assert_eq!(
            namespace_cells(&ns, now()),
            vec![json!("kube-system"), json!("Active"), json!("60m")]
        );
        let cs = json!({"metadata": {"name": "etcd-0"}, "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}]});
        assert_eq!(
            component_status_cells(&cs, now()),
            vec![json!("etcd-0"), json!("Healthy"), json!("ok"), json!("")]
        );
    }
}
