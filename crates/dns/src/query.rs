//! One query, from its bytes to the response's bytes (what CoreDNS's server
//! and its kubernetes plugin's `ServeDNS` do together): the message is
//! decoded with hickory-proto (anything it refuses is FORMERR), the name is
//! looked up in the [`Index`], and the response is assembled from the
//! query's own question bytes and the index's encoded records. A response
//! too large for the client's UDP buffer (512 bytes, or the EDNS payload
//! size it sent) is sent truncated with TC so that it retries over TCP.

use std::sync::OnceLock;

use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};

use crate::index::{Index, Lookup};
use crate::names::KeyBuf;
use crate::records::{Encoded, Section};

/// The UDP payload size this server advertises in its OPT record.
pub const EDNS_PAYLOAD: u16 = 1232;

/// The limit for UDP responses to clients without EDNS (RFC 1035).
pub const PLAIN_UDP_LIMIT: usize = 512;

/// How the query arrived, which bounds the response size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// A decoded query: what answering it needs, borrowed from its bytes.
#[derive(Debug)]
pub struct Question<'a> {
    pub id: u16,
    pub op_code: OpCode,
    pub recursion_desired: bool,
    pub qtype: RecordType,
    pub qclass: DNSClass,
    /// The question section's bytes, copied into the response.
    pub raw: &'a [u8],
    pub key: KeyBuf,
    /// The client's EDNS payload size, when it sent an OPT record.
    pub edns_payload: Option<u16>,
}

/// Why a message gets no answer from the index.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not answerable at all (shorter than a header, or itself a response):
    /// dropped, as CoreDNS does.
    Drop,
    /// Malformed: answered FORMERR with the query's ID.
    FormErr(u16, OpCode),
    /// Not a QUERY: answered NOTIMP.
    NotImp(u16, OpCode),
}

/// What to do with a query.
#[derive(Debug)]
pub enum Outcome {
    /// Send these bytes back; the code is for the metrics.
    Reply(Vec<u8>, ResponseCode),
    /// Ask the upstream resolvers.
    Forward,
    /// The name is a CNAME to this target outside the zone: its records of
    /// the asked type come from upstream, then [`answer_chased`] replies.
    Chase(Name),
}

/// Decodes a query with hickory-proto's header, question and record readers.
pub fn parse(buf: &[u8]) -> Result<Question<'_>, Refusal> {
    let mut d = BinDecoder::new(buf);
    let header = Header::read(&mut d).map_err(|_| Refusal::Drop)?;
    let (id, op) = (header.metadata.id, header.metadata.op_code);
    if header.metadata.message_type == MessageType::Response {
        return Err(Refusal::Drop);
    }
    if op != OpCode::Query {
        return Err(Refusal::NotImp(id, op));
    }
    if header.counts.queries != 1 {
        return Err(Refusal::FormErr(id, op));
    }
    let query = hickory_proto::op::Query::read(&mut d).map_err(|_| Refusal::FormErr(id, op))?;
    let end = d.index();
    let form = |_| Refusal::FormErr(id, op);
    Message::read_records(&mut d, usize::from(header.counts.answers), false, op).map_err(form)?;
    Message::read_records(&mut d, usize::from(header.counts.authorities), false, op)
        .map_err(form)?;
    let (_, edns, _) =
        Message::read_records(&mut d, usize::from(header.counts.additionals), true, op)
            .map_err(form)?;
    let key = KeyBuf::from_name(&query.name).ok_or(Refusal::FormErr(id, op))?;
    Ok(Question {
        id,
        op_code: op,
        recursion_desired: header.metadata.recursion_desired,
        qtype: query.query_type,
        qclass: query.query_class,
        raw: buf.get(12..end).ok_or(Refusal::FormErr(id, op))?,
        key,
        edns_payload: edns.map(|e| e.max_payload()),
    })
}

/// The response to a refused message, if it gets one.
pub fn refusal_reply(r: &Refusal) -> Option<(Vec<u8>, ResponseCode)> {
    let (id, op, code) = match *r {
        Refusal::Drop => return None,
        Refusal::FormErr(id, op) => (id, op, ResponseCode::FormErr),
        Refusal::NotImp(id, op) => (id, op, ResponseCode::NotImp),
    };
    let bytes = Message::error_msg(id, op, code).to_vec().ok()?;
    Some((bytes, code))
}

/// The OPT record of every EDNS response (encoded once with hickory).
fn opt_record() -> &'static [u8] {
    static OPT: OnceLock<Vec<u8>> = OnceLock::new();
    OPT.get_or_init(|| {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        let record = Record::from(&edns);
        let mut buf = Vec::new();
        let mut enc = BinEncoder::new(&mut buf);
        match record.emit(&mut enc) {
            Ok(()) => buf,
            Err(_) => Vec::new(),
        }
    })
}

