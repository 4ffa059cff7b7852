//! Flags, with upstream's names and defaults (upstream's
//! cmd/kube-scheduler/app/options). `--config` names a
//! KubeSchedulerConfiguration file; the connection and leader-election
//! flags given on the command line override its `clientConnection` and
//! `leaderElection`.

use std::path::PathBuf;

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{ArgMatches, Parser};
use client::leaderelection::LeaderElectionOptions;
use client::KubeOptions;
use component_base::serving::SecureServingOptions;
use scheduler::KubeSchedulerConfiguration;

use super::config::Config;

#[derive(Parser, Debug)]
#[command(
    name = "kube-scheduler",
    about = "The Kubernetes scheduler is a control plane process which assigns Pods to Nodes"
)]
pub struct Options {
    /// The path to the configuration file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub kube: KubeOptions,
    #[command(flatten)]
    pub leader_election: LeaderElectionOptions,
    #[command(flatten)]
    pub serving: SecureServingOptions,
    /// Number for the log level verbosity.
    #[arg(short = 'v', long = "v", default_value_t = 0)]
    pub v: u8,
}

/// Upstream's kube-scheduler secure port.
pub const DEFAULT_SECURE_PORT: u16 = 10259;

fn given(m: &ArgMatches, id: &str) -> bool {
    matches!(
        m.value_source(id),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

impl Options {
    /// Loads and validates the configuration; merges the flags into it.
    pub fn complete(self, matches: &ArgMatches) -> anyhow::Result<Config> {
        let file = match &self.config {
            Some(path) => {
                let p = path.to_string_lossy();
                KubeSchedulerConfiguration::load(&p)?
            }
            None => KubeSchedulerConfiguration::defaulted(),
        };
        let mut kube = self.kube;
        let cc = &file.client_connection;
        if kube.kubeconfig.is_none() && !cc.kubeconfig.is_empty() {
            kube.kubeconfig = Some(PathBuf::from(&cc.kubeconfig));
        }
        if kube.kube_api_qps.is_none() {
            kube.kube_api_qps = cc.qps;
        }
        if kube.kube_api_burst.is_none() {
            kube.kube_api_burst = cc.burst;
        }
        let mut le = self.leader_election;
        let fle = &file.leader_election;
        let dur =
            |v: &Option<String>, field: &str| -> anyhow::Result<Option<std::time::Duration>> {
                v.as_deref()
                    .map(apimachinery::duration::parse_go_duration)
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("leaderElection.{field}: {e}"))
            };
        if !given(matches, "leader_elect") {
            if let Some(v) = fle.leader_elect {
                le.leader_elect = v;
            }
        }
        if !given(matches, "lease_duration") {
            if let Some(d) = dur(&fle.lease_duration, "leaseDuration")? {
                le.lease_duration = d;
            }
        }
        if !given(matches, "renew_deadline") {
            if let Some(d) = dur(&fle.renew_deadline, "renewDeadline")? {
                le.renew_deadline = d;
            }
        }
        if !given(matches, "retry_period") {
            if let Some(d) = dur(&fle.retry_period, "retryPeriod")? {
                le.retry_period = d;
            }
        }
        if !given(matches, "resource_name") && fle.resource_name.is_some() {
            le.resource_name = fle.resource_name.clone();
        }
        if !given(matches, "resource_namespace") {
            if let Some(ns) = &fle.resource_namespace {
                le.resource_namespace = ns.clone();
            }
        }
        if !given(matches, "resource_lock") {
            if let Some(l) = &fle.resource_lock {
                le.resource_lock = l.clone();
            }
        }
        if le.leader_elect {
            le.validate().context("leader election")?;
        }
        Ok(Config {
            file,
            kube,
            leader_election: le,
            serving: self.serving,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use clap::FromArgMatches;

    fn complete(args: &[&str]) -> anyhow::Result<Config> {
        let m = Options::command().try_get_matches_from(args)?;
        Options::from_arg_matches(&m)?.complete(&m)
    }

    #[test]
    fn defaults() {
        let c = complete(&["kube-scheduler"]).unwrap();
        assert!(c.leader_election.leader_elect);
        assert_eq!(c.leader_election.lease_duration.as_secs(), 15);
        assert_eq!(c.leader_election.renew_deadline.as_secs(), 10);
        assert_eq!(c.leader_election.retry_period.as_secs(), 2);
        assert_eq!(c.serving.addr(DEFAULT_SECURE_PORT).unwrap().port(), 10259);
        assert_eq!(c.file.profiles[0].scheduler_name, "default-scheduler");
    }

    #[test]
    fn config_file_and_flag_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(
            &path,
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nclientConnection:\n  kubeconfig: /etc/k/s.conf\n  qps: 20\nleaderElection:\n  leaderElect: false\n  leaseDuration: 30s\nprofiles:\n- schedulerName: a\n- schedulerName: b\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let c = complete(&["kube-scheduler", "--config", p]).unwrap();
        assert_eq!(
            c.kube.kubeconfig.as_deref(),
            Some(std::path::Path::new("/etc/k/s.conf"))
        );
        assert_eq!(c.kube.kube_api_qps, Some(20.0));
        assert!(!c.leader_election.leader_elect);
        assert_eq!(c.leader_election.lease_duration.as_secs(), 30);
        assert_eq!(c.file.profiles.len(), 2);
        let c = complete(&[
            "kube-scheduler",
            "--config",
            p,
            "--leader-elect=true",
            "--kubeconfig",
            "/x",
        ])
        .unwrap();
        assert!(c.leader_election.leader_elect, "the flag wins");
        assert_eq!(
            c.kube.kubeconfig.as_deref(),
            Some(std::path::Path::new("/x"))
        );
    }

    #[test]
    fn malformed_config_fails_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(
            &path,
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n- schedulerName: a\n  percentageOfNodesToScore: 150\n",
        )
        .unwrap();
        let err = complete(&["kube-scheduler", "--config", path.to_str().unwrap()]).unwrap_err();
        assert!(
            format!("{err:#}").contains("profiles[0].percentageOfNodesToScore: Invalid value: 150"),
            "{err:#}"
        );
        let err = complete(&["kube-scheduler", "--config", "/nonexistent.yaml"]).unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent.yaml"), "{err:#}");
    }
}
