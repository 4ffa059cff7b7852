//! The wire schema of a set of protobuf messages: for each message, its
//! fields by number with their JSON names and types. Read from the text form
//! that `api/protobuf/schema.txt` uses (see that file's header).

use std::collections::HashMap;

/// A scalar protobuf type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    String,
    Bytes,
    Bool,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Double,
    Float,
}

/// A field's value type: a scalar or another message (by id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Type {
    Scalar(Scalar),
    Message(String),
}

/// How a field holds its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// At most one value (proto2 `optional`).
    Single(Type),
    Repeated(Type),
    Map(Scalar, Type),
    /// A Go embedded struct: the message's fields are the parent's in JSON.
    Inline(String),
}

/// One field of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub json: String,
    pub shape: Shape,
}

/// The fields of one message by number.
#[derive(Debug, Default, Clone)]
pub struct Message {
    pub fields: HashMap<u32, Field>,
}

/// The schema: messages by id, and how to find a kind's message.
#[derive(Debug, Default)]
pub struct Schema {
    pub messages: HashMap<String, Message>,
    kinds: HashMap<(String, String), String>,
    versions: HashMap<String, String>,
}

/// The text could not be read as a schema.
#[derive(Debug, thiserror::Error)]
#[error("protobuf schema line {line}: {message}")]
pub struct SchemaError {
    pub line: usize,
    pub message: String,
}

fn scalar(s: &str) -> Option<Scalar> {
    Some(match s {
        "string" => Scalar::String,
        "bytes" => Scalar::Bytes,
        "bool" => Scalar::Bool,
        "int32" => Scalar::Int32,
        "int64" => Scalar::Int64,
        "uint32" => Scalar::Uint32,
        "uint64" => Scalar::Uint64,
        "double" => Scalar::Double,
        "float" => Scalar::Float,
        _ => return None,
    })
}

fn ty(s: &str) -> Option<Type> {
    match s.strip_prefix('.') {
        Some(id) => Some(Type::Message(id.to_string())),
        None => scalar(s).map(Type::Scalar),
    }
}

impl Schema {
    /// Parses the text form.
    pub fn parse(text: &str) -> Result<Self, SchemaError> {
        let mut schema = Schema::default();
        let mut current: Option<String> = None;
        for (i, line) in text.lines().enumerate() {
            let err = |message: &str| SchemaError {
                line: i + 1,
                message: message.to_string(),
            };
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                [] => {}
                [first, ..] if first.starts_with('#') => {}
                ["version", av, module] => {
                    schema.versions.insert(av.to_string(), module.to_string());
                }
                ["kind", av, kind, id] => {
                    schema
                        .kinds
                        .insert((av.to_string(), kind.to_string()), id.to_string());
                }
                ["message", id] => {
                    schema.messages.insert(id.to_string(), Message::default());
                    current = Some(id.to_string());
                }
                [tag, json, shape, rest @ ..] => {
                    let tag: u32 = tag.parse().map_err(|_| err("bad field number"))?;
                    let shape = match (*shape, rest) {
                        ("opt", [t]) => Shape::Single(ty(t).ok_or_else(|| err("bad type"))?),
                        ("rep", [t]) => Shape::Repeated(ty(t).ok_or_else(|| err("bad type"))?),
                        ("map", [k, v]) => Shape::Map(
                            scalar(k).ok_or_else(|| err("bad map key"))?,
                            ty(v).ok_or_else(|| err("bad map value"))?,
                        ),
                        ("inline", [t]) => Shape::Inline(
                            t.strip_prefix('.')
                                .ok_or_else(|| err("inline needs a message"))?
                                .to_string(),
                        ),
                        _ => return Err(err("bad field shape")),
                    };
                    let id = current
                        .as_ref()
                        .ok_or_else(|| err("field outside a message"))?;
                    let message = schema
                        .messages
                        .get_mut(id)
                        .ok_or_else(|| err("no message"))?;
                    message.fields.insert(
                        tag,
                        Field {
                            json: json.to_string(),
                            shape,
                        },
                    );
                }
                _ => return Err(err("unrecognised line")),
            }
        }
        Ok(schema)
    }

    /// The message id of a kind: registered resources first, then any
    /// message of that name in the version's package (Scale, Eviction …).
    pub fn kind(&self, api_version: &str, kind: &str) -> Option<&str> {
        if let Some(id) = self.kinds.get(&(api_version.to_string(), kind.to_string())) {
            return Some(id);
        }
        let module = self.versions.get(api_version)?;
        let id = format!("{module}.{kind}");
        self.messages.get_key_value(&id).map(|(k, _)| k.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_text_form() {
        let s = Schema::parse(
            "# c\nversion v1 api.core.v1\nkind v1 Pod api.core.v1.Pod\nmessage api.core.v1.Pod\n\
             1 metadata opt .meta.ObjectMeta\n2 labels map string string\n3 - inline .x.Y\n\
             message api.core.v1.Scale\n",
        )
        .unwrap();
        assert_eq!(s.kind("v1", "Pod"), Some("api.core.v1.Pod"));
        assert_eq!(s.kind("v1", "Scale"), Some("api.core.v1.Scale"));
        assert_eq!(s.kind("v1", "Nope"), None);
        let pod = &s.messages["api.core.v1.Pod"];
        assert_eq!(
            pod.fields[&1].shape,
            Shape::Single(Type::Message("meta.ObjectMeta".into()))
        );
        assert_eq!(
            pod.fields[&2].shape,
            Shape::Map(Scalar::String, Type::Scalar(Scalar::String))
        );
        assert_eq!(pod.fields[&3].shape, Shape::Inline("x.Y".into()));
        assert!(Schema::parse("message a\n1 x opt nonsense\n").is_err());
        assert!(Schema::parse("1 x opt string\n").is_err());
    }
}
