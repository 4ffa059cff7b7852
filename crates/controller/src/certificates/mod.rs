//! The CertificateSigningRequest controllers (upstream's
//! `pkg/controller/certificates`):
//!
//! - `certificatesigningrequest-approving-controller` (`csrapproving`):
//!   kubelet client requests (`kubernetes.io/kube-apiserver-client-kubelet`,
//!   CN `system:node:<name>`, O `system:nodes`, client usages) are approved
//!   when a SubjectAccessReview lets their requester `create`
//!   `certificatesigningrequests/selfnodeclient` (a node renewing its own)
//!   or `…/nodeclient`; reason AutoApproved with upstream's messages.
//! - `certificatesigningrequest-signing-controller` (`csrsigning`): approved
//!   requests of the `kubernetes.io/` signers get `status.certificate` from
//!   the cluster CA ([`signer`]); started only when
//!   `--cluster-signing-cert-file` and `--cluster-signing-key-file` are set,
//!   as upstream.
//!
//! - `certificatesigningrequest-cleaner-controller` (`csrcleaner`): done
//!   requests are deleted after upstream's delays ([`cleaner`]).
//!
//! [`request`] reads the PKCS#10 requests and holds the signers' checks.

pub mod cleaner;
pub mod request;
pub mod signer;

use std::sync::Arc;

use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::ResourceExt;
use serde_json::{json, Value};

use crate::descriptors::ControllerFuture;
use crate::{is_conflict, is_not_found, ControllerContext, Error, StartError};

pub const APPROVING: &str = "certificatesigningrequest-approving-controller";
pub const SIGNING: &str = "certificatesigningrequest-signing-controller";

type Csr = CertificateSigningRequest;

/// `--cluster-signing-*`.
#[derive(Debug, Clone, Default)]
pub struct SigningConfig {
    /// The CA certificate and key, PEM; `None` leaves the signer off.
    pub ca: Option<(String, String)>,
    /// `--cluster-signing-duration`.
    pub duration: std::time::Duration,
}

fn request_of(csr: &Csr) -> Result<request::Request, String> {
    request::parse(&csr.spec.request.0)
        .map_err(|e| format!("unable to parse csr {:?}: {e}", csr.name_any()))
}

fn condition(type_: &str, reason: &str, message: &str) -> CertificateSigningRequestCondition {
    let now = Time(jiff::Timestamp::now());
    CertificateSigningRequestCondition {
        type_: type_.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now),
    }
}

fn push_condition(csr: &mut Csr, c: CertificateSigningRequestCondition) {
    csr.status
        .get_or_insert_with(Default::default)
        .conditions
        .get_or_insert_with(Vec::new)
        .push(c);
}

async fn update_status(client: &kube::Client, csr: &Csr) -> Result<(), Error> {
    let api: Api<Csr> = Api::all(client.clone());
    let name = csr.name_any();
    match api.replace_status(&name, &PostParams::default(), csr).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) if is_conflict(&e) => Err(Error::Pending(format!("csr {name}: conflict"))),
        Err(e) => Err(Error::api("update status of", format!("csr {name}"))(e)),
    }
}

// --- signing ---------------------------------------------------------------

struct SignCtx {
    client: kube::Client,
    signer: signer::Signer,
}

/// Upstream's `startCSRSigningController`.
pub fn start_signing(ctx: &ControllerContext) -> Result<ControllerFuture, StartError> {
    let Some((cert, key)) = ctx.config.csr_signing.ca.clone() else {
        tracing::info!(
            controller = SIGNING,
            "skipping CSR signer controller because no csr cert/key was specified"
        );
        return Ok(Box::pin(std::future::pending()));
    };
    let signer =
        signer::Signer::new(&cert, &key, ctx.config.csr_signing.duration).map_err(|message| {
            StartError::Config {
                controller: SIGNING,
                message,
            }
        })?;
    let csrs = ctx.informers.informer::<Csr>();
    let controller = Controller::for_shared_stream(csrs.subscribe(), csrs.store());
    let c = Arc::new(SignCtx {
        client: ctx.client.clone(),
        signer,
    });
    Ok(Box::pin(crate::runner::drive(
        SIGNING,
        controller,
        ctx.metrics.clone(),
        c,
        sign,
    )))
}

async fn sign(csr: Arc<Csr>, ctx: Arc<SignCtx>) -> Result<Action, Error> {
    let issued = csr
        .status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .is_some_and(|c| !c.0.is_empty());
    let (approved, _) = request::approval(&csr);
    if issued || !approved || request::has_condition(&csr, "Failed") {
        return Ok(Action::await_change());
    }
    let req = match request_of(&csr) {
        Ok(r) => r,
        Err(e) => return Err(Error::Pending(e)),
    };
    let mut updated = (*csr).clone();
    match signer::recognizes(&req, &csr) {
        Ok(false) => return Ok(Action::await_change()),
        Err(e) => {
            push_condition(
                &mut updated,
                condition("Failed", "SignerValidationFailure", &e),
            );
            update_status(&ctx.client, &updated).await?;
            return Ok(Action::await_change());
        }
        Ok(true) => {}
    }
    let pem = ctx
        .signer
        .sign(&req, &csr, time::OffsetDateTime::now_utc())
        .map_err(Error::Pending)?;
    updated
        .status
        .get_or_insert_with(Default::default)
        .certificate = Some(k8s_openapi::ByteString(pem.into_bytes()));
    update_status(&ctx.client, &updated).await?;
    tracing::info!(controller = SIGNING, csr = %csr.name_any(), signer = %csr.spec.signer_name, "signed");
    Ok(Action::await_change())
}

