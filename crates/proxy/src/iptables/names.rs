//! Chain names like upstream's iptables proxier (`servicePortChainName`
//! and friends in `pkg/proxy/iptables/proxier.go`): a prefix and 16 base32
//! characters of the SHA-256 of the service port's name and protocol (and
//! the endpoint), which keeps names within iptables' 28 characters and
//! equal to upstream's, so `iptables-save` reads the same.

use std::net::Ipv4Addr;

use crate::hash::sha256_base32;
use crate::types::ServicePortName;

/// `ns/name:port` (or `ns/name` for an unnamed port), upstream's
/// `ServicePortName.String()`, used in comments and hashes.
pub fn port_name(spn: &ServicePortName) -> String {
    if spn.port.is_empty() {
        format!("{}/{}", spn.namespace, spn.name)
    } else {
        format!("{}/{}:{}", spn.namespace, spn.name, spn.port)
    }
}

fn port_proto_hash(spn: &ServicePortName) -> String {
    sha256_base32(&format!("{}{}", port_name(spn), spn.protocol.nft()), 16)
}

/// `KUBE-SVC-…`: the cluster-policy chain (every usable endpoint).
pub fn service_chain(spn: &ServicePortName) -> String {
    format!("KUBE-SVC-{}", port_proto_hash(spn))
}

/// `KUBE-SVL-…`: the local-policy chain (this node's endpoints).
pub fn local_chain(spn: &ServicePortName) -> String {
    format!("KUBE-SVL-{}", port_proto_hash(spn))
}

/// `KUBE-EXT-…`: where NodePort, external and load-balancer IP traffic goes.
pub fn external_chain(spn: &ServicePortName) -> String {
    format!("KUBE-EXT-{}", port_proto_hash(spn))
}

/// `KUBE-SEP-…`: one endpoint's DNAT.
pub fn endpoint_chain(spn: &ServicePortName, ip: Ipv4Addr, port: u16) -> String {
    let name = format!("{}{}{ip}:{port}", port_name(spn), spn.protocol.nft());
    format!("KUBE-SEP-{}", sha256_base32(&name, 16))
}

/// Whether a chain is one of the per-Service chains this proxier makes
/// (and may therefore delete when it is no longer wanted).
pub fn is_service_chain(chain: &str) -> bool {
    [
        "KUBE-SVC-",
        "KUBE-SVL-",
        "KUBE-EXT-",
        "KUBE-SEP-",
        "KUBE-FW-",
    ]
    .iter()
    .any(|p| chain.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Protocol;

    fn spn(ns: &str, name: &str, port: &str, protocol: Protocol) -> ServicePortName {
        ServicePortName {
            namespace: ns.into(),
            name: name.into(),
            port: port.into(),
            protocol,
        }
    }

    #[test]
    fn chain_names_are_upstreams() {
        // The names every upstream cluster shows in `iptables-save`.
        assert_eq!(
            service_chain(&spn("default", "kubernetes", "https", Protocol::Tcp)),
            "KUBE-SVC-NPX46M4PTMTKRN6Y"
        );
        assert_eq!(
            service_chain(&spn("kube-system", "kube-dns", "dns", Protocol::Udp)),
            "KUBE-SVC-TCOU7JCQXEZGVUNU"
        );
        assert_eq!(
            service_chain(&spn("kube-system", "kube-dns", "dns-tcp", Protocol::Tcp)),
            "KUBE-SVC-ERIFXISQEP7F7OF4"
        );
        let web = spn("default", "web", "", Protocol::Tcp);
        assert_eq!(port_name(&web), "default/web");
        let sep = endpoint_chain(&web, "10.88.0.2".parse().unwrap(), 80);
        assert!(sep.starts_with("KUBE-SEP-") && sep.len() == 25, "{sep}");
        assert_ne!(sep, endpoint_chain(&web, "10.88.0.3".parse().unwrap(), 80));
        assert!(is_service_chain(&sep) && !is_service_chain("KUBE-SERVICES"));
    }
}
