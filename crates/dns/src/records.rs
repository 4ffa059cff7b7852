//! Resource records encoded once, with hickory-proto, into the bytes a
//! response carries. Records owned by the question's name start with a
//! compression pointer to offset 12 — where every response's question
//! begins — so an answer is the header, the query's own question bytes and
//! these blobs, in the client's spelling of the name; other records
//! (additional A records, the SOA) carry their owner name in full. Names
//! inside RDATA are written uncompressed, so a blob is valid at any offset.

use hickory_proto::rr::{DNSClass, Name, RData, Record};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

/// Why a record could not be encoded (a name too long for the wire).
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("encoding a {kind} record: {source}")]
    Proto {
        kind: String,
        #[source]
        source: hickory_proto::ProtoError,
    },
}

/// Records of one section, encoded back to back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Encoded {
    pub count: u16,
    pub bytes: Vec<u8>,
}

impl Encoded {
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn append(&mut self, other: &Encoded) {
        self.count = self.count.saturating_add(other.count);
        self.bytes.extend_from_slice(&other.bytes);
    }

    fn push(&mut self, owner: Owner<'_>, ttl: u32, data: RData) -> Result<(), EncodeError> {
        let kind = data.record_type();
        let name = match owner {
            Owner::Question => Name::root(),
            Owner::Name(n) => n.clone(),
        };
        let record = Record::from_rdata(name, ttl, data);
        let mut buf = Vec::with_capacity(64);
        {
            let mut enc = BinEncoder::new(&mut buf);
            enc.set_name_encoding(NameEncoding::Uncompressed);
            record.emit(&mut enc).map_err(|source| EncodeError::Proto {
                kind: kind.to_string(),
                source,
            })?;
        }
        match owner {
            // The root name is the single byte 0; the pointer replaces it.
            Owner::Question => {
                self.bytes.extend_from_slice(&[0xC0, 0x0C]);
                self.bytes
                    .extend_from_slice(buf.get(1..).unwrap_or_default());
            }
            Owner::Name(_) => self.bytes.extend_from_slice(&buf),
        }
        self.count = self.count.saturating_add(1);
        Ok(())
    }

    /// Appends a record owned by the question's name.
    pub fn push_answer(&mut self, ttl: u32, data: RData) -> Result<(), EncodeError> {
        self.push(Owner::Question, ttl, data)
    }

    /// Appends a record with its owner name written out.
    pub fn push_named(&mut self, name: &Name, ttl: u32, data: RData) -> Result<(), EncodeError> {
        self.push(Owner::Name(name), ttl, data)
    }
}

enum Owner<'a> {
    Question,
    Name(&'a Name),
}

/// What a positive answer adds after the question.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    pub answers: Encoded,
    pub additionals: Encoded,
    /// The target of a CNAME answer, whose records the server looks up
    /// upstream for questions of other types (ExternalName Services).
    pub chase: Option<Name>,
}

/// The class every record here has.
pub const CLASS: DNSClass = DNSClass::IN;

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::rdata::{A, CNAME};
    use hickory_proto::rr::RecordType;

    #[test]
    fn answers_point_at_the_question_and_decode() {
        let mut s = Encoded::default();
        s.push_answer(30, RData::A(A::new(10, 0, 0, 1))).unwrap();
        let target = Name::from_ascii("www.example.com.").unwrap();
        s.push_answer(30, RData::CNAME(CNAME(target.clone())))
            .unwrap();
        assert_eq!(s.count, 2);
        assert_eq!(&s.bytes[..2], &[0xC0, 0x0C]);

        // A message made of a question and the blob decodes with the
        // question's spelling as owner.
        let name = Name::from_ascii("Web.Default.svc.cluster.local.").unwrap();
        let mut m = Message::query();
        m.add_query(Query::query(name.clone(), RecordType::A));
        let mut bytes = m.to_vec().unwrap();
        bytes[7] = 2; // ANCOUNT
        bytes.extend_from_slice(&s.bytes);
        let back = Message::from_vec(&bytes).unwrap();
        assert_eq!(back.answers.len(), 2);
        assert_eq!(back.answers[0].name, name);
        assert_eq!(back.answers[0].ttl, 30);
        assert_eq!(back.answers[1].data, RData::CNAME(CNAME(target)));
    }
}
