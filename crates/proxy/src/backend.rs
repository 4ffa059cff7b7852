//! One trait for the packet filter a proxier programs (upstream's
//! `proxy.Provider` per mode): the nftables and iptables proxiers each
//! render a service map into their rules and apply them atomically,
//! sending only what changed when they know what the kernel has.

use crate::exec::ApplyError;
use crate::types::ServiceMap;

/// What a successful sync did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synced {
    /// The rules were already the map's; nothing was sent.
    Unchanged,
    /// Only what changed since the last successful sync was sent.
    Partial,
    /// Every rule was sent (first sync, after a failure, settings changed).
    Full,
}

/// A proxy mode.
#[async_trait::async_trait]
pub trait Backend: Send {
    /// `nftables` or `iptables`, for logs and metric names.
    fn mode(&self) -> &'static str;

    /// Brings the kernel's rules to `map`'s. After an error the next sync
    /// is a full one.
    async fn sync(&mut self, map: &ServiceMap) -> Result<Synced, ApplyError>;

    /// Removes everything this mode ever created (`--cleanup`).
    async fn cleanup(&mut self) -> Result<(), ApplyError>;
}
