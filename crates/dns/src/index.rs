//! The record index (what CoreDNS's kubernetes plugin computes per query
//! from its informer caches, here computed once per change): every name
//! the cluster zone holds, keyed by its lowercased wire form, with each
//! record type's answer already encoded (see [`crate::records`]). A query
//! is one hash lookup; only `pods insecure` names and `ANY` build bytes.
//!
//! Records follow the Kubernetes DNS specification (schema 1.1.0):
//! ClusterIP Services have A/AAAA, SRV per named port and PTR; headless
//! Services one A/AAAA per ready endpoint, `<hostname>.<svc>…` names, SRV
//! per endpoint and named port, PTR per endpoint; ExternalName Services a
//! CNAME; `dns-version.<zone>` a TXT; the apex SOA and NS. Names that exist
//! only as parents of others (`svc.<zone>`, `<ns>.svc.<zone>`,
//! `_tcp.<svc>…`) are empty non-terminals: NODATA, not NXDOMAIN.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::names::{self, Key, KeyBuf};
use crate::records::{EncodeError, Encoded, Section};

/// The schema version `dns-version.<zone>` answers.
pub const SCHEMA_VERSION: &str = "1.1.0";

/// The label EndpointSlices name their Service by.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Why an index could not be built.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The cluster domain is not a valid name.
    #[error("cluster domain: {0}")]
    Domain(#[from] names::NameError),
    /// A fixed record (SOA, NS, TXT) could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// What the index is built for.
#[derive(Debug, Clone)]
pub struct IndexConfig {
    /// The cluster domain, e.g. `cluster.local`.
    pub domain: String,
    /// The TTL of every record and of negative answers.
    pub ttl: u32,
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            domain: "cluster.local".into(),
            ttl: 30,
        }
    }
}

/// The zones this server is authoritative for; each has its SOA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    Cluster = 0,
    ReverseV4 = 1,
    ReverseV6 = 2,
}

/// One name's records.
#[derive(Debug, Default)]
struct Entry {
    /// Sorted by type; a handful at most.
    rrsets: Vec<(RecordType, Section)>,
    zone: Option<Zone>,
}

/// What a query's name and type find.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// Records of the asked type (or the name's CNAME).
    Answer(&'a Section),
    /// Records built for this query (`pods insecure`, `ANY`).
    Built(Section),
    /// The name exists without records of this type.
    NoData(Zone),
    /// No such name in the zone.
    NxDomain(Zone),
    /// Not ours: forward upstream.
    Forward,
}

/// The index (see the module docs).
#[derive(Debug)]
pub struct Index {
    domain: Key,
    ttl: u32,
    names: HashMap<Key, Entry>,
    /// The SOA of each [`Zone`], owner written out, for authority sections.
    soa: [Encoded; 3],
    in_addr: Key,
    ip6: Key,
    services: usize,
}

/// Records of one name and type being collected, before encoding.
#[derive(Default)]
struct Pending {
    data: Vec<RData>,
    /// Additional-section records (A/AAAA of SRV targets).
    extra: Vec<(Name, RData)>,
}

#[derive(Default)]
struct Builder {
    names: BTreeMap<Key, (Zone, BTreeMap<u16, Pending>)>,
    /// Names kept for the additional section of SRV answers: key → records.
    addresses: HashMap<Key, Vec<RData>>,
}

impl Builder {
    fn add(&mut self, zone: Zone, name: &Name, data: RData) {
        let Some(key) = KeyBuf::from_name(name) else {
            return;
        };
        let key: Key = key.as_slice().into();
        if matches!(data, RData::A(_) | RData::AAAA(_)) {
            let v = self.addresses.entry(key.clone()).or_default();
            if !v.contains(&data) {
                v.push(data.clone());
            }
        }
        let rtype = u16::from(data.record_type());
        let pending = self
            .names
            .entry(key)
            .or_insert_with(|| (zone, BTreeMap::new()))
            .1
            .entry(rtype)
            .or_default();
        if !pending.data.contains(&data) {
            pending.data.push(data);
        }
    }

    fn add_srv(&mut self, name: &Name, port: u16, target: &Name) {
        self.add(
            Zone::Cluster,
            name,
            RData::SRV(SRV::new(0, 0, port, target.clone())),
        );
    }
}

fn ip_rdata(ip: IpAddr) -> RData {
    match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    }
}

