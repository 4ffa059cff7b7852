//! Pod and PodTemplate tables (upstream's `printPod`, `printPodTemplate` in
//! `pkg/printers/internalversion/printers.go`).
//!
//! The STATUS cell follows upstream exactly: the phase or `status.reason`,
//! overridden by SchedulingGated, by the first init container that has not
//! finished ("Init:1/2", "Init:CrashLoopBackOff", "Init:ExitCode:1"), then by
//! the last app container's waiting or terminated reason, and finally by
//! "Terminating" / "Unknown" for pods being deleted.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::util::{
    age, arr_at, cell, container_cells, format_labels, get, human_duration, int_at, is_set, name,
    opt_bool, opt_str, or, parse_time, str_at,
};
use crate::{docs, Column, Printer, AGE, NAME};

pub(crate) const PRINTERS: &[Printer] = &[
    Printer {
        group: "",
        kind: "Pod",
        columns: POD_COLUMNS,
        cells: pod_cells,
    },
    Printer {
        group: "",
        kind: "PodTemplate",
        columns: POD_TEMPLATE_COLUMNS,
        cells: pod_template_cells,
    },
];

const POD_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
    Column::new("Status", "string", "The aggregate status of the containers in this pod."),
    Column::new(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    Column::new("IP", "string", docs::POD_IP).wide(),
    Column::new("Node", "string", docs::POD_NODE).wide(),
    Column::new("Nominated Node", "string", docs::POD_NOMINATED).wide(),
    Column::new("Readiness Gates", "string", docs::POD_GATES).wide(),
];

const POD_TEMPLATE_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Containers",
        "string",
        "Names of each container in the template.",
    ),
    Column::new(
        "Images",
        "string",
        "Images referenced by each container in the template.",
    ),
    Column::new("Pod Labels", "string", "The labels for the pod template."),
];

/// `status.reason` the node lifecycle controller sets on pods of an unreachable node.
const NODE_UNREACHABLE_POD_REASON: &str = "NodeLost";

/// The later of a running "last restart" time and a container's last termination.
fn latest(cur: Option<DateTime<Utc>>, status: &Value) -> Option<DateTime<Utc>> {
    let finished = opt_str(status, &["lastState", "terminated", "finishedAt"]).and_then(parse_time);
    match (cur, finished) {
        (Some(c), Some(f)) if f > c => Some(f),
        (None, f) => f,
        (c, _) => c,
    }
}

