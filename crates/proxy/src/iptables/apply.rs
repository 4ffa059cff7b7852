//! Running iptables (upstream's `pkg/util/iptables` interface): one trait,
//! the real commands — optionally inside a network namespace, which is how
//! the tests keep their rules off the host — and a recording fake.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use crate::exec::run;
pub use crate::exec::ApplyError;

/// What the iptables proxier asks of the system.
#[async_trait::async_trait]
pub trait Iptables: Send + Sync {
    /// `iptables-restore --noflush`: every table in `script` is committed
    /// atomically; chains it does not name are left alone.
    async fn restore(&self, script: &str) -> Result<(), ApplyError>;
    /// Makes sure the built-in `chain` of `table` has the rule `args`
    /// (`-C`, then `-I` at the top when missing).
    async fn ensure_rule(&self, table: &str, chain: &str, args: &[&str]) -> Result<(), ApplyError>;
    /// Removes the rule `args` from `chain` when it is there.
    async fn delete_rule(&self, table: &str, chain: &str, args: &[&str]) -> Result<(), ApplyError>;
    /// The chains of `table` (from `iptables-save`).
    async fn chains(&self, table: &str) -> Result<Vec<String>, ApplyError>;
    /// `net.ipv4.conf.all.route_localnet=1`, so NodePorts answer on 127.0.0.1.
    async fn enable_route_localnet(&self) -> Result<(), ApplyError>;
}

/// The iptables binaries (whatever backend Debian's alternatives chose);
/// with `netns`, run through `ip netns exec`.
#[derive(Debug, Clone, Default)]
pub struct IptablesCommand {
    pub netns: Option<String>,
}

impl IptablesCommand {
    async fn iptables(&self, args: &[&str]) -> Result<String, ApplyError> {
        let mut all = vec!["-w", "5"];
        all.extend_from_slice(args);
        run("iptables", &all, self.netns.as_deref(), None).await
    }
}

#[async_trait::async_trait]
impl Iptables for IptablesCommand {
    async fn restore(&self, script: &str) -> Result<(), ApplyError> {
        run(
            "iptables-restore",
            &["-w", "5", "--noflush"],
            self.netns.as_deref(),
            Some(script),
        )
        .await
        .map(drop)
    }

    async fn ensure_rule(&self, table: &str, chain: &str, args: &[&str]) -> Result<(), ApplyError> {
        let mut check = vec!["-t", table, "-C", chain];
        check.extend_from_slice(args);
        if self.iptables(&check).await.is_ok() {
            return Ok(());
        }
        let mut insert = vec!["-t", table, "-I", chain];
        insert.extend_from_slice(args);
        self.iptables(&insert).await.map(drop)
    }

    async fn delete_rule(&self, table: &str, chain: &str, args: &[&str]) -> Result<(), ApplyError> {
        let mut check = vec!["-t", table, "-C", chain];
        check.extend_from_slice(args);
        if self.iptables(&check).await.is_err() {
            return Ok(());
        }
        let mut delete = vec!["-t", table, "-D", chain];
        delete.extend_from_slice(args);
        self.iptables(&delete).await.map(drop)
    }

    async fn chains(&self, table: &str) -> Result<Vec<String>, ApplyError> {
        let out = run("iptables-save", &["-t", table], self.netns.as_deref(), None).await?;
        Ok(out
            .lines()
            .filter_map(|l| l.strip_prefix(':'))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect())
    }

    async fn enable_route_localnet(&self) -> Result<(), ApplyError> {
        run(
            "sysctl",
            &["-q", "-w", "net.ipv4.conf.all.route_localnet=1"],
            self.netns.as_deref(),
            None,
        )
        .await
        .map(drop)
    }
}

/// Records what it is asked instead of doing it; restores can be told to fail.
#[derive(Debug, Clone, Default)]
pub struct FakeIptables {
    pub restored: Arc<Mutex<Vec<String>>>,
    /// `(table, chain, rule)` of the ensured rules.
    pub rules: Arc<Mutex<BTreeSet<(String, String, String)>>>,
    /// What `chains` answers, per table.
    pub existing: Arc<Mutex<Vec<(String, String)>>>,
    pub fail: Arc<Mutex<bool>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[async_trait::async_trait]
impl Iptables for FakeIptables {
    async fn restore(&self, script: &str) -> Result<(), ApplyError> {
        if *lock(&self.fail) {
            return Err(ApplyError::Rejected {
                program: "iptables-restore",
                message: "injected failure".into(),
            });
        }
        lock(&self.restored).push(script.to_string());
        Ok(())
    }
    async fn ensure_rule(&self, table: &str, chain: &str, args: &[&str]) -> Result<(), ApplyError> {
        lock(&self.rules).insert((table.into(), chain.into(), args.join(" ")));
        Ok(())
    }
    async fn delete_rule(&self, table: &str, chain: &str, args: &[&str]) -> Result<(), ApplyError> {
        lock(&self.rules).remove(&(table.into(), chain.into(), args.join(" ")));
        Ok(())
    }
    async fn chains(&self, table: &str) -> Result<Vec<String>, ApplyError> {
        Ok(lock(&self.existing)
            .iter()
            .filter(|(t, _)| t == table)
            .map(|(_, c)| c.clone())
            .collect())
    }
    async fn enable_route_localnet(&self) -> Result<(), ApplyError> {
        Ok(())
    }
}
