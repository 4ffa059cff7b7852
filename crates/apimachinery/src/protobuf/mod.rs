//! Kubernetes' protobuf encoding, decoded to JSON (upstream's
//! `apimachinery/pkg/runtime/serializer/protobuf`): the `k8s\0` magic, the
//! `runtime.Unknown` envelope, and each message transcoded field by field
//! with a [`Schema`] into the JSON object the JSON serializer would have
//! produced, so that the rest of the server sees one representation.
//!
//! Go's JSON form omits zero values of non-pointer fields (`omitempty`),
//! but the wire form cannot tell a pointer from a value. Zero scalars are
//! therefore dropped, except for the fields named in
//! [`Decoder::new`]'s `keep_zero` (Go pointers whose zero means something,
//! such as `replicas` or `gracePeriodSeconds`).

pub mod schema;
pub mod wire;

use std::collections::HashSet;

use base64::Engine;
use serde_json::{Map, Number, Value};

use schema::{Field, Scalar, Shape, Type};
pub use schema::{Schema, SchemaError};
use wire::Reader;

/// The prefix of every protobuf-encoded Kubernetes object.
pub const MAGIC: &[u8] = b"k8s\0";

/// Nesting deeper than this is refused (bounded stack on hostile input).
const MAX_DEPTH: usize = 100;

/// Why a protobuf body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The body does not start with the `k8s\0` prefix.
    #[error("provided data does not appear to be a protobuf message, expected prefix {MAGIC:?}")]
    NotProtobuf,
    /// The input ended inside a field.
    #[error("unexpected end of protobuf data")]
    Truncated,
    /// The bytes are not a valid encoding of the expected message.
    #[error("{0}")]
    Malformed(String),
    /// The envelope names a kind this server does not know.
    #[error("no kind {kind:?} is registered for version {api_version:?}")]
    UnknownKind { api_version: String, kind: String },
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("protobuf message nested too deeply")]
    TooDeep,
}

/// Transcodes protobuf messages to JSON using a schema.
pub struct Decoder {
    schema: Schema,
    keep_zero: HashSet<String>,
}

