//! Domain names as index keys: the lowercased wire form of a name without
//! its terminating root label (`\x03foo\x07default\x03svc…`). A key is
//! unambiguous (a label may hold any byte, dots included), and a query's
//! key is made from its labels into a stack buffer, so a lookup allocates
//! nothing. Also the reverse (`in-addr.arpa`, `ip6.arpa`) names of
//! addresses and the dashed addresses of `pods insecure` and of endpoints
//! without a hostname (CoreDNS's `endpointHostname`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::Name;

/// The longest name the wire format allows (RFC 1035: 255 octets).
pub const MAX_KEY: usize = 255;

/// Why a name could not be used.
#[derive(Debug, thiserror::Error)]
pub enum NameError {
    /// A label is empty or longer than 63 octets, or the name is longer
    /// than 255 octets.
    #[error("invalid domain name {0:?}")]
    Invalid(String),
}

/// An owned key (see the module docs).
pub type Key = Box<[u8]>;

/// A key being built in place, without allocating.
pub struct KeyBuf {
    buf: [u8; MAX_KEY],
    len: usize,
}

impl Default for KeyBuf {
    fn default() -> Self {
        Self {
            buf: [0; MAX_KEY],
            len: 0,
        }
    }
}

impl std::fmt::Debug for KeyBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&dotted(self.as_slice()))
    }
}

impl KeyBuf {
    /// The key of a parsed name; `None` if it would not fit (a decoded
    /// name never exceeds the limit, so this is defensive).
    pub fn from_name(name: &Name) -> Option<Self> {
        let mut k = Self::default();
        for label in name.iter() {
            k.push_label(label)?;
        }
        Some(k)
    }

    /// Appends one label, lowercased.
    pub fn push_label(&mut self, label: &[u8]) -> Option<()> {
        if label.is_empty() || label.len() > 63 || self.len + 1 + label.len() > MAX_KEY - 1 {
            return None;
        }
        self.buf[self.len] = label.len() as u8;
        for (d, s) in self.buf[self.len + 1..].iter_mut().zip(label) {
            *d = s.to_ascii_lowercase();
        }
        self.len += 1 + label.len();
        Some(())
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The key of a dotted name (`foo.default.svc.cluster.local`, a trailing
/// dot allowed), lowercased.
pub fn key(dotted: &str) -> Result<Key, NameError> {
    let mut k = KeyBuf::default();
    let trimmed = dotted.strip_suffix('.').unwrap_or(dotted);
    if trimmed.is_empty() {
        return Ok(Box::default());
    }
    for label in trimmed.split('.') {
        k.push_label(label.as_bytes())
            .ok_or_else(|| NameError::Invalid(dotted.to_string()))?;
    }
    Ok(k.as_slice().into())
}

/// A fully qualified hickory name for a dotted name, case kept.
pub fn fqdn(dotted: &str) -> Result<Name, NameError> {
    let mut n = Name::from_ascii(dotted).map_err(|_| NameError::Invalid(dotted.to_string()))?;
    n.set_fqdn(true);
    Ok(n)
}

/// Iterates the labels of a key.
pub fn labels(key: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = key;
    std::iter::from_fn(move || {
        let (&len, tail) = rest.split_first()?;
        let len = usize::from(len).min(tail.len());
        let (label, after) = tail.split_at(len);
        rest = after;
        Some(label)
    })
}

/// The key without its first label (`None` for the root).
pub fn parent(key: &[u8]) -> Option<&[u8]> {
    let (&len, _) = key.split_first()?;
    key.get(1 + usize::from(len)..)
}

/// Whether `key` is `zone` or a name below it.
pub fn is_under(key: &[u8], zone: &[u8]) -> bool {
    if zone.is_empty() {
        return true;
    }
    let mut k = key;
    loop {
        if k == zone {
            return true;
        }
        match parent(k) {
            Some(p) if p.len() >= zone.len() => k = p,
            _ => return false,
        }
    }
}

/// The dotted form of a key (for logs and tests).
pub fn dotted(key: &[u8]) -> String {
    let parts: Vec<String> = labels(key)
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    parts.join(".")
}

/// `d.c.b.a.in-addr.arpa` or the nibble form under `ip6.arpa`.
pub fn reverse(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                for nibble in [byte & 0xf, byte >> 4] {
                    s.push(char::from_digit(u32::from(nibble), 16).unwrap_or('0'));
                    s.push('.');
                }
            }
            s.push_str("ip6.arpa");
            s
        }
    }
}

/// An address written as one label: `10-0-0-1`, `fd00--1` (CoreDNS's form
/// for pod names and endpoints without a hostname).
pub fn dashed(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string().replace('.', "-"),
        IpAddr::V6(v6) => v6.to_string().replace(':', "-"),
    }
}

/// The address a dashed label names, if any (`pods insecure`).
pub fn undashed(label: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(label).ok()?;
    if s.bytes().filter(|b| *b == b'-').count() == 3 {
        if let Ok(v4) = s.replace('-', ".").parse::<Ipv4Addr>() {
            return Some(IpAddr::V4(v4));
        }
    }
    s.replace('-', ":").parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_lowercased_wire_labels() {
        let k = key("Foo.Default.SVC.cluster.local.").unwrap();
        assert_eq!(&*k, b"\x03foo\x07default\x03svc\x07cluster\x05local");
        assert_eq!(k, key("foo.default.svc.cluster.local").unwrap());
        assert_eq!(dotted(&k), "foo.default.svc.cluster.local");
        let n = fqdn("FOO.default.svc.cluster.local").unwrap();
        assert_eq!(KeyBuf::from_name(&n).unwrap().as_slice(), &*k);
        assert!(key("a..b").is_err());
        assert!(key(&"x".repeat(64)).is_err());
    }

    #[test]
    fn zones_contain_their_names_on_label_boundaries() {
        let zone = key("cluster.local").unwrap();
        assert!(is_under(&key("a.svc.cluster.local").unwrap(), &zone));
        assert!(is_under(&zone, &zone));
        assert!(!is_under(&key("xcluster.local").unwrap(), &zone));
        assert!(!is_under(&key("local").unwrap(), &zone));
        assert_eq!(parent(&key("a.b").unwrap()), Some(&*key("b").unwrap()));
    }

    #[test]
    fn reverse_and_dashed_forms() {
        let v4: IpAddr = "10.96.0.10".parse().unwrap();
        assert_eq!(reverse(v4), "10.0.96.10.in-addr.arpa");
        let v6: IpAddr = "fd00::1".parse().unwrap();
        assert!(reverse(v6).starts_with("1.0.0.0.0.0.0.0"));
        assert!(reverse(v6).ends_with("0.0.d.f.ip6.arpa"));
        assert_eq!(dashed(v4), "10-96-0-10");
        assert_eq!(undashed(b"10-96-0-10"), Some(v4));
        assert_eq!(undashed(dashed(v6).as_bytes()), Some(v6));
        assert_eq!(undashed(b"web"), None);
        assert_eq!(undashed(b"300-1-1-1"), None);
    }
}