/// `<label>.<parent>` as a hickory name.
fn child(label: &str, parent: &Name) -> Option<Name> {
    names::fqdn(label).ok()?.append_domain(parent).ok()
}

fn reverse_zone(ip: IpAddr) -> Zone {
    match ip {
        IpAddr::V4(_) => Zone::ReverseV4,
        IpAddr::V6(_) => Zone::ReverseV6,
    }
}

/// A ready endpoint of a headless Service.
struct ReadyEndpoint {
    ip: IpAddr,
    host: String,
}

/// Ready endpoints and named ports of the slices of one Service.
fn slice_endpoints(slice: &EndpointSlice) -> (Vec<ReadyEndpoint>, Vec<(String, String, u16)>) {
    let mut eps = Vec::new();
    if slice.address_type == "FQDN" {
        return (eps, Vec::new());
    }
    for ep in &slice.endpoints {
        let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
        if !ready {
            continue;
        }
        for addr in &ep.addresses {
            let Ok(ip) = addr.parse::<IpAddr>() else {
                continue;
            };
            let host = ep
                .hostname
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| names::dashed(ip));
            eps.push(ReadyEndpoint { ip, host });
        }
    }
    let ports = slice
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            let name = p.name.clone().filter(|n| !n.is_empty())?;
            let port = u16::try_from(p.port?).ok()?;
            let proto = p.protocol.clone().unwrap_or_else(|| "TCP".into());
            Some((name, proto.to_ascii_lowercase(), port))
        })
        .collect();
    (eps, ports)
}

impl Index {
    /// An index of no Services (the zone's fixed records only).
    pub fn empty(config: &IndexConfig) -> Result<Self, IndexError> {
        Self::build(config, std::iter::empty(), std::iter::empty())
    }

