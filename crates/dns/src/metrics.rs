//! CoreDNS's request metrics (`plugin/metrics/vars`): requests by
//! protocol, address family and type, responses by rcode, request
//! durations by type, and forwarded requests. Every labelled child is
//! created up front, so counting a query is an array index and an atomic
//! add, never a label-set hash.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::query::Transport;

/// The types CoreDNS names in its `type` label; the rest are `other`.
const TYPES: [&str; 11] = [
    "A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT", "ANY", "other",
];
const RCODES: [&str; 7] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "other",
];
/// CoreDNS's duration buckets (0.25 ms … 8 s).
const BUCKETS: [f64; 16] = [
    0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024,
    2.048, 4.096, 8.192,
];

type Labels = Vec<(String, String)>;

/// The index of a type in [`TYPES`].
pub fn type_index(t: Option<RecordType>) -> usize {
    match t {
        Some(RecordType::A) => 0,
        Some(RecordType::AAAA) => 1,
        Some(RecordType::CNAME) => 2,
        Some(RecordType::MX) => 3,
        Some(RecordType::NS) => 4,
        Some(RecordType::PTR) => 5,
        Some(RecordType::SOA) => 6,
        Some(RecordType::SRV) => 7,
        Some(RecordType::TXT) => 8,
        Some(RecordType::ANY) => 9,
        _ => 10,
    }
}

fn rcode_index(c: ResponseCode) -> usize {
    match c {
        ResponseCode::NoError => 0,
        ResponseCode::FormErr => 1,
        ResponseCode::ServFail => 2,
        ResponseCode::NXDomain => 3,
        ResponseCode::NotImp => 4,
        ResponseCode::Refused => 5,
        _ => 6,
    }
}

/// The server's metrics.
#[derive(Clone)]
pub struct DnsMetrics {
    requests_family: Family<Labels, Counter>,
    responses_family: Family<Labels, Counter>,
    duration_family: Family<Labels, Histogram, fn() -> Histogram>,
    /// [transport][family: 0 v4, 1 v6][type]
    requests: Vec<Counter>,
    responses: Vec<Counter>,
    duration: Vec<Histogram>,
    pub forward_requests: Counter,
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS.into_iter())
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Default for DnsMetrics {
    fn default() -> Self {
        let requests_family = Family::<Labels, Counter>::default();
        let responses_family = Family::<Labels, Counter>::default();
        let duration_family: Family<Labels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(histogram);
        let mut requests = Vec::new();
        for proto in ["udp", "tcp"] {
            for fam in ["1", "2"] {
                for t in TYPES {
                    let l = labels(&[("proto", proto), ("family", fam), ("type", t)]);
                    requests.push(requests_family.get_or_create(&l).clone());
                }
            }
        }
        let responses = RCODES
            .iter()
            .map(|r| {
                responses_family
                    .get_or_create(&labels(&[("rcode", r)]))
                    .clone()
            })
            .collect();
        let duration = TYPES
            .iter()
            .map(|t| {
                duration_family
                    .get_or_create(&labels(&[("type", t)]))
                    .clone()
            })
            .collect();
        Self {
            requests_family,
            responses_family,
            duration_family,
            requests,
            responses,
            duration,
            forward_requests: Counter::default(),
        }
    }
}

impl DnsMetrics {
    /// Registers everything under CoreDNS's names.
    pub fn register(&self, m: &component_base::metrics::Metrics) {
        m.register(
            "coredns_dns_requests",
            "Counter of DNS requests made per protocol, family and type",
            self.requests_family.clone(),
        );
        m.register(
            "coredns_dns_responses",
            "Counter of response status codes",
            self.responses_family.clone(),
        );
        m.register(
            "coredns_dns_request_duration_seconds",
            "Histogram of the time (in seconds) each request took per type",
            self.duration_family.clone(),
        );
        m.register(
            "coredns_forward_requests",
            "Counter of requests made to upstream resolvers",
            self.forward_requests.clone(),
        );
    }

    /// Counts one handled message.
    pub fn observe(
        &self,
        transport: Transport,
        ipv6: bool,
        qtype: Option<RecordType>,
        rcode: ResponseCode,
        seconds: f64,
    ) {
        let t = type_index(qtype);
        let i =
            (usize::from(transport == Transport::Tcp) * 2 + usize::from(ipv6)) * TYPES.len() + t;
        if let Some(c) = self.requests.get(i) {
            c.inc();
        }
        if let Some(c) = self.responses.get(rcode_index(rcode)) {
            c.inc();
        }
        if let Some(h) = self.duration.get(t) {
            h.observe(seconds);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_labels() {
        let reg = component_base::metrics::Metrics::default();
        let m = DnsMetrics::default();
        m.register(&reg);
        m.observe(
            Transport::Udp,
            false,
            Some(RecordType::A),
            ResponseCode::NoError,
            0.0001,
        );
        m.observe(
            Transport::Tcp,
            true,
            Some(RecordType::Unknown(999)),
            ResponseCode::NXDomain,
            0.01,
        );
        let text = reg.encode();
        assert!(
            text.contains(r#"coredns_dns_requests_total{proto="udp",family="1",type="A"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"coredns_dns_requests_total{proto="tcp",family="2",type="other"} 1"#)
        );
        assert!(text.contains(r#"coredns_dns_responses_total{rcode="NXDOMAIN"} 1"#));
        assert!(text.contains(r#"coredns_dns_request_duration_seconds_count{type="A"} 1"#));
    }
}
