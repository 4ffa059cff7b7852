//! The generic API server (upstream's `k8s.io/apiserver` plus the parts of
//! `pkg/controlplane` that wire built-in resources): TLS serving with x509
//! client authentication, request-info parsing, discovery, the REST verbs on
//! the watch cache and storage, Table printing, and bootstrap objects.
//!
//! Request path, in order: TLS (client certificate) → panic recovery →
//! authentication → request info → authorization (`authz`) → handler
//! (`handlers::dispatch`).

pub mod admission;
pub mod aggregator;
pub mod authn;
pub mod authz;
/// Proxying to backends lives in component-base (the kubelet uses it too).
pub use component_base::proxy as backend;
pub mod bootstrap;
pub mod config;
pub mod crd;
pub mod discovery;
pub mod fieldmanager;
pub mod follow;
pub mod handlers;
pub mod kubelet;
pub mod negotiation;
pub mod openapi;
pub mod openapi_custom;
pub mod patch;
pub mod request_info;
pub mod response;
pub mod server;
pub mod services;
pub mod state;
pub mod table;

pub use config::Config;
pub use server::serve;
pub use state::ApiState;
