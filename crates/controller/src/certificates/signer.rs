//! Issuing certificates for approved requests (upstream's
//! `pkg/controller/certificates/signer`): the CA of
//! `--cluster-signing-cert-file`/`--cluster-signing-key-file` signs the
//! requests of the four `kubernetes.io/` signers once they are approved,
//! checked as each signer requires (a request that fails gets a Failed
//! condition, reason SignerValidationFailure). The certificate is valid
//! from five minutes ago (clock skew) for `--cluster-signing-duration`, or
//! `spec.expirationSeconds` when shorter (at least ten minutes), never past
//! the CA's own expiry, with the key usages the request names.

use std::time::Duration;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use rcgen::{
    CertificateSigningRequestParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};

use super::request::{self, Request};

const BACKDATE: Duration = Duration::from_secs(5 * 60);
const MIN_DURATION: Duration = Duration::from_secs(10 * 60);

/// The cluster CA as the signers use it.
pub struct Signer {
    issuer: Issuer<'static, KeyPair>,
    ca_not_after: time::OffsetDateTime,
    /// `--cluster-signing-duration`.
    pub duration: Duration,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("ca_not_after", &self.ca_not_after)
            .field("duration", &self.duration)
            .finish()
    }
}

impl Signer {
    /// From the CA certificate and key PEM.
    pub fn new(cert_pem: &str, key_pem: &str, duration: Duration) -> Result<Self, String> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| format!("cluster signing key: {e}"))?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)
            .map_err(|e| format!("cluster signing certificate: {e}"))?;
        let der = rustls_der(cert_pem)?;
        let (_, cert) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| format!("cluster signing certificate: {e}"))?;
        let ca_not_after = cert.validity().not_after.to_datetime();
        Ok(Self {
            issuer,
            ca_not_after,
            duration,
        })
    }

    /// Upstream's `duration`: the signer's, or the requested one when
    /// shorter, but at least ten minutes.
    fn ttl(&self, expiration_seconds: Option<i32>) -> Duration {
        match expiration_seconds {
            None => self.duration,
            Some(s) => {
                let requested = Duration::from_secs(u64::try_from(s).unwrap_or(0));
                requested.clamp(MIN_DURATION, self.duration.max(MIN_DURATION))
            }
        }
    }

    /// The PEM certificate for `req`.
    pub fn sign(
        &self,
        req: &Request,
        csr: &CertificateSigningRequest,
        now: time::OffsetDateTime,
    ) -> Result<String, String> {
        let mut params = CertificateSigningRequestParams::from_pem(&req.pem)
            .map_err(|e| format!("unable to parse csr: {e}"))?;
        let p = &mut params.params;
        let ttl = self.ttl(csr.spec.expiration_seconds);
        p.not_before = now - BACKDATE;
        p.not_after = (now + ttl).min(self.ca_not_after);
        p.serial_number = Some(SerialNumber::from_slice(&rand::random::<[u8; 16]>()));
        p.is_ca = IsCa::ExplicitNoCa;
        p.use_authority_key_identifier_extension = true;
        p.key_usages.clear();
        p.extended_key_usages.clear();
        for u in csr.spec.usages.iter().flatten() {
            match key_usage(u)? {
                Usage::Key(k) => {
                    if !p.key_usages.contains(&k) {
                        p.key_usages.push(k)
                    }
                }
                Usage::Extended(e) => {
                    if !p.extended_key_usages.contains(&e) {
                        p.extended_key_usages.push(e)
                    }
                }
            }
        }
        let cert = params
            .signed_by(&self.issuer)
            .map_err(|e| format!("error auto signing csr: {e}"))?;
        Ok(cert.pem())
    }
}

fn rustls_der(pem: &str) -> Result<Vec<u8>, String> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .next()
        .ok_or("cluster signing certificate: no certificate found")?
        .map(|c| c.to_vec())
        .map_err(|e| format!("cluster signing certificate: {e}"))
}

enum Usage {
    Key(KeyUsagePurpose),
    Extended(ExtendedKeyUsagePurpose),
}

/// Upstream's `keyUsagesFromStrings`.
fn key_usage(u: &str) -> Result<Usage, String> {
    use ExtendedKeyUsagePurpose as E;
    use KeyUsagePurpose as K;
    Ok(match u {
        "signing" | "digital signature" => Usage::Key(K::DigitalSignature),
        "content commitment" => Usage::Key(K::ContentCommitment),
        "key encipherment" => Usage::Key(K::KeyEncipherment),
        "key agreement" => Usage::Key(K::KeyAgreement),
        "data encipherment" => Usage::Key(K::DataEncipherment),
        "cert sign" => Usage::Key(K::KeyCertSign),
        "crl sign" => Usage::Key(K::CrlSign),
        "encipher only" => Usage::Key(K::EncipherOnly),
        "decipher only" => Usage::Key(K::DecipherOnly),
        "any" => Usage::Extended(E::Any),
        "server auth" => Usage::Extended(E::ServerAuth),
        "client auth" => Usage::Extended(E::ClientAuth),
        "code signing" => Usage::Extended(E::CodeSigning),
        "email protection" | "s/mime" => Usage::Extended(E::EmailProtection),
        "timestamping" => Usage::Extended(E::TimeStamping),
        "ocsp signing" => Usage::Extended(E::OcspSigning),
        other => return Err(format!("unrecognized usage: {other}")),
    })
}

/// Upstream's `isRequestForSignerFn` per signer: `Ok(false)` for a request
/// of another signer, the validation error for one this signer refuses.
pub fn recognizes(req: &Request, csr: &CertificateSigningRequest) -> Result<bool, String> {
    match csr.spec.signer_name.as_str() {
        request::KUBELET_SERVING => request::validate_kubelet_serving(req, csr).map(|_| true),
        request::KUBE_APISERVER_CLIENT_KUBELET => {
            request::validate_kubelet_client(req, csr).map(|_| true)
        }
        request::KUBE_APISERVER_CLIENT => request::validate_apiserver_client(csr).map(|_| true),
        request::LEGACY_UNKNOWN => Ok(true),
        _ => Ok(false),
    }
}
