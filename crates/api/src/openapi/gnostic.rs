//! The OpenAPI v2 document in gnostic's protobuf form, which kubectl asks
//! `/openapi/v2` for (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`).
//! Upstream converts with `openapi_v2.ParseDocument` + `proto.Marshal`
//! (`kube-openapi/pkg/handler/handler.go` `ToProtoBinary`); the messages and
//! field numbers are those of gnostic-models' `openapiv2/OpenAPIv2.proto`.
//! This writes the wire format straight from the JSON document.
//!
//! Values that gnostic keeps as `Any` (vendor extensions, `default`, `enum`,
//! `example`) carry their YAML text; JSON is YAML, so it is their JSON.

use serde_json::{Map, Value};

/// A protobuf message being written.
#[derive(Default)]
struct W(Vec<u8>);

impl W {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn key(&mut self, field: u32, wire: u8) {
        self.varint(((field as u64) << 3) | wire as u64);
    }
    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    fn string(&mut self, field: u32, v: Option<&Value>) {
        if let Some(s) = v.and_then(Value::as_str).filter(|s| !s.is_empty()) {
            self.bytes(field, s.as_bytes());
        }
    }
    fn strings(&mut self, field: u32, v: Option<&Value>) {
        for s in v.and_then(Value::as_array).into_iter().flatten() {
            if let Some(s) = s.as_str() {
                self.bytes(field, s.as_bytes());
            }
        }
    }
    fn bool(&mut self, field: u32, v: Option<&Value>) {
        if v.and_then(Value::as_bool) == Some(true) {
            self.key(field, 0);
            self.varint(1);
        }
    }
    fn int64(&mut self, field: u32, v: Option<&Value>) {
        if let Some(i) = v.and_then(Value::as_i64).filter(|i| *i != 0) {
            self.key(field, 0);
            self.varint(i as u64);
        }
    }
    fn double(&mut self, field: u32, v: Option<&Value>) {
        if let Some(d) = v.and_then(Value::as_f64).filter(|d| *d != 0.0) {
            self.key(field, 1);
            self.0.extend_from_slice(&d.to_le_bytes());
        }
    }
    fn message(&mut self, field: u32, f: impl FnOnce(&mut W)) {
        let mut inner = W::default();
        f(&mut inner);
        self.bytes(field, &inner.0);
    }
    /// `Any { yaml = 2 }`.
    fn any(&mut self, field: u32, v: &Value) {
        self.message(field, |w| w.bytes(2, v.to_string().as_bytes()));
    }
    /// `repeated NamedAny vendor_extension`, from the `x-` keys of `m`.
    fn extensions(&mut self, field: u32, m: &Map<String, Value>) {
        for (k, v) in m.iter().filter(|(k, _)| k.starts_with("x-")) {
            self.message(field, |w| {
                w.bytes(1, k.as_bytes());
                w.any(2, v);
            });
        }
    }
}

fn obj(v: &Value) -> &Map<String, Value> {
    static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
    v.as_object().unwrap_or(&EMPTY)
}

/// Encodes a swagger 2.0 JSON document as gnostic's `openapi.v2.Document`.
pub fn encode(doc: &Value) -> Vec<u8> {
    let d = obj(doc);
    let mut w = W::default();
    w.string(1, d.get("swagger"));
    if let Some(info) = d.get("info") {
        w.message(2, |w| {
            let i = obj(info);
            w.string(1, i.get("title"));
            w.string(2, i.get("version"));
            w.string(3, i.get("description"));
            w.extensions(7, i);
        });
    }
    w.string(3, d.get("host"));
    w.string(4, d.get("basePath"));
    w.strings(5, d.get("schemes"));
    w.strings(6, d.get("consumes"));
    w.strings(7, d.get("produces"));
    if let Some(paths) = d.get("paths") {
        w.message(8, |w| {
            let p = obj(paths);
            w.extensions(1, p);
            for (name, item) in p.iter().filter(|(k, _)| k.starts_with('/')) {
                w.message(2, |w| {
                    w.bytes(1, name.as_bytes());
                    w.message(2, |w| path_item(w, obj(item)));
                });
            }
        });
    }
    if let Some(defs) = d.get("definitions") {
        w.message(9, |w| named_schemas(w, obj(defs)));
    }
    for req in d
        .get("security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.message(12, |w| {
            for (name, scopes) in obj(req) {
                w.message(1, |w| {
                    w.bytes(1, name.as_bytes());
                    w.message(2, |w| w.strings(1, Some(scopes)));
                });
            }
        });
    }
    if let Some(sd) = d.get("securityDefinitions") {
        w.message(13, |w| {
            for (name, def) in obj(sd) {
                let s = obj(def);
                if s.get("type").and_then(Value::as_str) != Some("apiKey") {
                    continue;
                }
                w.message(1, |w| {
                    w.bytes(1, name.as_bytes());
                    // SecurityDefinitionsItem.api_key_security = 2
                    w.message(2, |w| {
                        w.message(2, |w| {
                            w.string(1, s.get("type"));
                            w.string(2, s.get("name"));
                            w.string(3, s.get("in"));
                            w.string(4, s.get("description"));
                            w.extensions(5, s);
                        })
                    });
                });
            }
        });
    }
    w.extensions(16, d);
    w.0
}

