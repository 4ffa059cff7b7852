//! The service-account token controller against a real API server (with
//! `--service-account-lookup`): a token Secret is filled with a signed
//! legacy token, `ca.crt` and `namespace`; the token authenticates as the
//! ServiceAccount; deleting the account deletes the Secret and the token
//! stops working.

mod common;

use integration::{request, TestApiServer};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_secrets_are_filled_and_die_with_their_account() {
    let server = TestApiServer::start_with(|c| c.service_accounts.lookup = true).await;
    let c = common::start_on(server, &["serviceaccount-token"], |server, config| {
        config.root_ca = Some(std::fs::read(&server.ca_file).expect("read ca"));
        config.service_account_key = Some(std::sync::Arc::new(
            component_base::serviceaccount_keys::load_signing_key(&server.dir().join("sa.key"))
                .expect("signing key"),
        ));
    })
    .await;
    let sas: Api<ServiceAccount> = Api::namespaced(c.client.clone(), "default");
    let sa: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "bot"}})).expect("test value");
    let sa = sas
        .create(&PostParams::default(), &sa)
        .await
        .expect("account");
    let secrets: Api<Secret> = Api::namespaced(c.client.clone(), "default");
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "bot-token", "annotations": {"kubernetes.io/service-account.name": "bot"}},
        "type": "kubernetes.io/service-account-token"
    }))
    .expect("test value");
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret");
    let filled = common::eventually("the token in the Secret", || async {
        secrets
            .get_opt("bot-token")
            .await
            .ok()
            .flatten()
            .filter(|s| s.data.as_ref().is_some_and(|d| d.contains_key("token")))
    })
    .await;
    let data = filled.data.clone().unwrap_or_default();
    assert_eq!(data["namespace"].0, b"default");
    assert_eq!(
        data["ca.crt"].0,
        std::fs::read(&c.server.ca_file).expect("test value")
    );
    assert_eq!(
        filled.metadata.annotations.as_ref().expect("annotations")
            ["kubernetes.io/service-account.uid"],
        sa.metadata.uid.clone().expect("uid")
    );
    let token = String::from_utf8(data["token"].0.clone()).expect("test value");

    let bot = c.server.client_with_token(&token).await.expect("client");
    let whoami = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
    let r = request(
        &bot,
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        "application/json",
        &whoami,
    )
    .await;
    assert_eq!(r.code, 201, "{}", r.body);
    assert_eq!(
        r.body["status"]["userInfo"]["username"],
        "system:serviceaccount:default:bot"
    );
    assert_eq!(r.body["status"]["userInfo"]["uid"], json!(sa.metadata.uid));
    let used = secrets.get("bot-token").await.expect("secret");
    let today = k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%d")
        .to_string();
    assert_eq!(
        used.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("kubernetes.io/legacy-token-last-used")),
        Some(&today),
        "the Secret records the day its token was used"
    );
    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}});
    let r = c
        .server
        .raw(
            "POST",
            "/apis/authentication.k8s.io/v1/tokenreviews",
            "application/json",
            &review,
        )
        .await;
    assert_eq!(r.body["status"]["authenticated"], true, "{}", r.body);

    sas.delete("bot", &DeleteParams::default())
        .await
        .expect("delete account");
    common::eventually("the Secret to go with its account", || async {
        secrets
            .get_opt("bot-token")
            .await
            .ok()
            .and_then(|s| s.is_none().then_some(()))
    })
    .await;
    let r = request(
        &bot,
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        "application/json",
        &whoami,
    )
    .await;
    assert_eq!(r.code, 401, "{}", r.body);
}
