//! The CSR approving and signing controllers against a real API server:
//! an approved client request is signed by the cluster CA with the usages
//! and subject it asked for, a kubelet's client request is approved by the
//! controller itself, and a request its signer refuses is marked Failed.
//! The API server's side (requester recorded, `/approval` changing only
//! the conditions) is exercised on the way.

mod common;

use std::time::{Duration, Instant};

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::api::{Api, PostParams};
use rcgen::{CertificateParams, DnType, KeyPair};
use serde_json::{json, Value};

fn ca() -> (String, String, String) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.distinguished_name
        .push(DnType::CommonName, "cluster-signer");
    let cert = p.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem(), "cluster-signer".into())
}

fn request(cn: &str, orgs: &[&str], dns: &[&str]) -> String {
    let key = KeyPair::generate().unwrap();
    let mut p =
        CertificateParams::new(dns.iter().map(|d| d.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    for o in orgs {
        p.distinguished_name.push(DnType::OrganizationName, *o);
    }
    p.serialize_request(&key).unwrap().pem().unwrap()
}

fn b64(s: &str) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, s)
}

async fn create(
    api: &Api<CertificateSigningRequest>,
    name: &str,
    pem: &str,
    signer: &str,
    usages: &[&str],
) {
    let csr: CertificateSigningRequest = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"request": b64(pem), "signerName": signer, "usages": usages, "username": "forged"},
    }))
    .unwrap();
    api.create(&PostParams::default(), &csr).await.unwrap();
}

async fn approve(client: &kube::Client, api: &Api<CertificateSigningRequest>, name: &str) {
    let mut csr = serde_json::to_value(api.get(name).await.unwrap()).unwrap();
    csr["status"] = json!({"conditions": [{"type": "Approved", "status": "True", "reason": "KubectlApprove",
        "message": "This CSR was approved by kubectl certificate approve."}],
        "certificate": b64("-----BEGIN CERTIFICATE-----\nforged\n-----END CERTIFICATE-----\n")});
    let req = http::Request::put(format!(
        "/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}/approval"
    ))
    .header("Content-Type", "application/json")
    .body(csr.to_string().into_bytes())
    .unwrap();
    let out: Value = client.request(req).await.unwrap();
    assert!(
        out["status"].get("certificate").is_none(),
        "approval cannot set the certificate: {out}"
    );
}

