//! API aggregation (upstream's kube-aggregator inside kube-apiserver): an
//! APIService naming a Service makes this server proxy its group/version to
//! that extension API server, list it in discovery and report whether it is
//! available. `registry` keeps what the APIServices say, `controller`
//! follows them and probes the backends, `proxy` forwards requests with the
//! caller's identity in front-proxy headers, `local` lists the APIServices
//! of the built-in groups.

pub mod client;
pub mod controller;
pub mod local;
pub mod proxy;
pub mod registry;

pub use registry::{Registry, Remote};

use std::path::PathBuf;

/// The aggregator's flags.
#[derive(Debug, Clone, Default)]
pub struct AggregatorConfig {
    /// `--proxy-client-cert-file`/`--proxy-client-key-file`: the client
    /// certificate this server presents to extension API servers.
    pub proxy_client_cert_file: Option<PathBuf>,
    pub proxy_client_key_file: Option<PathBuf>,
    /// `--enable-aggregator-routing`: dial an endpoint's address instead of
    /// the Service's cluster IP (which needs kube-proxy).
    pub enable_aggregator_routing: bool,
    /// `--requestheader-*`: how extension API servers are told to trust
    /// this server's proxied requests, published in the
    /// `kube-system/extension-apiserver-authentication` ConfigMap.
    pub requestheader_client_ca_file: Option<PathBuf>,
    pub requestheader_allowed_names: Vec<String>,
    pub requestheader_username_headers: Vec<String>,
    pub requestheader_group_headers: Vec<String>,
    pub requestheader_extra_headers_prefix: Vec<String>,
}

impl AggregatorConfig {
    /// The `--requestheader-*` settings as the front-proxy authenticator
    /// reads them.
    pub fn requestheader(&self) -> component_base::authn::RequestHeader<'_> {
        component_base::authn::RequestHeader {
            allowed_names: &self.requestheader_allowed_names,
            username_headers: &self.requestheader_username_headers,
            group_headers: &self.requestheader_group_headers,
            extra_headers_prefix: &self.requestheader_extra_headers_prefix,
        }
    }
}
