//! Leader election on a `coordination.k8s.io/v1` Lease (upstream's
//! `client-go/tools/leaderelection`: leaderelection.go and
//! resourcelock/leaselock.go). A candidate acquires the Lease when it is
//! free or its holder has not renewed it for `leaseDuration` (measured on
//! this candidate's own clock from when it last saw the record change, so
//! clock skew between machines does not matter), renews it every
//! `retryPeriod`, and gives up leadership when no renewal succeeded within
//! `renewDeadline`. Like upstream, a component that loses leadership stops
//! its work and exits.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apimachinery::duration::parse_go_duration;
use component_base::healthz::Check;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

/// Upstream's leader-election flags.
#[derive(Debug, Clone, clap::Args)]
pub struct LeaderElectionOptions {
    /// Start a leader election client and gain leadership before executing
    /// the main loop. Enable this when running replicated components for
    /// high availability.
    #[arg(long = "leader-elect", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub leader_elect: bool,
    /// The duration that non-leader candidates will wait after observing a
    /// leadership renewal until attempting to acquire leadership.
    #[arg(long = "leader-elect-lease-duration", default_value = "15s", value_parser = parse_go_duration)]
    pub lease_duration: Duration,
    /// The interval between attempts by the acting master to renew a
    /// leadership slot before it stops leading.
    #[arg(long = "leader-elect-renew-deadline", default_value = "10s", value_parser = parse_go_duration)]
    pub renew_deadline: Duration,
    /// The duration the clients should wait between attempting acquisition
    /// and renewal of a leadership.
    #[arg(long = "leader-elect-retry-period", default_value = "2s", value_parser = parse_go_duration)]
    pub retry_period: Duration,
    /// The type of resource object that is used for locking (only `leases`).
    #[arg(long = "leader-elect-resource-lock", default_value = "leases")]
    pub resource_lock: String,
    /// The name of resource object that is used for locking (default: the component's name).
    #[arg(long = "leader-elect-resource-name")]
    pub resource_name: Option<String>,
    /// The namespace of resource object that is used for locking.
    #[arg(
        long = "leader-elect-resource-namespace",
        default_value = "kube-system"
    )]
    pub resource_namespace: String,
}

impl Default for LeaderElectionOptions {
    fn default() -> Self {
        Self {
            leader_elect: true,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            resource_lock: "leases".into(),
            resource_name: None,
            resource_namespace: "kube-system".into(),
        }
    }
}

/// Why election stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum LeaderElectionError {
    /// The flags are inconsistent (upstream's validation messages).
    #[error("{0}")]
    Invalid(String),
    /// No renewal succeeded within the renew deadline.
    #[error("leaderelection lost: lease {0}")]
    Lost(String),
}

impl LeaderElectionOptions {
    /// Upstream's checks: leaseDuration > renewDeadline > retryPeriod × 1.2.
    pub fn validate(&self) -> Result<(), LeaderElectionError> {
        if self.resource_lock != "leases" {
            return Err(LeaderElectionError::Invalid(format!(
                "--leader-elect-resource-lock: unsupported lock type {:?} (only \"leases\")",
                self.resource_lock
            )));
        }
        if self.lease_duration <= self.renew_deadline {
            return Err(LeaderElectionError::Invalid(
                "leaseDuration must be greater than renewDeadline".into(),
            ));
        }
        if self.renew_deadline.as_secs_f64() <= JITTER * self.retry_period.as_secs_f64() {
            return Err(LeaderElectionError::Invalid(
                "renewDeadline must be greater than retryPeriod*JitterFactor".into(),
            ));
        }
        Ok(())
    }
}

const JITTER: f64 = 1.2;
/// Upstream's healthz adaptor tolerates this much lateness past the lease.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(20);

/// The holder's identity as upstream components build it: `hostname_uuid`.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}_{}", uuid::Uuid::new_v4())
}

