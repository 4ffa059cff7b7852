//! kube-proxy's library (upstream's `pkg/proxy`): Services and
//! EndpointSlices distilled into a service map ([`types`]), the nftables
//! proxier that turns the map into one atomic rule set ([`nftables`]), the
//! sync loop driven by kube-rs reflectors ([`proxier`]), and the health
//! and metrics server ([`server`]).
//!
//! Invariants: only the `ip kube-proxy` table is ever written or deleted
//! (the host's network guard and anyone else's rules are never touched);
//! a rule set is applied whole or not at all.

pub mod conntrack;
pub mod nftables;
pub mod proxier;
pub mod server;
pub mod types;
