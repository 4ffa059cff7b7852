//! kube-proxy's library (upstream's `pkg/proxy`): Services and
//! EndpointSlices distilled into a service map ([`types`]), the nftables
//! and iptables proxiers that turn the map into one atomic rule set
//! ([`nftables`], [`iptables`], one [`backend::Backend`] trait), the
//! sync loop driven by kube-rs reflectors ([`proxier`]), and the health
//! and metrics server ([`server`]).
//!
//! Invariants: only the `ip kube-proxy` table (nftables mode) or the
//! `KUBE-*` chains and the jumps to them (iptables mode) are ever written
//! or deleted (the host's network guard and anyone else's rules are never
//! touched); a rule set is applied whole or not at all.

pub mod backend;
pub mod conntrack;
pub mod exec;
mod hash;
pub mod iptables;
pub mod nftables;
pub mod proxier;
pub mod server;
pub mod types;