impl Decoder {
    pub fn new(schema: Schema, keep_zero: &[&str]) -> Self {
        Decoder {
            schema,
            keep_zero: keep_zero.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Decodes a whole body: magic, `runtime.Unknown` envelope, object.
    pub fn decode(&self, body: &[u8]) -> Result<Value, DecodeError> {
        self.envelope(body, 0)
    }

    fn envelope(&self, body: &[u8], depth: usize) -> Result<Value, DecodeError> {
        let rest = body.strip_prefix(MAGIC).ok_or(DecodeError::NotProtobuf)?;
        let (mut api_version, mut kind, mut raw, mut encoding) =
            (String::new(), String::new(), &[][..], String::new());
        let mut r = Reader::new(rest);
        while let Some((tag, v)) = r.next_field()? {
            match (tag, v) {
                (1, wire::Value::Len(tm)) => {
                    let mut t = Reader::new(tm);
                    while let Some((tag, v)) = t.next_field()? {
                        match (tag, v) {
                            (1, wire::Value::Len(b)) => api_version = utf8(b)?,
                            (2, wire::Value::Len(b)) => kind = utf8(b)?,
                            _ => {}
                        }
                    }
                }
                (2, wire::Value::Len(b)) => raw = b,
                (3, wire::Value::Len(b)) => encoding = utf8(b)?,
                _ => {}
            }
        }
        if !encoding.is_empty() {
            return Err(DecodeError::Malformed(format!(
                "unsupported content encoding {encoding:?}"
            )));
        }
        let id = self
            .schema
            .kind(&api_version, &kind)
            .ok_or_else(|| DecodeError::UnknownKind {
                api_version: api_version.clone(),
                kind: kind.clone(),
            })?;
        let mut obj = match self.message(id, raw, depth + 1)? {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        obj.insert("apiVersion".into(), Value::String(api_version));
        obj.insert("kind".into(), Value::String(kind));
        Ok(Value::Object(obj))
    }

    /// Transcodes one message; `None` for a value Go's JSON form omits
    /// (a zero `metav1.Time`).
    pub fn message(
        &self,
        id: &str,
        buf: &[u8],
        depth: usize,
    ) -> Result<Option<Value>, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        if let Some(v) = self.special(id, buf, depth)? {
            return Ok(v);
        }
        let Some(msg) = self.schema.messages.get(id) else {
            return Err(DecodeError::Malformed(format!(
                "no schema for message {id}"
            )));
        };
        // Go named slices (`metav1.Verbs`, `ExtraValue`) are `[]string` in JSON.
        if let (
            1,
            Some(Field {
                json,
                shape: Shape::Repeated(Type::Scalar(s)),
            }),
        ) = (msg.fields.len(), msg.fields.get(&1))
        {
            if json == "items" {
                let mut items = Vec::new();
                let mut r = Reader::new(buf);
                while let Some((tag, v)) = r.next_field()? {
                    if tag == 1 {
                        self.push_scalar(*s, v, &mut items)?;
                    }
                }
                return Ok(Some(Value::Array(items)));
            }
        }
        let mut out = Map::new();
        self.fields(msg, buf, depth, &mut out)?;
        Ok(Some(Value::Object(out)))
    }

    fn fields(
        &self,
        msg: &schema::Message,
        buf: &[u8],
        depth: usize,
        out: &mut Map<String, Value>,
    ) -> Result<(), DecodeError> {
        let mut r = Reader::new(buf);
        while let Some((tag, v)) = r.next_field()? {
            // Unknown fields are skipped, as gogo-protobuf's Unmarshal does.
            let Some(field) = msg.fields.get(&tag) else {
                continue;
            };
            match &field.shape {
                Shape::Single(Type::Scalar(s)) => {
                    let value = scalar(*s, v)?;
                    if is_zero(&value) && !self.keep_zero.contains(&field.json) {
                        out.remove(&field.json);
                    } else {
                        out.insert(field.json.clone(), value);
                    }
                }
                Shape::Single(Type::Message(id)) => match self.message(id, len(v)?, depth + 1)? {
                    Some(value) => {
                        out.insert(field.json.clone(), value);
                    }
                    None => {
                        out.remove(&field.json);
                    }
                },
                Shape::Repeated(t) => {
                    let entry = out
                        .entry(field.json.clone())
                        .or_insert_with(|| Value::Array(Vec::new()));
                    let Value::Array(items) = entry else { continue };
                    match t {
                        Type::Scalar(s) => self.push_scalar(*s, v, items)?,
                        Type::Message(id) => {
                            items
                                .push(self.message(id, len(v)?, depth + 1)?.unwrap_or(Value::Null));
                        }
                    }
                }
                Shape::Map(k, t) => {
                    let (key, value) = self.map_entry(*k, t, len(v)?, depth)?;
                    let entry = out
                        .entry(field.json.clone())
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Value::Object(m) = entry {
                        m.insert(key, value);
                    }
                }
                Shape::Inline(id) => {
                    let inner = self.schema.messages.get(id).ok_or_else(|| {
                        DecodeError::Malformed(format!("no schema for message {id}"))
                    })?;
                    if depth + 1 > MAX_DEPTH {
                        return Err(DecodeError::TooDeep);
                    }
                    self.fields(inner, len(v)?, depth + 1, out)?;
                }
            }
        }
        Ok(())
    }

    fn push_scalar(
        &self,
        s: Scalar,
        v: wire::Value<'_>,
        items: &mut Vec<Value>,
    ) -> Result<(), DecodeError> {
        match (s, v) {
            // Packed encoding of numeric repeated fields.
            (
                Scalar::Int32 | Scalar::Int64 | Scalar::Uint32 | Scalar::Uint64 | Scalar::Bool,
                wire::Value::Len(b),
            ) => {
                for n in wire::packed_varints(b)? {
                    items.push(scalar(s, wire::Value::Varint(n))?);
                }
            }
            _ => items.push(scalar(s, v)?),
        }
        Ok(())
    }

    fn map_entry(
        &self,
        k: Scalar,
        t: &Type,
        buf: &[u8],
        depth: usize,
    ) -> Result<(String, Value), DecodeError> {
        let mut key = String::new();
        let mut value: Option<Value> = None;
        let mut r = Reader::new(buf);
        while let Some((tag, v)) = r.next_field()? {
            match tag {
                1 => {
                    key = match scalar(k, v)? {
                        Value::String(s) => s,
                        other => other.to_string(),
                    }
                }
                2 => {
                    value = match t {
                        Type::Scalar(s) => Some(scalar(*s, v)?),
                        Type::Message(id) => self.message(id, len(v)?, depth + 1)?,
                    }
                }
                _ => {}
            }
        }
        let value = match (value, t) {
            (Some(v), _) => v,
            (None, Type::Scalar(Scalar::String | Scalar::Bytes)) => Value::String(String::new()),
            (None, Type::Scalar(Scalar::Bool)) => Value::Bool(false),
            (None, Type::Scalar(_)) => Value::from(0),
            (None, Type::Message(id)) => self.message(id, &[], depth + 1)?.unwrap_or(Value::Null),
        };
        Ok((key, value))
    }

    /// Types whose JSON form is not an object of their fields.
    /// `Ok(None)`: not special; `Ok(Some(v))`: transcoded.
    #[allow(clippy::type_complexity)]
    fn special(
        &self,
        id: &str,
        buf: &[u8],
        depth: usize,
    ) -> Result<Option<Option<Value>>, DecodeError> {
        let name = id.rsplit('.').next().unwrap_or(id);
        let v = match id {
            "apimachinery.pkg.apis.meta.v1.Time" => time(buf, false)?,
            "apimachinery.pkg.apis.meta.v1.MicroTime" => time(buf, true)?,
            "apimachinery.pkg.apis.meta.v1.Duration" => Some(Value::String(
                crate::duration::format_go_duration(int_field(buf, 1)?),
            )),
            "apimachinery.pkg.api.resource.Quantity" => {
                Some(Value::String(string_field(buf, 1)?.unwrap_or_default()))
            }
            "apimachinery.pkg.util.intstr.IntOrString" => {
                if int_field(buf, 1)? == 1 {
                    Some(Value::String(string_field(buf, 3)?.unwrap_or_default()))
                } else {
                    Some(Value::from(int_field(buf, 2)? as i32))
                }
            }
            "apimachinery.pkg.runtime.RawExtension" | "apimachinery.pkg.apis.meta.v1.FieldsV1" => {
                match bytes_field(buf, 1)? {
                    None => None,
                    Some(raw) if raw.starts_with(MAGIC) => Some(self.envelope(raw, depth)?),
                    Some(raw) => Some(json(raw)?),
                }
            }
            _ if id.starts_with("apiextensions_apiserver.") && name == "Json" => {
                match bytes_field(buf, 1)? {
                    None => None,
                    Some(raw) => Some(json(raw)?),
                }
            }
            _ if id.starts_with("apiextensions_apiserver.")
                && name.starts_with("JsonSchemaPropsOr") =>
            {
                // {schema | jsonSchemas/property/allows}: the schema when
                // present, the alternative otherwise.
                let Some(msg) = self.schema.messages.get(id) else {
                    return Ok(None);
                };
                let mut out = Map::new();
                self.fields(msg, buf, depth + 1, &mut out)?;
                let schema_name = msg
                    .fields
                    .values()
                    .find(|f| f.json == "schema")
                    .map(|f| f.json.clone());
                let other = msg
                    .fields
                    .values()
                    .find(|f| f.json != "schema")
                    .map(|f| f.json.clone());
                match (
                    schema_name.and_then(|n| out.remove(&n)),
                    other.and_then(|n| out.remove(&n)),
                ) {
                    (Some(s), _) => Some(s),
                    (None, Some(o)) => Some(o),
                    (None, None) if name.ends_with("OrBool") => Some(Value::Bool(false)),
                    (None, None) => Some(Value::Array(Vec::new())),
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(v))
    }
}

fn len<'a>(v: wire::Value<'a>) -> Result<&'a [u8], DecodeError> {
    match v {
        wire::Value::Len(b) => Ok(b),
        other => Err(DecodeError::Malformed(format!(
            "expected a length-delimited field, got {:?}",
            other.wire_type()
        ))),
    }
}

fn utf8(b: &[u8]) -> Result<String, DecodeError> {
    String::from_utf8(b.to_vec())
        .map_err(|_| DecodeError::Malformed("string field is not valid UTF-8".into()))
}

fn json(raw: &[u8]) -> Result<Value, DecodeError> {
    serde_json::from_slice(raw).map_err(|e| DecodeError::Malformed(format!("embedded JSON: {e}")))
}

fn scalar(s: Scalar, v: wire::Value<'_>) -> Result<Value, DecodeError> {
    use wire::Value as W;
    Ok(match (s, v) {
        (Scalar::String, W::Len(b)) => Value::String(utf8(b)?),
        (Scalar::Bytes, W::Len(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        (Scalar::Bool, W::Varint(n)) => Value::Bool(n != 0),
        (Scalar::Int32, W::Varint(n)) => Value::from(n as i64 as i32),
        (Scalar::Int64, W::Varint(n)) => Value::from(n as i64),
        (Scalar::Uint32, W::Varint(n)) => Value::from(n as u32),
        (Scalar::Uint64, W::Varint(n)) => Value::from(n),
        (Scalar::Double, W::Fixed64(n)) => {
            Number::from_f64(f64::from_bits(n)).map_or(Value::Null, Value::Number)
        }
        (Scalar::Float, W::Fixed32(n)) => {
            Number::from_f64(f64::from(f32::from_bits(n))).map_or(Value::Null, Value::Number)
        }
        (s, v) => {
            return Err(DecodeError::Malformed(format!(
                "{s:?} field with wire type {:?}",
                v.wire_type()
            )))
        }
    })
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Null => true,
        _ => false,
    }
}

fn int_field(buf: &[u8], want: u32) -> Result<i64, DecodeError> {
    let mut out = 0;
    let mut r = Reader::new(buf);
    while let Some((tag, v)) = r.next_field()? {
        if let (true, wire::Value::Varint(n)) = (tag == want, v) {
            out = n as i64;
        }
    }
    Ok(out)
}

fn bytes_field(buf: &[u8], want: u32) -> Result<Option<&[u8]>, DecodeError> {
    let mut out = None;
    let mut r = Reader::new(buf);
    while let Some((tag, v)) = r.next_field()? {
        if let (true, wire::Value::Len(b)) = (tag == want, v) {
            out = Some(b);
        }
    }
    Ok(out)
}

fn string_field(buf: &[u8], want: u32) -> Result<Option<String>, DecodeError> {
    bytes_field(buf, want)?.map(utf8).transpose()
}

/// `metav1.Time` / `MicroTime`: {seconds, nanos}; an empty message is the
/// zero time, which Go's JSON form leaves out.
fn time(buf: &[u8], micro: bool) -> Result<Option<Value>, DecodeError> {
    if buf.is_empty() {
        return Ok(None);
    }
    let (secs, nanos) = (int_field(buf, 1)?, int_field(buf, 2)? as u32);
    let t = chrono::DateTime::from_timestamp(secs, nanos)
        .ok_or_else(|| DecodeError::Malformed(format!("time {secs}s out of range")))?;
    let fmt = if micro {
        "%Y-%m-%dT%H:%M:%S%.6fZ"
    } else {
        "%Y-%m-%dT%H:%M:%SZ"
    };
    Ok(Some(Value::String(t.format(fmt).to_string())))
}

#[cfg(test)]
mod tests;
