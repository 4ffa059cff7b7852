//! Serving DNS over UDP and TCP on one address (CoreDNS's `dns://` server).
//! A query the index answers is answered on the receiving thread without
//! waiting for anything; a forwarded one gets its own task, so a slow
//! upstream never holds up local answers. TCP connections carry any number
//! of length-prefixed queries and are closed after 10 s idle.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::forward::Forwarder;
use crate::index::Index;
use crate::metrics::DnsMetrics;
use crate::query::{self, Outcome, Transport};
use crate::records::Encoded;

/// IDs of the queries this server makes itself (CNAME chasing); each goes
/// out from a fresh ephemeral port, which is what makes it hard to spoof.
fn next_id() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    NEXT.fetch_add(1, Ordering::Relaxed) ^ (nanos as u16)
}

/// How long a TCP connection may stay idle.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// Why serving could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("listening on {addr} ({proto}): {source}")]
    Bind {
        addr: SocketAddr,
        proto: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// What answering needs: the current index, the forwarder, the metrics.
pub struct Dns {
    index: RwLock<Arc<Index>>,
    forwarder: Forwarder,
    metrics: DnsMetrics,
}

/// The result of the synchronous part of handling a message.
enum Step {
    Done(Option<Vec<u8>>, Option<RecordType>, ResponseCode),
    Forward(Option<RecordType>, u16),
    Chase(Option<RecordType>, Name),
}

impl Dns {
    pub fn new(index: Index, forwarder: Forwarder, metrics: DnsMetrics) -> Arc<Self> {
        Arc::new(Self {
            index: RwLock::new(Arc::new(index)),
            forwarder,
            metrics,
        })
    }

    /// Replaces the index; queries in flight keep the one they started with.
    pub fn set_index(&self, index: Index) {
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(index);
    }

    pub fn index(&self) -> Arc<Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn forwarder(&self) -> &Forwarder {
        &self.forwarder
    }

    fn step(&self, msg: &[u8], transport: Transport) -> Step {
        let q = match query::parse(msg) {
            Ok(q) => q,
            Err(r) => {
                return match query::refusal_reply(&r) {
                    Some((bytes, code)) => Step::Done(Some(bytes), None, code),
                    None => Step::Done(None, None, ResponseCode::FormErr),
                }
            }
        };
        let index = self.index();
        match query::answer(&index, &q, transport) {
            Outcome::Reply(bytes, code) => Step::Done(Some(bytes), Some(q.qtype), code),
            Outcome::Forward => Step::Forward(Some(q.qtype), q.id),
            Outcome::Chase(target) => Step::Chase(Some(q.qtype), target),
        }
    }

    async fn forward(&self, msg: &[u8], id: u16, transport: Transport) -> (Vec<u8>, ResponseCode) {
        self.metrics.forward_requests.inc();
        match self.forwarder.forward(msg, id, transport).await {
            Ok(resp) => {
                let code = ResponseCode::from_low(resp.get(3).map_or(0, |b| b & 0x0f));
                (resp, code)
            }
            Err(e) => {
                tracing::debug!(error = %e, "forwarding failed; answering SERVFAIL");
                let bytes = match query::parse(msg) {
                    Ok(q) => query::empty_reply(&q, ResponseCode::ServFail),
                    Err(_) => Vec::new(),
                };
                (bytes, ResponseCode::ServFail)
            }
        }
    }

    /// Answers a CNAME question with the target's records from upstream
    /// (CoreDNS resolves ExternalName targets the same way); without them
    /// the CNAME alone.
    async fn chase(
        &self,
        msg: &[u8],
        target: &Name,
        transport: Transport,
    ) -> (Vec<u8>, ResponseCode) {
        let Ok(q) = query::parse(msg) else {
            return (Vec::new(), ResponseCode::FormErr);
        };
        let extra = self
            .chase_upstream(target, q.qtype)
            .await
            .unwrap_or_default();
        let index = self.index();
        (
            query::answer_chased(&index, &q, transport, &extra),
            ResponseCode::NoError,
        )
    }

    async fn chase_upstream(&self, target: &Name, qtype: RecordType) -> Option<Encoded> {
        let id = next_id();
        let mut m = Message::query();
        m.metadata.id = id;
        m.metadata.recursion_desired = true;
        m.add_query(hickory_proto::op::Query::query(target.clone(), qtype));
        let bytes = m.to_vec().ok()?;
        self.metrics.forward_requests.inc();
        let resp = self
            .forwarder
            .forward(&bytes, id, Transport::Udp)
            .await
            .ok()?;
        let r = Message::from_vec(&resp).ok()?;
        let mut extra = Encoded::default();
        for a in r.answers {
            if a.record_type() == qtype || a.record_type() == RecordType::CNAME {
                extra.push_named(&a.name, a.ttl, a.data).ok()?;
            }
        }
        Some(extra)
    }

    /// Handles one message: the reply's bytes, or `None` when it gets none.
    pub async fn handle(&self, msg: &[u8], transport: Transport, ipv6: bool) -> Option<Vec<u8>> {
        let start = Instant::now();
        let (reply, qtype, code) = match self.step(msg, transport) {
            Step::Done(reply, qtype, code) => (reply, qtype, code),
            Step::Forward(qtype, id) => {
                let (bytes, code) = self.forward(msg, id, transport).await;
                (Some(bytes).filter(|b| !b.is_empty()), qtype, code)
            }
            Step::Chase(qtype, target) => {
                let (bytes, code) = self.chase(msg, &target, transport).await;
                (Some(bytes).filter(|b| !b.is_empty()), qtype, code)
            }
        };
        self.metrics
            .observe(transport, ipv6, qtype, code, start.elapsed().as_secs_f64());
        reply
    }
}

/// Bound UDP and TCP sockets, not yet serving.
pub struct Listeners {
    udp: Arc<std::net::UdpSocket>,
    tcp: TcpListener,
}

/// Binds UDP and TCP on `addr` (port 0: one free port for both).
pub async fn bind(addr: SocketAddr) -> Result<Listeners, ServeError> {
    let err = |proto, addr, source| ServeError::Bind {
        addr,
        proto,
        source,
    };
    let udp = std::net::UdpSocket::bind(addr).map_err(|e| err("udp", addr, e))?;
    let local = udp.local_addr().map_err(|e| err("udp", addr, e))?;
    // The receive loops check for shutdown this often.
    udp.set_read_timeout(Some(Duration::from_millis(500)))
        .map_err(|e| err("udp", local, e))?;
    let tcp = TcpListener::bind(local)
        .await
        .map_err(|e| err("tcp", local, e))?;
    Ok(Listeners {
        udp: Arc::new(udp),
        tcp,
    })
}

/// Stops the UDP threads when the serving future is dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Listeners {
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.udp.local_addr()
    }

    /// Serves until the future is dropped. UDP is received by
    /// `udp_workers` threads blocking in `recvfrom` (cheaper per datagram
    /// than a readiness loop: no epoll round trip while queries keep
    /// coming); what they cannot answer at once goes to this runtime.
    pub async fn serve(self, dns: Arc<Dns>, udp_workers: usize) {
        let stop = Arc::new(AtomicBool::new(false));
        let _guard = StopOnDrop(stop.clone());
        let handle = tokio::runtime::Handle::current();
        for i in 0..udp_workers.max(1) {
            let (sock, dns, stop, handle) =
                (self.udp.clone(), dns.clone(), stop.clone(), handle.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("dns-udp-{i}"))
                .spawn(move || udp_thread(&sock, &dns, &stop, &handle));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "starting a UDP thread failed");
            }
        }
        tcp_loop(self.tcp, dns).await;
    }
}

