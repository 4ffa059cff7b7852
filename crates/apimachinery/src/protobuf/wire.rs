//! The protobuf wire format, read-only: varints, length-delimited fields and
//! fixed-width numbers (what gogo-protobuf writes for Kubernetes' proto2
//! messages).

use super::DecodeError;

/// How a field's value is laid out on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireType {
    Varint,
    Fixed64,
    Len,
    Fixed32,
}

/// One field read from a message: its number and its raw value.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Len(&'a [u8]),
}

/// Iterates over the fields of one encoded message.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut out = 0u64;
        for i in 0..10 {
            let (&b, rest) = self.buf.split_first().ok_or(DecodeError::Truncated)?;
            self.buf = rest;
            out |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err(DecodeError::Malformed("varint longer than 10 bytes".into()))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// The next field, or `None` at the end of the message.
    pub fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, DecodeError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let tag = u32::try_from(key >> 3).map_err(|_| {
            DecodeError::Malformed(format!("field number {} out of range", key >> 3))
        })?;
        if tag == 0 {
            return Err(DecodeError::Malformed("field number 0".into()));
        }
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                let b = self.take(8)?;
                Value::Fixed64(u64::from_le_bytes(
                    b.try_into().map_err(|_| DecodeError::Truncated)?,
                ))
            }
            2 => {
                let n = usize::try_from(self.varint()?).map_err(|_| DecodeError::Truncated)?;
                Value::Len(self.take(n)?)
            }
            5 => {
                let b = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes(
                    b.try_into().map_err(|_| DecodeError::Truncated)?,
                ))
            }
            w => return Err(DecodeError::Malformed(format!("unsupported wire type {w}"))),
        };
        Ok(Some((tag, value)))
    }
}

/// Splits a packed repeated varint field into its values.
pub fn packed_varints(buf: &[u8]) -> Result<Vec<u64>, DecodeError> {
    let mut r = Reader::new(buf);
    let mut out = Vec::new();
    while !r.buf.is_empty() {
        out.push(r.varint()?);
    }
    Ok(out)
}

impl Value<'_> {
    pub fn wire_type(&self) -> WireType {
        match self {
            Value::Varint(_) => WireType::Varint,
            Value::Fixed64(_) => WireType::Fixed64,
            Value::Fixed32(_) => WireType::Fixed32,
            Value::Len(_) => WireType::Len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_varints_lengths_and_fixed() {
        // field 1 varint 150, field 2 "hi", field 3 fixed64 1.5, field 4 fixed32
        let mut buf = vec![0x08, 0x96, 0x01, 0x12, 0x02, b'h', b'i', 0x19];
        buf.extend_from_slice(&1.5f64.to_le_bytes());
        buf.extend_from_slice(&[0x25, 1, 0, 0, 0]);
        let mut r = Reader::new(&buf);
        assert!(matches!(
            r.next_field().unwrap(),
            Some((1, Value::Varint(150)))
        ));
        assert!(matches!(
            r.next_field().unwrap(),
            Some((2, Value::Len(b"hi")))
        ));
        match r.next_field().unwrap() {
            Some((3, Value::Fixed64(v))) => assert_eq!(f64::from_bits(v), 1.5),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            r.next_field().unwrap(),
            Some((4, Value::Fixed32(1)))
        ));
        assert!(r.next_field().unwrap().is_none());
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        for bad in [
            &[0x12u8, 0x05, b'a'][..],
            &[0x08, 0x80],
            &[0x19, 1, 2],
            &[0x0b],
        ] {
            assert!(Reader::new(bad).next_field().is_err(), "{bad:?}");
        }
        assert!(packed_varints(&[0x80]).is_err());
    }
}
