//! Running `nft` (upstream's `knftables` interface): one trait, the real
//! command — optionally inside a network namespace, which is how the tests
//! keep their rules off the host — and an in-memory recorder for unit tests.

use std::sync::{Arc, Mutex};

pub use crate::exec::ApplyError;

/// Applies an `nft -f` script as one transaction.
#[async_trait::async_trait]
pub trait Nft: Send + Sync {
    async fn apply(&self, script: &str) -> Result<(), ApplyError>;
}

/// The `nft` binary; with `netns`, run through `ip netns exec`.
#[derive(Debug, Clone, Default)]
pub struct NftCommand {
    pub netns: Option<String>,
}

#[async_trait::async_trait]
impl Nft for NftCommand {
    async fn apply(&self, script: &str) -> Result<(), ApplyError> {
        crate::exec::run("nft", &["-f", "-"], self.netns.as_deref(), Some(script))
            .await
            .map(drop)
    }
}

/// Records scripts instead of applying them; can be told to fail.
#[derive(Debug, Clone, Default)]
pub struct FakeNft {
    pub applied: Arc<Mutex<Vec<String>>>,
    pub fail: Arc<Mutex<bool>>,
}

#[async_trait::async_trait]
impl Nft for FakeNft {
    async fn apply(&self, script: &str) -> Result<(), ApplyError> {
        if *self.fail.lock().unwrap_or_else(|p| p.into_inner()) {
            return Err(ApplyError::Rejected {
                program: "nft",
                message: "injected failure".into(),
            });
        }
        self.applied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(script.to_string());
        Ok(())
    }
}
