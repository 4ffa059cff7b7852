//! Cluster DNS (upstream's kube-dns and CoreDNS's `kubernetes` plugin, on
//! hickory-proto's wire format): `index` holds every record of the cluster
//! zone precomputed from Services and EndpointSlices, `query` answers one
//! message from it, `forward` sends everything else to the resolv.conf
//! resolvers, `server` serves UDP and TCP, `watch` keeps the index current
//! from kube-rs reflectors, `health` serves `/healthz`, `/readyz` and
//! `/metrics`.
//!
//! Invariant: a query never waits for the API server, and a malformed
//! message never panics the server (it is FORMERR or dropped).

pub mod forward;
pub mod health;
pub mod index;
pub mod metrics;
pub mod names;
pub mod query;
pub mod records;
pub mod run;
pub mod server;
pub mod watch;