async fn until(
    api: &Api<CertificateSigningRequest>,
    name: &str,
    what: &str,
    ok: impl Fn(&CertificateSigningRequest) -> bool,
) -> CertificateSigningRequest {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let csr = api.get(name).await.unwrap();
        if ok(&csr) {
            return csr;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: timed out waiting for {what}: {:?}",
            csr.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn issued(csr: &CertificateSigningRequest) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .is_some_and(|c| !c.0.is_empty())
}

fn condition(csr: &CertificateSigningRequest, t: &str) -> Option<(String, String)> {
    csr.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == t)
        .map(|c| {
            (
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approved_requests_are_signed_and_kubelet_clients_approved() {
    let (ca_pem, ca_key, ca_cn) = ca();
    let cluster = common::start(&["csrsigning", "csrapproving"], |_, c| {
        c.csr_signing.ca = Some((ca_pem.clone(), ca_key.clone()));
        c.csr_signing.duration = Duration::from_secs(3600);
    })
    .await;
    let client = cluster.client.clone();
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());

    // A client certificate for jane: recorded as the admin's request, left
    // alone until approved, then signed.
    create(
        &api,
        "jane",
        &request("jane", &["devs"], &[]),
        "kubernetes.io/kube-apiserver-client",
        &["digital signature", "key encipherment", "client auth"],
    )
    .await;
    let created = api.get("jane").await.unwrap();
    assert_eq!(
        created.spec.username.as_deref(),
        Some("admin"),
        "the requester, not what the client sent"
    );
    assert!(created
        .spec
        .groups
        .unwrap_or_default()
        .contains(&"system:masters".to_string()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !issued(&api.get("jane").await.unwrap()),
        "nothing is signed before approval"
    );
    approve(&client, &api, "jane").await;
    let signed = until(&api, "jane", "the certificate", issued).await;
    assert_eq!(condition(&signed, "Approved").unwrap().0, "KubectlApprove");
    let pem = String::from_utf8(signed.status.unwrap().certificate.unwrap().0).unwrap();
    let der = rustls_pemfile::certs(&mut pem.as_bytes())
        .next()
        .unwrap()
        .unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert_eq!(
        cert.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "jane"
    );
    assert_eq!(
        cert.subject()
            .iter_organization()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "devs"
    );
    assert_eq!(
        cert.issuer()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        ca_cn
    );
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
    assert!(!cert.is_ca());
    let validity = cert.validity();
    let lifetime = validity.not_after.timestamp() - validity.not_before.timestamp();
    assert_eq!(
        lifetime,
        3600 + 300,
        "the signing duration plus the 5 min backdate"
    );

    // A kubelet's client request is approved by the controller and signed.
    create(
        &api,
        "node-n1",
        &request("system:node:n1", &["system:nodes"], &[]),
        "kubernetes.io/kube-apiserver-client-kubelet",
        &["digital signature", "client auth"],
    )
    .await;
    let node = until(&api, "node-n1", "approval and signing", issued).await;
    assert_eq!(
        condition(&node, "Approved"),
        Some((
            "AutoApproved".into(),
            "Auto approving kubelet client certificate after SubjectAccessReview.".into()
        ))
    );

    // A client request asking for server auth: refused by its signer.
    create(
        &api,
        "bad",
        &request("bob", &[], &[]),
        "kubernetes.io/kube-apiserver-client",
        &["client auth", "server auth"],
    )
    .await;
    approve(&client, &api, "bad").await;
    let bad = until(&api, "bad", "the Failed condition", |c| {
        condition(c, "Failed").is_some()
    })
    .await;
    assert_eq!(
        condition(&bad, "Failed"),
        Some((
            "SignerValidationFailure".into(),
            "invalid usage for client certificate: server auth".into()
        ))
    );
    assert!(!issued(&bad));

    // Another signer's requests are left to it.
    create(
        &api,
        "other",
        &request("x", &[], &[]),
        "example.com/custom",
        &["client auth"],
    )
    .await;
    approve(&client, &api, "other").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let other = api.get("other").await.unwrap();
    assert!(!issued(&other) && condition(&other, "Failed").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_and_stale_requests_are_cleaned_up() {
    let start = jiff::Timestamp::now();
    let clock = controller::clock::FakeClock::new(start);
    let c2 = clock.clone();
    let cluster = common::start(&["csrcleaner"], move |_, c| c.clock = c2).await;
    let client = cluster.client.clone();
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let pem = request("x", &[], &[]);
    create(
        &api,
        "pending",
        &pem,
        "example.com/custom",
        &["client auth"],
    )
    .await;
    create(&api, "denied", &pem, "example.com/custom", &["client auth"]).await;
    let mut denied = serde_json::to_value(api.get("denied").await.unwrap()).unwrap();
    denied["status"] =
        json!({"conditions": [{"type": "Denied", "status": "True", "reason": "KubectlDeny"}]});
    let req = http::Request::put(
        "/apis/certificates.k8s.io/v1/certificatesigningrequests/denied/approval",
    )
    .header("Content-Type", "application/json")
    .body(denied.to_string().into_bytes())
    .unwrap();
    let _: Value = client.request(req).await.unwrap();
    let gone = |name: &'static str| {
        let api = api.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            while api.get_opt(name).await.unwrap().is_some() {
                assert!(Instant::now() < deadline, "{name} was not cleaned up");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        api.get_opt("denied").await.unwrap().is_some(),
        "not before its hour"
    );
    // An hour and a bit later the denied one goes; the pending one waits a day.
    clock.set(
        start
            .checked_add(jiff::SignedDuration::from_mins(61))
            .unwrap(),
    );
    gone("denied").await;
    assert!(api.get_opt("pending").await.unwrap().is_some());
    clock.set(
        start
            .checked_add(jiff::SignedDuration::from_hours(25))
            .unwrap(),
    );
    gone("pending").await;
}
