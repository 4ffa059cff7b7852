//! apps tables: Deployment, ReplicaSet, StatefulSet, DaemonSet and
//! ControllerRevision (upstream's `printDeployment`, `printReplicaSet`,
//! `printStatefulSet`, `printDaemonSet`, `printControllerRevision`).

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::util::{
    age, arr_at, cell, container_cells, format_label_selector, format_labels, get, int_at,
    label_selector, name, obj_at, opt_int, str_at, Selector,
};
use crate::{docs, Column, Printer, AGE, NAME};

pub(crate) const PRINTERS: &[Printer] = &[
    Printer {
        group: "apps",
        kind: "Deployment",
        columns: DEPLOYMENT_COLUMNS,
        cells: deployment_cells,
    },
    Printer {
        group: "apps",
        kind: "ReplicaSet",
        columns: REPLICA_SET_COLUMNS,
        cells: replica_set_cells,
    },
    Printer {
        group: "apps",
        kind: "StatefulSet",
        columns: STATEFUL_SET_COLUMNS,
        cells: stateful_set_cells,
    },
    Printer {
        group: "apps",
        kind: "DaemonSet",
        columns: DAEMON_SET_COLUMNS,
        cells: daemon_set_cells,
    },
    Printer {
        group: "apps",
        kind: "ControllerRevision",
        columns: CONTROLLER_REVISION_COLUMNS,
        cells: controller_revision_cells,
    },
];

const DEPLOYMENT_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Ready", "string", "Number of the pod with ready state"),
    Column::new("Up-to-date", "string", docs::EXT_DEPLOY_UPDATED),
    Column::new("Available", "string", docs::EXT_DEPLOY_AVAILABLE),
    AGE,
    Column::new("Containers", "string", docs::CONTAINERS).wide(),
    Column::new("Images", "string", docs::IMAGES).wide(),
    Column::new("Selector", "string", docs::EXT_DEPLOY_SELECTOR).wide(),
];

const REPLICA_SET_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Desired", "integer", docs::EXT_RS_REPLICAS),
    Column::new("Current", "integer", docs::EXT_RSS_REPLICAS),
    Column::new("Ready", "integer", docs::EXT_RSS_READY),
    AGE,
    Column::new("Containers", "string", docs::CONTAINERS).wide(),
    Column::new("Images", "string", docs::IMAGES).wide(),
    Column::new("Selector", "string", docs::EXT_RS_SELECTOR).wide(),
];

const STATEFUL_SET_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Ready", "string", "Number of the pod with ready state"),
    AGE,
    Column::new("Containers", "string", docs::CONTAINERS).wide(),
    Column::new("Images", "string", docs::IMAGES).wide(),
];

const DAEMON_SET_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Desired", "integer", docs::EXT_DS_DESIRED),
    Column::new("Current", "integer", docs::EXT_DS_CURRENT),
    Column::new("Ready", "integer", docs::EXT_DS_READY),
    Column::new("Up-to-date", "integer", docs::EXT_DS_UPDATED),
    Column::new("Available", "integer", docs::EXT_DS_AVAILABLE),
    Column::new("Node Selector", "string", docs::POD_NODESEL),
    AGE,
    Column::new("Containers", "string", docs::CONTAINERS).wide(),
    Column::new("Images", "string", docs::IMAGES).wide(),
    Column::new("Selector", "string", docs::EXT_DS_SELECTOR).wide(),
];

const CONTROLLER_REVISION_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Controller", "string", "Controller of the object"),
    Column::new("Revision", "string", docs::CR_REVISION),
    AGE,
];

/// `spec.replicas`, which defaulting sets to 1 when unset.
fn desired_replicas(obj: &Value) -> i64 {
    opt_int(obj, &["spec", "replicas"]).unwrap_or(1)
}

fn template_containers(obj: &Value) -> &[Value] {
    arr_at(obj, &["spec", "template", "spec", "containers"])
}

fn deployment_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // Upstream prints `LabelSelectorAsSelector(...).String()` here, not FormatLabelSelector.
    let selector = match label_selector(get(obj, &["spec", "selector"])) {
        Selector::Empty => String::new(),
        Selector::Requirements(s) => s,
        Selector::Invalid => "<invalid>".to_string(),
    };
    let (names, images) = container_cells(template_containers(obj));
    vec![
        cell(name(obj)),
        cell(format!(
            "{}/{}",
            int_at(obj, &["status", "readyReplicas"]),
            desired_replicas(obj)
        )),
        Value::from(int_at(obj, &["status", "updatedReplicas"])),
        Value::from(int_at(obj, &["status", "availableReplicas"])),
        age(obj, now),
        names,
        images,
        cell(selector),
    ]
}

