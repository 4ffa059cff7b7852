//! A lab for the proxier tests: a "node" network namespace and a "pod"
//! namespace behind a veth pair, made by the test (nothing touches the
//! host's tables, and no packet can reach the uplink), with HTTP and UDP
//! servers in the pod namespace and clients in either.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use proxy::types::{Endpoint, Protocol, ServicePort, ServicePortName};

pub fn sh(args: &[&str]) -> std::process::Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("running {args:?}: {e}"))
}

pub fn ok(args: &[&str]) {
    let out = sh(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A node namespace and a pod namespace joined by a veth pair; removed
/// (with the servers) on drop.
pub struct Lab {
    pub node: String,
    pub pod: String,
    /// The node side of the veth pair.
    pub link: String,
    pub servers: Vec<Child>,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Lab {
    pub fn new(subnet: u8) -> Lab {
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
    pub fn serve(&mut self, ip: &str, port: u16, name: &str) {
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
    pub fn get(&self, ns: &str, url: &str) -> Result<String, i32> {
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

pub fn spn(name: &str) -> ServicePortName {
    ServicePortName {
        namespace: "default".into(),
        name: name.into(),
        port: "http".into(),
        protocol: Protocol::Tcp,
    }
}

pub fn service(ip: &str, port: u16) -> ServicePort {
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

pub fn endpoint(ip: &str, port: u16) -> Endpoint {
    Endpoint {
        ip: ip.parse().unwrap(),
        port,
        ready: true,
        serving: true,
        terminating: false,
        local: true,
    }
}

/// A UDP server in the pod namespace answering `name` to every datagram.
pub fn udp_server(lab: &mut Lab, ip: &str, name: &str) {
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
pub fn udp_ask(lab: &Lab, ip: &str) -> Option<String> {
    let code = format!(
        "import socket\ns=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('0.0.0.0', 40053))\ns.settimeout(1)\ns.sendto(b'q', ('{ip}', 53))\ntry:\n    print(s.recvfrom(100)[0].decode())\nexcept Exception:\n    pass\n"
    );
    let out = sh(&["ip", "netns", "exec", &lab.node, "python3", "-c", &code]);
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!s.is_empty()).then_some(s)
}
