//! Service and Endpoints tables of the core group (upstream's `printService`,
//! `getServiceExternalIP`, `makePortString`, `printEndpoints`, `formatEndpoints`).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::util::{
    age, arr_at, cell, format_labels, int_at, join_host_port, name, obj_at, or, str_at,
};
use crate::{docs, Column, Printer, AGE, NAME};

pub(crate) const PRINTERS: &[Printer] = &[
    Printer {
        group: "",
        kind: "Service",
        columns: SERVICE_COLUMNS,
        cells: service_cells,
    },
    Printer {
        group: "",
        kind: "Endpoints",
        columns: ENDPOINTS_COLUMNS,
        cells: endpoints_cells,
    },
];

const SERVICE_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Type", "string", docs::SVC_TYPE),
    Column::new("Cluster-IP", "string", docs::SVC_CLUSTERIP),
    Column::new("External-IP", "string", docs::SVC_EXTIPS),
    Column::new("Port(s)", "string", docs::SVC_PORTS),
    AGE,
    Column::new("Selector", "string", docs::SVC_SELECTOR).wide(),
];

const ENDPOINTS_COLUMNS: &[Column] = &[
    NAME,
    Column::new("Endpoints", "string", docs::EP_SUBSETS),
    AGE,
];

/// Unique load-balancer IPs (or hostnames), sorted, joined by ",". Servers print
/// wide, so the value is never clipped.
pub(crate) fn load_balancer_status(ingress: &[Value]) -> String {
    let set: BTreeSet<&str> = ingress
        .iter()
        .map(|i| or(str_at(i, &["ip"]), str_at(i, &["hostname"])))
        .filter(|s| !s.is_empty())
        .collect();
    set.into_iter().collect::<Vec<_>>().join(",")
}

fn service_external_ip(svc: &Value, type_: &str) -> String {
    let external_ips: Vec<&str> = arr_at(svc, &["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match type_ {
        "ClusterIP" | "NodePort" if external_ips.is_empty() => "<none>".to_string(),
        "ClusterIP" | "NodePort" => external_ips.join(","),
        "LoadBalancer" => {
            let lb = load_balancer_status(arr_at(svc, &["status", "loadBalancer", "ingress"]));
            if !external_ips.is_empty() {
                let mut all: Vec<&str> = lb.split(',').filter(|s| !s.is_empty()).collect();
                all.extend(external_ips);
                all.join(",")
            } else if lb.is_empty() {
                "<pending>".to_string()
            } else {
                lb
            }
        }
        "ExternalName" => str_at(svc, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    }
}

fn service_ports(ports: &[Value]) -> String {
    let pieces: Vec<String> = ports
        .iter()
        .map(|p| {
            let port = int_at(p, &["port"]);
            let protocol = or(str_at(p, &["protocol"]), "TCP");
            match int_at(p, &["nodePort"]) {
                n if n > 0 => format!("{port}:{n}/{protocol}"),
                _ => format!("{port}/{protocol}"),
            }
        })
        .collect();
    pieces.join(",")
}

fn service_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let type_ = or(str_at(obj, &["spec", "type"]), "ClusterIP");
    let cluster_ip = arr_at(obj, &["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
        .unwrap_or_else(|| str_at(obj, &["spec", "clusterIP"]));
    let ports = service_ports(arr_at(obj, &["spec", "ports"]));
    vec![
        cell(name(obj)),
        cell(type_),
        cell(or(cluster_ip, "<none>")),
        cell(service_external_ip(obj, type_)),
        cell(or(&ports, "<none>")),
        age(obj, now),
        cell(format_labels(obj_at(obj, &["spec", "selector"]))),
    ]
}

/// Upstream's `formatEndpoints` for all ports: up to three `ip:port`, then "+ N more...".
fn format_endpoints(obj: &Value) -> String {
    const MAX: usize = 3;
    let subsets = arr_at(obj, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    for ss in subsets {
        let addresses = arr_at(ss, &["addresses"]);
        let ports = arr_at(ss, &["ports"]);
        if ports.is_empty() {
            // Headless services may have no ports.
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(str_at(a, &["ip"]).to_string());
            }
            continue;
        }
        for p in ports {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(str_at(a, &["ip"]), int_at(p, &["port"])));
            }
        }
    }
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count - MAX);
    }
    ret
}

fn endpoints_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![cell(name(obj)), cell(format_endpoints(obj)), age(obj, now)]
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
    fn service_cells_match_upstream() {
        let cases = [
            (
                json!({"metadata": meta("web"), "spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                    "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
                    "selector": {"app": "web"}}}),
                vec![
                    "web",
                    "NodePort",
                    "10.96.0.10",
                    "<none>",
                    "80:30080/TCP,53/UDP",
                    "60m",
                    "app=web",
                ],
            ),
            (
                json!({"metadata": meta("lb"), "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.0.11"],
                    "externalIPs": ["1.2.3.4"], "ports": [{"port": 443, "nodePort": 31443}]},
                    "status": {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "lb.example.com"}, {"ip": "5.6.7.8"}]}}}),
                vec![
                    "lb",
                    "LoadBalancer",
                    "10.96.0.11",
                    "5.6.7.8,lb.example.com,1.2.3.4",
                    "443:31443/TCP",
                    "60m",
                    "<none>",
                ],
            ),
            (
                json!({"metadata": meta("pending"), "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.12"}}),
                vec![
                    "pending",
                    "LoadBalancer",
                    "10.96.0.12",
                    "<pending>",
                    "<none>",
                    "60m",
                    "<none>",
                ],
            ),
            (
                json!({"metadata": meta("ext"), "spec": {"type": "ExternalName", "externalName": "db.example.com"}}),
                vec![
                    "ext",
                    "ExternalName",
                    "<none>",
                    "db.example.com",
                    "<none>",
                    "60m",
                    "<none>",
                ],
            ),
            (
                json!({"metadata": meta("headless"), "spec": {"clusterIP": "None", "clusterIPs": ["None"], "externalIPs": ["9.9.9.9", "8.8.8.8"]}}),
                vec![
                    "headless",
                    "ClusterIP",
                    "None",
                    "9.9.9.9,8.8.8.8",
                    "<none>",
                    "60m",
                    "<none>",
                ],
            ),
        ];
        for (svc, want) in cases {
            let want: Vec<Value> = want.into_iter().map(Value::from).collect();
            assert_eq!(service_cells(&svc, now()), want);
        }
    }

    #[test]
    fn endpoints_list_three_then_more() {
        let ep = json!({"metadata": meta("svc"), "subsets": [
            {"addresses": [{"ip": "10.0.0.1"}, {"ip": "fd00::2"}], "ports": [{"port": 80}, {"port": 443}]}]});
        assert_eq!(
            format_endpoints(&ep),
            "10.0.0.1:80,[fd00::2]:80,10.0.0.1:443 + 1 more..."
        );
        let headless = json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}]}]});
        assert_eq!(format_endpoints(&headless), "10.0.0.1");
        assert_eq!(format_endpoints(&json!({})), "<none>");
    }
}
