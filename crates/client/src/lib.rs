//! Our thin layer over kube-rs, for the component daemons (upstream's
//! `k8s.io/client-go` pieces kube-rs does not have): the `--kubeconfig`
//! family of flags with client-side QPS/burst limiting ([`KubeOptions`]),
//! and leader election on a `coordination.k8s.io/v1` Lease
//! ([`leaderelection`]), and following a resource into a reflector store
//! ([`reflect::follow`]), and asking the API server who a caller is and
//! what they may do, for servers other than the API server ([`delegated`]). Watchers, reflectors, controllers and event
//! recording are kube-rs's own (`kube::runtime`) and used directly.
//!
//! Invariant: nothing here knows any particular component.

pub mod delegated;
pub mod leaderelection;
mod options;
pub mod reflect;
pub mod service_account_credentials;

pub use options::{ClientError, KubeOptions};