fn pod_cells(pod: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let init_specs = arr_at(pod, &["spec", "initContainers"]);
    let conditions = arr_at(pod, &["status", "conditions"]);
    let phase = str_at(pod, &["status", "phase"]);

    let mut total = arr_at(pod, &["spec", "containers"]).len();
    let mut ready = 0usize;
    let mut restarts = 0i64;
    let mut sidecar_restarts = 0i64;
    let mut last_restart: Option<DateTime<Utc>> = None;
    let mut last_sidecar_restart: Option<DateTime<Utc>> = None;

    let mut reason = or(str_at(pod, &["status", "reason"]), phase).to_string();
    if conditions.iter().any(|c| {
        str_at(c, &["type"]) == "PodScheduled" && str_at(c, &["reason"]) == "SchedulingGated"
    }) {
        reason = "SchedulingGated".to_string();
    }

    // Restartable init containers ("sidecars") run for the pod's lifetime and count as containers.
    let mut sidecar: HashMap<&str, bool> = HashMap::new();
    for c in init_specs {
        let restartable = str_at(c, &["restartPolicy"]) == "Always";
        sidecar.insert(str_at(c, &["name"]), restartable);
        if restartable {
            total += 1;
        }
    }

    let mut initializing = false;
    for (i, cs) in arr_at(pod, &["status", "initContainerStatuses"])
        .iter()
        .enumerate()
    {
        let count = int_at(cs, &["restartCount"]);
        restarts += count;
        last_restart = latest(last_restart, cs);
        let is_sidecar = sidecar.get(str_at(cs, &["name"])).copied().unwrap_or(false);
        if is_sidecar {
            sidecar_restarts += count;
            last_sidecar_restart = latest(last_sidecar_restart, cs);
        }
        let terminated = get(cs, &["state", "terminated"]).filter(|t| t.is_object());
        let waiting_reason = str_at(cs, &["state", "waiting", "reason"]);
        match terminated {
            Some(t) if int_at(t, &["exitCode"]) == 0 => continue,
            _ if is_sidecar && opt_bool(cs, &["started"]) == Some(true) => {
                if opt_bool(cs, &["ready"]) == Some(true) {
                    ready += 1;
                }
                continue;
            }
            Some(t) => {
                reason = match (str_at(t, &["reason"]), int_at(t, &["signal"])) {
                    ("", 0) => format!("Init:ExitCode:{}", int_at(t, &["exitCode"])),
                    ("", signal) => format!("Init:Signal:{signal}"),
                    (r, _) => format!("Init:{r}"),
                };
            }
            None if is_set(cs, &["state", "waiting"])
                && !waiting_reason.is_empty()
                && waiting_reason != "PodInitializing" =>
            {
                reason = format!("Init:{waiting_reason}");
            }
            None => reason = format!("Init:{i}/{}", init_specs.len()),
        }
        initializing = true;
        break;
    }

    let initialized = conditions
        .iter()
        .find(|c| str_at(c, &["type"]) == "Initialized");
    if !initializing || initialized.is_some_and(|c| str_at(c, &["status"]) == "True") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for cs in arr_at(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts += int_at(cs, &["restartCount"]);
            last_restart = latest(last_restart, cs);
            let waiting_reason = str_at(cs, &["state", "waiting", "reason"]);
            let terminated = get(cs, &["state", "terminated"]).filter(|t| t.is_object());
            if is_set(cs, &["state", "waiting"]) && !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                reason = match (str_at(t, &["reason"]), int_at(t, &["signal"])) {
                    ("", 0) => format!("ExitCode:{}", int_at(t, &["exitCode"])),
                    ("", signal) => format!("Signal:{signal}"),
                    (r, _) => r.to_string(),
                };
            } else if opt_bool(cs, &["ready"]) == Some(true) && is_set(cs, &["state", "running"]) {
                has_running = true;
                ready += 1;
            }
        }
        // At least one container still running: the pod is not "Completed" yet.
        if reason == "Completed" && has_running {
            let pod_ready = conditions
                .iter()
                .any(|c| str_at(c, &["type"]) == "Ready" && str_at(c, &["status"]) == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.to_string();
        }
    }

    if apimachinery::meta::deletion_timestamp(pod).is_some() {
        if str_at(pod, &["status", "reason"]) == NODE_UNREACHABLE_POD_REASON {
            reason = "Unknown".to_string();
        } else if phase != "Failed" && phase != "Succeeded" {
            reason = "Terminating".to_string();
        }
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", human_duration(now - t)),
        _ => restarts.to_string(),
    };

    let pod_ip = arr_at(pod, &["status", "podIPs"])
        .first()
        .map(|ip| str_at(ip, &["ip"]))
        .unwrap_or_else(|| str_at(pod, &["status", "podIP"]));
    let gates = arr_at(pod, &["spec", "readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let true_conditions = gates
            .iter()
            .filter(|g| {
                let want = str_at(g, &["conditionType"]);
                conditions
                    .iter()
                    .find(|c| str_at(c, &["type"]) == want)
                    .is_some_and(|c| str_at(c, &["status"]) == "True")
            })
            .count();
        format!("{true_conditions}/{}", gates.len())
    };

    vec![
        cell(name(pod)),
        cell(format!("{ready}/{total}")),
        cell(reason),
        cell(restarts_cell),
        age(pod, now),
        cell(or(pod_ip, "<none>")),
        cell(or(str_at(pod, &["spec", "nodeName"]), "<none>")),
        cell(or(str_at(pod, &["status", "nominatedNodeName"]), "<none>")),
        cell(readiness_gates),
    ]
}

