//! The iptables proxier (upstream's `pkg/proxy/iptables`): rule sets are
//! rendered as `iptables-restore` input by [`ruleset`] and applied through
//! [`apply::Iptables`] — the nat and filter tables in one restore, only
//! the chains that changed after the first full sync.

pub mod apply;
pub mod names;
pub mod ruleset;

use std::sync::Arc;

use crate::backend::{Backend, Synced};
use crate::exec::ApplyError;
use crate::types::{ServiceMap, Settings};
use apply::Iptables;
use ruleset::RuleSet;

/// The iptables mode.
pub struct IptablesBackend {
    ipt: Arc<dyn Iptables>,
    settings: Settings,
    /// What the kernel has, when the last restore succeeded; `None`
    /// forces a full sync.
    applied: Option<RuleSet>,
}

impl IptablesBackend {
    pub fn new(ipt: Arc<dyn Iptables>, settings: Settings) -> Self {
        Self {
            ipt,
            settings,
            applied: None,
        }
    }

    /// `(table, chain)` of every chain in the filter and nat tables.
    async fn existing(&self) -> Result<Vec<(String, String)>, ApplyError> {
        let mut out = Vec::new();
        for table in ["filter", "nat"] {
            for chain in self.ipt.chains(table).await? {
                out.push((table.to_string(), chain));
            }
        }
        Ok(out)
    }

    async fn full(&self, rules: &RuleSet) -> Result<(), ApplyError> {
        if self.settings.nodeport_ips.is_empty() {
            if let Err(e) = self.ipt.enable_route_localnet().await {
                tracing::warn!(error = %e, "NodePorts will not answer on 127.0.0.1");
            }
        }
        // Service chains left by an earlier run and no longer wanted go.
        let stale: Vec<(String, String)> = self
            .existing()
            .await?
            .into_iter()
            .filter(|(_, c)| names::is_service_chain(c))
            .collect();
        self.ipt.restore(&ruleset::full(rules, &stale)).await?;
        // The jumps need their target chains, which now exist.
        for j in ruleset::JUMPS.iter().rev() {
            self.ipt.ensure_rule(j.table, j.chain, j.args).await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Backend for IptablesBackend {
    fn mode(&self) -> &'static str {
        "iptables"
    }

    async fn sync(&mut self, map: &ServiceMap) -> Result<Synced, ApplyError> {
        let rules = ruleset::build(map, &self.settings);
        let partial = self
            .applied
            .as_ref()
            .and_then(|old| ruleset::diff(old, &rules));
        let result = match &partial {
            Some(d) if d.is_empty() => return Ok(Synced::Unchanged),
            Some(d) => self.ipt.restore(d).await.map(|()| Synced::Partial),
            None => self.full(&rules).await.map(|()| Synced::Full),
        };
        match result {
            Ok(synced) => {
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
        for j in ruleset::JUMPS {
            self.ipt.delete_rule(j.table, j.chain, j.args).await?;
        }
        let existing = self.existing().await?;
        let script = ruleset::cleanup(&existing);
        if script.is_empty() {
            return Ok(());
        }
        self.ipt.restore(&script).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iptables::apply::FakeIptables;

    #[tokio::test]
    async fn first_sync_is_full_then_partial_and_a_failure_forces_full() {
        let fake = FakeIptables::default();
        fake.existing
            .lock()
            .unwrap()
            .push(("nat".into(), "KUBE-SEP-LEFTOVERFROMBEFOR".into()));
        let mut b = IptablesBackend::new(Arc::new(fake.clone()), Settings::default());
        let map = ServiceMap::default();
        assert_eq!(b.sync(&map).await.unwrap(), Synced::Full);
        assert!(fake.restored.lock().unwrap()[0].contains("-X KUBE-SEP-LEFTOVERFROMBEFOR\n"));
        assert_eq!(fake.rules.lock().unwrap().len(), ruleset::JUMPS.len());
        assert_eq!(b.sync(&map).await.unwrap(), Synced::Unchanged);
        *fake.fail.lock().unwrap() = true;
        let changed = {
            let mut m = ServiceMap::default();
            let spn = crate::types::ServicePortName {
                namespace: "default".into(),
                name: "web".into(),
                port: String::new(),
                protocol: crate::types::Protocol::Tcp,
            };
            m.ports.insert(
                spn,
                crate::types::ServicePort {
                    cluster_ip: Some("10.0.0.10".parse().unwrap()),
                    port: 80,
                    node_port: None,
                    external_ips: vec![],
                    load_balancer_ips: vec![],
                    affinity_timeout: None,
                    external_policy_local: false,
                    internal_policy_local: false,
                },
            );
            m
        };
        assert!(b.sync(&changed).await.is_err());
        *fake.fail.lock().unwrap() = false;
        assert_eq!(b.sync(&changed).await.unwrap(), Synced::Full);
        b.cleanup().await.unwrap();
        assert!(fake.rules.lock().unwrap().is_empty());
    }
}
