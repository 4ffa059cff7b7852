//! Chain names like upstream's nftables proxier (`hashAndTruncate` in
//! `pkg/proxy/nftables/proxier.go`): an 8-character base32 prefix of the
//! SHA-256 of the readable name keeps names unique, the readable rest
//! keeps `nft list ruleset` legible.

use std::net::Ipv4Addr;

use crate::types::ServicePortName;

/// nftables chain names are at most 256 bytes; keep well inside.
const MAX_LEN: usize = 200;

fn hash_and_truncate(name: &str) -> String {
    let mut out = format!("{}-{name}", crate::hash::sha256_base32(name, 8));
    if out.len() > MAX_LEN {
        let mut cut = MAX_LEN - 3;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("...");
    }
    out
}

/// Upstream's nftables identifiers allow letters, digits and `/\_.-`;
/// anything else in a port name becomes `_`.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "/\\_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub fn service_chain(spn: &ServicePortName) -> String {
    format!("service-{}", hash_and_truncate(&sanitize(&spn.to_string())))
}

pub fn external_chain(spn: &ServicePortName) -> String {
    format!(
        "external-{}",
        hash_and_truncate(&sanitize(&spn.to_string()))
    )
}

pub fn endpoint_chain(spn: &ServicePortName, ip: Ipv4Addr, port: u16) -> String {
    format!(
        "endpoint-{}",
        hash_and_truncate(&sanitize(&format!("{spn}__{ip}/{port}")))
    )
}

pub fn affinity_set(spn: &ServicePortName, ip: Ipv4Addr, port: u16) -> String {
    format!(
        "affinity-{}",
        hash_and_truncate(&sanitize(&format!("{spn}__{ip}/{port}")))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Protocol;

    #[test]
    fn names_are_stable_readable_and_distinct() {
        let spn = ServicePortName {
            namespace: "ns1".into(),
            name: "svc1".into(),
            port: "p80".into(),
            protocol: Protocol::Tcp,
        };
        let a = service_chain(&spn);
        assert!(
            a.starts_with("service-") && a.ends_with("-ns1/svc1/tcp/p80"),
            "{a}"
        );
        assert_eq!(a, service_chain(&spn));
        assert_eq!(a.len(), "service-".len() + 8 + 1 + "ns1/svc1/tcp/p80".len());
        let e = endpoint_chain(&spn, "10.88.0.2".parse().unwrap(), 8080);
        assert!(e.ends_with("-ns1/svc1/tcp/p80__10.88.0.2/8080"), "{e}");
        assert_ne!(e, endpoint_chain(&spn, "10.88.0.3".parse().unwrap(), 8080));
        let long = ServicePortName {
            name: "x".repeat(300),
            ..spn
        };
        assert!(service_chain(&long).len() <= "service-".len() + MAX_LEN);
    }
}
