//! Front-proxy (requestheader) authentication: a client certificate from
//! the request-header CA with an allowed CN vouches for the user in
//! `X-Remote-User`/`X-Remote-Group`; any other CN is refused.

use http_body_util::BodyExt;
use integration::TestApiServer;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use serde_json::Value;

fn client_cert(ca: &CertifiedIssuer<'_, KeyPair>, cn: &str) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = p.signed_by(&key, ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

async fn whoami(client: &kube::Client, user: &str, group: &str) -> (u16, Value) {
    let body = r#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#;
    let req = http::Request::post("/apis/authentication.k8s.io/v1/selfsubjectreviews")
        .header("Content-Type", "application/json")
        .header("X-Remote-User", user)
        .header("X-Remote-Group", group)
        .header("X-Remote-Extra-Reason", "testing")
        .body(body.as_bytes().to_vec())
        .unwrap();
    let resp = client
        .send(req.map(kube::client::Body::from))
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_front_proxy_names_the_user_in_headers() {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "front-proxy-ca");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("front-proxy-ca.crt");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let s = TestApiServer::start_with(|c| {
        c.aggregator.requestheader_client_ca_file = Some(ca_file.clone());
        c.aggregator.requestheader_allowed_names = vec!["front-proxy-client".into()];
        c.aggregator.requestheader_username_headers = vec!["X-Remote-User".into()];
        c.aggregator.requestheader_group_headers = vec!["X-Remote-Group".into()];
        c.aggregator.requestheader_extra_headers_prefix = vec!["X-Remote-Extra-".into()];
    })
    .await;

    let (cert, key) = client_cert(&ca, "front-proxy-client");
    let proxy = s.client_with_cert(&cert, &key).await.unwrap();
    let (code, body) = whoami(&proxy, "jane", "devs").await;
    assert_eq!(code, 201, "{body}");
    let info = &body["status"]["userInfo"];
    assert_eq!(info["username"], "jane");
    assert_eq!(
        info["groups"],
        serde_json::json!(["devs", "system:authenticated"])
    );
    assert_eq!(info["extra"]["reason"], serde_json::json!(["testing"]));

    // Same CA, a CN that may not vouch: the certificate is no client
    // certificate of --client-ca-file either, so the request is refused.
    let (cert, key) = client_cert(&ca, "intruder");
    let other = s.client_with_cert(&cert, &key).await.unwrap();
    let (code, _) = whoami(&other, "jane", "devs").await;
    assert_eq!(code, 401);

    // The admin's own certificate (client CA) is not a front proxy: headers are ignored.
    let (code, body) = whoami(&s.client, "jane", "devs").await;
    assert_eq!(code, 201);
    assert_eq!(body["status"]["userInfo"]["username"], "admin");
}
