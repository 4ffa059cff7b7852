//! Forwarding what the cluster zone does not hold (CoreDNS's `forward .
//! /etc/resolv.conf`): the upstream resolvers are the `nameserver` lines of
//! a resolv.conf, without any that is this server itself; the query's bytes
//! go to each in turn, over the transport the client used, until one
//! answers with a response carrying the query's ID. No upstream, or none
//! answering in time, is an error the caller turns into SERVFAIL.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::query::Transport;

/// Why a resolv.conf could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ResolvConfError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Why a query could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// There is no upstream resolver to ask.
    #[error("no upstream resolvers")]
    NoUpstreams,
    /// Every upstream failed or timed out; the last failure.
    #[error("no upstream answered: {0}")]
    Failed(String),
}

/// The `nameserver` addresses of a resolv.conf, port 53. As an extension
/// (used by tests), `nameserver 127.0.0.1:5353` and `[::1]:5353` give a port.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            if words.next()? != "nameserver" {
                return None;
            }
            let addr = words.next()?;
            if let Ok(sa) = addr.parse::<SocketAddr>() {
                return Some(sa);
            }
            // A zone index (`fe80::1%eth0`) is not supported; skipped.
            addr.parse::<IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, 53))
        })
        .collect()
}

/// Reads `path` (see [`parse_resolv_conf`]).
pub fn read_resolv_conf(path: &Path) -> Result<Vec<SocketAddr>, ResolvConfError> {
    let text = std::fs::read_to_string(path).map_err(|source| ResolvConfError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(parse_resolv_conf(&text))
}

/// Whether `ip` is an address of this machine (binding it succeeds).
fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback() || std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// `upstreams` without those that are `listen` itself: the same address, or
/// a local address on the same port when `listen` is a wildcard.
pub fn without_self(upstreams: Vec<SocketAddr>, listen: &[SocketAddr]) -> Vec<SocketAddr> {
    upstreams
        .into_iter()
        .filter(|u| {
            !listen.iter().any(|l| {
                u == l
                    || (u.port() == l.port()
                        && (l.ip().is_unspecified()
                            || u.ip().is_loopback() && l.ip().is_loopback())
                        && is_local(u.ip()))
            })
        })
        .collect()
}

/// Forwards queries to the upstream resolvers.
#[derive(Debug, Clone)]
pub struct Forwarder {
    upstreams: Vec<SocketAddr>,
    /// How long one upstream gets to answer.
    timeout: Duration,
}

impl Forwarder {
    pub fn new(upstreams: Vec<SocketAddr>, timeout: Duration) -> Self {
        Self { upstreams, timeout }
    }

    pub fn upstreams(&self) -> &[SocketAddr] {
        &self.upstreams
    }

    /// The first answer from an upstream to `query`, whose ID is `id`.
    pub async fn forward(
        &self,
        query: &[u8],
        id: u16,
        transport: Transport,
    ) -> Result<Vec<u8>, ForwardError> {
        if self.upstreams.is_empty() {
            return Err(ForwardError::NoUpstreams);
        }
        let mut last = String::new();
        for up in &self.upstreams {
            let attempt = async {
                match transport {
                    Transport::Udp => udp(*up, query, id).await,
                    Transport::Tcp => tcp(*up, query, id).await,
                }
            };
            match tokio::time::timeout(self.timeout, attempt).await {
                Ok(Ok(resp)) => return Ok(resp),
                Ok(Err(e)) => last = format!("{up}: {e}"),
                Err(_) => last = format!("{up}: timed out after {:?}", self.timeout),
            }
            tracing::debug!(upstream = %up, error = %last, "upstream failed");
        }
        Err(ForwardError::Failed(last))
    }
}

/// A response to our query: long enough, QR set, our ID.
fn is_answer(resp: &[u8], id: u16) -> bool {
    resp.len() >= 12 && resp[0..2] == id.to_be_bytes() && resp[2] & 0x80 != 0
}

async fn udp(up: SocketAddr, query: &[u8], id: u16) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = match up {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = UdpSocket::bind(local).await?;
    sock.connect(up).await?;
    sock.send(query).await?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = sock.recv(&mut buf).await?;
        // Stray datagrams (another ID) are skipped, not taken as the answer.
        if is_answer(&buf[..n], id) {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn tcp(up: SocketAddr, query: &[u8], id: u16) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(up).await?;
    let len = u16::try_from(query.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "query too long"))?;
    let mut msg = Vec::with_capacity(2 + query.len());
    msg.extend_from_slice(&len.to_be_bytes());
    msg.extend_from_slice(query);
    s.write_all(&msg).await?;
    let n = s.read_u16().await?;
    let mut buf = vec![0u8; usize::from(n)];
    s.read_exact(&mut buf).await?;
    if !is_answer(&buf, id) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "upstream answered another query",
        ));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers() {
        let text = "# comment\nsearch default.svc.cluster.local\nnameserver 10.0.0.2\nnameserver  fd00::53 \nnameserver 127.0.0.1:5353\nnameserver bogus\noptions ndots:5\n";
        let got = parse_resolv_conf(text);
        assert_eq!(
            got,
            vec![
                "10.0.0.2:53".parse().unwrap(),
                "[fd00::53]:53".parse().unwrap(),
                "127.0.0.1:5353".parse().unwrap()
            ]
        );
    }

    #[test]
    fn never_forwards_to_itself() {
        let ups: Vec<SocketAddr> = vec![
            "127.0.0.1:53".parse().unwrap(),
            "127.0.0.53:53".parse().unwrap(),
            "127.0.0.1:5300".parse().unwrap(),
            "192.0.2.1:53".parse().unwrap(),
        ];
        let got = without_self(ups.clone(), &["0.0.0.0:53".parse().unwrap()]);
        assert_eq!(got, ups[2..].to_vec());
        let got = without_self(ups.clone(), &["127.0.0.1:5300".parse().unwrap()]);
        assert_eq!(got, vec![ups[0], ups[1], ups[3]]);
    }

    #[tokio::test]
    async fn no_upstreams_and_silent_upstreams_fail() {
        let f = Forwarder::new(vec![], Duration::from_millis(50));
        assert!(matches!(
            f.forward(b"x", 1, Transport::Udp).await,
            Err(ForwardError::NoUpstreams)
        ));
        // A bound socket that never answers.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let f = Forwarder::new(
            vec![silent.local_addr().unwrap()],
            Duration::from_millis(50),
        );
        let e = f.forward(&[0u8; 12], 1, Transport::Udp).await.unwrap_err();
        assert!(e.to_string().contains("timed out"), "{e}");
    }
}
