//! Protobuf request bodies for the built-in types: the wire schema in
//! `api/protobuf/schema.txt` (generated, see tests/protobuf_schema.rs) read
//! once, and a decoder that turns `application/vnd.kubernetes.protobuf`
//! bodies into the JSON object the rest of the server handles.

use std::sync::LazyLock;

use apimachinery::protobuf::{DecodeError, Decoder, Schema};
use apimachinery::ApiError;
use serde_json::Value;

const SCHEMA: &str = include_str!("../../../api/protobuf/schema.txt");

/// Go pointer fields of the built-in types whose zero value differs from
/// leaving them out (a defaulted `replicas: 1` against an explicit 0, an
/// immediate deletion against the default grace period). Their zeros are
/// kept; every other zero scalar is dropped like Go's `omitempty`.
const KEEP_ZERO: &[&str] = &[
    "activeDeadlineSeconds",
    "allocateLoadBalancerNodePorts",
    "allowPrivilegeEscalation",
    "automountServiceAccountToken",
    "backoffLimit",
    "backoffLimitPerIndex",
    "completions",
    "defaultMode",
    "enableServiceLinks",
    "expirationSeconds",
    "failedJobsHistoryLimit",
    "fsGroup",
    "gracePeriodSeconds",
    "hostUsers",
    "immutable",
    "maxFailedIndexes",
    "mode",
    "optional",
    "parallelism",
    "priority",
    "privileged",
    "progressDeadlineSeconds",
    "readOnlyRootFilesystem",
    "ready",
    "replicas",
    "revisionHistoryLimit",
    "runAsGroup",
    "runAsNonRoot",
    "runAsUser",
    "serving",
    "setHostnameAsFQDN",
    "shareProcessNamespace",
    "startingDeadlineSeconds",
    "successfulJobsHistoryLimit",
    "suspend",
    "terminating",
    "terminationGracePeriodSeconds",
    "ttlSecondsAfterFinished",
];

static DECODER: LazyLock<Result<Decoder, String>> = LazyLock::new(|| {
    Schema::parse(SCHEMA)
        .map(|s| Decoder::new(s, KEEP_ZERO))
        .map_err(|e| e.to_string())
});

/// Decodes a protobuf body into its JSON form; 400 on bad input.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let decoder = DECODER
        .as_ref()
        .map_err(|e| ApiError::internal(e.clone()))?;
    decoder.decode(body).map_err(|e| match e {
        DecodeError::UnknownKind { .. } => ApiError::bad_request(e.to_string()),
        other => ApiError::bad_request(format!("error decoding protobuf body: {other}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn varint(out: &mut Vec<u8>, mut n: u64) {
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }
    fn field(out: &mut Vec<u8>, tag: u64, b: &[u8]) {
        varint(out, tag << 3 | 2);
        varint(out, b.len() as u64);
        out.extend_from_slice(b);
    }
    fn int(out: &mut Vec<u8>, tag: u64, n: u64) {
        varint(out, tag << 3);
        varint(out, n);
    }

    #[test]
    fn the_committed_schema_parses() {
        assert!(DECODER.is_ok(), "{:?}", DECODER.as_ref().err());
    }

    /// A ConfigMap as client-go's protobuf serializer writes it, with the
    /// field numbers of upstream's generated.proto.
    #[test]
    fn decodes_a_configmap_with_upstream_field_numbers() {
        let mut meta = Vec::new();
        field(&mut meta, 1, b"settings"); // name
        field(&mut meta, 3, b"default"); // namespace
        field(&mut meta, 8, b""); // zero creationTimestamp
        let mut data = Vec::new();
        field(&mut data, 1, b"mode");
        field(&mut data, 2, b"fast");
        let mut cm = Vec::new();
        field(&mut cm, 1, &meta);
        field(&mut cm, 2, &data);
        int(&mut cm, 4, 0); // immutable: false, a pointer
        let mut tm = Vec::new();
        field(&mut tm, 1, b"v1");
        field(&mut tm, 2, b"ConfigMap");
        let mut body = b"k8s\0".to_vec();
        field(&mut body, 1, &tm);
        field(&mut body, 2, &cm);
        assert_eq!(
            decode(&body).unwrap(),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "immutable": false,
                   "metadata": {"name": "settings", "namespace": "default"},
                   "data": {"mode": "fast"}})
        );
    }

    #[test]
    fn garbage_is_a_bad_request() {
        assert_eq!(decode(b"k8s\0\x0a\xff").unwrap_err().code, 400);
        assert_eq!(decode(b"nope").unwrap_err().code, 400);
    }
}