#[derive(Debug, Default)]
struct Observed {
    record: Option<LeaseSpec>,
    at: Option<Instant>,
    leading: bool,
}

/// One candidate for one Lease.
#[derive(Clone)]
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    opts: LeaderElectionOptions,
    observed: Arc<Mutex<Observed>>,
}

impl LeaderElector {
    /// `default_name` is the component's Lease name (`kube-scheduler`, …)
    /// used unless `--leader-elect-resource-name` is given.
    pub fn new(
        client: kube::Client,
        opts: &LeaderElectionOptions,
        default_name: &str,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            api: Api::namespaced(client, &opts.resource_namespace),
            name: opts
                .resource_name
                .clone()
                .unwrap_or_else(|| default_name.to_string()),
            identity: identity.into(),
            opts: opts.clone(),
            observed: Arc::default(),
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Whether this candidate currently holds the Lease.
    pub fn is_leader(&self) -> bool {
        self.lock().leading
    }

    /// The `leaderElection` healthz check: fails when this candidate leads
    /// but has not renewed for longer than the lease plus 20 s.
    pub fn health_check(&self) -> Check {
        let me = self.clone();
        Check::new("leaderElection", move || {
            let o = me.lock();
            match (o.leading, o.at) {
                (true, Some(at)) if at.elapsed() > me.opts.lease_duration + HEALTH_TIMEOUT => Err(
                    format!("failed election to renew leadership on lease {}", me.name),
                ),
                _ => Ok(()),
            }
        })
    }

    /// Runs `work` while leading. Without `--leader-elect` the work runs at
    /// once. Returns when the work ends, or with [`LeaderElectionError::Lost`]
    /// when leadership is lost (the work is dropped; the caller exits).
    pub async fn run<F: Future<Output = ()>>(&self, work: F) -> Result<(), LeaderElectionError> {
        if !self.opts.leader_elect {
            work.await;
            return Ok(());
        }
        self.opts.validate()?;
        self.acquire().await;
        tokio::select! {
            () = work => Ok(()),
            e = self.renew() => Err(e),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Observed> {
        self.observed.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lease_ref(&self) -> String {
        format!("{}/{}", self.opts.resource_namespace, self.name)
    }

    async fn acquire(&self) {
        tracing::info!(lease = %self.lease_ref(), "attempting to acquire leader lease");
        loop {
            if self.try_acquire_or_renew().await {
                tracing::info!(lease = %self.lease_ref(), identity = %self.identity, "successfully acquired lease");
                return;
            }
            tokio::time::sleep(jittered(self.opts.retry_period)).await;
        }
    }

    async fn renew(&self) -> LeaderElectionError {
        loop {
            tokio::time::sleep(self.opts.retry_period).await;
            let deadline = Instant::now() + self.opts.renew_deadline;
            let renewed = loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break false;
                }
                if let Ok(true) = tokio::time::timeout(left, self.try_acquire_or_renew()).await {
                    break true;
                }
                tokio::time::sleep(self.opts.retry_period.min(left)).await;
            };
            if !renewed {
                self.lock().leading = false;
                tracing::error!(lease = %self.lease_ref(), "failed to renew lease: timed out waiting for the condition");
                return LeaderElectionError::Lost(self.lease_ref());
            }
        }
    }

    /// One attempt; true when this candidate holds the Lease afterwards.
    async fn try_acquire_or_renew(&self) -> bool {
        let now = Timestamp::now();
        let current = match self.api.get_opt(&self.name).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(lease = %self.lease_ref(), error = %e, "error retrieving resource lock");
                return false;
            }
        };
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    namespace: Some(self.opts.resource_namespace.clone()),
                    ..Default::default()
                },
                spec: Some(next_record(
                    None,
                    &self.identity,
                    self.opts.lease_duration,
                    now,
                )),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.observe(created.spec, true);
                    true
                }
                Err(e) => {
                    tracing::debug!(error = %e, "error initially creating leader election record");
                    false
                }
            };
        };
        let record = lease.spec.clone().unwrap_or_default();
        let observed_at = {
            let mut o = self.lock();
            if o.record.as_ref() != Some(&record) || o.at.is_none() {
                o.record = Some(record.clone());
                o.at = Some(Instant::now());
            }
            o.at.unwrap_or_else(Instant::now)
        };
        let held_by_other = record
            .holder_identity
            .as_deref()
            .is_some_and(|h| !h.is_empty() && h != self.identity);
        let duration = record
            .lease_duration_seconds
            .map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(0)))
            .unwrap_or(self.opts.lease_duration);
        if held_by_other && observed_at.elapsed() < duration {
            tracing::trace!(lease = %self.lease_ref(), holder = ?record.holder_identity, "lock is held and has not yet expired");
            return false;
        }
        lease.spec = Some(next_record(
            Some(&record),
            &self.identity,
            self.opts.lease_duration,
            now,
        ));
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(updated) => {
                self.observe(updated.spec, true);
                true
            }
            Err(e) => {
                tracing::debug!(lease = %self.lease_ref(), error = %e, "failed to update lock");
                false
            }
        }
    }

    fn observe(&self, record: Option<LeaseSpec>, leading: bool) {
        let mut o = self.lock();
        o.record = record;
        o.at = Some(Instant::now());
        o.leading = leading;
    }
}

