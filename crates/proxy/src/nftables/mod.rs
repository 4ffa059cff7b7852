//! The nftables proxier (upstream's `pkg/proxy/nftables`): rule sets are
//! rendered as text by [`ruleset`] and applied through [`apply::Nft`].

pub mod apply;
pub mod names;
pub mod ruleset;

use std::sync::Arc;

use crate::backend::{Backend, Synced};
use crate::exec::ApplyError;
use crate::types::{ServiceMap, Settings};
use apply::Nft;
use ruleset::RuleSet;

/// The nftables mode: one `ip kube-proxy` table, partial transactions
/// after the first full one.
pub struct NftablesBackend {
    nft: Arc<dyn Nft>,
    settings: Settings,
    /// What the kernel has, when the last apply succeeded; `None` forces a
    /// full sync.
    applied: Option<RuleSet>,
}

impl NftablesBackend {
    pub fn new(nft: Arc<dyn Nft>, settings: Settings) -> Self {
        Self {
            nft,
            settings,
            applied: None,
        }
    }
}

#[async_trait::async_trait]
impl Backend for NftablesBackend {
    fn mode(&self) -> &'static str {
        "nftables"
    }

    async fn sync(&mut self, map: &ServiceMap) -> Result<Synced, ApplyError> {
        let rules = ruleset::build(map, &self.settings);
        let (script, synced) = match self
            .applied
            .as_ref()
            .and_then(|old| ruleset::diff(old, &rules))
        {
            Some(d) if d.is_empty() => return Ok(Synced::Unchanged),
            Some(d) => (d, Synced::Partial),
            None => (ruleset::full(&rules, &self.settings), Synced::Full),
        };
        match self.nft.apply(&script).await {
            Ok(()) => {
                self.applied = Some(rules);
                Ok(synced)
            }
            Err(e) => {
                self.applied = None;
                Err(e)
            }
        }
    }

    async fn cleanup(&mut self) -> Result<(), ApplyError> {
        self.applied = None;
        self.nft.apply(&ruleset::cleanup()).await
    }
}
