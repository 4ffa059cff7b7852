//! CustomResourceDefinitions (upstream's `apiextensions-apiserver`, the
//! parts that are not serving): structural schemas and what a CRD serves.
//! Invariant: no IO, no async; objects are `serde_json::Value`s.

pub mod crd;
pub mod defaulting;
pub mod pruning;
pub mod schema;
pub mod validation;

pub use crd::{served_versions, ServedVersion};
pub use schema::Schema;
