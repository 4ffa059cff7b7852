//! Signal observations and threshold bookkeeping (upstream's
//! `makeSignalObservations`, `thresholdsMet`, `thresholdsFirstObservedAt`,
//! `nodeConditionsObservedSince` in `eviction/helpers.go`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::{Signal, Threshold};
use crate::stats::summary::{FsStats, Summary};

/// What the node has of one signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    pub available: i64,
    pub capacity: i64,
}

pub type Observations = BTreeMap<Signal, Observation>;

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn fs_observations(fs: &FsStats, bytes: Signal, inodes: Signal, out: &mut Observations) {
    if let (Some(a), Some(c)) = (fs.available_bytes, fs.capacity_bytes) {
        out.insert(
            bytes,
            Observation {
                available: clamp(a),
                capacity: clamp(c),
            },
        );
    }
    if let (Some(a), Some(c)) = (fs.inodes_free, fs.inodes) {
        out.insert(
            inodes,
            Observation {
                available: clamp(a),
                capacity: clamp(c),
            },
        );
    }
}

/// The node's signals from a full summary: memory available (capacity less
/// the working set), the node and image filesystems' free bytes and inodes,
/// and free process ids.
pub fn observe(summary: &Summary) -> Observations {
    let mut out = Observations::new();
    let node = &summary.node;
    if let Some(m) = &node.memory {
        if let (Some(a), Some(ws)) = (m.available_bytes, m.working_set_bytes) {
            out.insert(
                Signal::MemoryAvailable,
                Observation {
                    available: clamp(a),
                    capacity: clamp(a.saturating_add(ws)),
                },
            );
        }
    }
    if let Some(fs) = &node.fs {
        fs_observations(
            fs,
            Signal::NodeFsAvailable,
            Signal::NodeFsInodesFree,
            &mut out,
        );
    }
    if let Some(fs) = node.runtime.as_ref().and_then(|r| r.image_fs.as_ref()) {
        fs_observations(
            fs,
            Signal::ImageFsAvailable,
            Signal::ImageFsInodesFree,
            &mut out,
        );
    }
    if let Some(r) = &node.rlimit {
        if let (Some(max), Some(cur)) = (r.maxpid, r.curproc) {
            out.insert(
                Signal::PidAvailable,
                Observation {
                    available: clamp(max) - clamp(cur),
                    capacity: clamp(max),
                },
            );
        }
    }
    out
}

/// The thresholds `observations` cross; with `enforce_min_reclaim`, the
/// bar is raised by each threshold's minimum reclaim (upstream's
/// `thresholdsMet`). Thresholds without an observation are skipped.
pub fn thresholds_met<'a>(
    thresholds: impl IntoIterator<Item = &'a Threshold>,
    observations: &Observations,
    enforce_min_reclaim: bool,
) -> Vec<Threshold> {
    let mut out = Vec::new();
    for t in thresholds {
        let Some(o) = observations.get(&t.signal) else {
            continue;
        };
        let mut bar = t.value.quantity(o.capacity);
        if enforce_min_reclaim {
            if let Some(r) = &t.min_reclaim {
                bar = bar.saturating_add(r.quantity(o.capacity));
            }
        }
        if bar > o.available {
            out.push(t.clone());
        }
    }
    out
}

/// Adds `b`'s thresholds missing from `a`.
pub fn merge(mut a: Vec<Threshold>, b: Vec<Threshold>) -> Vec<Threshold> {
    for t in b {
        if !a.contains(&t) {
            a.push(t);
        }
    }
    a
}

/// Threshold bookkeeping across synchronizations.
#[derive(Debug, Default)]
pub struct History {
    /// When each currently met threshold was first seen met.
    first_observed: Vec<(Threshold, Instant)>,
    /// When each condition was last seen.
    condition_last_observed: BTreeMap<&'static str, Instant>,
    /// Thresholds met past their grace period and not yet resolved
    /// (past their minimum reclaim).
    pub met: Vec<Threshold>,
}

