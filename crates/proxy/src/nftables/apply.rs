//! Running `nft` (upstream's `knftables` interface): one trait, the real
//! command — optionally inside a network namespace, which is how the tests
//! keep their rules off the host — and an in-memory recorder for unit tests.

use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;

/// Why a rule set could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("running nft: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("nft failed: {0}")]
    Rejected(String),
}

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
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = tokio::process::Command::new("ip");
                c.args(["netns", "exec", ns, "nft", "-f", "-"]);
                c
            }
            None => {
                let mut c = tokio::process::Command::new("nft");
                c.args(["-f", "-"]);
                c
            }
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(ApplyError::Spawn)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(script.as_bytes())
                .await
                .map_err(ApplyError::Spawn)?;
        }
        let out = child.wait_with_output().await.map_err(ApplyError::Spawn)?;
        if out.status.success() {
            Ok(())
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            // nft repeats the offending line; the first lines say enough.
            let short: Vec<&str> = err.lines().take(6).collect();
            Err(ApplyError::Rejected(short.join("\n")))
        }
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
            return Err(ApplyError::Rejected("injected failure".into()));
        }
        self.applied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(script.to_string());
        Ok(())
    }
}
