//! The server's shared state: storage, the watch cache and the served resources.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, RwLock};

use api::ResourceDef;
use storage::{Cacher, Store};

use crate::authn::keys::KeyError;
use crate::authn::Tokens;
use crate::config::Config;

/// The resources served, by group/version/plural, in discovery order.
#[derive(Default)]
pub struct Resources {
    pub list: Vec<Arc<ResourceDef>>,
    by_path: HashMap<(String, String, String), Arc<ResourceDef>>,
}

impl Resources {
    pub fn add(&mut self, def: ResourceDef) {
        let key = (def.group.clone(), def.version.clone(), def.plural.clone());
        let def = Arc::new(def);
        if let Some(pos) = self
            .list
            .iter()
            .position(|d| (d.group.clone(), d.version.clone(), d.plural.clone()) == key)
        {
            self.list[pos] = def.clone();
        } else {
            self.list.push(def.clone());
        }
        self.by_path.insert(key, def);
    }

    pub fn remove(&mut self, group: &str, plural: &str) {
        self.list
            .retain(|d| !(d.group == group && d.plural == plural));
        self.by_path
            .retain(|(g, _, p), _| !(g == group && p == plural));
    }

    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        self.by_path
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .cloned()
    }

    /// Group names in discovery order (the core group "" first).
    pub fn groups(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for d in &self.list {
            if seen.insert(d.group.clone()) {
                out.push(d.group.clone());
            }
        }
        out
    }
}

/// Everything a request handler needs.
pub struct ApiState {
    pub config: Config,
    pub store: Store,
    pub cacher: Cacher,
    pub resources: RwLock<Resources>,
    pub prefix: String,
    pub service_ips: Mutex<()>,
    pub service_net: (Ipv4Addr, u8),
    /// Service-account tokens, when keys are configured.
    pub tokens: Option<Tokens>,
    /// The aggregated group/versions (APIServices with a service).
    pub aggregator: crate::aggregator::Registry,
    /// `--proxy-client-cert-file`/`--proxy-client-key-file`, loaded.
    pub proxy_identity: Option<crate::aggregator::client::Identity>,
    /// OpenAPI v3 documents of the custom resources.
    pub openapi_custom: crate::openapi_custom::CustomDocs,
    /// The TLS client presented to kubelets (`--kubelet-*`).
    pub kubelet_tls: Arc<rustls::ClientConfig>,
    /// The enabled admission plugins, in order.
    pub admission: crate::admission::Chain,
    /// The admission webhooks in force.
    pub webhooks: crate::admission::webhook::Source,
    /// The authorizers of `--authorization-mode` and the RBAC policy.
    pub authorizer: crate::authz::Authorizer,
}

impl ApiState {
    /// Fails when the service-account key files cannot be used.
    pub fn new(config: Config, store: Store, cacher: Cacher) -> Result<Arc<Self>, KeyError> {
        let tokens = Tokens::load(config.service_accounts.clone())?;
        let proxy_identity =
            crate::aggregator::client::load_identity(&config.aggregator).map_err(|message| {
                KeyError::Invalid {
                    path: "--proxy-client-cert-file".into(),
                    message,
                }
            })?;
        let kubelet_tls =
            crate::kubelet::tls_client(&config.kubelet).map_err(|message| KeyError::Invalid {
                path: "--kubelet-client-certificate".into(),
                message,
            })?;
        let admission = crate::admission::Chain::new(&config.admission).map_err(|message| {
            KeyError::Invalid {
                path: "--enable-admission-plugins".into(),
                message,
            }
        })?;
        let mut resources = Resources::default();
        let prefix = format!("{}/", config.etcd_prefix.trim_end_matches('/'));
        for def in api::builtin_resources() {
            if def.stored() {
                cacher.register(&format!("{prefix}{}/", def.storage), def.strategy.attrs);
            }
            // kubectl 1.27 asks `auth whoami` of v1beta1.
            if def.kind == "SelfSubjectReview" {
                let mut beta = def.clone();
                beta.version = "v1beta1".into();
                resources.add(beta);
            }
            resources.add(def);
        }
        let service_net = parse_cidr(&config.service_cluster_ip_range)
            .unwrap_or((Ipv4Addr::new(10, 0, 0, 0), 24));
        let authorizer = crate::authz::Authorizer::new(config.authorization_modes.clone());
        Ok(Arc::new(ApiState {
            authorizer,
            config,
            store,
            cacher,
            resources: RwLock::new(resources),
            prefix,
            service_ips: Mutex::new(()),
            service_net,
            tokens,
            aggregator: Default::default(),
            proxy_identity,
            openapi_custom: Default::default(),
            kubelet_tls,
            admission,
            webhooks: Default::default(),
        }))
    }

    pub fn resource(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        self.resources
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(group, version, plural)
    }

    /// The storage prefix of a resource's collection (`/registry/pods/` or `/registry/pods/ns/`).
    pub fn collection_key(&self, def: &ResourceDef, namespace: &str) -> String {
        if def.namespaced() && !namespace.is_empty() {
            format!("{}{}/{}/", self.prefix, def.storage, namespace)
        } else {
            format!("{}{}/", self.prefix, def.storage)
        }
    }

    pub fn object_key(&self, def: &ResourceDef, namespace: &str, name: &str) -> String {
        format!("{}{name}", self.collection_key(def, namespace))
    }

    /// The first address of the service range (the `kubernetes` Service's).
    pub fn first_service_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.service_net.0) + 1)
    }
}

/// Parses `10.0.0.0/24`.
pub fn parse_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (ip, bits) = s.split_once('/')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    (bits <= 30).then_some((ip, bits))
}
