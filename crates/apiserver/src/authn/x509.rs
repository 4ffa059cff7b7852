//! x509 client-certificate authentication (upstream's
//! `authentication/request/x509`): the certificate was verified against
//! `--client-ca-file` during the TLS handshake; its subject's CN is the user
//! and each O a group.

use crate::handlers::User;

/// The user a verified client certificate names.
pub fn user_from_cert(der: &[u8]) -> Option<User> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let mut groups: Vec<String> = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    groups.push("system:authenticated".into());
    Some(User {
        name,
        groups,
        ..User::default()
    })
}
