//! The storage layer of the API server (upstream's `apiserver/pkg/storage`).
//!
//! Three layers, each knowing less than the one above:
//! - [`backend::Backend`]: a revisioned key-value store (etcd v3, or the
//!   in-memory [`memory::MemoryBackend`] for unit tests) with compare-and-swap and watch.
//! - [`store::Store`]: upstream's `storage.Interface` on top of it: JSON objects
//!   whose `metadata.resourceVersion` is the etcd revision, preconditions,
//!   `GuaranteedUpdate` with retry on conflict, paginated lists, TTLs.
//! - [`cacher::Cacher`]: the watch cache: every object under the prefix in
//!   memory, serialised once, with an event history for watches.
//!
//! Invariant: storage knows nothing about HTTP or about particular kinds; the
//! per-kind selectable fields come in as an [`AttrsFunc`].

pub mod backend;
pub mod cacher;
pub mod continue_token;
pub mod error;
pub mod etcd3;
pub mod memory;
pub mod raw;
pub mod store;
pub mod testing;

pub use backend::{Backend, KeyValue};
pub use cacher::{CacheEvent, CachedObject, Cacher, EventType};
pub use error::{Error, Result};
pub use store::{ListOptions, ListResult, Preconditions, Store, StoredObject};

/// Extracts the selectable fields (beyond metadata.name and metadata.namespace)
/// of an object, e.g. `spec.nodeName` and `status.phase` for pods.
pub type AttrsFunc = fn(&serde_json::Value) -> Vec<(&'static str, String)>;
