//! Storage errors (upstream's `storage.StorageError`).

use apimachinery::ApiError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a storage operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The key does not exist.
    #[error("key not found: {key}")]
    NotFound { key: String },
    /// A create found the key already present.
    #[error("key exists: {key}")]
    AlreadyExists { key: String },
    /// A precondition (uid or resourceVersion) did not hold.
    #[error("{message}")]
    Conflict { key: String, message: String },
    /// The requested revision was compacted or is older than the cache's history.
    #[error("{message}")]
    Expired { message: String },
    /// The requested resourceVersion is newer than the store has reached in time.
    #[error("too large resource version: {requested}, current: {current}")]
    TooLargeResourceVersion { requested: u64, current: u64 },
    /// A stored value could not be decoded.
    #[error("invalid stored object at {key}: {message}")]
    InvalidObject { key: String, message: String },
    /// The backend (etcd) failed or could not be reached.
    #[error("storage backend error: {0}")]
    Backend(String),
    /// A caller's update function refused the change; passed through untouched.
    #[error("{0}")]
    Api(ApiError),
}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        Error::Api(e)
    }
}
