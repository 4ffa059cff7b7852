//! batch tables: Job (Status, Completions, Duration as in upstream since 1.31)
//! and CronJob (upstream's `printJob`, `printCronJob`).

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::util::{
    age, arr_at, bool_ptr, cell, container_cells, format_label_selector, get, has_condition,
    human_duration, int_at, len_at, name, opt_bool, opt_int, opt_str, parse_time,
    translate_timestamp_since,
};
use crate::{docs, Column, Printer, AGE, NAME};

pub(crate) const PRINTERS: &[Printer] = &[
    Printer {
        group: "batch",
        kind: "Job",
        columns: JOB_COLUMNS,
        cells: job_cells,
    },
    Printer {
        group: "batch",
        kind: "CronJob",
        columns: CRON_JOB_COLUMNS,
        cells: cron_job_cells,
    },
];

const JOB_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Status", "string", "Status of the job."),
    Column::new("Completions", "string", docs::JOBS_SUCCEEDED),
    Column::new("Duration", "string", "Time required to complete the job."),
    AGE,
    Column::new("Containers", "string", docs::CONTAINERS).wide(),
    Column::new("Images", "string", docs::IMAGES).wide(),
    Column::new("Selector", "string", docs::JOB_SELECTOR).wide(),
];

const CRON_JOB_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Schedule", "string", docs::CJ_SCHEDULE),
    Column::new("Timezone", "string", docs::CJ_TIMEZONE),
    Column::new("Suspend", "boolean", docs::CJ_SUSPEND),
    Column::new("Active", "integer", docs::CJS_ACTIVE),
    Column::new("Last Schedule", "string", docs::CJS_LAST_SCHEDULE),
    AGE,
    Column::new("Containers", "string", docs::CONTAINERS).wide(),
    Column::new("Images", "string", docs::IMAGES).wide(),
    Column::new("Selector", "string", docs::JOB_SELECTOR).wide(),
];

fn job_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let succeeded = int_at(obj, &["status", "succeeded"]);
    let completions = match opt_int(obj, &["spec", "completions"]) {
        Some(c) => format!("{succeeded}/{c}"),
        None => match opt_int(obj, &["spec", "parallelism"]).unwrap_or(0) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let start = opt_str(obj, &["status", "startTime"]).and_then(parse_time);
    let completion = opt_str(obj, &["status", "completionTime"]).and_then(parse_time);
    let duration = match (start, completion) {
        (None, _) => String::new(),
        (Some(s), None) => human_duration(now - s),
        (Some(s), Some(c)) => human_duration(c - s),
    };
    let conditions = arr_at(obj, &["status", "conditions"]);
    let status = if has_condition(conditions, "Complete") {
        "Complete"
    } else if has_condition(conditions, "Failed") {
        "Failed"
    } else if apimachinery::meta::deletion_timestamp(obj).is_some() {
        "Terminating"
    } else if has_condition(conditions, "Suspended") {
        "Suspended"
    } else if has_condition(conditions, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = container_cells(arr_at(obj, &["spec", "template", "spec", "containers"]));
    vec![
        cell(name(obj)),
        cell(status),
        cell(completions),
        cell(duration),
        age(obj, now),
        names,
        images,
        cell(format_label_selector(get(obj, &["spec", "selector"]))),
    ]
}

fn cron_job_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let last_schedule = match opt_str(obj, &["status", "lastScheduleTime"]) {
        Some(t) => translate_timestamp_since(Some(t), now),
        None => "<none>".to_string(),
    };
    let job_spec = get(obj, &["spec", "jobTemplate", "spec"]).unwrap_or(&Value::Null);
    let (names, images) = container_cells(arr_at(job_spec, &["template", "spec", "containers"]));
    vec![
        cell(name(obj)),
        cell(crate::util::str_at(obj, &["spec", "schedule"])),
        cell(opt_str(obj, &["spec", "timeZone"]).unwrap_or("<none>")),
        cell(bool_ptr(opt_bool(obj, &["spec", "suspend"]))),
        Value::from(len_at(obj, &["status", "active"])),
        cell(last_schedule),
        age(obj, now),
        names,
        images,
        cell(format_label_selector(get(job_spec, &["selector"]))),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::{ago, now};
    use serde_json::json;

    fn job(spec: Value, status: Value) -> Value {
        json!({"metadata": {"name": "pi", "creationTimestamp": ago(7200)}, "spec": spec, "status": status})
    }

    #[test]
    fn job_status_completions_and_duration() {
        let cases = [
            (
                job(
                    json!({"completions": 1}),
                    json!({"succeeded": 1, "startTime": ago(7200), "completionTime": ago(7000),
                    "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}),
                ),
                ("Complete", "1/1", "3m20s"),
            ),
            (
                job(
                    json!({"completions": 3}),
                    json!({"succeeded": 1, "startTime": ago(300)}),
                ),
                ("Running", "1/3", "5m"),
            ),
            (
                job(json!({"parallelism": 4}), json!({"succeeded": 2})),
                ("Running", "2/1 of 4", ""),
            ),
            (
                job(
                    json!({}),
                    json!({"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}),
                ),
                ("Failed", "0/1", ""),
            ),
            (
                job(
                    json!({"completions": 2}),
                    json!({"conditions": [{"type": "Suspended", "status": "True"}]}),
                ),
                ("Suspended", "0/2", ""),
            ),
            (
                job(
                    json!({"completions": 2}),
                    json!({"conditions": [{"type": "FailureTarget", "status": "True"}]}),
                ),
                ("FailureTarget", "0/2", ""),
            ),
            (
                job(
                    json!({"completions": 2}),
                    json!({"conditions": [{"type": "Complete", "status": "False"}]}),
                ),
                ("Running", "0/2", ""),
            ),
        ];
        for (j, (status, completions, duration)) in cases {
            let row = job_cells(&j, now());
            assert_eq!(
                row[1..4],
                [json!(status), json!(completions), json!(duration)],
                "{j}"
            );
            assert_eq!(row[4], json!("120m"));
        }
        let mut deleting = job(
            json!({"completions": 1}),
            json!({"conditions": [{"type": "Suspended", "status": "True"}]}),
        );
        deleting["metadata"]["deletionTimestamp"] = json!(ago(1));
        assert_eq!(job_cells(&deleting, now())[1], json!("Terminating"));
    }

    #[test]
    fn cron_job_cells_match_upstream() {
        let cj = json!({"metadata": {"name": "nightly", "creationTimestamp": ago(86400 * 3)},
            "spec": {"schedule": "0 3 * * *", "suspend": false, "jobTemplate": {"spec": {
                "template": {"spec": {"containers": [{"name": "backup", "image": "restic"}]}}}}},
            "status": {"active": [{"name": "nightly-1"}], "lastScheduleTime": ago(3600 * 9)}});
        assert_eq!(
            cron_job_cells(&cj, now()),
            vec![
                json!("nightly"),
                json!("0 3 * * *"),
                json!("<none>"),
                json!("False"),
                json!(1),
                json!("9h"),
                json!("3d"),
                json!("backup"),
                json!("restic"),
                json!("<none>")
            ]
        );
        let bare = cron_job_cells(&json!({"spec": {"timeZone": "Etc/UTC"}}), now());
        assert_eq!(
            bare[2..6],
            [
                json!("Etc/UTC"),
                json!("<unset>"),
                json!(0),
                json!("<none>")
            ]
        );
    }
}
