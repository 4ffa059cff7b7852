use super::*;
use serde_json::json;

/// A minimal encoder for building test inputs.
#[derive(Default)]
struct Enc(Vec<u8>);

impl Enc {
    fn varint(&mut self, mut n: u64) -> &mut Self {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                self.0.push(b);
                return self;
            }
            self.0.push(b | 0x80);
        }
    }
    fn int(&mut self, tag: u32, n: i64) -> &mut Self {
        self.varint(u64::from(tag) << 3).varint(n as u64)
    }
    fn bytes(&mut self, tag: u32, b: &[u8]) -> &mut Self {
        self.varint(u64::from(tag) << 3 | 2).varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
    fn str(&mut self, tag: u32, s: &str) -> &mut Self {
        self.bytes(tag, s.as_bytes())
    }
    fn msg(&mut self, tag: u32, f: impl FnOnce(&mut Enc)) -> &mut Self {
        let mut e = Enc::default();
        f(&mut e);
        self.bytes(tag, &e.0)
    }
    fn done(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}

const SCHEMA: &str = "\
version apps/v1 api.apps.v1
kind apps/v1 Deployment api.apps.v1.Deployment
message api.apps.v1.Deployment
1 metadata opt .apimachinery.pkg.apis.meta.v1.ObjectMeta
2 spec opt .api.apps.v1.DeploymentSpec
message api.apps.v1.DeploymentSpec
1 replicas opt int32
2 paused opt bool
3 minReadySeconds opt int32
4 resources map string .apimachinery.pkg.api.resource.Quantity
5 targetPort opt .apimachinery.pkg.util.intstr.IntOrString
6 - inline .api.apps.v1.Ref
7 verbs opt .apimachinery.pkg.apis.meta.v1.Verbs
8 data map string bytes
9 ports rep int32
10 ratio opt double
11 self opt .api.apps.v1.DeploymentSpec
message api.apps.v1.Ref
1 name opt string
message api.apps.v1.Eviction
1 metadata opt .apimachinery.pkg.apis.meta.v1.ObjectMeta
message apimachinery.pkg.apis.meta.v1.ObjectMeta
1 name opt string
2 namespace opt string
7 generation opt int64
8 creationTimestamp opt .apimachinery.pkg.apis.meta.v1.Time
11 labels map string string
message apimachinery.pkg.apis.meta.v1.Verbs
1 items rep string
";

fn decoder() -> Decoder {
    Decoder::new(Schema::parse(SCHEMA).unwrap(), &["replicas"])
}

fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut body = MAGIC.to_vec();
    body.extend(
        Enc::default()
            .msg(1, |t| {
                t.str(1, api_version).str(2, kind);
            })
            .bytes(2, raw)
            .done(),
    );
    body
}

#[test]
fn transcodes_an_object_like_the_json_serializer() {
    let raw = Enc::default()
        .msg(1, |m| {
            m.str(1, "web")
                .str(2, "")
                .int(7, 0)
                .msg(8, |_| {})
                .msg(11, |e| {
                    e.str(1, "app").str(2, "web");
                });
        })
        .msg(2, |s| {
            s.int(1, 0)
                .int(2, 0)
                .int(3, 0)
                .msg(4, |e| {
                    e.str(1, "cpu").msg(2, |q| {
                        q.str(1, "100m");
                    });
                })
                .msg(5, |i| {
                    i.int(1, 1).str(3, "http");
                })
                .msg(6, |r| {
                    r.str(1, "inlined");
                })
                .msg(7, |v| {
                    v.str(1, "get").str(1, "list");
                })
                .msg(8, |e| {
                    e.str(1, "k").bytes(2, b"\x00\xff");
                })
                .int(9, 80)
                .int(9, -1)
                .bytes(9, &[0x01, 0x02]);
            s.varint(10 << 3 | 1);
            s.0.extend_from_slice(&0.5f64.to_le_bytes());
        })
        .done();
    let got = decoder()
        .decode(&envelope("apps/v1", "Deployment", &raw))
        .unwrap();
    assert_eq!(
        got,
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": 0,
                "resources": {"cpu": "100m"},
                "targetPort": "http",
                "name": "inlined",
                "verbs": ["get", "list"],
                "data": {"k": "AP8="},
                "ports": [80, -1, 1, 2],
                "ratio": 0.5
            }
        })
    );
}

#[test]
fn times_and_int_or_string_numbers() {
    let raw = Enc::default()
        .msg(1, |m| {
            m.msg(8, |t| {
                t.int(1, 1_700_000_000);
            });
        })
        .msg(2, |s| {
            s.msg(5, |i| {
                i.int(2, 8080);
            });
        })
        .done();
    let got = decoder()
        .decode(&envelope("apps/v1", "Deployment", &raw))
        .unwrap();
    assert_eq!(got["metadata"]["creationTimestamp"], "2023-11-14T22:13:20Z");
    assert_eq!(got["spec"]["targetPort"], 8080);
}

#[test]
fn kinds_without_a_resource_are_found_in_their_version() {
    let got = decoder()
        .decode(&envelope("apps/v1", "Eviction", &[]))
        .unwrap();
    assert_eq!(got, json!({"apiVersion": "apps/v1", "kind": "Eviction"}));
}

#[test]
fn bad_input_is_an_error() {
    let d = decoder();
    assert!(matches!(
        d.decode(b"{\"json\":1}"),
        Err(DecodeError::NotProtobuf)
    ));
    assert!(matches!(
        d.decode(&envelope("v9", "Thing", &[])),
        Err(DecodeError::UnknownKind { .. })
    ));
    let mut truncated = envelope("apps/v1", "Deployment", &Enc::default().str(1, "x").done());
    truncated.pop();
    assert!(d.decode(&truncated).is_err());
    // a string field carrying a varint
    let wrong = Enc::default()
        .msg(1, |m| {
            m.int(1, 5);
        })
        .done();
    assert!(matches!(
        d.decode(&envelope("apps/v1", "Deployment", &wrong)),
        Err(DecodeError::Malformed(_))
    ));
}

#[test]
fn deep_nesting_is_refused() {
    let mut inner = Vec::new();
    for _ in 0..200 {
        inner = Enc::default().bytes(11, &inner).done();
    }
    let raw = Enc::default().bytes(2, &inner).done();
    assert!(matches!(
        decoder().decode(&envelope("apps/v1", "Deployment", &raw)),
        Err(DecodeError::TooDeep)
    ));
}
