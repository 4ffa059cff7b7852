//! The nftables proxier (upstream's `pkg/proxy/nftables`): rule sets are
//! rendered as text by [`ruleset`] and applied through [`apply::Nft`].

pub mod apply;
pub mod names;
pub mod ruleset;
