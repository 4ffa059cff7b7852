//! Liveness, readiness and startup probes (upstream's `pkg/kubelet/prober`:
//! `prober_manager.go`, `worker.go`, `prober.go`): one task per running
//! container instance and probe kind, started after `initialDelaySeconds`,
//! probing every `periodSeconds` with `timeoutSeconds`; a result flips
//! after `successThreshold` successes or `failureThreshold` failures in a
//! row, and each flip wakes the pod's worker. Readiness starts as failure,
//! liveness as success; liveness and readiness wait for a startup probe to
//! succeed. exec runs through CRI `ExecSync`; httpGet (2xx/3xx) and
//! tcpSocket dial the pod IP.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::cri::api::ContainerState;
use crate::cri::RuntimeService;
use crate::kuberuntime::pod_status::PodRuntimeStatus;
use crate::stats::probe_metrics::{Outcome, ProbeLabels, ProbeMetrics};

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Liveness,
    Readiness,
    Startup,
}

impl Kind {
    fn probe(self, c: &Container) -> Option<&Probe> {
        match self {
            Kind::Liveness => c.liveness_probe.as_ref(),
            Kind::Readiness => c.readiness_probe.as_ref(),
            Kind::Startup => c.startup_probe.as_ref(),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
            Kind::Startup => "Startup",
        }
    }
}

/// Wakes the pod's worker after a result changed.
pub type Wake = Arc<dyn Fn() + Send + Sync>;

type Key = (String, Kind);

struct Task {
    uid: String,
    handle: tokio::task::JoinHandle<()>,
}

/// The probe results and workers of every pod on the node.
pub struct Prober {
    runtime: Arc<dyn RuntimeService>,
    results: Arc<Mutex<HashMap<Key, bool>>>,
    /// The last failure's message per probe, for events and status.
    messages: Arc<Mutex<HashMap<Key, String>>>,
    tasks: Mutex<HashMap<Key, Task>>,
    metrics: Arc<ProbeMetrics>,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.tasks.lock().map(|t| t.len()).unwrap_or(0);
        f.debug_struct("Prober").field("tasks", &n).finish()
    }
}

impl Prober {
    pub fn new(runtime: Arc<dyn RuntimeService>, metrics: Arc<ProbeMetrics>) -> Self {
        Self {
            runtime,
            results: Default::default(),
            messages: Default::default(),
            tasks: Default::default(),
            metrics,
        }
    }

    fn result(&self, id: &str, kind: Kind) -> Option<bool> {
        self.results
            .lock()
            .ok()?
            .get(&(id.to_string(), kind))
            .copied()
    }

    /// Whether the container instance `id` has started: true without a
    /// startup probe, else once it succeeded.
    pub fn started(&self, spec: &Container, id: &str) -> bool {
        spec.startup_probe.is_none() || self.result(id, Kind::Startup) == Some(true)
    }

    /// Whether the instance counts as ready (given it runs).
    pub fn ready(&self, spec: &Container, id: &str) -> bool {
        self.started(spec, id)
            && (spec.readiness_probe.is_none() || self.result(id, Kind::Readiness) == Some(true))
    }

