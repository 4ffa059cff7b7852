//! networking.k8s.io tables: Ingress, IngressClass, NetworkPolicy, ServiceCIDR
//! and IPAddress (upstream's `printIngress`, `printIngressClass`,
//! `printNetworkPolicy`, `printServiceCIDR`, `printIPAddress`).

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::service::load_balancer_status;
use crate::util::{age, arr_at, cell, format_label_selector, get, name, obj_at, opt_str, str_at};
use crate::{docs, Column, Printer, AGE, NAME};

const GROUP: &str = "networking.k8s.io";

pub(crate) const PRINTERS: &[Printer] = &[
    Printer {
        group: GROUP,
        kind: "Ingress",
        columns: INGRESS_COLUMNS,
        cells: ingress_cells,
    },
    Printer {
        group: GROUP,
        kind: "IngressClass",
        columns: INGRESS_CLASS_COLUMNS,
        cells: ingress_class_cells,
    },
    Printer {
        group: GROUP,
        kind: "NetworkPolicy",
        columns: NETWORK_POLICY_COLUMNS,
        cells: network_policy_cells,
    },
    Printer {
        group: GROUP,
        kind: "ServiceCIDR",
        columns: SERVICE_CIDR_COLUMNS,
        cells: service_cidr_cells,
    },
    Printer {
        group: GROUP,
        kind: "IPAddress",
        columns: IP_ADDRESS_COLUMNS,
        cells: ip_address_cells,
    },
];

const INGRESS_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Class",
        "string",
        "The name of the IngressClass resource that should be used for additional configuration",
    ),
    Column::new(
        "Hosts",
        "string",
        "Hosts that incoming requests are matched against before the ingress rule",
    ),
    Column::new(
        "Address",
        "string",
        "Address is a list containing ingress points for the load-balancer",
    ),
    Column::new("Ports", "string", "Ports of TLS configurations that open"),
    AGE,
];

const INGRESS_CLASS_COLUMNS: &[Column] = &[
    NAME,
    Column::new(
        "Controller",
        "string",
        "Controller that is responsible for handling this class",
    ),
    Column::new(
        "Parameters",
        "string",
        "A reference to a resource with additional parameters",
    ),
    AGE,
];

const NETWORK_POLICY_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Pod-Selector", "string", docs::EXT_NP_PODSELECTOR),
    AGE,
];

const SERVICE_CIDR_COLUMNS: &[Column] =
    &[NAME, Column::new("CIDRs", "string", docs::SCIDR_CIDRS), AGE];

// Upstream declares no Age column for IPAddress (though it appends an age cell
// kubectl never shows); the table here has exactly the declared columns.
const IP_ADDRESS_COLUMNS: &[Column] = &[NAME, Column::new("ParentRef", "string", docs::IPA_PARENT)];

/// Upstream's `formatHosts`: up to three hosts, "*" when no rule names one.
fn format_hosts(rules: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == MAX {
            more = true;
        }
        let host = str_at(rule, &["host"]);
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".to_string();
    }
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", rules.len() - MAX);
    }
    ret
}

fn ingress_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let ports = if arr_at(obj, &["spec", "tls"]).is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        cell(name(obj)),
        cell(opt_str(obj, &["spec", "ingressClassName"]).unwrap_or("<none>")),
        cell(format_hosts(arr_at(obj, &["spec", "rules"]))),
        cell(load_balancer_status(arr_at(
            obj,
            &["status", "loadBalancer", "ingress"],
        ))),
        cell(ports),
        age(obj, now),
    ]
}

fn ingress_class_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let parameters = match obj_at(obj, &["spec", "parameters"]) {
        None => "<none>".to_string(),
        Some(_) => {
            let mut p = str_at(obj, &["spec", "parameters", "kind"]).to_string();
            if let Some(group) = opt_str(obj, &["spec", "parameters", "apiGroup"]) {
                p = format!("{p}.{group}");
            }
            format!("{p}/{}", str_at(obj, &["spec", "parameters", "name"]))
        }
    };
    vec![
        cell(name(obj)),
        cell(str_at(obj, &["spec", "controller"])),
        cell(parameters),
        age(obj, now),
    ]
}

