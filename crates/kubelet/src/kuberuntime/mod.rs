//! The kubelet's runtime manager over CRI (upstream's `pkg/kubelet/kuberuntime`):
//! sandbox and container configurations, the sync decisions, and carrying
//! them out.

pub mod actions;
pub mod container;
pub mod expansion;
pub mod hosts_file;
pub mod labels;
pub mod manager;
pub mod pod_status;
pub mod quantity;
pub mod sandbox;
pub mod termination_message;
