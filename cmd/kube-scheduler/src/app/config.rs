//! The completed configuration the server runs with (upstream's
//! cmd/kube-scheduler/app/config).

use client::leaderelection::LeaderElectionOptions;
use client::KubeOptions;
use component_base::serving::SecureServingOptions;
use scheduler::KubeSchedulerConfiguration;

#[derive(Debug)]
pub struct Config {
    pub file: KubeSchedulerConfiguration,
    pub kube: KubeOptions,
    pub leader_election: LeaderElectionOptions,
    pub serving: SecureServingOptions,
}