fn path_item(w: &mut W, item: &Map<String, Value>) {
    w.string(1, item.get("$ref"));
    for (field, method) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (6, "options"),
        (7, "head"),
        (8, "patch"),
    ] {
        if let Some(op) = item.get(method) {
            w.message(field, |w| operation(w, obj(op)));
        }
    }
    for p in item
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.message(9, |w| parameters_item(w, obj(p)));
    }
    w.extensions(10, item);
}

fn operation(w: &mut W, op: &Map<String, Value>) {
    w.strings(1, op.get("tags"));
    w.string(2, op.get("summary"));
    w.string(3, op.get("description"));
    w.string(5, op.get("operationId"));
    w.strings(6, op.get("produces"));
    w.strings(7, op.get("consumes"));
    for p in op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.message(8, |w| parameters_item(w, obj(p)));
    }
    if let Some(r) = op.get("responses") {
        w.message(9, |w| {
            let r = obj(r);
            for (code, resp) in r.iter().filter(|(k, _)| !k.starts_with("x-")) {
                w.message(1, |w| {
                    w.bytes(1, code.as_bytes());
                    w.message(2, |w| {
                        let resp = obj(resp);
                        if let Some(rf) = resp.get("$ref") {
                            w.message(2, |w| w.string(1, Some(rf)));
                            return;
                        }
                        w.message(1, |w| {
                            w.string(1, resp.get("description"));
                            if let Some(s) = resp.get("schema") {
                                // SchemaItem.schema = 1
                                w.message(2, |w| w.message(1, |w| schema(w, obj(s))));
                            }
                            w.extensions(5, resp);
                        });
                    });
                });
            }
            w.extensions(2, r);
        });
    }
    w.strings(10, op.get("schemes"));
    w.bool(11, op.get("deprecated"));
    w.extensions(13, op);
}

/// `ParametersItem`: a parameter, or a reference to one.
fn parameters_item(w: &mut W, p: &Map<String, Value>) {
    if let Some(r) = p.get("$ref") {
        w.message(2, |w| w.string(1, Some(r)));
        return;
    }
    w.message(1, |w| {
        let location = p.get("in").and_then(Value::as_str).unwrap_or_default();
        if location == "body" {
            w.message(1, |w| {
                w.string(1, p.get("description"));
                w.string(2, p.get("name"));
                w.string(3, p.get("in"));
                w.bool(4, p.get("required"));
                if let Some(s) = p.get("schema") {
                    w.message(5, |w| schema(w, obj(s)));
                }
                w.extensions(6, p);
            });
            return;
        }
        // NonBodyParameter: header = 1, formData = 2, query = 3, path = 4.
        let (field, shift) = match location {
            "header" => (1, 0),
            "formData" => (2, 1),
            "path" => (4, 0),
            _ => (3, 1),
        };
        w.message(2, |w| {
            w.message(field, |w| {
                w.bool(1, p.get("required"));
                w.string(2, p.get("in"));
                w.string(3, p.get("description"));
                w.string(4, p.get("name"));
                // Query and formData have allow_empty_value = 5; the others start at 5.
                if shift == 1 {
                    w.bool(5, p.get("allowEmptyValue"));
                }
                let b = 5 + shift;
                w.string(b, p.get("type"));
                w.string(b + 1, p.get("format"));
                w.string(b + 3, p.get("collectionFormat"));
                if let Some(d) = p.get("default") {
                    w.any(b + 4, d);
                }
                w.bool(b + 14, p.get("uniqueItems"));
                for e in p
                    .get("enum")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    w.any(b + 15, e);
                }
                w.extensions(b + 17, p);
            });
        });
    });
}

fn named_schemas(w: &mut W, m: &Map<String, Value>) {
    for (name, s) in m {
        w.message(1, |w| {
            w.bytes(1, name.as_bytes());
            w.message(2, |w| schema(w, obj(s)));
        });
    }
}

