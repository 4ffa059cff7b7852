//! What a CertificateSigningRequest asks for (upstream's
//! `pkg/apis/certificates/v1/helpers.go`): the PKCS#10 request's subject and
//! SANs, its approval state, and the checks the kubelet signers make.

use std::collections::BTreeSet;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

pub const KUBE_APISERVER_CLIENT: &str = "kubernetes.io/kube-apiserver-client";
pub const KUBE_APISERVER_CLIENT_KUBELET: &str = "kubernetes.io/kube-apiserver-client-kubelet";
pub const KUBELET_SERVING: &str = "kubernetes.io/kubelet-serving";
pub const LEGACY_UNKNOWN: &str = "kubernetes.io/legacy-unknown";

/// The parts of a PKCS#10 request the signers look at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub pem: String,
    pub common_name: String,
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub ip_addresses: usize,
    pub emails: usize,
    pub uris: usize,
}

/// Upstream's `ParseCSR`: the first `CERTIFICATE REQUEST` PEM block.
pub fn parse(pem_bytes: &[u8]) -> Result<Request, String> {
    let text = std::str::from_utf8(pem_bytes)
        .map_err(|_| "PEM block type must be CERTIFICATE REQUEST".to_string())?;
    let begin = "-----BEGIN CERTIFICATE REQUEST-----";
    let end = "-----END CERTIFICATE REQUEST-----";
    let start = text
        .find(begin)
        .ok_or("PEM block type must be CERTIFICATE REQUEST")?;
    let stop = text[start..]
        .find(end)
        .ok_or("PEM block type must be CERTIFICATE REQUEST")?
        + start
        + end.len();
    let pem = text[start..stop].to_string();
    let b64: String = text[start + begin.len()..stop - end.len()]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &b64)
        .map_err(|_| "invalid base64 in the PEM block")?;
    let (_, csr) = x509_parser::certification_request::X509CertificationRequest::from_der(&der)
        .map_err(|e| format!("invalid certificate request: {e}"))?;
    let subject = &csr.certification_request_info.subject;
    let mut r = Request {
        pem,
        common_name: subject
            .iter_common_name()
            .next()
            .and_then(|c| c.as_str().ok())
            .unwrap_or_default()
            .to_string(),
        organizations: subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok().map(str::to_string))
            .collect(),
        ..Default::default()
    };
    for ext in csr.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext {
            for name in &san.general_names {
                match name {
                    GeneralName::DNSName(d) => r.dns_names.push(d.to_string()),
                    GeneralName::IPAddress(_) => r.ip_addresses += 1,
                    GeneralName::RFC822Name(_) => r.emails += 1,
                    GeneralName::URI(_) => r.uris += 1,
                    _ => {}
                }
            }
        }
    }
    Ok(r)
}

fn usages(csr: &CertificateSigningRequest) -> BTreeSet<&str> {
    csr.spec
        .usages
        .iter()
        .flatten()
        .map(String::as_str)
        .collect()
}

fn set(items: &[&'static str]) -> BTreeSet<&'static str> {
    items.iter().copied().collect()
}

/// Whether a condition of `type_` is True.
pub fn has_condition(csr: &CertificateSigningRequest, type_: &str) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == type_ && c.status == "True"))
}

/// Upstream's `GetCertApprovalCondition`: (approved, denied).
pub fn approval(csr: &CertificateSigningRequest) -> (bool, bool) {
    let cs = csr.status.as_ref().and_then(|s| s.conditions.as_ref());
    let any = |t: &str| cs.is_some_and(|cs| cs.iter().any(|c| c.type_ == t));
    (any("Approved"), any("Denied"))
}

/// Upstream's `ValidateKubeletClientCSR`.
pub fn validate_kubelet_client(
    req: &Request,
    csr: &CertificateSigningRequest,
) -> Result<(), String> {
    if req.organizations != ["system:nodes"] {
        return Err("subject organization is not system:nodes".into());
    }
    if !req.dns_names.is_empty() {
        return Err("DNS subjectAltNames are not allowed".into());
    }
    if req.emails > 0 {
        return Err("Email subjectAltNames are not allowed".into());
    }
    if req.ip_addresses > 0 {
        return Err("IP subjectAltNames are not allowed".into());
    }
    if req.uris > 0 {
        return Err("URI subjectAltNames are not allowed".into());
    }
    if !req.common_name.starts_with("system:node:") {
        return Err("subject common name does not begin with system:node:".into());
    }
    let u = usages(csr);
    let with_rsa = set(&["client auth", "digital signature", "key encipherment"]);
    if u != with_rsa && u != set(&["client auth", "digital signature"]) {
        return Err(format!(
            "usages did not match {:?}",
            with_rsa.into_iter().collect::<Vec<_>>()
        ));
    }
    Ok(())
}

/// Upstream's `ValidateKubeletServingCSR`.
pub fn validate_kubelet_serving(
    req: &Request,
    csr: &CertificateSigningRequest,
) -> Result<(), String> {
    if req.organizations != ["system:nodes"] {
        return Err("subject organization is not system:nodes".into());
    }
    if req.dns_names.is_empty() && req.ip_addresses == 0 {
        return Err("DNS or IP subjectAltName is required".into());
    }
    if req.emails > 0 {
        return Err("Email subjectAltNames are not allowed".into());
    }
    if req.uris > 0 {
        return Err("URI subjectAltNames are not allowed".into());
    }
    let u = usages(csr);
    let with_rsa = set(&["digital signature", "key encipherment", "server auth"]);
    if u != with_rsa && u != set(&["digital signature", "server auth"]) {
        return Err(format!(
            "usages did not match {:?}",
            with_rsa.into_iter().collect::<Vec<_>>()
        ));
    }
    if !req.common_name.starts_with("system:node:") {
        return Err("subject common name does not begin with system:node:".into());
    }
    Ok(())
}

/// Upstream's `validAPIServerClientUsages`.
pub fn validate_apiserver_client(csr: &CertificateSigningRequest) -> Result<(), String> {
    let mut client_auth = false;
    for u in csr.spec.usages.iter().flatten() {
        match u.as_str() {
            "digital signature" | "key encipherment" => {}
            "client auth" => client_auth = true,
            other => return Err(format!("invalid usage for client certificate: {other}")),
        }
    }
    if !client_auth {
        return Err("missing required usage for client certificate: client auth".into());
    }
    Ok(())
}