fn udp_thread(
    sock: &Arc<std::net::UdpSocket>,
    dns: &Arc<Dns>,
    stop: &AtomicBool,
    handle: &tokio::runtime::Handle,
) {
    let mut buf = vec![0u8; 65535];
    while !stop.load(Ordering::Relaxed) {
        let (n, peer) = match sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) => {
                // Timeouts (the shutdown check) and ICMP errors for earlier replies.
                tracing::trace!(error = %e, "udp receive");
                continue;
            }
        };
        let msg = &buf[..n];
        let start = Instant::now();
        match dns.step(msg, Transport::Udp) {
            Step::Done(reply, qtype, code) => {
                if let Some(reply) = reply {
                    if let Err(e) = sock.send_to(&reply, peer) {
                        tracing::trace!(%peer, error = %e, "udp send failed");
                    }
                }
                dns.metrics.observe(
                    Transport::Udp,
                    peer.is_ipv6(),
                    qtype,
                    code,
                    start.elapsed().as_secs_f64(),
                );
            }
            step @ (Step::Forward(..) | Step::Chase(..)) => {
                let msg = msg.to_vec();
                let (sock, dns) = (sock.clone(), dns.clone());
                handle.spawn(async move {
                    let (qtype, (reply, code)) = match step {
                        Step::Forward(qtype, id) => {
                            (qtype, dns.forward(&msg, id, Transport::Udp).await)
                        }
                        Step::Chase(qtype, target) => {
                            (qtype, dns.chase(&msg, &target, Transport::Udp).await)
                        }
                        Step::Done(_, qtype, code) => (qtype, (Vec::new(), code)),
                    };
                    // A UDP send does not wait for the peer; the socket is
                    // blocking only for the receive loops' sake.
                    if !reply.is_empty() {
                        let _ = sock.send_to(&reply, peer);
                    }
                    dns.metrics.observe(
                        Transport::Udp,
                        peer.is_ipv6(),
                        qtype,
                        code,
                        start.elapsed().as_secs_f64(),
                    );
                });
            }
        }
    }
}

async fn tcp_loop(listener: TcpListener, dns: Arc<Dns>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let dns = dns.clone();
        tokio::spawn(async move {
            if let Err(e) = tcp_conn(stream, peer, dns).await {
                tracing::trace!(%peer, error = %e, "tcp connection ended");
            }
        });
    }
}

async fn tcp_conn(mut stream: TcpStream, peer: SocketAddr, dns: Arc<Dns>) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::new();
    loop {
        let len = match tokio::time::timeout(TCP_IDLE, stream.read_u16()).await {
            Ok(Ok(l)) => usize::from(l),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()),
        };
        buf.resize(len, 0);
        tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut buf))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "idle"))??;
        let Some(reply) = dns.handle(&buf, Transport::Tcp, peer.is_ipv6()).await else {
            continue;
        };
        let Ok(n) = u16::try_from(reply.len()) else {
            continue;
        };
        let mut out = Vec::with_capacity(2 + reply.len());
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&reply);
        stream.write_all(&out).await?;
    }
}
