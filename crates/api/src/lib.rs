//! The built-in API: which resources exist, at which paths and storage keys,
//! and how each kind is decoded, defaulted and validated (upstream's
//! `pkg/registry/*/strategy.go`, `pkg/apis/*/defaults.go` and validation).
//!
//! Objects are `serde_json::Value`s; built-in kinds are checked by a round
//! trip through their k8s-openapi type, which also tells unknown fields.
//! Invariant: nothing here does IO.

pub mod admissionregistration;
pub mod attrs;
pub mod autoscaling;
pub mod certificates;
pub mod custom;
pub mod decode;
pub mod defaults;
pub mod events;
pub mod field_schema;
pub mod openapi;
pub mod patch_meta;
pub mod protobuf;
pub mod registry;
pub mod strategy;
pub mod validation;

pub use registry::{builtin_resources, ResourceDef, Scope};
pub use strategy::Strategy;

/// The Kubernetes version whose API is served (matches the k8s-openapi feature).
pub const KUBERNETES_VERSION: (u32, u32, u32) = (1, 33, 0);