    /// The instances a failed liveness or startup probe condemns, with the
    /// probe's message.
    pub fn unhealthy(&self, pod: &Pod, rs: &PodRuntimeStatus) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for c in containers(pod) {
            let Some(cur) = rs.latest(&c.name) else {
                continue;
            };
            if cur.state != ContainerState::ContainerRunning {
                continue;
            }
            for kind in [Kind::Liveness, Kind::Startup] {
                if kind.probe(c).is_some() && self.result(&cur.id, kind) == Some(false) {
                    let msg = self
                        .messages
                        .lock()
                        .ok()
                        .and_then(|m| m.get(&(cur.id.clone(), kind)).cloned())
                        .unwrap_or_default();
                    out.push((
                        cur.id.clone(),
                        c.name.clone(),
                        format!("{} probe failed: {msg}", kind.name()),
                    ));
                }
            }
        }
        out
    }

    /// Keeps one task per probe of each running instance of `pod`; tasks of
    /// instances that stopped running end.
    pub fn sync(&self, pod: &Pod, rs: &PodRuntimeStatus, wake: Wake) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let pod_ip = rs
            .ready_sandbox()
            .and_then(|s| s.ips.first().cloned())
            .unwrap_or_default();
        let mut wanted: Vec<(Key, Probe, Container)> = Vec::new();
        for c in containers(pod) {
            let Some(cur) = rs.latest(&c.name) else {
                continue;
            };
            if cur.state != ContainerState::ContainerRunning {
                continue;
            }
            for kind in [Kind::Startup, Kind::Liveness, Kind::Readiness] {
                if let Some(p) = kind.probe(c) {
                    wanted.push(((cur.id.clone(), kind), p.clone(), c.clone()));
                }
            }
        }
        let Ok(mut tasks) = self.tasks.lock() else {
            return;
        };
        let keep: Vec<Key> = wanted.iter().map(|(k, _, _)| k.clone()).collect();
        tasks.retain(|k, t| {
            let stay = t.uid != uid || keep.contains(k);
            if !stay {
                t.handle.abort();
                if let Ok(mut r) = self.results.lock() {
                    r.remove(k);
                }
            }
            stay
        });
        for (key, probe, container) in wanted {
            if tasks.contains_key(&key) {
                continue;
            }
            let labels = ProbeLabels {
                probe_type: key.1.name(),
                container: container.name.clone(),
                pod: pod.metadata.name.clone().unwrap_or_default(),
                namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                pod_uid: uid.clone(),
            };
            let worker = ProbeWorker {
                metrics: self.metrics.clone(),
                labels,
                runtime: self.runtime.clone(),
                results: self.results.clone(),
                messages: self.messages.clone(),
                key: key.clone(),
                probe,
                container,
                pod_ip: pod_ip.clone(),
                wake: wake.clone(),
            };
            tasks.insert(
                key,
                Task {
                    uid: uid.clone(),
                    handle: tokio::spawn(worker.run()),
                },
            );
        }
    }

    /// Ends every task of the pod `uid`.
    pub fn remove_pod(&self, uid: &str) {
        self.metrics.forget_pod(uid);
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.retain(|k, t| {
                if t.uid == uid {
                    t.handle.abort();
                    if let Ok(mut r) = self.results.lock() {
                        r.remove(k);
                    }
                    false
                } else {
                    true
                }
            });
        }
    }
}

fn containers(pod: &Pod) -> impl Iterator<Item = &Container> {
    pod.spec.iter().flat_map(|s| {
        s.containers
            .iter()
            .chain(s.init_containers.iter().flatten())
    })
}

struct ProbeWorker {
    metrics: Arc<ProbeMetrics>,
    labels: ProbeLabels,
    runtime: Arc<dyn RuntimeService>,
    results: Arc<Mutex<HashMap<Key, bool>>>,
    messages: Arc<Mutex<HashMap<Key, String>>>,
    key: Key,
    probe: Probe,
    container: Container,
    pod_ip: String,
    wake: Wake,
}

fn secs(v: Option<i32>, default: i32) -> Duration {
    Duration::from_secs(v.filter(|s| *s > 0).unwrap_or(default) as u64)
}

impl ProbeWorker {
    fn current(&self, kind: Kind) -> Option<bool> {
        self.results
            .lock()
            .ok()?
            .get(&(self.key.0.clone(), kind))
            .copied()
    }

    async fn run(self) {
        let kind = self.key.1;
        let initial = match kind {
            Kind::Liveness => true,
            Kind::Readiness | Kind::Startup => false,
        };
        if let Ok(mut r) = self.results.lock() {
            r.entry(self.key.clone()).or_insert(initial);
        }
        let period = secs(self.probe.period_seconds, 10);
        let timeout = secs(self.probe.timeout_seconds, 1);
        let success_threshold = self.probe.success_threshold.filter(|s| *s > 0).unwrap_or(1);
        let failure_threshold = self.probe.failure_threshold.filter(|s| *s > 0).unwrap_or(3);
        tokio::time::sleep(Duration::from_secs(
            self.probe.initial_delay_seconds.unwrap_or(0).max(0) as u64,
        ))
        .await;
        let (mut successes, mut failures) = (0, 0);
        loop {
            let waits_for_startup = kind != Kind::Startup
                && self.container.startup_probe.is_some()
                && self.current(Kind::Startup) != Some(true);
            if !waits_for_startup {
                let began = std::time::Instant::now();
                let outcome = self.attempt(timeout).await;
                let result = if outcome.is_ok() {
                    Outcome::Success
                } else {
                    Outcome::Failure
                };
                self.metrics.observe(&self.labels, result, began.elapsed());
                let flip = match &outcome {
                    Ok(()) => {
                        successes += 1;
                        failures = 0;
                        (successes >= success_threshold).then_some(true)
                    }
                    Err(msg) => {
                        failures += 1;
                        successes = 0;
                        if let Ok(mut m) = self.messages.lock() {
                            m.insert(self.key.clone(), msg.clone());
                        }
                        tracing::debug!(container = %self.container.name, probe = kind.name(), %msg, "probe failed");
                        (failures >= failure_threshold).then_some(false)
                    }
                };
                if let Some(v) = flip {
                    let changed = self
                        .results
                        .lock()
                        .map(|mut r| r.insert(self.key.clone(), v) != Some(v))
                        .unwrap_or(false);
                    if changed {
                        tracing::info!(container = %self.container.name, probe = kind.name(), result = v, "probe result changed");
                        (self.wake)();
                    }
                    if kind == Kind::Startup && v {
                        // A startup probe is done once it succeeds.
                        return;
                    }
                }
            }
            tokio::time::sleep(period).await;
        }
    }

