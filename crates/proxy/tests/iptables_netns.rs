//! The iptables proxier's rules in a real kernel, in the network
//! namespaces of `lab` (nothing touches the host's tables, no packet can
//! reach the uplink): real TCP through ClusterIP, NodePort on the node's
//! address and on 127.0.0.1 (iptables mode serves every local address),
//! hairpin from a pod, ClientIP affinity, the no-endpoints reject, and
//! partial syncs as endpoints move — applied by the same backend the
//! binary runs.

use std::collections::BTreeSet;
use std::sync::Arc;

use proxy::backend::{Backend, Synced};
use proxy::iptables::apply::{Iptables, IptablesCommand};
use proxy::iptables::IptablesBackend;
use proxy::types::{ServiceMap, Settings};

mod lab;
use lab::{endpoint, service, sh, spn, Lab};

#[tokio::test]
async fn services_reach_their_endpoints_through_real_iptables_rules() {
    let mut lab = Lab::new(211);
    lab.serve("10.88.211.2", 8080, "alpha");
    lab.serve("10.88.211.3", 8080, "beta");
    let ipt = IptablesCommand {
        netns: Some(lab.node.clone()),
    };
    let mut backend = IptablesBackend::new(
        Arc::new(ipt.clone()),
        Settings {
            cluster_cidr: Some("10.88.0.0/16".into()),
            masquerade_all: false,
            // Every local address, loopback included.
            nodeport_ips: vec![],
        },
    );

    let mut map = ServiceMap::default();
    let mut web = service("10.0.211.10", 80);
    web.node_port = Some(30080);
    map.ports.insert(spn("web"), web);
    map.endpoints
        .insert(spn("web"), vec![endpoint("10.88.211.2", 8080)]);
    map.ports.insert(spn("both"), service("10.0.211.11", 80));
    map.endpoints.insert(
        spn("both"),
        vec![endpoint("10.88.211.2", 8080), endpoint("10.88.211.3", 8080)],
    );
    let mut sticky = service("10.0.211.12", 80);
    sticky.affinity_timeout = Some(300);
    map.ports.insert(spn("sticky"), sticky);
    map.endpoints.insert(
        spn("sticky"),
        vec![endpoint("10.88.211.2", 8080), endpoint("10.88.211.3", 8080)],
    );
    map.ports.insert(spn("empty"), service("10.0.211.13", 80));
    assert_eq!(backend.sync(&map).await.unwrap(), Synced::Full);

    // ClusterIP from the node, and from the pod (DNATed back to itself).
    assert_eq!(
        lab.get(&lab.node, "http://10.0.211.10/"),
        Ok("alpha".into())
    );
    assert_eq!(lab.get(&lab.pod, "http://10.0.211.10/"), Ok("alpha".into()));
    // NodePort on the node's address from the pod (hairpin, masqueraded)
    // and on 127.0.0.1 from the node itself.
    assert_eq!(
        lab.get(&lab.pod, "http://10.88.211.1:30080/"),
        Ok("alpha".into())
    );
    assert_eq!(
        lab.get(&lab.node, "http://127.0.0.1:30080/"),
        Ok("alpha".into())
    );
    // Two endpoints: both answer over enough requests.
    let answers: BTreeSet<String> = (0..24)
        .map(|_| lab.get(&lab.node, "http://10.0.211.11/").expect("both"))
        .collect();
    assert_eq!(answers.len(), 2, "{answers:?}");
    // ClientIP affinity: one client keeps its endpoint.
    let sticky: BTreeSet<String> = (0..12)
        .map(|_| lab.get(&lab.node, "http://10.0.211.12/").expect("sticky"))
        .collect();
    assert_eq!(sticky.len(), 1, "{sticky:?}");
    // No endpoints: refused at once (curl 7), not a timeout (curl 28).
    assert_eq!(lab.get(&lab.node, "http://10.0.211.13/"), Err(7));

    // Nothing changed: nothing is sent.
    assert_eq!(backend.sync(&map).await.unwrap(), Synced::Unchanged);
    // The endpoint moves: a partial restore follows it, and the old
    // endpoint's chain is gone.
    let old_sep = sh(&[
        "ip",
        "netns",
        "exec",
        &lab.node,
        "iptables-save",
        "-t",
        "nat",
    ]);
    let before: BTreeSet<String> = String::from_utf8_lossy(&old_sep.stdout)
        .lines()
        .filter(|l| l.starts_with(":KUBE-SEP-"))
        .map(str::to_string)
        .collect();
    map.endpoints
        .insert(spn("web"), vec![endpoint("10.88.211.3", 8080)]);
    assert_eq!(backend.sync(&map).await.unwrap(), Synced::Partial);
    assert_eq!(lab.get(&lab.node, "http://10.0.211.10/"), Ok("beta".into()));
    let after: BTreeSet<String> = ipt
        .chains("nat")
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.starts_with("KUBE-SEP-"))
        .map(|c| format!(":{c}"))
        .collect();
    assert_eq!(before.len(), after.len(), "one endpoint chain out, one in");
    assert_ne!(
        before,
        after.iter().map(|c| format!("{c} - [0:0]")).collect()
    );

    // A new backend (a restarted kube-proxy) starts with a full sync that
    // keeps the jumps single and removes chains nobody wants any more.
    map.ports.remove(&spn("sticky"));
    let mut restarted = IptablesBackend::new(
        Arc::new(ipt.clone()),
        Settings {
            cluster_cidr: Some("10.88.0.0/16".into()),
            masquerade_all: false,
            nodeport_ips: vec![],
        },
    );
    assert_eq!(restarted.sync(&map).await.unwrap(), Synced::Full);
    let save = sh(&["ip", "netns", "exec", &lab.node, "iptables-save"]);
    let save = String::from_utf8_lossy(&save.stdout);
    assert_eq!(
        save.matches(
            "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"
        )
        .count(),
        1,
        "{save}"
    );
    assert!(!save.contains("ns1/sticky") && !save.contains("default/sticky"));
    assert_eq!(
        lab.get(&lab.node, "http://10.0.211.12/"),
        Err(7),
        "no Service there now"
    );

    // --cleanup leaves nothing of ours.
    restarted.cleanup().await.unwrap();
    let save = sh(&["ip", "netns", "exec", &lab.node, "iptables-save"]);
    let save = String::from_utf8_lossy(&save.stdout);
    assert!(!save.contains("KUBE-"), "{save}");
}