// --- approving -------------------------------------------------------------

struct Recognizer {
    subresource: &'static str,
    message: &'static str,
    recognize: fn(&Csr, &request::Request) -> bool,
}

fn is_node_client(csr: &Csr, req: &request::Request) -> bool {
    csr.spec.signer_name == request::KUBE_APISERVER_CLIENT_KUBELET
        && request::validate_kubelet_client(req, csr).is_ok()
}

fn is_self_node_client(csr: &Csr, req: &request::Request) -> bool {
    csr.spec.username.as_deref() == Some(req.common_name.as_str()) && is_node_client(csr, req)
}

const RECOGNIZERS: [Recognizer; 2] = [
    Recognizer {
        subresource: "selfnodeclient",
        message: "Auto approving self kubelet client certificate after SubjectAccessReview.",
        recognize: is_self_node_client,
    },
    Recognizer {
        subresource: "nodeclient",
        message: "Auto approving kubelet client certificate after SubjectAccessReview.",
        recognize: is_node_client,
    },
];

struct ApproveCtx {
    client: kube::Client,
}

/// Upstream's `startCSRApprovingController`.
pub fn start_approving(ctx: &ControllerContext) -> Result<ControllerFuture, StartError> {
    let csrs = ctx.informers.informer::<Csr>();
    let controller = Controller::for_shared_stream(csrs.subscribe(), csrs.store());
    let c = Arc::new(ApproveCtx {
        client: ctx.client.clone(),
    });
    Ok(Box::pin(crate::runner::drive(
        APPROVING,
        controller,
        ctx.metrics.clone(),
        c,
        approve,
    )))
}

/// A SubjectAccessReview for the requester of `csr`.
async fn authorized(client: &kube::Client, csr: &Csr, subresource: &str) -> Result<bool, Error> {
    let review = json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": csr.spec.username, "uid": csr.spec.uid, "groups": csr.spec.groups,
            "extra": csr.spec.extra,
            "resourceAttributes": {"group": "certificates.k8s.io", "resource": "certificatesigningrequests",
                                   "verb": "create", "subresource": subresource, "version": "*"},
        },
    });
    let req = http::Request::post("/apis/authorization.k8s.io/v1/subjectaccessreviews")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(review.to_string().into_bytes())
        .map_err(|e| Error::Pending(e.to_string()))?;
    let out: Value = client
        .request(req)
        .await
        .map_err(Error::api("create", "subjectaccessreview"))?;
    Ok(out.pointer("/status/allowed") == Some(&Value::Bool(true)))
}

async fn approve(csr: Arc<Csr>, ctx: Arc<ApproveCtx>) -> Result<Action, Error> {
    let issued = csr
        .status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .is_some_and(|c| !c.0.is_empty());
    let (approved, denied) = request::approval(&csr);
    if issued || approved || denied {
        return Ok(Action::await_change());
    }
    let req = match request_of(&csr) {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(controller = APPROVING, error = %e, "ignoring request");
            return Ok(Action::await_change());
        }
    };
    let mut tried = Vec::new();
    for r in &RECOGNIZERS {
        if !(r.recognize)(&csr, &req) {
            continue;
        }
        tried.push(r.subresource);
        if authorized(&ctx.client, &csr, r.subresource).await? {
            let mut updated = (*csr).clone();
            push_condition(
                &mut updated,
                condition("Approved", "AutoApproved", r.message),
            );
            let name = csr.name_any();
            let body = serde_json::to_vec(&updated).map_err(|e| Error::Pending(e.to_string()))?;
            let req = http::Request::put(format!(
                "/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}/approval"
            ))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)
            .map_err(|e| Error::Pending(e.to_string()))?;
            return match ctx.client.request::<Value>(req).await {
                Ok(_) => Ok(Action::await_change()),
                Err(e) if is_not_found(&e) => Ok(Action::await_change()),
                Err(e) if is_conflict(&e) => Err(Error::Pending(format!("csr {name}: conflict"))),
                Err(e) => Err(Error::api("update approval of", format!("csr {name}"))(e)),
            };
        }
    }
    if !tried.is_empty() {
        tracing::info!(controller = APPROVING, csr = %csr.name_any(), ?tried, "recognized csr but subject access review was not approved");
    }
    Ok(Action::await_change())
}