fn network_policy_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // podSelector is a struct, not a pointer: unset means empty, which selects everything.
    let selector = get(obj, &["spec", "podSelector"])
        .filter(|s| s.is_object())
        .cloned();
    let selector = selector.unwrap_or_else(|| Value::Object(Default::default()));
    vec![
        cell(name(obj)),
        cell(format_label_selector(Some(&selector))),
        age(obj, now),
    ]
}

fn service_cidr_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let cidrs: Vec<&str> = arr_at(obj, &["spec", "cidrs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    vec![cell(name(obj)), cell(cidrs.join(",")), age(obj, now)]
}

fn ip_address_cells(obj: &Value, _now: DateTime<Utc>) -> Vec<Value> {
    let parent = match obj_at(obj, &["spec", "parentRef"]) {
        None => "<none>".to_string(),
        Some(_) => {
            let resource = str_at(obj, &["spec", "parentRef", "resource"]);
            let group = str_at(obj, &["spec", "parentRef", "group"]);
            let mut p = if group.is_empty() {
                resource.to_string()
            } else {
                format!("{resource}.{group}")
            }
            .to_lowercase();
            let namespace = str_at(obj, &["spec", "parentRef", "namespace"]);
            if !namespace.is_empty() {
                p = format!("{p}/{namespace}");
            }
            format!("{p}/{}", str_at(obj, &["spec", "parentRef", "name"]))
        }
    };
    vec![cell(name(obj)), cell(parent)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testing::{ago, now};
    use serde_json::json;

    #[test]
    fn ingress_cells_match_upstream() {
        let ing = json!({"metadata": {"name": "web", "creationTimestamp": ago(120)},
            "spec": {"ingressClassName": "nginx", "tls": [{"hosts": ["a.example.com"]}],
                     "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}, {}, {"host": "c.example.com"}, {"host": "d.example.com"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.10"}, {"hostname": "a-very-long-load-balancer.example.com"}]}}});
        assert_eq!(
            ingress_cells(&ing, now()),
            vec![
                json!("web"),
                json!("nginx"),
                json!("a.example.com,b.example.com,c.example.com + 2 more..."),
                json!("192.0.2.10,a-very-long-load-balancer.example.com"),
                json!("80, 443"),
                json!("2m")
            ]
        );
        assert_eq!(
            ingress_cells(&json!({}), now())[1..5],
            [json!("<none>"), json!("*"), json!(""), json!("80")]
        );
    }

    #[test]
    fn ingress_class_network_policy_service_cidr_ip_address() {
        let ic = json!({"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx",
            "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}});
        assert_eq!(
            ingress_class_cells(&ic, now())[1..3],
            [
                json!("k8s.io/ingress-nginx"),
                json!("IngressParameters.k8s.example.com/external-lb")
            ]
        );
        assert_eq!(ingress_class_cells(&json!({}), now())[2], json!("<none>"));

        let np = json!({"metadata": {"name": "deny"}, "spec": {"podSelector": {"matchLabels": {"role": "db"}}}});
        assert_eq!(network_policy_cells(&np, now())[1], json!("role=db"));
        assert_eq!(
            network_policy_cells(&json!({"spec": {"podSelector": {}}}), now())[1],
            json!("<none>")
        );

        let cidr = json!({"metadata": {"name": "kubernetes"}, "spec": {"cidrs": ["10.96.0.0/12", "fd00::/108"]}});
        assert_eq!(
            service_cidr_cells(&cidr, now())[1],
            json!("10.96.0.0/12,fd00::/108")
        );

        let ip = json!({"metadata": {"name": "10.96.0.1"}, "spec": {"parentRef": {"group": "", "resource": "services", "namespace": "default", "name": "kubernetes"}}});
        assert_eq!(
            ip_address_cells(&ip, now())[1],
            json!("services/default/kubernetes")
        );
    }
}
