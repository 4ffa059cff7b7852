//! Service-account key files (upstream's `keyutil` and
//! `serviceaccount.keyIDFromPublicKey`): PEM private keys, public keys and
//! certificates read into signing and verifying keys, each with upstream's
//! key id (base64url of the SHA-256 of the public key's PKIX DER).

use std::path::Path;

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use ring::signature::KeyPair;
use rustls_pemfile::Item;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

/// A key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// A public key that verifies tokens.
pub struct VerifyingKey {
    pub kid: String,
    pub alg: Algorithm,
    pub key: DecodingKey,
    /// The JWK form served at `/openid/v1/jwks`.
    pub jwk: serde_json::Value,
}

/// The private key that signs tokens.
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    pub key: EncodingKey,
}

/// Shows the key id and algorithm, never the key.
impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn der_len(n: usize, out: &mut Vec<u8>) {
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    der_len(content.len(), &mut out);
    out.extend_from_slice(content);
    out
}

/// PKIX `SubjectPublicKeyInfo` DER of a PKCS#1 `RSAPublicKey`.
fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    // SEQUENCE { OID 1.2.840.113549.1.1.1, NULL }
    let alg = der(
        0x30,
        &[
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
        ],
    );
    let mut bits = vec![0u8];
    bits.extend_from_slice(pkcs1);
    let mut content = alg;
    content.extend(der(0x03, &bits));
    der(0x30, &content)
}

/// PKIX `SubjectPublicKeyInfo` DER of an uncompressed P-256 point.
fn p256_spki(point: &[u8]) -> Vec<u8> {
    // SEQUENCE { OID id-ecPublicKey, OID prime256v1 }
    let alg = der(
        0x30,
        &[
            0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
            0xce, 0x3d, 0x03, 0x01, 0x07,
        ],
    );
    let mut bits = vec![0u8];
    bits.extend_from_slice(point);
    let mut content = alg;
    content.extend(der(0x03, &bits));
    der(0x30, &content)
}

fn kid(spki: &[u8]) -> String {
    b64url(ring::digest::digest(&ring::digest::SHA256, spki).as_ref())
}

fn invalid(path: &Path, message: impl Into<String>) -> KeyError {
    KeyError::Invalid {
        path: path.display().to_string(),
        message: message.into(),
    }
}

fn verifying_key(path: &Path, spki: &[u8]) -> Result<VerifyingKey, KeyError> {
    let (_, info) =
        SubjectPublicKeyInfo::from_der(spki).map_err(|e| invalid(path, e.to_string()))?;
    let kid = kid(spki);
    match info.parsed().map_err(|e| invalid(path, e.to_string()))? {
        PublicKey::RSA(rsa) => {
            let n = rsa
                .modulus
                .iter()
                .skip_while(|b| **b == 0)
                .copied()
                .collect::<Vec<u8>>();
            let e = rsa
                .exponent
                .iter()
                .skip_while(|b| **b == 0)
                .copied()
                .collect::<Vec<u8>>();
            Ok(VerifyingKey {
                jwk: serde_json::json!({"use": "sig", "kty": "RSA", "kid": kid, "alg": "RS256", "n": b64url(&n), "e": b64url(&e)}),
                kid,
                alg: Algorithm::RS256,
                key: DecodingKey::from_rsa_raw_components(&n, &e),
            })
        }
        PublicKey::EC(point) if point.data().len() == 65 => {
            let data = point.data();
            Ok(VerifyingKey {
                jwk: serde_json::json!({"use": "sig", "kty": "EC", "kid": kid, "alg": "ES256", "crv": "P-256",
                    "x": b64url(&data[1..33]), "y": b64url(&data[33..])}),
                kid,
                alg: Algorithm::ES256,
                key: DecodingKey::from_ec_der(data),
            })
        }
        _ => Err(invalid(path, "only RSA and P-256 ECDSA keys are supported")),
    }
}

fn read_items(path: &Path) -> Result<Vec<Item>, KeyError> {
    let data = std::fs::read(path).map_err(|source| KeyError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let items: Vec<Item> = rustls_pemfile::read_all(&mut data.as_slice())
        .filter_map(Result::ok)
        .collect();
    if items.is_empty() {
        return Err(invalid(path, "no PEM keys or certificates"));
    }
    Ok(items)
}

/// The RSA key pair of a private key item; `None` for other items, including
/// PKCS#8 keys of other algorithms.
fn rsa_pair(path: &Path, item: &Item) -> Result<Option<ring::rsa::KeyPair>, KeyError> {
    match item {
        Item::Pkcs8Key(k) => Ok(ring::rsa::KeyPair::from_pkcs8(k.secret_pkcs8_der()).ok()),
        Item::Pkcs1Key(k) => ring::rsa::KeyPair::from_der(k.secret_pkcs1_der())
            .map(Some)
            .map_err(|e| invalid(path, format!("RSA private key: {e}"))),
        _ => Ok(None),
    }
}

/// Reads every public key in a `--service-account-key-file`: PUBLIC KEY,
/// CERTIFICATE, or private keys (whose public half is used).
pub fn load_verifying_keys(path: &Path) -> Result<Vec<VerifyingKey>, KeyError> {
    let mut out = Vec::new();
    for item in read_items(path)? {
        let spki = match &item {
            Item::SubjectPublicKeyInfo(k) => k.as_ref().to_vec(),
            Item::X509Certificate(c) => {
                let (_, cert) = x509_parser::parse_x509_certificate(c)
                    .map_err(|e| invalid(path, e.to_string()))?;
                cert.public_key().raw.to_vec()
            }
            other => match (rsa_pair(path, other)?, other) {
                (Some(pair), _) => rsa_spki(pair.public_key().as_ref()),
                (None, Item::Pkcs8Key(k)) => {
                    let alg = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
                    let rng = ring::rand::SystemRandom::new();
                    match ring::signature::EcdsaKeyPair::from_pkcs8(alg, k.secret_pkcs8_der(), &rng)
                    {
                        Ok(pair) => p256_spki(pair.public_key().as_ref()),
                        Err(_) => continue,
                    }
                }
                _ => continue,
            },
        };
        out.push(verifying_key(path, &spki)?);
    }
    if out.is_empty() {
        return Err(invalid(path, "no public keys"));
    }
    Ok(out)
}

/// Reads the `--service-account-signing-key-file`: an RSA (RS256) or
/// P-256 ECDSA (ES256) private key.
pub fn load_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    let data = std::fs::read(path).map_err(|source| KeyError::Read {
        path: path.display().to_string(),
        source,
    })?;
    for item in read_items(path)? {
        if let Some(pair) = rsa_pair(path, &item)? {
            let key = EncodingKey::from_rsa_pem(&data).map_err(|e| invalid(path, e.to_string()))?;
            return Ok(SigningKey {
                kid: kid(&rsa_spki(pair.public_key().as_ref())),
                alg: Algorithm::RS256,
                key,
            });
        }
        if let Item::Pkcs8Key(k) = &item {
            let alg = &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING;
            let rng = ring::rand::SystemRandom::new();
            if let Ok(pair) =
                ring::signature::EcdsaKeyPair::from_pkcs8(alg, k.secret_pkcs8_der(), &rng)
            {
                let key = EncodingKey::from_ec_der(k.secret_pkcs8_der());
                return Ok(SigningKey {
                    kid: kid(&p256_spki(pair.public_key().as_ref())),
                    alg: Algorithm::ES256,
                    key,
                });
            }
        }
    }
    Err(invalid(
        path,
        "no RSA or P-256 ECDSA private key in PKCS#8 or PKCS#1 form",
    ))
}
