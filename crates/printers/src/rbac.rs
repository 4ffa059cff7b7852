//! rbac.authorization.k8s.io tables: RoleBinding and ClusterRoleBinding
//! (upstream's `printRoleBinding`, `printClusterRoleBinding`). Role and
//! ClusterRole have no printer upstream and get the default table.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::util::{age, arr_at, cell, name, str_at};
use crate::{docs, Column, Printer, AGE, NAME};

const GROUP: &str = "rbac.authorization.k8s.io";

pub(crate) const PRINTERS: &[Printer] = &[
    Printer {
        group: GROUP,
        kind: "RoleBinding",
        columns: ROLE_BINDING_COLUMNS,
        cells: binding_cells,
    },
    Printer {
        group: GROUP,
        kind: "ClusterRoleBinding",
        columns: CLUSTER_ROLE_BINDING_COLUMNS,
        cells: binding_cells,
    },
];

const ROLE_BINDING_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Role", "string", docs::RB_ROLEREF),
    AGE,
    Column::new("Users", "string", "Users in the roleBinding").wide(),
    Column::new("Groups", "string", "Groups in the roleBinding").wide(),
    Column::new(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the roleBinding",
    )
    .wide(),
];

const CLUSTER_ROLE_BINDING_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Role", "string", docs::CRB_ROLEREF),
    AGE,
    Column::new("Users", "string", "Users in the clusterRoleBinding").wide(),
    Column::new("Groups", "string", "Groups in the clusterRoleBinding").wide(),
    Column::new(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the clusterRoleBinding",
    )
    .wide(),
];

/// Subjects split like upstream's `rbac.SubjectsStrings`: users, groups and
/// "namespace/name" service accounts; other kinds are not shown.
fn subjects(obj: &Value) -> (Vec<&str>, Vec<&str>, Vec<String>) {
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for s in arr_at(obj, &["subjects"]) {
        match str_at(s, &["kind"]) {
            "ServiceAccount" => sas.push(format!(
                "{}/{}",
                str_at(s, &["namespace"]),
                str_at(s, &["name"])
            )),
            "User" => users.push(str_at(s, &["name"])),
            "Group" => groups.push(str_at(s, &["name"])),
            _ => {}
        }
    }
    (users, groups, sas)
}

fn binding_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let role = format!(
        "{}/{}",
        str_at(obj, &["roleRef", "kind"]),
        str_at(obj, &["roleRef", "name"])
    );
    let (users, groups, sas) = subjects(obj);
    vec![
        cell(name(obj)),
        cell(role),
        age(obj, now),
        cell(users.join(", ")),
        cell(groups.join(", ")),
        cell(sas.join(", ")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::now;
    use serde_json::json;

    #[test]
    fn binding_cells_split_subjects() {
        let rb = json!({"metadata": {"name": "admins"}, "roleRef": {"kind": "ClusterRole", "name": "admin"},
            "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "ops"}, {"kind": "User", "name": "bob"},
                         {"kind": "ServiceAccount", "namespace": "ci", "name": "deployer"}, {"kind": "Robot", "name": "r2"}]});
        assert_eq!(
            binding_cells(&rb, now()),
            vec![
                json!("admins"),
                json!("ClusterRole/admin"),
                json!("<unknown>"),
                json!("alice, bob"),
                json!("ops"),
                json!("ci/deployer")
            ]
        );
        assert_eq!(binding_cells(&json!({}), now())[1], json!("/"));
    }
}
