use super::*;

fn keys(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let pair = rcgen::KeyPair::generate().expect("P-256 key");
    let key = dir.join("sa.key");
    let public = dir.join("sa.pub");
    std::fs::write(&key, pair.serialize_pem()).unwrap();
    std::fs::write(&public, pair.public_key_pem()).unwrap();
    (key, public)
}

fn tokens(dir: &std::path::Path, audiences: &[&str]) -> Tokens {
    let (key, public) = keys(dir);
    Tokens::load(ServiceAccountConfig {
        issuers: vec!["https://kubernetes.default.svc.cluster.local".into()],
        key_files: vec![public],
        signing_key_file: Some(key),
        api_audiences: audiences.iter().map(|s| s.to_string()).collect(),
        max_token_expiration: None,
        lookup: true,
    })
    .unwrap()
    .unwrap()
}

fn claims(aud: &str, exp_in: i64) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        aud: vec![aud.into()],
        exp: now + exp_in,
        iat: now,
        iss: "https://kubernetes.default.svc.cluster.local".into(),
        jti: "j-1".into(),
        kubernetes: KubernetesClaims {
            namespace: "ns1".into(),
            serviceaccount: Ref {
                name: "robot".into(),
                uid: "u-1".into(),
            },
            pod: Some(Ref {
                name: "p".into(),
                uid: "u-2".into(),
            }),
            secret: None,
            node: None,
        },
        nbf: now,
        sub: "system:serviceaccount:ns1:robot".into(),
    }
}

#[test]
fn signs_and_verifies_with_audiences_and_issuer() {
    let dir = tempfile::tempdir().unwrap();
    let t = tokens(dir.path(), &["api"]);
    let token = t.sign(&claims("api", 600)).unwrap();
    let got = t.verify(&token, &[]).unwrap();
    assert_eq!(got.kubernetes.serviceaccount.name, "robot");
    let u = user(&got);
    assert_eq!(u.name, "system:serviceaccount:ns1:robot");
    assert_eq!(
        u.groups,
        [
            "system:serviceaccounts",
            "system:serviceaccounts:ns1",
            "system:authenticated"
        ]
    );
    assert_eq!(u.extra["authentication.kubernetes.io/pod-name"], ["p"]);
    assert_eq!(
        u.extra["authentication.kubernetes.io/credential-id"],
        ["JTI=j-1"]
    );

    // Another audience is refused, unless a TokenReview asks for it.
    let other = t.sign(&claims("vault", 600)).unwrap();
    assert!(matches!(
        t.verify(&other, &[]),
        Err(TokenError::Audience(..))
    ));
    assert!(t.verify(&other, &["vault".to_string()]).is_ok());
}

#[test]
fn refuses_expired_tampered_and_foreign_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let t = tokens(dir.path(), &["api"]);
    let expired = t.sign(&claims("api", -3600)).unwrap();
    assert_eq!(t.verify(&expired, &[]).unwrap_err(), TokenError::Invalid);

    let good = t.sign(&claims("api", 600)).unwrap();
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    let mut c = claims("api", 600);
    c.kubernetes.serviceaccount.name = "admin".into();
    parts[1] = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        serde_json::to_vec(&c).unwrap(),
    );
    assert_eq!(
        t.verify(&parts.join("."), &[]).unwrap_err(),
        TokenError::Invalid
    );

    let other_dir = tempfile::tempdir().unwrap();
    let stranger = tokens(other_dir.path(), &["api"])
        .sign(&claims("api", 600))
        .unwrap();
    assert_eq!(t.verify(&stranger, &[]).unwrap_err(), TokenError::Invalid);
    assert_eq!(t.verify("not-a-jwt", &[]).unwrap_err(), TokenError::Invalid);
}

#[test]
fn serves_the_issuer_discovery_documents() {
    let dir = tempfile::tempdir().unwrap();
    let t = tokens(dir.path(), &[]);
    assert_eq!(
        t.default_audiences(),
        ["https://kubernetes.default.svc.cluster.local"]
    );
    let conf = t.openid_configuration();
    assert_eq!(
        conf["jwks_uri"],
        "https://kubernetes.default.svc.cluster.local/openid/v1/jwks"
    );
    let jwks = t.jwks();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["alg"], "ES256");
    // The token's kid names the key in the set.
    let token = t.sign(&claims("x", 600)).unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.kid.as_deref(), key["kid"].as_str());
}
