//! The kubelet's secure-port checks against a real API server: a
//! ServiceAccount token is the account's user by TokenReview and allowed by
//! SubjectAccessReview, a token nobody vouches for and no credentials at
//! all get upstream's 401 when anonymous callers are off, and a client
//! certificate's subject passes without asking.

use component_base::authn::User;
use http::HeaderMap;
use integration::TestApiServer;
use kubelet::auth::{AuthConfig, KubeletAuth, Refusal};
use serde_json::{json, Value};

fn bearer(t: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {t}").parse().unwrap(),
    );
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_certificates_and_anonymous_callers() {
    let s = TestApiServer::start().await;
    let auth = KubeletAuth::new(&AuthConfig::v1beta1(), Some(s.client.clone()), "node-1").unwrap();
    let t = s.service_account_token("default", "scraper").await;
    let u = auth
        .check(None, &bearer(&t), "GET", "/stats/summary")
        .await
        .unwrap();
    assert_eq!(u.name, "system:serviceaccount:default:scraper");
    assert!(
        u.groups.iter().any(|g| g == "system:serviceaccounts"),
        "{:?}",
        u.groups
    );
    let unauthorized = Refusal {
        status: 401,
        message: "Unauthorized".into(),
    };
    assert_eq!(
        auth.check(None, &bearer("not-a-token"), "GET", "/pods")
            .await
            .unwrap_err(),
        unauthorized
    );
    assert_eq!(
        auth.check(None, &HeaderMap::new(), "GET", "/pods")
            .await
            .unwrap_err(),
        unauthorized
    );
    let apiserver = User {
        name: "kube-apiserver".into(),
        ..User::default()
    };
    let u = auth
        .check(Some(apiserver), &HeaderMap::new(), "POST", "/exec/ns/p/c")
        .await
        .unwrap();
    assert_eq!(u.groups, ["system:authenticated"]);
    // The decision is the API server's: its answer for this user and
    // these attributes.
    let review = s
        .raw(
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            "application/json",
            &json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                    "spec": {"user": "system:serviceaccount:default:scraper",
                             "resourceAttributes": {"verb": "get", "resource": "nodes", "subresource": "stats", "name": "node-1"}}}),
        )
        .await;
    assert_eq!(review.body["status"]["allowed"], Value::Bool(true));
}