/// The record after this candidate takes or renews the Lease: acquireTime
/// and leaseTransitions carry over on renewal and change on takeover.
fn next_record(
    old: Option<&LeaseSpec>,
    identity: &str,
    lease_duration: Duration,
    now: Timestamp,
) -> LeaseSpec {
    let seconds = i32::try_from(lease_duration.as_secs()).unwrap_or(i32::MAX);
    let renewing = old.is_some_and(|o| o.holder_identity.as_deref() == Some(identity));
    let transitions = old.and_then(|o| o.lease_transitions).unwrap_or(0);
    LeaseSpec {
        holder_identity: Some(identity.to_string()),
        lease_duration_seconds: Some(seconds),
        acquire_time: match old {
            Some(o) if renewing => o.acquire_time.clone(),
            _ => Some(MicroTime(now)),
        },
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(match old {
            None => 0,
            Some(_) if renewing => transitions,
            Some(_) => transitions + 1,
        }),
        ..Default::default()
    }
}

fn jittered(d: Duration) -> Duration {
    // wait.JitterUntil: d plus up to JITTER × d.
    d.mul_f64(1.0 + rand::random::<f64>() * JITTER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keep_acquire_time_on_renewal_and_count_takeovers() {
        let t0 = Timestamp::now();
        let first = next_record(None, "a", Duration::from_secs(15), t0);
        assert_eq!(first.lease_transitions, Some(0));
        assert_eq!(first.lease_duration_seconds, Some(15));
        let t1 = t0 + k8s_openapi::jiff::SignedDuration::from_secs(2);
        let renewed = next_record(Some(&first), "a", Duration::from_secs(15), t1);
        assert_eq!(renewed.acquire_time, first.acquire_time);
        assert_eq!(renewed.renew_time, Some(MicroTime(t1)));
        assert_eq!(renewed.lease_transitions, Some(0));
        let taken = next_record(Some(&renewed), "b", Duration::from_secs(15), t1);
        assert_eq!(taken.holder_identity.as_deref(), Some("b"));
        assert_eq!(taken.acquire_time, Some(MicroTime(t1)));
        assert_eq!(taken.lease_transitions, Some(1));
    }

    #[test]
    fn validation_like_upstream() {
        let ok = LeaderElectionOptions::default();
        assert!(ok.validate().is_ok());
        let bad = LeaderElectionOptions {
            renew_deadline: Duration::from_secs(15),
            ..Default::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("leaseDuration"));
        let bad = LeaderElectionOptions {
            retry_period: Duration::from_secs(9),
            ..Default::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("retryPeriod"));
    }
}