/// Answers `q` from `index`, or says to forward it.
pub fn answer(index: &Index, q: &Question<'_>, transport: Transport) -> Outcome {
    if !matches!(q.qclass, DNSClass::IN | DNSClass::ANY) {
        return Outcome::Forward;
    }
    let (code, section, authority): (_, Option<&Section>, Option<&Encoded>);
    let built;
    match index.lookup(q.key.as_slice(), q.qtype) {
        Lookup::Forward => return Outcome::Forward,
        Lookup::Answer(s) => {
            if let Some(target) = &s.chase {
                if !matches!(q.qtype, RecordType::CNAME | RecordType::ANY) {
                    return Outcome::Chase(target.clone());
                }
            }
            code = ResponseCode::NoError;
            section = Some(s);
            authority = None;
        }
        Lookup::Built(s) => {
            built = s;
            code = ResponseCode::NoError;
            section = Some(&built);
            authority = None;
        }
        Lookup::NoData(z) => {
            code = ResponseCode::NoError;
            section = None;
            authority = Some(index.soa(z));
        }
        Lookup::NxDomain(z) => {
            code = ResponseCode::NXDomain;
            section = None;
            authority = Some(index.soa(z));
        }
    }
    let bytes = assemble(q, code, true, section, authority, transport);
    Outcome::Reply(bytes, code)
}

/// The reply to a question whose CNAME was chased: the CNAME and then
/// `extra` (the target's records, owners written out; may be empty).
pub fn answer_chased(
    index: &Index,
    q: &Question<'_>,
    transport: Transport,
    extra: &Encoded,
) -> Vec<u8> {
    match index.lookup(q.key.as_slice(), q.qtype) {
        Lookup::Answer(s) => {
            let mut s = s.clone();
            s.answers.append(extra);
            assemble(q, ResponseCode::NoError, true, Some(&s), None, transport)
        }
        // The index changed in between: answer from the new one.
        _ => match answer(index, q, transport) {
            Outcome::Reply(bytes, _) => bytes,
            _ => empty_reply(q, ResponseCode::ServFail),
        },
    }
}

/// A response with no records (SERVFAIL when forwarding failed).
pub fn empty_reply(q: &Question<'_>, code: ResponseCode) -> Vec<u8> {
    assemble(q, code, false, None, None, Transport::Tcp)
}

/// The largest response `q` may get over `transport`.
pub fn size_limit(q: &Question<'_>, transport: Transport) -> usize {
    match transport {
        Transport::Tcp => usize::from(u16::MAX),
        Transport::Udp => match q.edns_payload {
            Some(p) => usize::from(p).max(PLAIN_UDP_LIMIT),
            None => PLAIN_UDP_LIMIT,
        },
    }
}

fn assemble(
    q: &Question<'_>,
    code: ResponseCode,
    authoritative: bool,
    section: Option<&Section>,
    authority: Option<&Encoded>,
    transport: Transport,
) -> Vec<u8> {
    let empty = Encoded::default();
    let (answers, additionals) = match section {
        Some(s) => (&s.answers, &s.additionals),
        None => (&empty, &empty),
    };
    let authority = authority.unwrap_or(&empty);
    let opt = if q.edns_payload.is_some() {
        opt_record()
    } else {
        &[]
    };
    let len = 12
        + q.raw.len()
        + answers.bytes.len()
        + authority.bytes.len()
        + additionals.bytes.len()
        + opt.len();
    let truncated = len > size_limit(q, transport);
    let mut out = Vec::with_capacity(if truncated {
        12 + q.raw.len() + opt.len()
    } else {
        len
    });
    let flags1 = 0x80
        | (u8::from(q.op_code) << 3)
        | if authoritative { 0x04 } else { 0 }
        | if truncated { 0x02 } else { 0 }
        | u8::from(q.recursion_desired);
    let flags2 = 0x80 | code.low();
    let extra = u16::from(!opt.is_empty());
    let (an, ns, ar) = if truncated {
        (0, 0, extra)
    } else {
        (
            answers.count,
            authority.count,
            additionals.count.saturating_add(extra),
        )
    };
    out.extend_from_slice(&q.id.to_be_bytes());
    out.push(flags1);
    out.push(flags2);
    for c in [1u16, an, ns, ar] {
        out.extend_from_slice(&c.to_be_bytes());
    }
    out.extend_from_slice(q.raw);
    if !truncated {
        out.extend_from_slice(&answers.bytes);
        out.extend_from_slice(&authority.bytes);
        out.extend_from_slice(&additionals.bytes);
    }
    out.extend_from_slice(opt);
    out
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
