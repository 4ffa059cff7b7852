//! `/exec`, `/attach` and `/portForward` (upstream's `getExec`,
//! `getAttach` and `getPortForward` in `pkg/kubelet/server/server.go`):
//! the kubelet asks the runtime for a streaming URL (CRI `Exec`, `Attach`,
//! `PortForward`) and, as upstream does without redirects, proxies the
//! caller's upgrade request (SPDY, or WebSocket up to v4) to containerd's
//! streaming server, splicing the two connections.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response};

use crate::cri::api::{AttachRequest, ContainerState, ExecRequest, PortForwardRequest};
use crate::cri::RuntimeService;
use crate::kuberuntime::labels::pod_uid;
use crate::server::ServerState;

/// Which streaming call a path asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stream {
    /// `/exec/{namespace}/{pod}[/{uid}]/{container}`
    Exec {
        namespace: String,
        pod: String,
        container: String,
    },
    /// `/attach/{namespace}/{pod}[/{uid}]/{container}`
    Attach {
        namespace: String,
        pod: String,
        container: String,
    },
    /// `/portForward/{namespace}/{pod}[/{uid}]`
    PortForward { namespace: String, pod: String },
}

/// Parses a streaming path; `None` for any other path.
pub fn parse(path: &str) -> Option<Stream> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let s = |x: &str| x.to_string();
    match parts.as_slice() {
        ["exec", ns, pod, container] | ["exec", ns, pod, _, container] => Some(Stream::Exec {
            namespace: s(ns),
            pod: s(pod),
            container: s(container),
        }),
        ["attach", ns, pod, container] | ["attach", ns, pod, _, container] => {
            Some(Stream::Attach {
                namespace: s(ns),
                pod: s(pod),
                container: s(container),
            })
        }
        ["portForward", ns, pod] | ["portForward", ns, pod, _] => Some(Stream::PortForward {
            namespace: s(ns),
            pod: s(pod),
        }),
        _ => None,
    }
}

/// The streams and command a request asks for (upstream's
/// `remotecommand.NewOptions` reads `input`, `output`, `error`, `tty` and
/// repeated `command`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StreamOptions {
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
    pub ports: Vec<i32>,
}

pub fn options(query: &str) -> StreamOptions {
    let mut o = StreamOptions::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        let on = v == "1" || v == "true";
        match k {
            "command" => o.command.push(v),
            "input" | "stdin" => o.stdin |= on,
            "output" | "stdout" => o.stdout |= on,
            "error" | "stderr" => o.stderr |= on,
            "tty" => o.tty |= on,
            "port" => o
                .ports
                .extend(v.split(',').filter_map(|p| p.trim().parse::<i32>().ok())),
            _ => {}
        }
    }
    o
}

fn percent_decode(s: &str) -> String {
    let bytes = s.replace('+', " ").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            if let Ok(b) = u8::from_str_radix(&String::from_utf8_lossy(&bytes[i + 1..i + 3]), 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

type Body = http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, std::io::Error>;

fn text(status: u16, body: String) -> Response<Body> {
    use http_body_util::BodyExt;
    Response::builder()
        .status(status)
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(
            http_body_util::Full::new(bytes::Bytes::from(body))
                .map_err(|e| match e {})
                .boxed_unsync(),
        )
        .unwrap_or_default()
}

/// Serves one streaming request.
pub async fn serve(
    state: &Arc<ServerState>,
    stream: Stream,
    req: Request<Incoming>,
) -> Response<Body> {
    let query = req.uri().query().unwrap_or("").to_string();
    let opts = options(&query);
    let (namespace, pod_name) = match &stream {
        Stream::Exec { namespace, pod, .. }
        | Stream::Attach { namespace, pod, .. }
        | Stream::PortForward { namespace, pod } => (namespace.clone(), pod.clone()),
    };
    let Some(pod) = state.pods.find(&namespace, &pod_name) else {
        return text(404, "pod does not exist\n".into());
    };
    let rs = match state.manager.pod_status(pod_uid(&pod)).await {
        Ok(rs) => rs,
        Err(e) => return text(500, format!("{e}\n")),
    };
    let runtime: Arc<dyn RuntimeService> = state.manager.runtime.clone();
    let url = match &stream {
        Stream::Exec { container, .. } | Stream::Attach { container, .. } => {
            let Some(c) = rs
                .latest(container)
                .filter(|c| c.state == ContainerState::ContainerRunning)
            else {
                return text(404, format!("container not found ({container:?})\n"));
            };
            if !(opts.stdin || opts.stdout || opts.stderr) {
                return text(
                    400,
                    "you must specify at least 1 of stdin, stdout, stderr\n".into(),
                );
            }
            if matches!(stream, Stream::Exec { .. }) {
                runtime
                    .exec(ExecRequest {
                        container_id: c.id.clone(),
                        cmd: opts.command.clone(),
                        tty: opts.tty,
                        stdin: opts.stdin,
                        stdout: opts.stdout,
                        // A TTY merges stderr into stdout, as upstream.
                        stderr: opts.stderr && !opts.tty,
                    })
                    .await
            } else {
                runtime
                    .attach(AttachRequest {
                        container_id: c.id.clone(),
                        stdin: opts.stdin,
                        tty: opts.tty,
                        stdout: opts.stdout,
                        stderr: opts.stderr && !opts.tty,
                    })
                    .await
            }
        }
        Stream::PortForward { .. } => {
            let Some(sandbox) = rs.ready_sandbox() else {
                return text(404, "pod sandbox not found\n".into());
            };
            runtime
                .port_forward(PortForwardRequest {
                    pod_sandbox_id: sandbox.id.clone(),
                    port: opts.ports.clone(),
                })
                .await
        }
    };
    let url = match url {
        Ok(u) => u,
        Err(e) => return text(500, format!("{e}\n")),
    };
    let Some(rest) = url.strip_prefix("http://") else {
        return text(500, format!("unexpected streaming URL {url:?}\n"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let target = component_base::proxy::Target {
        authority: authority.to_string(),
        tls: None,
        path_and_query: path.to_string(),
    };
    match component_base::proxy::forward(&target, req, &[]).await {
        Ok(resp) => {
            use http_body_util::BodyExt;
            resp.map(|b| b.boxed_unsync())
        }
        Err(e) => text(502, format!("streaming server: {e}\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_paths_and_options_are_read_like_upstream() {
        assert_eq!(
            parse("/exec/default/web/app"),
            Some(Stream::Exec {
                namespace: "default".into(),
                pod: "web".into(),
                container: "app".into()
            })
        );
        assert_eq!(
            parse("/attach/default/web/uid-1/app"),
            Some(Stream::Attach {
                namespace: "default".into(),
                pod: "web".into(),
                container: "app".into()
            })
        );
        assert_eq!(
            parse("/portForward/default/web"),
            Some(Stream::PortForward {
                namespace: "default".into(),
                pod: "web".into()
            })
        );
        assert_eq!(parse("/containerLogs/a/b/c"), None);
        let o = options("command=sh&command=-c&command=echo%20hi&input=1&output=1&tty=1");
        assert_eq!(o.command, ["sh", "-c", "echo hi"]);
        assert!(o.stdin && o.stdout && o.tty && !o.stderr);
        assert_eq!(options("port=80&port=8080,9090").ports, [80, 8080, 9090]);
    }
}
