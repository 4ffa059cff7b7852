//! The webhooks in force (upstream's `configuration.NewMutatingWebhook/
//! ValidatingWebhookConfigurationManager`): both kinds of configuration
//! are followed in the watch cache and compiled once per change — parsed
//! rules and selectors, a TLS client per webhook — so that a write only
//! matches against ready values. Configurations are ordered by name and
//! each one's webhooks keep their order, as upstream's.

use std::sync::{Arc, RwLock};

use serde_json::Value;

use super::hook::Hook;
use crate::state::ApiState;

const GROUP: &str = "admissionregistration.k8s.io";

/// Which of the two configuration kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Mutating,
    Validating,
}

impl Kind {
    fn plural(self) -> &'static str {
        match self {
            Kind::Mutating => "mutatingwebhookconfigurations",
            Kind::Validating => "validatingwebhookconfigurations",
        }
    }
}

type Hooks = Arc<Vec<Arc<Hook>>>;

/// The compiled webhooks of both kinds, and their metrics.
#[derive(Default)]
pub struct Source {
    mutating: RwLock<Hooks>,
    validating: RwLock<Hooks>,
    pub metrics: super::metrics::WebhookMetrics,
}

impl Source {
    fn slot(&self, kind: Kind) -> &RwLock<Hooks> {
        match kind {
            Kind::Mutating => &self.mutating,
            Kind::Validating => &self.validating,
        }
    }

    /// The webhooks of `kind`, in the order they are called.
    pub fn hooks(&self, kind: Kind) -> Hooks {
        self.slot(kind)
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set(&self, kind: Kind, hooks: Vec<Arc<Hook>>) {
        *self.slot(kind).write().unwrap_or_else(|p| p.into_inner()) = Arc::new(hooks);
    }

    /// Whether no webhook of either kind is configured (a write then costs
    /// nothing more).
    pub fn is_empty(&self) -> bool {
        self.hooks(Kind::Mutating).is_empty() && self.hooks(Kind::Validating).is_empty()
    }
}

/// Compiles every webhook of the configurations, ordered by configuration
/// name; a webhook that cannot be compiled is logged and skipped (its
/// configuration passed validation, so only a bad CA bundle gets here).
pub fn compile(kind: Kind, mut configs: Vec<Value>) -> Vec<Arc<Hook>> {
    configs.sort_by(|a, b| apimachinery::meta::name(a).cmp(apimachinery::meta::name(b)));
    let mut out = Vec::new();
    for c in &configs {
        let configuration = apimachinery::meta::name(c);
        for w in c
            .get("webhooks")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match Hook::compile(kind, configuration, w) {
                Ok(h) => out.push(Arc::new(h)),
                Err(e) => {
                    let webhook = w.get("name").and_then(Value::as_str).unwrap_or("");
                    tracing::warn!(configuration, webhook, error = %e, "webhook skipped");
                }
            }
        }
    }
    out
}

fn rebuild(state: &ApiState, kind: Kind, configs: Vec<Value>) {
    let hooks = compile(kind, configs);
    tracing::debug!(kind = ?kind, webhooks = hooks.len(), "admission webhooks reloaded");
    state.webhooks.set(kind, hooks);
}

/// Follows both kinds until the watch cache closes.
pub async fn run(state: Arc<ApiState>) {
    state.cacher.wait_ready().await;
    let a = tokio::spawn(follow(state.clone(), Kind::Mutating));
    follow(state, Kind::Validating).await;
    let _ = a.await;
}

async fn follow(state: Arc<ApiState>, kind: Kind) {
    let Some(def) = state.resource(GROUP, "v1", kind.plural()) else {
        return;
    };
    let prefix = state.collection_key(&def, "");
    crate::follow::reload_on_change(state, prefix, kind.plural(), move |state, configs| {
        rebuild(state, kind, configs)
    })
    .await
}