fn pod_template_cells(obj: &Value, _now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = container_cells(arr_at(obj, &["template", "spec", "containers"]));
    let labels = get(obj, &["template", "metadata", "labels"]).and_then(Value::as_object);
    vec![cell(name(obj)), names, images, cell(format_labels(labels))]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::{ago, now};
    use serde_json::json;

    fn pod(spec: Value, status: Value) -> Value {
        json!({"metadata": {"name": "p", "creationTimestamp": ago(600)}, "spec": spec, "status": status})
    }

    /// Cells for READY, STATUS, RESTARTS.
    fn summary(p: &Value) -> (String, String, String) {
        let row = pod_cells(p, now());
        let s = |i: usize| row[i].as_str().unwrap_or_default().to_string();
        (s(1), s(2), s(3))
    }

    #[test]
    fn pod_status_cells_match_upstream() {
        let one = json!({"containers": [{"name": "c"}]});
        let two_init = json!({"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "c"}]});
        let cases: Vec<(&str, Value, (&str, &str, &str))> = vec![
            (
                "running and ready",
                pod(
                    one.clone(),
                    json!({"phase": "Running", "containerStatuses": [
                    {"name": "c", "ready": true, "restartCount": 0, "state": {"running": {}}}]}),
                ),
                ("1/1", "Running", "0"),
            ),
            (
                "crash loop with a recent restart",
                pod(
                    one.clone(),
                    json!({"phase": "Running", "containerStatuses": [
                    {"name": "c", "ready": false, "restartCount": 5,
                     "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                     "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(300)}}}]}),
                ),
                ("0/1", "CrashLoopBackOff", "5 (5m ago)"),
            ),
            (
                "first init container running",
                pod(
                    two_init.clone(),
                    json!({"phase": "Pending", "initContainerStatuses": [
                    {"name": "i1", "state": {"running": {}}}, {"name": "i2", "state": {"waiting": {"reason": "PodInitializing"}}}]}),
                ),
                ("0/1", "Init:0/2", "0"),
            ),
            (
                "second init container waiting",
                pod(
                    two_init.clone(),
                    json!({"phase": "Pending", "initContainerStatuses": [
                    {"name": "i1", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                    {"name": "i2", "state": {"waiting": {"reason": "PodInitializing"}}}]}),
                ),
                ("0/1", "Init:1/2", "0"),
            ),
            (
                "init container crash loop",
                pod(
                    two_init.clone(),
                    json!({"phase": "Pending", "initContainerStatuses": [
                    {"name": "i1", "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                     "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(40)}}}]}),
                ),
                ("0/1", "Init:CrashLoopBackOff", "3 (40s ago)"),
            ),
            (
                "init container failed without reason",
                pod(
                    two_init.clone(),
                    json!({"phase": "Pending", "initContainerStatuses": [
                    {"name": "i1", "state": {"terminated": {"exitCode": 2}}}]}),
                ),
                ("0/1", "Init:ExitCode:2", "0"),
            ),
            (
                "init container killed by a signal",
                pod(
                    two_init,
                    json!({"phase": "Pending", "initContainerStatuses": [
                    {"name": "i1", "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}),
                ),
                ("0/1", "Init:Signal:9", "0"),
            ),
            (
                "completed",
                pod(
                    one.clone(),
                    json!({"phase": "Succeeded", "containerStatuses": [
                    {"name": "c", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
                ),
                ("0/1", "Completed", "0"),
            ),
            (
                "one completed, one still running, pod not ready",
                pod(
                    json!({"containers": [{"name": "a"}, {"name": "b"}]}),
                    json!({"phase": "Running",
                    "conditions": [{"type": "Ready", "status": "False"}],
                    "containerStatuses": [
                        {"name": "a", "ready": true, "state": {"running": {}}},
                        {"name": "b", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
                ),
                ("1/2", "NotReady", "0"),
            ),
            (
                "one completed, one still running, pod ready",
                pod(
                    json!({"containers": [{"name": "a"}, {"name": "b"}]}),
                    json!({"phase": "Running",
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "containerStatuses": [
                        {"name": "a", "ready": true, "state": {"running": {}}},
                        {"name": "b", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
                ),
                ("1/2", "Running", "0"),
            ),
            (
                "container terminated without a reason",
                pod(
                    one.clone(),
                    json!({"phase": "Running", "containerStatuses": [
                    {"name": "c", "state": {"terminated": {"exitCode": 3}}}]}),
                ),
                ("0/1", "ExitCode:3", "0"),
            ),
            (
                "evicted",
                pod(one.clone(), json!({"phase": "Failed", "reason": "Evicted"})),
                ("0/1", "Evicted", "0"),
            ),
            (
                "scheduling gated",
                pod(
                    one.clone(),
                    json!({"phase": "Pending", "conditions": [
                    {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
                ),
                ("0/1", "SchedulingGated", "0"),
            ),
            (
                "sidecar started and ready counts as a container",
                pod(
                    json!({"initContainers": [{"name": "s", "restartPolicy": "Always"}], "containers": [{"name": "c"}]}),
                    json!({"phase": "Running",
                        "conditions": [{"type": "Initialized", "status": "True"}],
                        "initContainerStatuses": [{"name": "s", "started": true, "ready": true, "restartCount": 2,
                            "state": {"running": {}}, "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(7200)}}}],
                        "containerStatuses": [{"name": "c", "ready": true, "restartCount": 1,
                            "state": {"running": {}}, "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(60)}}}]}),
                ),
                ("2/2", "Running", "3 (60s ago)"),
            ),
            ("empty pod", json!({}), ("0/0", "", "0")),
        ];
        for (what, p, (ready, status, restarts)) in cases {
            assert_eq!(
                summary(&p),
                (ready.to_string(), status.to_string(), restarts.to_string()),
                "{what}"
            );
        }
    }

    #[test]
    fn terminating_and_node_lost_pods() {
        let mut p = pod(
            json!({"containers": [{"name": "c"}]}),
            json!({"phase": "Running", "containerStatuses": [
            {"name": "c", "ready": true, "state": {"running": {}}}]}),
        );
        p["metadata"]["deletionTimestamp"] = json!(ago(5));
        assert_eq!(summary(&p).1, "Terminating");
        p["status"]["reason"] = json!("NodeLost");
        assert_eq!(summary(&p).1, "Unknown");
        let mut done = pod(json!({}), json!({"phase": "Succeeded"}));
        done["metadata"]["deletionTimestamp"] = json!(ago(5));
        assert_eq!(summary(&done).1, "Succeeded");
    }

    #[test]
    fn pod_wide_cells() {
        let p = json!({
            "metadata": {"name": "web-0", "creationTimestamp": ago(3 * 86400 + 7200)},
            "spec": {"nodeName": "node-1", "containers": [{"name": "c"}],
                     "readinessGates": [{"conditionType": "example.com/a"}, {"conditionType": "example.com/b"}]},
            "status": {"phase": "Running", "podIP": "10.0.0.9", "podIPs": [{"ip": "10.0.0.9"}, {"ip": "fd00::9"}],
                       "conditions": [{"type": "example.com/a", "status": "True"}, {"type": "example.com/b", "status": "False"}],
                       "containerStatuses": [{"name": "c", "ready": true, "state": {"running": {}}}]}
        });
        assert_eq!(
            pod_cells(&p, now()),
            vec![
                json!("web-0"),
                json!("1/1"),
                json!("Running"),
                json!("0"),
                json!("3d2h"),
                json!("10.0.0.9"),
                json!("node-1"),
                json!("<none>"),
                json!("1/2")
            ]
        );
        let bare = pod_cells(&json!({"status": {"podIP": "10.1.1.1"}}), now());
        assert_eq!(
            bare[4..],
            [
                json!("<unknown>"),
                json!("10.1.1.1"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>")
            ]
        );
    }

    #[test]
    fn pod_template_cells_list_containers_and_labels() {
        let t = json!({"metadata": {"name": "tmpl"}, "template": {
            "metadata": {"labels": {"run": "x", "app": "y"}},
            "spec": {"containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "busybox"}]}}});
        assert_eq!(
            pod_template_cells(&t, now()),
            vec![
                json!("tmpl"),
                json!("a,b"),
                json!("nginx,busybox"),
                json!("app=y,run=x")
            ]
        );
    }
}
