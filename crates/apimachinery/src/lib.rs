//! Kubernetes API machinery shared by every component: object metadata helpers,
//! label and field selectors, name and label validation, and the `Status` error
//! type every API error becomes. Mirrors upstream's `k8s.io/apimachinery`.
//!
//! Invariant: this crate knows nothing about HTTP, async or storage.

pub mod duration;
pub mod field;
pub mod fields;
pub mod labels;
pub mod managedfields;
pub mod meta;
pub mod protobuf;
pub mod quantity;
pub mod resource;
pub mod status;
pub mod validation;

pub use resource::{GroupResource, GroupVersionKind};
pub use status::{ApiError, StatusCause};
