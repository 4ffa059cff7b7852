//! `certificatesigningrequest-cleaner-controller` (`csrcleaner`, upstream's
//! `pkg/controller/certificates/cleaner`): requests are garbage-collected
//! once done with — issued ones an hour after their approval, denied and
//! failed ones an hour after that condition, pending ones a day after they
//! were made, and any whose issued certificate has expired. Upstream looks
//! every hour; here each request is looked at when it changes and again at
//! its own deadline.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::api::{Api, DeleteParams};
use kube::runtime::controller::{Action, Controller};
use kube::ResourceExt;

use crate::clock::Clock;
use crate::descriptors::ControllerFuture;
use crate::{is_not_found, ControllerContext, Error, StartError};

pub const NAME: &str = "certificatesigningrequest-cleaner-controller";

const APPROVED_EXPIRATION: Duration = Duration::from_secs(3600);
const DENIED_EXPIRATION: Duration = Duration::from_secs(3600);
const FAILED_EXPIRATION: Duration = Duration::from_secs(3600);
const PENDING_EXPIRATION: Duration = Duration::from_secs(24 * 3600);

struct Ctx {
    client: kube::Client,
    clock: Arc<dyn Clock>,
}

/// Upstream's `startCSRCleanerController`.
pub fn start(ctx: &ControllerContext) -> Result<ControllerFuture, StartError> {
    let csrs = ctx.informers.informer::<CertificateSigningRequest>();
    let mut controller = Controller::for_shared_stream(csrs.subscribe(), csrs.store());
    if let Some(steps) = ctx.config.clock.steps() {
        controller = controller.reconcile_all_on(steps);
    }
    let c = Arc::new(Ctx {
        client: ctx.client.clone(),
        clock: ctx.config.clock.clone(),
    });
    Ok(Box::pin(crate::runner::drive(
        NAME,
        controller,
        ctx.metrics.clone(),
        c,
        reconcile,
    )))
}

fn plus(t: Timestamp, d: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// When the request may go (upstream's `is…PastDeadline` and
/// `isIssuedExpired`), and why.
pub fn deadline(csr: &CertificateSigningRequest) -> Option<(Timestamp, &'static str)> {
    let status = csr.status.as_ref();
    let conditions = status.and_then(|s| s.conditions.as_ref());
    let condition_time = |t: &str| {
        conditions?
            .iter()
            .find(|c| c.type_ == t)
            .and_then(|c| {
                c.last_update_time
                    .as_ref()
                    .or(c.last_transition_time.as_ref())
            })
            .map(|t| t.0)
    };
    let issued = status
        .and_then(|s| s.certificate.as_ref())
        .filter(|c| !c.0.is_empty());
    let mut out: Vec<(Timestamp, &'static str)> = Vec::new();
    if let Some(cert) = issued {
        if let Some(t) = condition_time("Approved") {
            out.push((plus(t, APPROVED_EXPIRATION), "issued"));
        }
        if let Some(not_after) = not_after(&cert.0) {
            out.push((not_after, "issued certificate expired"));
        }
    }
    if let Some(t) = condition_time("Denied") {
        out.push((plus(t, DENIED_EXPIRATION), "denied"));
    }
    if let Some(t) = condition_time("Failed") {
        out.push((plus(t, FAILED_EXPIRATION), "failed"));
    }
    if conditions.is_none_or(Vec::is_empty) {
        if let Some(t) = csr.metadata.creation_timestamp.as_ref() {
            out.push((plus(t.0, PENDING_EXPIRATION), "pending"));
        }
    }
    out.into_iter().min_by_key(|(t, _)| *t)
}

/// The earliest expiry of the PEM certificates in `pem`.
fn not_after(pem: &[u8]) -> Option<Timestamp> {
    rustls_pemfile::certs(&mut &pem[..])
        .filter_map(Result::ok)
        .filter_map(|der| {
            let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
            Timestamp::from_second(cert.validity().not_after.timestamp()).ok()
        })
        .min()
}

async fn reconcile(csr: Arc<CertificateSigningRequest>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let Some((at, why)) = deadline(&csr) else {
        return Ok(Action::await_change());
    };
    let now = ctx.clock.now();
    if at > now {
        let wait = Duration::from_secs_f64(at.duration_since(now).as_secs_f64().max(0.0));
        return Ok(Action::requeue(wait + Duration::from_secs(1)));
    }
    let api: Api<CertificateSigningRequest> = Api::all(ctx.client.clone());
    match api.delete(&csr.name_any(), &DeleteParams::default()).await {
        Ok(_) => {
            tracing::info!(controller = NAME, csr = %csr.name_any(), reason = why, "cleaning up CSR");
            Ok(Action::await_change())
        }
        Err(e) if is_not_found(&e) => Ok(Action::await_change()),
        Err(e) => Err(Error::api("delete", format!("csr {}", csr.name_any()))(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn csr(v: serde_json::Value) -> CertificateSigningRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn deadlines_like_upstream() {
        let pending = csr(
            json!({"metadata": {"name": "p", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"request": "", "signerName": "x/y"}}),
        );
        assert_eq!(
            deadline(&pending),
            Some(("2026-01-02T00:00:00Z".parse().unwrap(), "pending"))
        );
        let denied = csr(
            json!({"metadata": {"name": "d", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"request": "", "signerName": "x/y"},
            "status": {"conditions": [{"type": "Denied", "status": "True", "lastUpdateTime": "2026-01-01T05:00:00Z"}]}}),
        );
        assert_eq!(
            deadline(&denied),
            Some(("2026-01-01T06:00:00Z".parse().unwrap(), "denied"))
        );
        // Approved but not issued: the signer may still come; nothing to clean.
        let approved = csr(
            json!({"metadata": {"name": "a", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"request": "", "signerName": "x/y"},
            "status": {"conditions": [{"type": "Approved", "status": "True", "lastUpdateTime": "2026-01-01T05:00:00Z"}]}}),
        );
        assert_eq!(deadline(&approved), None);
    }
}