    /// Builds the index from every Service and EndpointSlice. Objects that
    /// cannot be named (invalid names) are skipped, never an error.
    pub fn build<'a>(
        config: &IndexConfig,
        services: impl IntoIterator<Item = &'a Service>,
        slices: impl IntoIterator<Item = &'a EndpointSlice>,
    ) -> Result<Self, IndexError> {
        let ttl = config.ttl;
        let lower = config.domain.to_ascii_lowercase();
        let domain = names::fqdn(&lower)?;
        let domain_key = names::key(&lower)?;
        let mut b = Builder::default();

        let mut by_service: HashMap<(&str, &str), Vec<&EndpointSlice>> = HashMap::new();
        for s in slices {
            let (Some(ns), Some(svc)) = (
                s.metadata.namespace.as_deref(),
                s.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(SERVICE_NAME_LABEL))
                    .map(String::as_str),
            ) else {
                continue;
            };
            by_service.entry((ns, svc)).or_default().push(s);
        }

        let svc_zone = child("svc", &domain);
        let mut count = 0;
        for svc in services {
            let (Some(ns), Some(name), Some(spec), Some(svc_zone)) = (
                svc.metadata.namespace.as_deref(),
                svc.metadata.name.as_deref(),
                svc.spec.as_ref(),
                svc_zone.as_ref(),
            ) else {
                continue;
            };
            let Some(fqdn) = child(ns, svc_zone).and_then(|n| child(name, &n)) else {
                continue;
            };
            count += 1;
            if spec.type_.as_deref() == Some("ExternalName") {
                if let Some(target) = spec
                    .external_name
                    .as_deref()
                    .and_then(|t| names::fqdn(t).ok())
                {
                    b.add(Zone::Cluster, &fqdn, RData::CNAME(CNAME(target)));
                }
                continue;
            }
            if spec.cluster_ip.as_deref() == Some("None") {
                let slices = by_service.get(&(ns, name)).map(Vec::as_slice);
                for slice in slices.unwrap_or_default() {
                    let (eps, ports) = slice_endpoints(slice);
                    for ep in &eps {
                        let Some(host) = child(&ep.host, &fqdn) else {
                            continue;
                        };
                        b.add(Zone::Cluster, &fqdn, ip_rdata(ep.ip));
                        b.add(Zone::Cluster, &host, ip_rdata(ep.ip));
                        b.add(
                            reverse_zone(ep.ip),
                            &names::fqdn(&names::reverse(ep.ip))?,
                            RData::PTR(PTR(host.clone())),
                        );
                        for (port_name, proto, port) in &ports {
                            let srv = child(&format!("_{proto}"), &fqdn)
                                .and_then(|p| child(&format!("_{port_name}"), &p));
                            if let Some(srv) = srv {
                                b.add_srv(&srv, *port, &host);
                            }
                        }
                    }
                }
                continue;
            }
            let ips: Vec<IpAddr> = match &spec.cluster_ips {
                Some(ips) if !ips.is_empty() => ips.iter().filter_map(|i| i.parse().ok()).collect(),
                _ => spec
                    .cluster_ip
                    .iter()
                    .filter_map(|i| i.parse().ok())
                    .collect(),
            };
            if ips.is_empty() {
                continue;
            }
            for ip in &ips {
                b.add(Zone::Cluster, &fqdn, ip_rdata(*ip));
                b.add(
                    reverse_zone(*ip),
                    &names::fqdn(&names::reverse(*ip))?,
                    RData::PTR(PTR(fqdn.clone())),
                );
            }
            for p in spec.ports.iter().flatten() {
                let (Some(port_name), Ok(port)) = (
                    p.name.as_deref().filter(|n| !n.is_empty()),
                    u16::try_from(p.port),
                ) else {
                    continue;
                };
                let proto = p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase();
                let srv = child(&format!("_{proto}"), &fqdn)
                    .and_then(|n| child(&format!("_{port_name}"), &n));
                if let Some(srv) = srv {
                    b.add_srv(&srv, port, &fqdn);
                }
            }
        }

        let mut idx = Index {
            in_addr: names::key("in-addr.arpa")?,
            ip6: names::key("ip6.arpa")?,
            domain: domain_key.clone(),
            ttl,
            names: HashMap::with_capacity(b.names.len() * 2),
            soa: Default::default(),
            services: count,
        };

        // The zone's fixed records.
        let ns_name = child("dns", &domain)
            .and_then(|d| child("ns", &d))
            .unwrap_or_else(|| domain.clone());
        let hostmaster = child("hostmaster", &domain).unwrap_or_else(|| domain.clone());
        let serial = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(1);
        let soa = |owner: &Name| -> Result<(RData, Encoded), EncodeError> {
            let data = RData::SOA(SOA::new(
                ns_name.clone(),
                hostmaster.clone(),
                serial,
                7200,
                1800,
                86400,
                ttl,
            ));
            let mut e = Encoded::default();
            e.push_named(owner, ttl, data.clone())?;
            Ok((data, e))
        };
        let (apex_soa, apex_enc) = soa(&domain)?;
        idx.soa[Zone::Cluster as usize] = apex_enc;
        idx.soa[Zone::ReverseV4 as usize] = soa(&names::fqdn("in-addr.arpa")?)?.1;
        idx.soa[Zone::ReverseV6 as usize] = soa(&names::fqdn("ip6.arpa")?)?.1;
        b.add(Zone::Cluster, &domain, apex_soa);
        b.add(Zone::Cluster, &domain, RData::NS(NS(ns_name.clone())));
        if let Some(v) = child("dns-version", &domain) {
            b.add(
                Zone::Cluster,
                &v,
                RData::TXT(TXT::new(vec![SCHEMA_VERSION.to_string()])),
            );
        }
        for ent in ["svc", "pod"] {
            if let Some(n) = child(ent, &domain) {
                if let Some(k) = KeyBuf::from_name(&n) {
                    b.names
                        .entry(k.as_slice().into())
                        .or_insert_with(|| (Zone::Cluster, BTreeMap::new()));
                }
            }
        }

        // Encode every RRset.
        let addresses = std::mem::take(&mut b.addresses);
        for (key, (zone, types)) in std::mem::take(&mut b.names) {
            let mut entry = Entry {
                rrsets: Vec::with_capacity(types.len()),
                zone: Some(zone),
            };
            for (rtype, mut pending) in types {
                let mut section = Section::default();
                let n = pending.data.len();
                let mut targets = BTreeSet::new();
                for data in pending.data.drain(..) {
                    let data = match data {
                        // Equal shares of 100 (CoreDNS's weights).
                        RData::SRV(s) => {
                            let w = (100 / n.max(1)).max(1) as u16;
                            if let Some(k) = KeyBuf::from_name(&s.target) {
                                if targets.insert(k.as_slice().to_vec()) {
                                    for a in addresses.get(k.as_slice()).into_iter().flatten() {
                                        pending.extra.push((s.target.clone(), a.clone()));
                                    }
                                }
                            }
                            RData::SRV(SRV::new(s.priority, w, s.port, s.target.clone()))
                        }
                        RData::CNAME(c) => {
                            section.chase = Some(c.0.clone());
                            RData::CNAME(c)
                        }
                        d => d,
                    };
                    section.answers.push_answer(ttl, data)?;
                }
                for (name, data) in &pending.extra {
                    section.additionals.push_named(name, ttl, data.clone())?;
                }
                entry.rrsets.push((RecordType::from(rtype), section));
            }
            idx.insert(key, entry);
        }
        Ok(idx)
    }

    /// Inserts a name and its parents up to the zone (empty non-terminals).
    fn insert(&mut self, key: Key, entry: Entry) {
        let zone = entry.zone;
        let mut parent = names::parent(&key).map(<[u8]>::to_vec);
        self.names.insert(key, entry);
        let apex: &[u8] = match zone {
            Some(Zone::ReverseV4) => &self.in_addr,
            Some(Zone::ReverseV6) => &self.ip6,
            _ => &self.domain,
        };
        let apex = apex.to_vec();
        while let Some(p) = parent {
            if p.len() < apex.len() || !names::is_under(&p, &apex) {
                break;
            }
            let next = names::parent(&p).map(<[u8]>::to_vec);
            self.names.entry(p.into()).or_insert_with(|| Entry {
                rrsets: Vec::new(),
                zone,
            });
            parent = next;
        }
    }

    /// How many Services the index was built from.
    pub fn services(&self) -> usize {
        self.services
    }

    /// The TTL of records and negative answers.
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    /// The SOA record (owner written out) for a negative answer's authority section.
    pub fn soa(&self, zone: Zone) -> &Encoded {
        &self.soa[zone as usize]
    }

    /// Answers a question by its key (see [`names::KeyBuf`]).
    pub fn lookup(&self, key: &[u8], qtype: RecordType) -> Lookup<'_> {
        if let Some(entry) = self.names.get(key) {
            let zone = entry.zone.unwrap_or(Zone::Cluster);
            if qtype == RecordType::ANY && !entry.rrsets.is_empty() {
                let mut s = Section::default();
                for (_, sec) in &entry.rrsets {
                    s.answers.append(&sec.answers);
                }
                return Lookup::Built(s);
            }
            let found = entry
                .rrsets
                .iter()
                .find(|(t, _)| *t == qtype)
                .or_else(|| entry.rrsets.iter().find(|(t, _)| *t == RecordType::CNAME));
            return match found {
                Some((_, s)) => Lookup::Answer(s),
                None => Lookup::NoData(zone),
            };
        }
        if names::is_under(key, &self.domain) {
            return self.pod(key, qtype);
        }
        // Unknown reverse names fall through to the upstream resolvers, as
        // CoreDNS's default `fallthrough in-addr.arpa ip6.arpa` does.
        Lookup::Forward
    }

    /// `<a-b-c-d>.<ns>.pod.<zone>`: the address the name spells (`pods insecure`).
    fn pod(&self, key: &[u8], qtype: RecordType) -> Lookup<'_> {
        let mut labels = names::labels(key);
        let (Some(first), Some(_ns), Some(pod)) = (labels.next(), labels.next(), labels.next())
        else {
            return Lookup::NxDomain(Zone::Cluster);
        };
        let rest = names::parent(key)
            .and_then(names::parent)
            .and_then(names::parent);
        if pod != b"pod" || rest != Some(&*self.domain) {
            return Lookup::NxDomain(Zone::Cluster);
        }
        let Some(ip) = names::undashed(first) else {
            return Lookup::NxDomain(Zone::Cluster);
        };
        let wanted = match ip {
            IpAddr::V4(_) => RecordType::A,
            IpAddr::V6(_) => RecordType::AAAA,
        };
        if qtype != wanted && qtype != RecordType::ANY {
            return Lookup::NoData(Zone::Cluster);
        }
        let mut s = Section::default();
        match s.answers.push_answer(self.ttl, ip_rdata(ip)) {
            Ok(()) => Lookup::Built(s),
            Err(_) => Lookup::NxDomain(Zone::Cluster),
        }
    }
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