impl History {
    /// Records the thresholds met `now`; returns the node conditions to
    /// report (each seen within `transition`) and the thresholds to act on
    /// (grace periods passed).
    pub fn record(
        &mut self,
        met: &[Threshold],
        now: Instant,
        transition: Duration,
    ) -> (BTreeSet<&'static str>, Vec<Threshold>) {
        let first: Vec<(Threshold, Instant)> = met
            .iter()
            .map(|t| {
                let at = self
                    .first_observed
                    .iter()
                    .find(|(o, _)| o == t)
                    .map_or(now, |(_, at)| *at);
                (t.clone(), at)
            })
            .collect();
        self.first_observed = first;
        for t in met {
            self.condition_last_observed
                .insert(t.signal.condition(), now);
        }
        let conditions = self
            .condition_last_observed
            .iter()
            .filter(|(_, at)| now.duration_since(**at) < transition)
            .map(|(c, _)| *c)
            .collect();
        let act: Vec<Threshold> = self
            .first_observed
            .iter()
            .filter(|(t, at)| now.duration_since(*at) >= t.grace_period)
            .map(|(t, _)| t.clone())
            .collect();
        self.met = act.clone();
        (conditions, act)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::eviction::ThresholdValue;

    fn t(signal: Signal, value: ThresholdValue, grace: u64) -> Threshold {
        Threshold {
            signal,
            value,
            grace_period: Duration::from_secs(grace),
            min_reclaim: None,
        }
    }

    fn obs(signal: Signal, available: i64, capacity: i64) -> Observations {
        Observations::from([(
            signal,
            Observation {
                available,
                capacity,
            },
        )])
    }

    #[test]
    fn thresholds_compare_available_with_the_value_or_share() {
        let mem = t(Signal::MemoryAvailable, ThresholdValue::Quantity(100), 0);
        let fs = t(Signal::NodeFsAvailable, ThresholdValue::Percentage(0.1), 0);
        assert_eq!(
            thresholds_met([&mem], &obs(Signal::MemoryAvailable, 99, 1000), false),
            vec![mem.clone()]
        );
        assert!(thresholds_met([&mem], &obs(Signal::MemoryAvailable, 100, 1000), false).is_empty());
        assert_eq!(
            thresholds_met([&fs], &obs(Signal::NodeFsAvailable, 99, 1000), false).len(),
            1
        );
        // No observation, no decision.
        assert!(thresholds_met([&fs], &obs(Signal::MemoryAvailable, 0, 1000), false).is_empty());
        // Minimum reclaim raises the bar for resolving.
        let mut r = mem.clone();
        r.min_reclaim = Some(ThresholdValue::Quantity(50));
        assert_eq!(
            thresholds_met([&r], &obs(Signal::MemoryAvailable, 120, 1000), true).len(),
            1
        );
        assert!(thresholds_met([&r], &obs(Signal::MemoryAvailable, 120, 1000), false).is_empty());
    }

    #[test]
    fn soft_thresholds_wait_their_grace_and_conditions_outlast_the_pressure() {
        let soft = t(Signal::MemoryAvailable, ThresholdValue::Quantity(100), 30);
        let mut h = History::default();
        let t0 = Instant::now();
        let transition = Duration::from_secs(300);
        let (conds, act) = h.record(std::slice::from_ref(&soft), t0, transition);
        assert_eq!(conds, BTreeSet::from(["MemoryPressure"]));
        assert!(act.is_empty());
        let (_, act) = h.record(
            std::slice::from_ref(&soft),
            t0 + Duration::from_secs(31),
            transition,
        );
        assert_eq!(act, vec![soft.clone()]);
        // Pressure gone: the condition stays for the transition period.
        let (conds, act) = h.record(&[], t0 + Duration::from_secs(40), transition);
        assert_eq!(conds, BTreeSet::from(["MemoryPressure"]));
        assert!(act.is_empty());
        let (conds, _) = h.record(&[], t0 + Duration::from_secs(332), transition);
        assert!(conds.is_empty());
        // Met again: the grace period starts over.
        let (_, act) = h.record(
            std::slice::from_ref(&soft),
            t0 + Duration::from_secs(340),
            transition,
        );
        assert!(act.is_empty());
    }
}
