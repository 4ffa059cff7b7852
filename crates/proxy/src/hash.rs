//! The hashed part of rule and chain names: upstream takes the SHA-256 of
//! a readable name, encodes it in RFC 4648 base32 and keeps a prefix (8
//! characters in nftables mode, 16 in iptables mode).

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// The first `chars` (at most 51) base32 characters of SHA-256(`name`).
pub fn sha256_base32(name: &str, chars: usize) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    base32_prefix(digest.as_ref(), chars)
}

/// The first `chars` characters of the base32 encoding of `bytes`.
fn base32_prefix(bytes: &[u8], chars: usize) -> String {
    let mut out = String::with_capacity(chars);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in bytes {
        acc = (acc << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            if out.len() == chars {
                return out;
            }
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 && out.len() < chars {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc4648() {
        // RFC 4648 test vectors (without padding).
        assert_eq!(base32_prefix(b"hello", 8), "NBSWY3DP");
        assert_eq!(base32_prefix(b"foobar", 10), "MZXW6YTBOI");
        assert_eq!(base32_prefix(b"f", 2), "MY");
        assert_eq!(base32_prefix(b"foobar", 4), "MZXW");
    }
}
