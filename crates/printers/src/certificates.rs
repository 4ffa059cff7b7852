//! certificates.k8s.io tables: CertificateSigningRequest and
//! ClusterTrustBundle (upstream's `printCertificateSigningRequest`,
//! `extractCSRStatus`, `printClusterTrustBundle`).

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use crate::util::{age, arr_at, cell, human_duration, name, opt_int, or, str_at};
use crate::{docs, Column, Printer, AGE, NAME};

const GROUP: &str = "certificates.k8s.io";

pub(crate) const PRINTERS: &[Printer] = &[
    Printer {
        group: GROUP,
        kind: "CertificateSigningRequest",
        columns: CSR_COLUMNS,
        cells: csr_cells,
    },
    Printer {
        group: GROUP,
        kind: "ClusterTrustBundle",
        columns: CTB_COLUMNS,
        cells: ctb_cells,
    },
];

const CSR_COLUMNS: &[Column] = &[
    NAME,
    AGE,
    Column::new("SignerName", "string", docs::CSR_SIGNER),
    Column::new("Requestor", "string", docs::CSR_REQUEST),
    Column::new("RequestedDuration", "string", docs::CSR_EXPIRATION),
    Column::new("Condition", "string", docs::CSRS_CONDITIONS),
];

const CTB_COLUMNS: &[Column] = &[NAME, Column::new("SignerName", "string", docs::CTB_SIGNER)];

/// "Approved", "Denied" or "Pending", then ",Failed" and ",Issued" when they apply.
fn csr_status(obj: &Value) -> String {
    let conditions = arr_at(obj, &["status", "conditions"]);
    let has = |t: &str| conditions.iter().any(|c| str_at(c, &["type"]) == t);
    let mut status = if has("Denied") {
        "Denied"
    } else if has("Approved") {
        "Approved"
    } else {
        "Pending"
    }
    .to_string();
    if has("Failed") {
        status.push_str(",Failed");
    }
    if !str_at(obj, &["status", "certificate"]).is_empty() {
        status.push_str(",Issued");
    }
    status
}

fn csr_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let requested = opt_int(obj, &["spec", "expirationSeconds"])
        .map_or("<none>".to_string(), |s| {
            human_duration(Duration::seconds(s))
        });
    vec![
        cell(name(obj)),
        age(obj, now),
        cell(or(str_at(obj, &["spec", "signerName"]), "<none>")),
        cell(str_at(obj, &["spec", "username"])),
        cell(requested),
        cell(csr_status(obj)),
    ]
}

fn ctb_cells(obj: &Value, _now: DateTime<Utc>) -> Vec<Value> {
    vec![
        cell(name(obj)),
        cell(or(str_at(obj, &["spec", "signerName"]), "<none>")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::{ago, now};
    use serde_json::json;

    #[test]
    fn csr_cells_match_upstream() {
        let csr = json!({"metadata": {"name": "csr-abc", "creationTimestamp": ago(30)},
            "spec": {"signerName": "kubernetes.io/kube-apiserver-client-kubelet", "username": "system:node:n1", "expirationSeconds": 86400},
            "status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "LS0t"}});
        assert_eq!(
            csr_cells(&csr, now()),
            vec![
                json!("csr-abc"),
                json!("30s"),
                json!("kubernetes.io/kube-apiserver-client-kubelet"),
                json!("system:node:n1"),
                json!("24h"),
                json!("Approved,Issued")
            ]
        );
        let denied = json!({"status": {"conditions": [{"type": "Approved"}, {"type": "Denied"}, {"type": "Failed"}]}});
        assert_eq!(csr_status(&denied), "Denied,Failed");
        assert_eq!(
            csr_cells(&json!({}), now())[2..],
            [
                json!("<none>"),
                json!(""),
                json!("<none>"),
                json!("Pending")
            ]
        );
    }
}
