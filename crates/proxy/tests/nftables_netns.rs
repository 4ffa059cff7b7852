//! The nftables proxier's rules in a real kernel: inside network
//! namespaces made by this test (nothing touches the host's tables, and no
//! packet can reach the uplink), a "node" namespace gets the rules and a
//! "pod" namespace, behind a veth pair, runs HTTP servers. Real TCP
//! connections then go through ClusterIP, NodePort (hairpin from the pod),
//! ClientIP affinity and the no-endpoints reject.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use proxy::nftables::apply::{Nft, NftCommand};
use proxy::nftables::ruleset::{build, diff, render, Settings};
use proxy::nftables::NftablesBackend;
use proxy::types::{Endpoint, Protocol, ServiceMap, ServicePortName};

mod lab;
use lab::{endpoint, ok, service, spn, udp_ask, udp_server, Lab};

/// Applying nftables rule sets in the lab's node namespace.
trait NftLab {
    async fn apply(&self, map: &ServiceMap, settings: &Settings);
    async fn apply_script(&self, script: &str);
}

impl NftLab for Lab {
    async fn apply(&self, map: &ServiceMap, settings: &Settings) {
        self.apply_script(&render(map, settings)).await;
    }

    async fn apply_script(&self, script: &str) {
        NftCommand {
            netns: Some(self.node.clone()),
        }
        .apply(script)
        .await
        .expect("nft accepted the rule set");
    }
}

