//! admissionregistration.k8s.io tables: Mutating/ValidatingWebhookConfiguration,
//! ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding (upstream's
//! `printMutatingWebhook`, `printValidatingAdmissionPolicy`, ...).

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::util::{age, cell, get, label_selector, len_at, name, obj_at, str_at, Selector};
use crate::{Column, Printer, AGE, NAME};

const GROUP: &str = "admissionregistration.k8s.io";

pub(crate) const PRINTERS: &[Printer] = &[
    Printer {
        group: GROUP,
        kind: "MutatingWebhookConfiguration",
        columns: WEBHOOK_COLUMNS,
        cells: webhook_cells,
    },
    Printer {
        group: GROUP,
        kind: "ValidatingWebhookConfiguration",
        columns: WEBHOOK_COLUMNS,
        cells: webhook_cells,
    },
    Printer {
        group: GROUP,
        kind: "ValidatingAdmissionPolicy",
        columns: POLICY_COLUMNS,
        cells: policy_cells,
    },
    Printer {
        group: GROUP,
        kind: "ValidatingAdmissionPolicyBinding",
        columns: POLICY_BINDING_COLUMNS,
        cells: policy_binding_cells,
    },
];

const WEBHOOK_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Webhooks",
        "integer",
        "Webhooks indicates the number of webhooks registered in this configuration",
    ),
    AGE,
];

const POLICY_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Validations",
        "integer",
        "Validations indicates the number of validation rules defined in this configuration",
    ),
    Column::new(
        "ParamKind",
        "string",
        "ParamKind specifies the kind of resources used to parameterize this policy",
    ),
    AGE,
];

const POLICY_BINDING_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "PolicyName",
        "string",
        "PolicyName indicates the policy definition which the policy binding binded to",
    ),
    Column::new(
        "ParamRef",
        "string",
        "ParamRef indicates the param resource which sets the configration param",
    ),
    AGE,
];

fn webhook_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        cell(name(obj)),
        Value::from(len_at(obj, &["webhooks"])),
        age(obj, now),
    ]
}

fn policy_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let param_kind = match obj_at(obj, &["spec", "paramKind"]) {
        Some(_) => format!(
            "{}/{}",
            str_at(obj, &["spec", "paramKind", "apiVersion"]),
            str_at(obj, &["spec", "paramKind", "kind"])
        ),
        None => "<unset>".to_string(),
    };
    vec![
        cell(name(obj)),
        Value::from(len_at(obj, &["spec", "validations"])),
        cell(param_kind),
        age(obj, now),
    ]
}

fn policy_binding_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let param = match get(obj, &["spec", "paramRef"]).filter(|p| p.is_object()) {
        None => "<unset>".to_string(),
        Some(pr) => {
            let (ns, pname) = (str_at(pr, &["namespace"]), str_at(pr, &["name"]));
            if !pname.is_empty() {
                // Whether the param is cluster-scoped is unknown here: no namespace prints as "*".
                format!("{}/{pname}", if ns.is_empty() { "*" } else { ns })
            } else if let Some(sel) = get(pr, &["selector"]).filter(|s| s.is_object()) {
                match label_selector(Some(sel)) {
                    Selector::Requirements(s) => s,
                    Selector::Empty => String::new(),
                    Selector::Invalid => "<invalid>".to_string(),
                }
            } else {
                "<unset>".to_string()
            }
        }
    };
    vec![
        cell(name(obj)),
        cell(str_at(obj, &["spec", "policyName"])),
        cell(param),
        age(obj, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::now;
    use serde_json::json;

    #[test]
    fn admission_tables() {
        let hook = json!({"metadata": {"name": "w"}, "webhooks": [{"name": "a"}, {"name": "b"}]});
        assert_eq!(webhook_cells(&hook, now())[1], json!(2));
        let policy = json!({"metadata": {"name": "p"}, "spec": {"paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
            "validations": [{"expression": "true"}]}});
        assert_eq!(
            policy_cells(&policy, now())[1..3],
            [json!(1), json!("v1/ConfigMap")]
        );
        let binding = json!({"metadata": {"name": "b"}, "spec": {"policyName": "p", "paramRef": {"name": "cfg"}}});
        assert_eq!(
            policy_binding_cells(&binding, now())[1..3],
            [json!("p"), json!("*/cfg")]
        );
        let by_selector =
            json!({"spec": {"paramRef": {"selector": {"matchLabels": {"env": "prod"}}}}});
        assert_eq!(
            policy_binding_cells(&by_selector, now())[2],
            json!("env=prod")
        );
    }
}