fn replica_set_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = container_cells(template_containers(obj));
    vec![
        cell(name(obj)),
        Value::from(desired_replicas(obj)),
        Value::from(int_at(obj, &["status", "replicas"])),
        Value::from(int_at(obj, &["status", "readyReplicas"])),
        age(obj, now),
        names,
        images,
        cell(format_label_selector(get(obj, &["spec", "selector"]))),
    ]
}

fn stateful_set_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = container_cells(template_containers(obj));
    vec![
        cell(name(obj)),
        cell(format!(
            "{}/{}",
            int_at(obj, &["status", "readyReplicas"]),
            desired_replicas(obj)
        )),
        age(obj, now),
        names,
        images,
    ]
}

fn daemon_set_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let status = |field: &str| Value::from(int_at(obj, &["status", field]));
    let (names, images) = container_cells(template_containers(obj));
    vec![
        cell(name(obj)),
        status("desiredNumberScheduled"),
        status("currentNumberScheduled"),
        status("numberReady"),
        status("updatedNumberScheduled"),
        status("numberAvailable"),
        cell(format_labels(obj_at(
            obj,
            &["spec", "template", "spec", "nodeSelector"],
        ))),
        age(obj, now),
        names,
        images,
        cell(format_label_selector(get(obj, &["spec", "selector"]))),
    ]
}

/// "kind.group/name" of the object's controller (upstream's `formatResourceName`
/// with the kind), or "<none>".
fn controller_name(obj: &Value) -> String {
    let owners = arr_at(obj, &["metadata", "ownerReferences"]);
    let Some(owner) = owners
        .iter()
        .find(|o| get(o, &["controller"]).and_then(Value::as_bool) == Some(true))
    else {
        return "<none>".to_string();
    };
    let (group, _) = apimachinery::resource::split_api_version(str_at(owner, &["apiVersion"]));
    let kind = str_at(owner, &["kind"]);
    let owner_name = str_at(owner, &["name"]);
    if group.is_empty() && kind.is_empty() {
        return owner_name.to_string();
    }
    let group_kind = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    format!("{}/{owner_name}", group_kind.to_lowercase())
}

fn controller_revision_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        cell(name(obj)),
        cell(controller_name(obj)),
        Value::from(int_at(obj, &["revision"])),
        age(obj, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::{ago, now};
    use serde_json::json;

    fn template() -> Value {
        json!({"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}, {"name": "log", "image": "fluentbit"}]}})
    }

    #[test]
    fn deployment_cells_match_upstream() {
        let d = json!({"metadata": {"name": "web", "creationTimestamp": ago(90)},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template()},
            "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        assert_eq!(
            deployment_cells(&d, now()),
            vec![
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("90s"),
                json!("web,log"),
                json!("nginx:1.27,fluentbit"),
                json!("app=web")
            ]
        );
        let bare = deployment_cells(&json!({}), now());
        assert_eq!(bare[1..4], [json!("0/1"), json!(0), json!(0)]);
        assert_eq!(bare[7], json!(""));
        let bad =
            json!({"spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}}});
        assert_eq!(deployment_cells(&bad, now())[7], json!("<invalid>"));
    }

    #[test]
    fn replica_set_stateful_set_daemon_set() {
        let rs = json!({"metadata": {"name": "web-5d9"}, "spec": {"replicas": 2, "template": template()},
            "status": {"replicas": 2, "readyReplicas": 1}});
        assert_eq!(
            replica_set_cells(&rs, now()),
            vec![
                json!("web-5d9"),
                json!(2),
                json!(2),
                json!(1),
                json!("<unknown>"),
                json!("web,log"),
                json!("nginx:1.27,fluentbit"),
                json!("<none>")
            ]
        );
        let sts = json!({"metadata": {"name": "db"}, "spec": {"replicas": 3}, "status": {"readyReplicas": 3}});
        assert_eq!(stateful_set_cells(&sts, now())[1], json!("3/3"));
        let ds = json!({"metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": {"k": "v"}},
                     "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": []}}},
            "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                       "updatedNumberScheduled": 3, "numberAvailable": 2}});
        assert_eq!(
            daemon_set_cells(&ds, now()),
            vec![
                json!("agent"),
                json!(3),
                json!(3),
                json!(2),
                json!(3),
                json!(2),
                json!("kubernetes.io/os=linux"),
                json!("<unknown>"),
                json!(""),
                json!(""),
                json!("k=v")
            ]
        );
    }

    #[test]
    fn controller_revision_names_its_controller() {
        let cr = json!({"metadata": {"name": "agent-7f", "ownerReferences": [
            {"apiVersion": "v1", "kind": "Pod", "name": "other"},
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "controller": true}]}, "revision": 4});
        assert_eq!(
            controller_revision_cells(&cr, now()),
            vec![
                json!("agent-7f"),
                json!("daemonset.apps/agent"),
                json!(4),
                json!("<unknown>")
            ]
        );
        assert_eq!(controller_name(&json!({})), "<none>");
    }
}