fn schema(w: &mut W, s: &Map<String, Value>) {
    w.string(1, s.get("$ref"));
    w.string(2, s.get("format"));
    w.string(3, s.get("title"));
    w.string(4, s.get("description"));
    if let Some(d) = s.get("default") {
        w.any(5, d);
    }
    w.double(6, s.get("multipleOf"));
    w.double(7, s.get("maximum"));
    w.bool(8, s.get("exclusiveMaximum"));
    w.double(9, s.get("minimum"));
    w.bool(10, s.get("exclusiveMinimum"));
    w.int64(11, s.get("maxLength"));
    w.int64(12, s.get("minLength"));
    w.string(13, s.get("pattern"));
    w.int64(14, s.get("maxItems"));
    w.int64(15, s.get("minItems"));
    w.bool(16, s.get("uniqueItems"));
    w.int64(17, s.get("maxProperties"));
    w.int64(18, s.get("minProperties"));
    w.strings(19, s.get("required"));
    for e in s
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.any(20, e);
    }
    match s.get("additionalProperties") {
        Some(Value::Bool(b)) => w.message(21, |w| {
            w.key(2, 0);
            w.varint(u64::from(*b));
        }),
        Some(v @ Value::Object(_)) => w.message(21, |w| w.message(1, |w| schema(w, obj(v)))),
        _ => {}
    }
    match s.get("type") {
        Some(t @ Value::String(_)) => w.message(22, |w| w.string(1, Some(t))),
        Some(t @ Value::Array(_)) => w.message(22, |w| w.strings(1, Some(t))),
        _ => {}
    }
    match s.get("items") {
        Some(i @ Value::Object(_)) => w.message(23, |w| w.message(1, |w| schema(w, obj(i)))),
        Some(Value::Array(a)) => w.message(23, |w| {
            for i in a {
                w.message(1, |w| schema(w, obj(i)));
            }
        }),
        _ => {}
    }
    for a in s
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.message(24, |w| schema(w, obj(a)));
    }
    if let Some(p) = s.get("properties") {
        w.message(25, |w| named_schemas(w, obj(p)));
    }
    w.string(26, s.get("discriminator"));
    w.bool(27, s.get("readOnly"));
    if let Some(e) = s.get("example") {
        w.any(30, e);
    }
    w.extensions(31, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Reads one level of a message: (field, wire type, payload).
    fn fields(mut b: &[u8]) -> Vec<(u32, u8, Vec<u8>)> {
        fn varint(b: &mut &[u8]) -> u64 {
            let mut v = 0u64;
            let mut shift = 0;
            loop {
                let byte = b[0];
                *b = &b[1..];
                v |= u64::from(byte & 0x7f) << shift;
                shift += 7;
                if byte < 0x80 {
                    return v;
                }
            }
        }
        let mut out = Vec::new();
        while !b.is_empty() {
            let k = varint(&mut b);
            let (f, wt) = ((k >> 3) as u32, (k & 7) as u8);
            let payload = match wt {
                0 => varint(&mut b).to_le_bytes().to_vec(),
                1 => {
                    let p = b[..8].to_vec();
                    b = &b[8..];
                    p
                }
                _ => {
                    let n = varint(&mut b) as usize;
                    let p = b[..n].to_vec();
                    b = &b[n..];
                    p
                }
            };
            out.push((f, wt, payload));
        }
        out
    }
    #[test]
    fn encodes_document_fields_by_gnostic_numbers() {
        let doc = json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": "v1.33.0"},
            "definitions": {"io.k8s.api.core.v1.Pod": {
                "type": "object",
                "x-kubernetes-group-version-kind": [{"group": "", "kind": "Pod", "version": "v1"}],
                "properties": {"spec": {"$ref": "#/definitions/io.k8s.api.core.v1.PodSpec"}},
            }},
        });
        let top = fields(&encode(&doc));
        assert_eq!(top[0], (1, 2, b"2.0".to_vec()));
        assert_eq!(
            fields(&top[1].2),
            vec![(1, 2, b"Kubernetes".to_vec()), (2, 2, b"v1.33.0".to_vec())]
        );
        let (f, _, defs) = &top[2];
        assert_eq!(*f, 9);
        let named = fields(&fields(defs)[0].2);
        assert_eq!(named[0].2, b"io.k8s.api.core.v1.Pod".to_vec());
        let pod = fields(&named[1].2);
        let nums: Vec<u32> = pod.iter().map(|f| f.0).collect();
        assert_eq!(nums, vec![22, 25, 31]);
        let ext = fields(&pod[2].2);
        assert_eq!(ext[0].2, b"x-kubernetes-group-version-kind".to_vec());
        let yaml = fields(&ext[1].2);
        assert_eq!(yaml[0].0, 2);
        let back: Value = serde_json::from_slice(&yaml[0].2).unwrap_or_default();
        assert_eq!(back[0]["kind"], "Pod");
    }
}
