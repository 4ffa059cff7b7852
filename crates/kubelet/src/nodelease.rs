//! The node's heartbeat Lease in `kube-node-lease` (upstream's
//! `k8s.io/component-helpers/apimachinery/lease/controller.go`): renewed
//! every 10 s (a quarter of the 40 s duration), owned by the Node so it
//! goes with it.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::Api;

pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// Upstream's `nodeLeaseDurationSeconds`.
pub const LEASE_DURATION_SECONDS: i32 = 40;
pub const RENEW_INTERVAL: Duration = Duration::from_secs(10);

/// The lease as this node writes it.
pub fn new_lease(node: &Node, base: Option<Lease>, now: Timestamp) -> Lease {
    let name = node.metadata.name.clone().unwrap_or_default();
    let mut lease = base.unwrap_or_else(|| Lease {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(LEASE_NAMESPACE.into()),
            ..Default::default()
        },
        spec: None,
    });
    if let Some(uid) = node.metadata.uid.clone() {
        lease.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "v1".into(),
            kind: "Node".into(),
            name: name.clone(),
            uid,
            ..Default::default()
        }]);
    }
    lease.spec = Some(LeaseSpec {
        holder_identity: Some(name),
        lease_duration_seconds: Some(LEASE_DURATION_SECONDS),
        renew_time: Some(MicroTime(now)),
        ..lease.spec.unwrap_or_default()
    });
    lease
}

/// Renews the lease forever once the node is registered.
pub async fn run(client: kube::Client, mut node: tokio::sync::watch::Receiver<Option<Node>>) {
    let api: Api<Lease> = Api::namespaced(client, LEASE_NAMESPACE);
    let mut cached: Option<Lease> = None;
    // Nothing to renew before the node is registered.
    while node.borrow_and_update().is_none() {
        if node.changed().await.is_err() {
            return;
        }
    }
    let mut tick = tokio::time::interval(RENEW_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(n) = node.borrow_and_update().clone() else {
            continue;
        };
        let name = n.metadata.name.clone().unwrap_or_default();
        let result = match cached.take() {
            Some(l) => {
                api.replace(
                    &name,
                    &PostParams::default(),
                    &new_lease(&n, Some(l), Timestamp::now()),
                )
                .await
            }
            None => match api.get_opt(&name).await {
                Ok(Some(l)) => {
                    api.replace(
                        &name,
                        &PostParams::default(),
                        &new_lease(&n, Some(l), Timestamp::now()),
                    )
                    .await
                }
                Ok(None) => {
                    api.create(
                        &PostParams::default(),
                        &new_lease(&n, None, Timestamp::now()),
                    )
                    .await
                }
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(l) => cached = Some(l),
            Err(e) => tracing::warn!(error = %e, "failed to update lease, will retry"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lease_names_the_node_as_holder_and_owner() {
        let node = Node {
            metadata: ObjectMeta {
                name: Some("n1".into()),
                uid: Some("nu".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let t = Timestamp::now();
        let l = new_lease(&node, None, t);
        let spec = l.spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("n1"));
        assert_eq!(spec.lease_duration_seconds, Some(40));
        assert_eq!(spec.renew_time, Some(MicroTime(t)));
        assert_eq!(l.metadata.owner_references.unwrap()[0].uid, "nu");
        assert_eq!(l.metadata.namespace.as_deref(), Some(LEASE_NAMESPACE));
    }
}
