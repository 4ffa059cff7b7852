//! List continuation tokens, in upstream's format (`storage/continue.go`):
//! base64 of `{"v":"meta.k8s.io/v1","rv":<revision>,"start":"<key after prefix>"}`.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::Error;

#[derive(Serialize, Deserialize)]
struct Token {
    v: String,
    rv: i64,
    start: String,
}

/// Encodes a token that resumes a list of `prefix` at `next_key`, at `revision`.
pub fn encode(prefix: &str, next_key: &str, revision: i64) -> String {
    let start = next_key
        .strip_prefix(prefix)
        .unwrap_or(next_key)
        .to_string();
    let json = serde_json::to_vec(&Token {
        v: "meta.k8s.io/v1".into(),
        rv: revision,
        start,
    })
    .unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE.encode(json)
}

/// Decodes a token into the full key to start from and the revision.
pub fn decode(prefix: &str, token: &str) -> Result<(String, i64), Error> {
    let bad = |why: &str| {
        Error::Api(apimachinery::ApiError::bad_request(format!(
            "continue key is not valid: {why}"
        )))
    };
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token))
        .map_err(|_| bad("illegal base64 data"))?;
    let t: Token = serde_json::from_slice(&raw).map_err(|_| bad("invalid JSON"))?;
    if t.v != "meta.k8s.io/v1" {
        return Err(bad("server does not recognize this encoded key"));
    }
    if t.start.is_empty() || t.start.contains("..") || t.start.starts_with('/') {
        return Err(bad("key is invalid"));
    }
    if t.rv <= 0 {
        return Err(bad(
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        ));
    }
    Ok((format!("{prefix}{}", t.start), t.rv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let t = encode("/registry/pods/", "/registry/pods/default/b\u{0}", 42);
        assert_eq!(
            decode("/registry/pods/", &t).ok(),
            Some(("/registry/pods/default/b\u{0}".to_string(), 42))
        );
        assert!(decode("/registry/pods/", "!!!").is_err());
        assert!(decode(
            "/registry/pods/",
            &base64::engine::general_purpose::URL_SAFE
                .encode(br#"{"v":"meta.k8s.io/v1","rv":1,"start":"../x"}"#)
        )
        .is_err());
    }
}
