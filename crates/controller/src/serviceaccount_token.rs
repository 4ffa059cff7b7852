//! The service-account token controller (upstream's
//! pkg/controller/serviceaccount/tokens_controller.go): a Secret of type
//! `kubernetes.io/service-account-token` annotated with
//! `kubernetes.io/service-account.name` gets a signed, non-expiring token
//! (issuer `kubernetes/serviceaccount`), `ca.crt` (`--root-ca-file`) and
//! `namespace`, and the account's uid annotation; a Secret whose account
//! is gone (or has another uid) is deleted, and so are an account's token
//! Secrets when the account goes. Needs `--service-account-private-key-file`.

use std::collections::BTreeMap;
use std::sync::Arc;

use component_base::serviceaccount_keys::SigningKey;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::ByteString;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::ResourceExt;
use serde_json::json;

use crate::descriptors::ControllerFuture;
use crate::{is_conflict, is_not_found, ControllerContext, Error, StartError};

const NAME: &str = "serviceaccount-token-controller";
pub const TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
pub const NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
pub const UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";
const ISSUER: &str = "kubernetes/serviceaccount";

struct Ctx {
    client: kube::Client,
    accounts: Store<ServiceAccount>,
    key: Arc<SigningKey>,
    root_ca: Option<Vec<u8>>,
}

/// Upstream's `startServiceAccountTokenController`.
pub fn start(ctx: &ControllerContext) -> Result<ControllerFuture, StartError> {
    let Some(key) = ctx.config.service_account_key.clone() else {
        tracing::warn!(
            controller = NAME,
            "disabled: no --service-account-private-key-file"
        );
        return Ok(Box::pin(futures::future::ready(())));
    };
    let secrets = ctx
        .informers
        .informer_with::<Secret>(Some(&format!("type={TOKEN_TYPE}")));
    let accounts = ctx.informers.informer::<ServiceAccount>();
    let store = secrets.store();
    let controller = Controller::for_shared_stream(secrets.subscribe(), secrets.store())
        // An account's change (or deletion) revisits its token Secrets.
        .watches_shared_stream(accounts.subscribe(), move |sa: Arc<ServiceAccount>| {
            let ns = sa.namespace().unwrap_or_default();
            let name = sa.name_any();
            store
                .state()
                .iter()
                .filter(|s| {
                    s.namespace().as_deref() == Some(ns.as_str())
                        && s.annotations().get(NAME_ANNOTATION) == Some(&name)
                })
                .map(|s| ObjectRef::from_obj(s.as_ref()))
                .collect::<Vec<_>>()
        });
    let c = Arc::new(Ctx {
        client: ctx.client.clone(),
        accounts: accounts.store(),
        key,
        root_ca: ctx.config.root_ca.clone(),
    });
    let metrics = ctx.metrics.clone();
    Ok(Box::pin(crate::runner::drive(
        NAME, controller, metrics, c, reconcile,
    )))
}

/// The JWT upstream's `LegacyClaims` describe.
pub fn legacy_token(
    key: &SigningKey,
    namespace: &str,
    secret: &str,
    account: &str,
    uid: &str,
) -> Result<String, String> {
    let claims = json!({
        "iss": ISSUER,
        "sub": format!("system:serviceaccount:{namespace}:{account}"),
        "kubernetes.io/serviceaccount/namespace": namespace,
        "kubernetes.io/serviceaccount/secret.name": secret,
        "kubernetes.io/serviceaccount/service-account.name": account,
        "kubernetes.io/serviceaccount/service-account.uid": uid,
    });
    let mut header = jsonwebtoken::Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, &claims, &key.key).map_err(|e| e.to_string())
}

async fn reconcile(secret: Arc<Secret>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if secret.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = secret.namespace().unwrap_or_default();
    let name = secret.name_any();
    let Some(account) = secret.annotations().get(NAME_ANNOTATION).cloned() else {
        return Ok(Action::await_change());
    };
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let sa = ctx
        .accounts
        .get(&ObjectRef::new(&account).within(&ns))
        .filter(|sa| sa.metadata.deletion_timestamp.is_none());
    let wanted_uid = secret.annotations().get(UID_ANNOTATION).cloned();
    let sa = match sa {
        Some(sa)
            if wanted_uid
                .as_ref()
                .is_none_or(|u| Some(u) == sa.metadata.uid.as_ref()) =>
        {
            sa
        }
        _ => {
            // The account is gone (or is another one now): so is its token.
            let dp = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: secret.metadata.uid.clone(),
                    resource_version: None,
                }),
                ..Default::default()
            };
            return match api.delete(&name, &dp).await {
                Ok(_) => {
                    tracing::info!(namespace = %ns, secret = %name, account = %account, "deleted the token of a missing service account");
                    Ok(Action::await_change())
                }
                Err(e) if is_not_found(&e) || is_conflict(&e) => Ok(Action::await_change()),
                Err(e) => Err(Error::api("delete", format!("secret {ns}/{name}"))(e)),
            };
        }
    };
    let uid = sa.metadata.uid.clone().unwrap_or_default();
    let data = secret.data.clone().unwrap_or_default();
    let has = |d: &BTreeMap<String, ByteString>, k: &str| d.get(k).is_some_and(|v| !v.0.is_empty());
    let ca_ok = ctx.root_ca.is_none() || has(&data, "ca.crt");
    if has(&data, "token")
        && has(&data, "namespace")
        && ca_ok
        && wanted_uid.as_deref() == Some(uid.as_str())
    {
        return Ok(Action::await_change());
    }
    let mut updated = (*secret).clone();
    let mut data = data;
    if !has(&data, "token") {
        let token = legacy_token(&ctx.key, &ns, &name, &account, &uid)
            .map_err(|e| Error::Pending(format!("signing the token of secret {ns}/{name}: {e}")))?;
        data.insert("token".into(), ByteString(token.into_bytes()));
    }
    data.insert("namespace".into(), ByteString(ns.clone().into_bytes()));
    if let Some(ca) = &ctx.root_ca {
        data.entry("ca.crt".into())
            .or_insert_with(|| ByteString(ca.clone()));
    }
    updated.data = Some(data);
    updated.annotations_mut().insert(UID_ANNOTATION.into(), uid);
    match api.replace(&name, &PostParams::default(), &updated).await {
        Ok(_) => {
            tracing::info!(namespace = %ns, secret = %name, account = %account, "populated a service-account token");
            Ok(Action::await_change())
        }
        // A newer Secret is on its way to the informer.
        Err(e) if is_conflict(&e) || is_not_found(&e) => Ok(Action::await_change()),
        Err(e) => Err(Error::api("update", format!("secret {ns}/{name}"))(e)),
    }
}