    async fn attempt(&self, timeout: Duration) -> Result<(), String> {
        let p = &self.probe;
        if let Some(exec) = &p.exec {
            let cmd = exec.command.clone().unwrap_or_default();
            return match self.runtime.exec_sync(&self.key.0, cmd, timeout).await {
                Ok((0, _)) => Ok(()),
                Ok((code, out)) => Err(format!(
                    "command exited with {code}: {}",
                    String::from_utf8_lossy(&out).trim()
                )),
                Err(e) => Err(e.to_string()),
            };
        }
        if let Some(h) = &p.http_get {
            let host = h
                .host
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| self.pod_ip.clone());
            let port = self.port(&h.port)?;
            let path = h
                .path
                .clone()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "/".into());
            let https = h.scheme.as_deref() == Some("HTTPS");
            let scheme = if https { "https" } else { "http" };
            let headers: Vec<(String, String)> = h
                .http_headers
                .iter()
                .flatten()
                .map(|hh| (hh.name.clone(), hh.value.clone()))
                .collect();
            let get = async {
                if https {
                    https_get(&host, port, &path, &headers).await
                } else {
                    http_get(&host, port, &path, &headers).await
                }
            };
            return match tokio::time::timeout(timeout, get).await {
                Ok(Ok(code)) if (200..400).contains(&code) => Ok(()),
                Ok(Ok(code)) => Err(format!("HTTP probe failed with statuscode: {code}")),
                Ok(Err(e)) => Err(format!("Get \"{scheme}://{host}:{port}{path}\": {e}")),
                Err(_) => Err(format!(
                    "Get \"{scheme}://{host}:{port}{path}\": context deadline exceeded"
                )),
            };
        }
        if let Some(t) = &p.tcp_socket {
            let host = t
                .host
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| self.pod_ip.clone());
            let port = self.port(&t.port)?;
            return match tokio::time::timeout(
                timeout,
                tokio::net::TcpStream::connect((host.as_str(), port)),
            )
            .await
            {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(format!("dial tcp {host}:{port}: {e}")),
                Err(_) => Err(format!("dial tcp {host}:{port}: i/o timeout")),
            };
        }
        if let Some(g) = &p.grpc {
            let port = u16::try_from(g.port).map_err(|_| format!("invalid port {}", g.port))?;
            let service = g.service.clone().unwrap_or_default();
            return crate::grpc_probe::probe(&self.pod_ip, port, &service, timeout).await;
        }
        Err("probe has no handler".into())
    }

    /// A port number, or a named port of the container.
    fn port(&self, port: &IntOrString) -> Result<u16, String> {
        match port {
            IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("invalid port {n}")),
            IntOrString::String(name) => self
                .container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok())
                .ok_or_else(|| format!("port {name:?} not found in the container")),
        }
    }
}

/// One HTTPS GET without verifying the server's certificate (upstream's
/// probes skip verification: the pod's serving certificate is its own
/// business); the status code.
async fn https_get(
    host: &str,
    port: u16,
    path: &str,
    headers: &[(String, String)],
) -> Result<u16, String> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(component_base::proxy::AcceptAny(
            provider,
        )))
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let authority = match host.parse::<std::net::Ipv6Addr>() {
        Ok(v6) => format!("[{v6}]:{port}"),
        Err(_) => format!("{host}:{port}"),
    };
    let target = component_base::proxy::Target {
        authority,
        tls: Some(std::sync::Arc::new(tls)),
        path_and_query: path.to_string(),
    };
    let mut all = vec![
        (
            http::header::USER_AGENT,
            http::HeaderValue::from_static("kube-probe/1.33"),
        ),
        (http::header::ACCEPT, http::HeaderValue::from_static("*/*")),
    ];
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_str(v),
        ) {
            all.retain(|(n, _)| *n != k);
            all.push((k, v));
        }
    }
    let (status, _) = component_base::proxy::get(&target, &all, 1 << 20)
        .await
        .map_err(|e| e.to_string())?;
    Ok(status.as_u16())
}

