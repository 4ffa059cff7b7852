//! The nftables proxier's rules in a real kernel: inside network
//! namespaces made by this test (nothing touches the host's tables, and no
//! packet can reach the uplink), a "node" namespace gets the rules and a
//! "pod" namespace, behind a veth pair, runs HTTP servers. Real TCP
//! connections then go through ClusterIP, NodePort (hairpin from the pod),
//! ClientIP affinity and the no-endpoints reject.

use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use proxy::nftables::apply::{Nft, NftCommand};
use proxy::nftables::ruleset::{build, diff, render, Settings};
use proxy::types::{Endpoint, Protocol, ServiceMap, ServicePort, ServicePortName};

fn sh(args: &[&str]) -> std::process::Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("running {args:?}: {e}"))
}

fn ok(args: &[&str]) {
    let out = sh(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A node namespace and a pod namespace joined by a veth pair; removed
/// (with the servers) on drop.
struct Lab {
    node: String,
    pod: String,
    /// The node side of the veth pair.
    link: String,
    servers: Vec<Child>,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Lab {
    fn new(subnet: u8) -> Lab {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{n}", std::process::id());
        let lab = Lab {
            node: format!("kp-node-{id}"),
            pod: format!("kp-pod-{id}"),
            link: format!("kpn{id}"),
            servers: Vec::new(),
        };
        ok(&["ip", "netns", "add", &lab.node]);
        ok(&["ip", "netns", "add", &lab.pod]);
        let (veth_node, veth_pod) = (lab.link.clone(), format!("kpp{id}"));
        let node_addr = format!("10.88.{subnet}.1/24");
        let node_ip = format!("10.88.{subnet}.1");
        let pod_addrs = [
            format!("10.88.{subnet}.2/24"),
            format!("10.88.{subnet}.3/24"),
        ];
        let service_net = format!("10.0.{subnet}.0/24");
        for cmd in [
            vec![
                "ip", "-n", &lab.node, "link", "add", &veth_node, "type", "veth", "peer", "name",
                &veth_pod, "netns", &lab.pod,
            ],
            vec!["ip", "-n", &lab.node, "link", "set", "lo", "up"],
            vec!["ip", "-n", &lab.pod, "link", "set", "lo", "up"],
            vec![
                "ip", "-n", &lab.node, "addr", "add", &node_addr, "dev", &veth_node,
            ],
            vec!["ip", "-n", &lab.node, "link", "set", &veth_node, "up"],
            vec![
                "ip",
                "-n",
                &lab.pod,
                "addr",
                "add",
                &pod_addrs[0],
                "dev",
                &veth_pod,
            ],
            vec![
                "ip",
                "-n",
                &lab.pod,
                "addr",
                "add",
                &pod_addrs[1],
                "dev",
                &veth_pod,
            ],
            vec!["ip", "-n", &lab.pod, "link", "set", &veth_pod, "up"],
            vec![
                "ip", "-n", &lab.pod, "route", "add", "default", "via", &node_ip,
            ],
            // Locally sent Service traffic needs a route before DNAT.
            vec![
                "ip",
                "-n",
                &lab.node,
                "route",
                "add",
                &service_net,
                "dev",
                &veth_node,
            ],
            vec![
                "ip",
                "netns",
                "exec",
                &lab.node,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ],
        ] {
            ok(&cmd);
        }
        lab
    }

    /// An HTTP server in the pod namespace answering `name` on `ip:port`.
    fn serve(&mut self, ip: &str, port: u16, name: &str) {
        let dir = std::env::temp_dir().join(format!("kp-www-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.html"), name).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.pod, "python3", "-m", "http.server"])
            .arg(port.to_string())
            .args(["--bind", ip, "--directory"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 http.server");
        self.servers.push(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while self
            .get(&self.pod.clone(), &format!("http://{ip}:{port}/"))
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "server on {ip}:{port} did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `curl` from namespace `ns`: the body, or curl's exit code.
    fn get(&self, ns: &str, url: &str) -> Result<String, i32> {
        let out = sh(&[
            "ip",
            "netns",
            "exec",
            ns,
            "curl",
            "-sS",
            "--max-time",
            "5",
            url,
        ]);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(out.status.code().unwrap_or(-1))
        }
    }

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

impl Drop for Lab {
    fn drop(&mut self) {
        for s in &mut self.servers {
            let _ = s.kill();
            let _ = s.wait();
        }
        let _ = sh(&["ip", "netns", "del", &self.node]);
        let _ = sh(&["ip", "netns", "del", &self.pod]);
    }
}

fn spn(name: &str) -> ServicePortName {
    ServicePortName {
        namespace: "default".into(),
        name: name.into(),
        port: "http".into(),
        protocol: Protocol::Tcp,
    }
}

fn service(ip: &str, port: u16) -> ServicePort {
    ServicePort {
        cluster_ip: Some(ip.parse().unwrap()),
        port,
        node_port: None,
        external_ips: vec![],
        load_balancer_ips: vec![],
        affinity_timeout: None,
        external_policy_local: false,
        internal_policy_local: false,
    }
}

fn endpoint(ip: &str, port: u16) -> Endpoint {
    Endpoint {
        ip: ip.parse().unwrap(),
        port,
        ready: true,
        serving: true,
        terminating: false,
        local: true,
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
    let config = ProxierConfig {
        node_name: "node-1".into(),
        settings: Settings {
            cluster_cidr: Some("10.88.0.0/16".into()),
            masquerade_all: false,
            nodeport_ips: vec![Ipv4Addr::new(10, 88, 202, 1)],
        },
        sync_period: Duration::from_secs(30),
        min_sync_period: Duration::from_millis(100),
    };
    let health = Arc::new(Health::default());
    let p = Proxier::new(
        config.clone(),
        Arc::new(NftCommand {
            netns: Some(lab.node.clone()),
        }),
        ProxierMetrics::default(),
        health.clone(),
    );
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

/// A UDP server in the pod namespace answering `name` to every datagram.
fn udp_server(lab: &mut Lab, ip: &str, name: &str) {
    let code = format!(
        "import socket\ns=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('{ip}', 5353))\nwhile True:\n    d, a = s.recvfrom(100)\n    s.sendto(b'{name}', a)\n"
    );
    let child = Command::new("ip")
        .args(["netns", "exec", &lab.pod, "python3", "-c", &code])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 udp server");
    lab.servers.push(child);
}

/// One datagram from the node namespace, always from source port 40053 so
/// that every try is the same conntrack flow; the answer, if any.
fn udp_ask(lab: &Lab, ip: &str) -> Option<String> {
    let code = format!(
        "import socket\ns=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('0.0.0.0', 40053))\ns.settimeout(1)\ns.sendto(b'q', ('{ip}', 53))\ntry:\n    print(s.recvfrom(100)[0].decode())\nexcept Exception:\n    pass\n"
    );
    let out = sh(&["ip", "netns", "exec", &lab.node, "python3", "-c", &code]);
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!s.is_empty()).then_some(s)
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
