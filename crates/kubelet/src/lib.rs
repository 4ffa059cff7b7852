//! The kubelet (upstream's `pkg/kubelet`): runs the pods bound to its node
//! through a CRI runtime, reports their status, registers the node and
//! keeps its status and Lease fresh.
//!
//! Invariant: the runtime is reached only through [`cri::RuntimeService`]
//! and [`cri::ImageService`], so everything here runs against the in-memory
//! fake as well as against containerd.

pub mod auth;
pub mod backoff;
pub mod cri;
pub mod dir_watch;
pub mod envvars;
pub mod eviction;
mod grpc_probe;
pub mod image_gc;
pub mod kubelet;
pub mod kuberuntime;
pub mod logs;
pub mod nodelease;
pub mod nodestatus;
pub mod pleg;
pub mod pod_workers;
pub mod prober;
pub mod server;
pub mod static_pods;
pub mod stats;
pub mod status;
pub mod streaming;
pub mod volume;
pub use kubelet::{Kubelet, KubeletConfig, KubeletError};
