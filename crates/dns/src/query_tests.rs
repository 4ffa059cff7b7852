//! Malformed messages, truncation and EDNS.

use super::*;
use crate::index::{Index, IndexConfig};
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::Name;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

fn query(name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = 0x1234;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if let Some(p) = edns {
        let mut e = Edns::new();
        e.set_max_payload(p);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

fn reply(idx: &Index, bytes: &[u8], t: Transport) -> Message {
    let q = parse(bytes).unwrap();
    match answer(idx, &q, t) {
        Outcome::Reply(b, _) => Message::from_vec(&b).unwrap(),
        Outcome::Forward | Outcome::Chase(_) => panic!("not answered locally"),
    }
}

/// A headless Service with `n` ready endpoints.
fn big(n: usize) -> Index {
    let svc: Service =
        serde_json::from_value(json!({"metadata": {"name": "big", "namespace": "default"},
        "spec": {"clusterIP": "None"}}))
        .unwrap();
    let eps: Vec<_> = (0..n)
        .map(|i| json!({"addresses": [format!("10.1.{}.{}", i / 250, i % 250 + 1)]}))
        .collect();
    let slice: EndpointSlice =
        serde_json::from_value(json!({"metadata": {"name": "big-1", "namespace": "default",
        "labels": {"kubernetes.io/service-name": "big"}}, "addressType": "IPv4", "endpoints": eps}))
        .unwrap();
    Index::build(&IndexConfig::default(), [&svc], [&slice]).unwrap()
}

#[test]
fn garbage_is_formerr_or_dropped_never_a_panic() {
    // Shorter than a header: nothing to answer.
    assert_eq!(parse(b"\x01\x02\x03").unwrap_err(), Refusal::Drop);
    // A response is never answered (no reflection loops).
    let mut resp = query("a.b.", RecordType::A, None);
    resp[2] |= 0x80;
    assert_eq!(parse(&resp).unwrap_err(), Refusal::Drop);
    // A header claiming one question followed by junk.
    let mut junk = vec![0xAB, 0xCD, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0];
    junk.extend_from_slice(&[0x3f, b'x', 0xff, 0xc0]);
    let r = parse(&junk).unwrap_err();
    assert_eq!(r, Refusal::FormErr(0xABCD, OpCode::Query));
    let (bytes, code) = refusal_reply(&r).unwrap();
    assert_eq!(code, ResponseCode::FormErr);
    let m = Message::from_vec(&bytes).unwrap();
    assert_eq!(m.metadata.id, 0xABCD);
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(m.metadata.message_type, MessageType::Response);
    // Two questions, no questions, a truncated question, records cut short.
    let two = {
        let mut m = Message::query();
        m.add_query(Query::query(Name::from_ascii("a.").unwrap(), RecordType::A));
        m.add_query(Query::query(Name::from_ascii("b.").unwrap(), RecordType::A));
        m.to_vec().unwrap()
    };
    assert!(matches!(parse(&two), Err(Refusal::FormErr(..))));
    let mut none = query("a.", RecordType::A, None);
    none[5] = 0;
    assert!(matches!(parse(&none), Err(Refusal::FormErr(..))));
    let ok = query("web.default.svc.cluster.local.", RecordType::A, Some(1232));
    for cut in 12..ok.len() {
        assert!(
            matches!(parse(&ok[..cut]), Err(Refusal::FormErr(..))),
            "cut at {cut}"
        );
    }
    // Every prefix and bit-flip of a good query is handled without a panic.
    let idx = big(3);
    for i in 0..ok.len() {
        for bit in 0..8 {
            let mut m = ok.clone();
            m[i] ^= 1 << bit;
            match parse(&m) {
                Ok(q) => {
                    let _ = answer(&idx, &q, Transport::Udp);
                }
                Err(r) => {
                    let _ = refusal_reply(&r);
                }
            }
        }
    }
}

#[test]
fn other_opcodes_are_notimp() {
    let mut m = query("a.", RecordType::A, None);
    m[2] = (m[2] & !0x78) | (u8::from(OpCode::Status) << 3);
    let r = parse(&m).unwrap_err();
    let (bytes, code) = refusal_reply(&r).unwrap();
    assert_eq!(code, ResponseCode::NotImp);
    assert_eq!(
        Message::from_vec(&bytes).unwrap().metadata.response_code,
        ResponseCode::NotImp
    );
}

#[test]
fn header_flags_of_an_answer() {
    let idx = big(1);
    let m = reply(
        &idx,
        &query("big.default.svc.cluster.local.", RecordType::A, None),
        Transport::Udp,
    );
    assert_eq!(m.metadata.id, 0x1234);
    assert!(m.metadata.authoritative);
    assert!(m.metadata.recursion_desired);
    assert!(m.metadata.recursion_available);
    assert!(!m.metadata.truncation);
    assert!(m.edns.is_none(), "no OPT to a client without EDNS");
}

#[test]
fn udp_answers_over_the_limit_are_truncated() {
    // 100 A records: 12 + 35 + 100 * 16 bytes.
    let idx = big(100);
    let q = query("big.default.svc.cluster.local.", RecordType::A, None);
    let m = reply(&idx, &q, Transport::Udp);
    assert!(m.metadata.truncation);
    assert!(m.answers.is_empty());
    assert_eq!(m.queries.len(), 1);
    // Over TCP the whole answer.
    let m = reply(&idx, &q, Transport::Tcp);
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 100);
    // EDNS with room for it: whole, with our OPT.
    let q = query("big.default.svc.cluster.local.", RecordType::A, Some(4096));
    let m = reply(&idx, &q, Transport::Udp);
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 100);
    assert_eq!(m.edns.as_ref().map(|e| e.max_payload()), Some(EDNS_PAYLOAD));
    // EDNS too small for it: truncated, OPT kept.
    let q = query("big.default.svc.cluster.local.", RecordType::A, Some(1024));
    let m = reply(&idx, &q, Transport::Udp);
    assert!(m.metadata.truncation);
    assert!(m.edns.is_some());
    // A payload size under 512 counts as 512.
    let idx = big(20);
    let q = query("big.default.svc.cluster.local.", RecordType::A, Some(100));
    let m = reply(&idx, &q, Transport::Udp);
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 20);
}

#[test]
fn servfail_keeps_the_question() {
    let bytes = query("example.com.", RecordType::A, None);
    let q = parse(&bytes).unwrap();
    let m = Message::from_vec(&empty_reply(&q, ResponseCode::ServFail)).unwrap();
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(!m.metadata.authoritative);
    assert_eq!(m.queries[0].name.to_ascii(), "example.com.");
}