#[tokio::test]
async fn services_reach_their_endpoints_through_real_rules() {
    let mut lab = Lab::new(201);
    lab.serve("10.88.201.2", 8080, "alpha");
    lab.serve("10.88.201.3", 8080, "beta");
    let settings = Settings {
        cluster_cidr: Some("10.88.0.0/16".into()),
        masquerade_all: false,
        nodeport_ips: vec![Ipv4Addr::new(10, 88, 201, 1)],
    };

    let mut map = ServiceMap::default();
    let mut web = service("10.0.201.10", 80);
    web.node_port = Some(30080);
    map.ports.insert(spn("web"), web);
    map.endpoints
        .insert(spn("web"), vec![endpoint("10.88.201.2", 8080)]);
    map.ports.insert(spn("both"), service("10.0.201.11", 80));
    map.endpoints.insert(
        spn("both"),
        vec![endpoint("10.88.201.2", 8080), endpoint("10.88.201.3", 8080)],
    );
    let mut sticky = service("10.0.201.12", 80);
    sticky.affinity_timeout = Some(300);
    map.ports.insert(spn("sticky"), sticky);
    map.endpoints.insert(
        spn("sticky"),
        vec![endpoint("10.88.201.2", 8080), endpoint("10.88.201.3", 8080)],
    );
    map.ports.insert(spn("empty"), service("10.0.201.13", 80));
    lab.apply(&map, &settings).await;

    // ClusterIP from the node.
    assert_eq!(
        lab.get(&lab.node, "http://10.0.201.10/"),
        Ok("alpha".into())
    );
    // NodePort from the pod itself: hairpinned back, masqueraded.
    assert_eq!(
        lab.get(&lab.pod, "http://10.88.201.1:30080/"),
        Ok("alpha".into())
    );
    // ClusterIP from the pod: DNAT'd back to itself.
    assert_eq!(lab.get(&lab.pod, "http://10.0.201.10/"), Ok("alpha".into()));

    // Two endpoints: both answer over enough requests.
    let answers: std::collections::BTreeSet<String> = (0..24)
        .map(|_| {
            lab.get(&lab.node, "http://10.0.201.11/")
                .expect("both answers")
        })
        .collect();
    assert_eq!(answers.len(), 2, "{answers:?}");

    // ClientIP affinity: one client keeps its endpoint.
    let sticky_answers: std::collections::BTreeSet<String> = (0..12)
        .map(|_| {
            lab.get(&lab.node, "http://10.0.201.12/")
                .expect("sticky answers")
        })
        .collect();
    assert_eq!(sticky_answers.len(), 1, "{sticky_answers:?}");

    // No endpoints: refused at once (curl 7), not a timeout (curl 28).
    assert_eq!(lab.get(&lab.node, "http://10.0.201.13/"), Err(7));
    // A ClusterIP on a port no Service has is rejected too.
    assert_eq!(lab.get(&lab.pod, "http://10.0.201.10:81/"), Err(7));

    // Endpoints move: the next rule set follows, applied atomically.
    map.endpoints
        .insert(spn("web"), vec![endpoint("10.88.201.3", 8080)]);
    lab.apply(&map, &settings).await;
    assert_eq!(lab.get(&lab.node, "http://10.0.201.10/"), Ok("beta".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_loop_follows_services_and_endpointslices_from_the_api() {
    use k8s_openapi::api::core::v1::Service;
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use kube::api::{Api, PostParams};
    use proxy::proxier::{self, Health, Proxier, ProxierConfig, ProxierMetrics};
    use std::sync::Arc;

    let mut lab = Lab::new(202);
    lab.serve("10.88.202.2", 8080, "from-api");
    let api = integration::TestApiServer::start().await;
    let settings = Settings {
        cluster_cidr: Some("10.88.0.0/16".into()),
        masquerade_all: false,
        nodeport_ips: vec![Ipv4Addr::new(10, 88, 202, 1)],
    };
    let config = ProxierConfig {
        node_name: "node-1".into(),
        sync_period: Duration::from_secs(30),
        min_sync_period: Duration::from_millis(100),
    };
    let health = Arc::new(Health::default());
    let backend = NftablesBackend::new(
        Arc::new(NftCommand {
            netns: Some(lab.node.clone()),
        }),
        settings,
    );
    let p = Proxier::new(Box::new(backend), ProxierMetrics::default(), health.clone());
    tokio::spawn(proxier::run(api.client.clone(), p, config));

    let svcs: Api<Service> = Api::namespaced(api.client.clone(), "default");
    let svc: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {"clusterIP": "10.0.0.202", "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}))
    .unwrap();
    svcs.create(&PostParams::default(), &svc).await.unwrap();
    // Service traffic to 10.0.0.202 is routed into the lab like the others.
    ok(&[
        "ip",
        "-n",
        &lab.node,
        "route",
        "add",
        "10.0.0.202/32",
        "dev",
        &lab.link,
    ]);

    // Without endpoints the Service refuses connections.
    let deadline = Instant::now() + Duration::from_secs(20);
    while lab.get(&lab.node, "http://10.0.0.202/") != Err(7) {
        assert!(
            Instant::now() < deadline,
            "no-endpoint reject never appeared"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let slices: Api<EndpointSlice> = Api::namespaced(api.client.clone(), "default");
    let slice: EndpointSlice = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web-abc", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [{"addresses": ["10.88.202.2"], "conditions": {"ready": true}, "nodeName": "node-1"}]}))
    .unwrap();
    slices.create(&PostParams::default(), &slice).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if lab.get(&lab.node, "http://10.0.0.202/") == Ok("from-api".into()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the endpoint never became reachable"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(health.status(Duration::from_secs(60)).0);
}

#[tokio::test]
async fn stale_udp_flows_follow_the_endpoints() {
    use proxy::conntrack;
    let mut lab = Lab::new(203);
    udp_server(&mut lab, "10.88.203.2", "first");
    udp_server(&mut lab, "10.88.203.3", "second");
    let settings = Settings {
        cluster_cidr: Some("10.88.0.0/16".into()),
        masquerade_all: false,
        nodeport_ips: vec![],
    };
    let spn = ServicePortName {
        namespace: "kube-system".into(),
        name: "dns".into(),
        port: "dns".into(),
        protocol: Protocol::Udp,
    };
    let mut map = ServiceMap::default();
    map.ports.insert(spn.clone(), service("10.0.203.10", 53));
    let ep = |ip: &str| Endpoint {
        port: 5353,
        ..endpoint(ip, 5353)
    };
    map.endpoints.insert(spn.clone(), vec![ep("10.88.203.2")]);
    lab.apply(&map, &settings).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut first = udp_ask(&lab, "10.0.203.10");
    while first.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        first = udp_ask(&lab, "10.0.203.10");
    }
    assert_eq!(first.as_deref(), Some("first"));

    // The endpoint moves (its server keeps running, as a terminating pod's
    // would). The flow's conntrack entry still points at the old one.
    let before = map.clone();
    map.endpoints.insert(spn.clone(), vec![ep("10.88.203.3")]);
    lab.apply_script(&diff(&build(&before, &settings), &build(&map, &settings)).unwrap())
        .await;
    assert_eq!(
        udp_ask(&lab, "10.0.203.10").as_deref(),
        Some("first"),
        "until cleared, the flow still goes to the removed endpoint"
    );
    let stale = conntrack::stale_udp(&before, &map);
    assert_eq!(stale.len(), 1, "{stale:?}");
    conntrack::clear(&stale, Some(&lab.node)).await;
    assert_eq!(udp_ask(&lab, "10.0.203.10").as_deref(), Some("second"));
}