/// One HTTP/1.1 GET; the status code.
async fn http_get(
    host: &str,
    port: u16,
    path: &str,
    headers: &[(String, String)],
) -> Result<u16, String> {
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("dial tcp {host}:{port}: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = hyper::Request::get(path)
        .header("Host", format!("{host}:{port}"))
        .header("User-Agent", "kube-probe/1.33")
        .header("Accept", "*/*");
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    Ok(resp.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cri::fake::FakeRuntime;

    fn worker(probe: Probe, container: Container) -> ProbeWorker {
        ProbeWorker {
            metrics: Arc::default(),
            labels: ProbeLabels {
                probe_type: "Readiness",
                container: container.name.clone(),
                pod: "p".into(),
                namespace: "default".into(),
                pod_uid: "u".into(),
            },
            runtime: Arc::new(FakeRuntime::default()),
            results: Default::default(),
            messages: Default::default(),
            key: ("c1".into(), Kind::Readiness),
            probe,
            container,
            pod_ip: "127.0.0.1".into(),
            wake: Arc::new(|| {}),
        }
    }

    fn probe(v: serde_json::Value) -> Probe {
        serde_json::from_value(v).unwrap()
    }

    #[tokio::test]
    async fn https_probes_skip_certificate_verification() {
        let opts = component_base::serving::SecureServingOptions {
            bind_address: "127.0.0.1".parse().unwrap(),
            secure_port: Some(0),
            tls_cert_file: None,
            tls_private_key_file: None,
        };
        let endpoints = component_base::serving::Endpoints {
            readyz: component_base::healthz::Checks::new(vec![
                component_base::healthz::Check::ping(),
            ]),
            livez: component_base::healthz::Checks::new(vec![component_base::healthz::Check::new(
                "stuck",
                || Err("stuck".into()),
            )]),
            ..Default::default()
        };
        let (addr, serve) =
            component_base::serving::bind("127.0.0.1:0".parse().unwrap(), &opts, endpoints)
                .await
                .unwrap();
        tokio::spawn(serve);
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "app", "ports": [{"name": "https", "containerPort": addr.port()}]}))
        .unwrap();
        let ready = worker(
            probe(
                serde_json::json!({"httpGet": {"path": "/readyz", "port": "https", "scheme": "HTTPS"}}),
            ),
            c.clone(),
        );
        assert_eq!(ready.attempt(Duration::from_secs(5)).await, Ok(()));
        let live = worker(
            probe(
                serde_json::json!({"httpGet": {"path": "/livez", "port": "https", "scheme": "HTTPS"}}),
            ),
            c,
        );
        assert_eq!(
            live.attempt(Duration::from_secs(5)).await,
            Err("HTTP probe failed with statuscode: 500".into())
        );
    }

    #[tokio::test]
    async fn tcp_and_http_probes_dial_the_pod_ip() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "app", "ports": [{"name": "http", "containerPort": port}]}))
        .unwrap();
        let tcp = worker(
            probe(serde_json::json!({"tcpSocket": {"port": "http"}})),
            c.clone(),
        );
        assert_eq!(tcp.attempt(Duration::from_secs(1)).await, Ok(()));
        // An HTTP answer of 503 is a failure with upstream's message.
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            // The TCP probe's connection is queued first and carries nothing.
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                if matches!(s.read(&mut buf).await, Ok(n) if n > 0) {
                    let _ = s
                        .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                        .await;
                }
            }
        });
        let http = worker(
            probe(serde_json::json!({"httpGet": {"port": port, "path": "/healthz"}})),
            c.clone(),
        );
        assert_eq!(
            http.attempt(Duration::from_secs(2)).await,
            Err("HTTP probe failed with statuscode: 503".into())
        );
        let missing = worker(probe(serde_json::json!({"tcpSocket": {"port": "nope"}})), c);
        assert!(missing
            .attempt(Duration::from_secs(1))
            .await
            .unwrap_err()
            .contains("\"nope\""));
    }

    #[test]
    fn readiness_waits_for_startup_and_its_own_success() {
        let p = Prober::new(Arc::new(FakeRuntime::default()), Arc::default());
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "app",
            "startupProbe": {"exec": {"command": ["true"]}},
            "readinessProbe": {"exec": {"command": ["true"]}}}))
        .unwrap();
        assert!(!p.started(&c, "id") && !p.ready(&c, "id"));
        p.results
            .lock()
            .unwrap()
            .insert(("id".into(), Kind::Startup), true);
        assert!(p.started(&c, "id") && !p.ready(&c, "id"));
        p.results
            .lock()
            .unwrap()
            .insert(("id".into(), Kind::Readiness), true);
        assert!(p.ready(&c, "id"));
        let plain: Container = serde_json::from_value(serde_json::json!({"name": "x"})).unwrap();
        assert!(p.ready(&plain, "other"));
    }
}
