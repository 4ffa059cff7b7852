//! Node-pressure eviction (upstream's `pkg/kubelet/eviction`): every
//! [`MONITORING_INTERVAL`] the node's memory, filesystems and process
//! count are read from the stats [`crate::stats::StatsProvider`], compared
//! with the `evictionHard`/`evictionSoft` thresholds, reported as the
//! MemoryPressure/DiskPressure/PIDPressure conditions (held for
//! `evictionPressureTransitionPeriod` after the last sighting), and acted on:
//! node-level resources first (unused images under disk pressure), then one pod per interval, ranked like upstream
//! ([`rank`]), killed with `Failed`/`Evicted` and upstream's message. Pods
//! whose emptyDir or ephemeral-storage use exceeds their limits are evicted
//! too. New pods are refused while the node is under pressure
//! ([`manager::EvictionManager::admit`]).
//!
//! This file holds the thresholds and their parsing (upstream's
//! `eviction/api/types.go` and `ParseThresholdConfig`).

pub mod manager;
pub mod rank;
pub mod signals;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use apimachinery::quantity::Quantity;

/// How often the manager looks (upstream's `evictionMonitoringPeriod`).
pub const MONITORING_INTERVAL: Duration = Duration::from_secs(10);

/// What a threshold watches (upstream's `evictionapi.Signal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    MemoryAvailable,
    NodeFsAvailable,
    NodeFsInodesFree,
    ImageFsAvailable,
    ImageFsInodesFree,
    PidAvailable,
}

impl Signal {
    pub const ALL: [Signal; 6] = [
        Signal::MemoryAvailable,
        Signal::NodeFsAvailable,
        Signal::NodeFsInodesFree,
        Signal::ImageFsAvailable,
        Signal::ImageFsInodesFree,
        Signal::PidAvailable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Signal::MemoryAvailable => "memory.available",
            Signal::NodeFsAvailable => "nodefs.available",
            Signal::NodeFsInodesFree => "nodefs.inodesFree",
            Signal::ImageFsAvailable => "imagefs.available",
            Signal::ImageFsInodesFree => "imagefs.inodesFree",
            Signal::PidAvailable => "pid.available",
        }
    }

    pub fn parse(name: &str) -> Option<Signal> {
        Signal::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The node condition the signal drives (upstream's `signalToNodeCondition`).
    pub fn condition(self) -> &'static str {
        match self {
            Signal::MemoryAvailable => MEMORY_PRESSURE,
            Signal::PidAvailable => PID_PRESSURE,
            _ => DISK_PRESSURE,
        }
    }

    /// The resource the signal starves (upstream's `signalToResource`), as
    /// eviction messages name it.
    pub fn resource(self) -> &'static str {
        match self {
            Signal::MemoryAvailable => "memory",
            Signal::NodeFsAvailable | Signal::ImageFsAvailable => "ephemeral-storage",
            Signal::NodeFsInodesFree | Signal::ImageFsInodesFree => "inodes",
            Signal::PidAvailable => "pids",
        }
    }

    /// Whether the figures are bytes (printed in binary SI) or counts.
    fn is_bytes(self) -> bool {
        matches!(
            self,
            Signal::MemoryAvailable | Signal::NodeFsAvailable | Signal::ImageFsAvailable
        )
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

pub const MEMORY_PRESSURE: &str = "MemoryPressure";
pub const DISK_PRESSURE: &str = "DiskPressure";
pub const PID_PRESSURE: &str = "PIDPressure";

/// A threshold's value: an absolute quantity or a share of capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ThresholdValue {
    Quantity(i64),
    /// A fraction in (0, 1].
    Percentage(f64),
}

impl ThresholdValue {
    /// The value against `capacity` (upstream's `GetThresholdQuantity`).
    pub fn quantity(&self, capacity: i64) -> i64 {
        match *self {
            ThresholdValue::Quantity(q) => q,
            ThresholdValue::Percentage(p) => (capacity as f64 * p) as i64,
        }
    }
}

/// One eviction threshold (upstream's `evictionapi.Threshold`; the only
/// operator is LessThan).
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub signal: Signal,
    pub value: ThresholdValue,
    /// Zero for a hard threshold.
    pub grace_period: Duration,
    /// `evictionMinimumReclaim`: how far past the threshold to reclaim.
    pub min_reclaim: Option<ThresholdValue>,
}

impl Threshold {
    pub fn is_hard(&self) -> bool {
        self.grace_period.is_zero()
    }
}

/// `n` bytes as upstream prints a binary-SI quantity (`100Mi`, `1500`).
pub fn format_bytes(n: i64) -> String {
    quantity_text(n, apimachinery::quantity::Format::BinarySI)
}

/// Formats `n` of `signal`'s unit as upstream prints quantities (binary SI
/// for bytes, decimal SI for counts).
pub fn format_quantity(signal: Signal, n: i64) -> String {
    use apimachinery::quantity::Format;
    let format = if signal.is_bytes() {
        Format::BinarySI
    } else {
        Format::DecimalSI
    };
    quantity_text(n, format)
}

fn quantity_text(n: i64, format: apimachinery::quantity::Format) -> String {
    Quantity::from_nanos(i128::from(n) * 1_000_000_000, format).to_string()
}

/// Upstream's `DefaultEvictionHard` (Linux).
pub fn default_eviction_hard() -> BTreeMap<String, String> {
    [
        ("memory.available", "100Mi"),
        ("nodefs.available", "10%"),
        ("nodefs.inodesFree", "5%"),
        ("imagefs.available", "15%"),
        ("imagefs.inodesFree", "5%"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The eviction part of the kubelet's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct EvictionConfig {
    /// Hard and soft thresholds (upstream's `Config.Thresholds`).
    pub thresholds: Vec<Threshold>,
    /// `evictionPressureTransitionPeriod` (5 m).
    pub pressure_transition_period: Duration,
    /// `evictionMaxPodGracePeriod`: the grace of soft evictions (0: the pod's).
    pub max_pod_grace_period_seconds: i64,
    /// `localStorageCapacityIsolation` (true): emptyDir sizeLimit and
    /// ephemeral-storage limits are enforced.
    pub local_storage_capacity_isolation: bool,
}

impl Default for EvictionConfig {
    fn default() -> Self {
        Self {
            thresholds: parse_thresholds(
                &default_eviction_hard(),
                &BTreeMap::new(),
                &BTreeMap::new(),
                &BTreeMap::new(),
            )
            .unwrap_or_default(),
            pressure_transition_period: Duration::from_secs(300),
            max_pod_grace_period_seconds: 0,
            local_storage_capacity_isolation: true,
        }
    }
}

impl EvictionConfig {
    /// The hard threshold of `signal`, if any (for node allocatable).
    pub fn hard(&self, signal: Signal) -> Option<&Threshold> {
        self.thresholds
            .iter()
            .find(|t| t.signal == signal && t.is_hard())
    }
}

fn parse_value(signal: &str, value: &str) -> Result<ThresholdValue, String> {
    if let Some(p) = value.strip_suffix('%') {
        let n: f64 = p
            .parse()
            .map_err(|_| format!("invalid percentage {value:?} for {signal}"))?;
        if !(n > 0.0 && n <= 100.0) {
            return Err(format!(
                "eviction percentage threshold {signal} must be in range (0%, 100%]: {value}"
            ));
        }
        return Ok(ThresholdValue::Percentage(n / 100.0));
    }
    let q =
        Quantity::parse(value).ok_or_else(|| format!("invalid quantity {value:?} for {signal}"))?;
    if q.nanos() < 0 {
        return Err(format!(
            "eviction threshold {signal} must be positive: {value}"
        ));
    }
    Ok(ThresholdValue::Quantity(
        i64::try_from(q.nanos() / 1_000_000_000).unwrap_or(i64::MAX),
    ))
}

fn parse_signal(name: &str) -> Result<Signal, String> {
    Signal::parse(name).ok_or_else(|| format!("unsupported eviction signal {name}"))
}

/// Upstream's `ParseThresholdConfig`: hard thresholds, soft ones (each
/// needing a grace period), minimum reclaims on either.
pub fn parse_thresholds(
    hard: &BTreeMap<String, String>,
    soft: &BTreeMap<String, String>,
    soft_grace: &BTreeMap<String, String>,
    min_reclaim: &BTreeMap<String, String>,
) -> Result<Vec<Threshold>, String> {
    let mut reclaims = BTreeMap::new();
    for (k, v) in min_reclaim {
        let s = parse_signal(k)?;
        reclaims.insert(s, parse_value(k, v)?);
    }
    let mut graces = BTreeMap::new();
    for (k, v) in soft_grace {
        let s = parse_signal(k)?;
        let d = apimachinery::duration::parse_go_duration(v)
            .map_err(|_| format!("time: invalid duration {v:?}"))?;
        graces.insert(s, d);
    }
    let mut out = Vec::new();
    for (k, v) in hard {
        let signal = parse_signal(k)?;
        out.push(Threshold {
            signal,
            value: parse_value(k, v)?,
            grace_period: Duration::ZERO,
            min_reclaim: reclaims.get(&signal).copied(),
        });
    }
    for (k, v) in soft {
        let signal = parse_signal(k)?;
        let grace = *graces.get(&signal).ok_or_else(|| {
            format!("grace period must be specified for the soft eviction threshold {k}")
        })?;
        if grace.is_zero() {
            return Err(format!(
                "grace period must be positive for the soft eviction threshold {k}"
            ));
        }
        out.push(Threshold {
            signal,
            value: parse_value(k, v)?,
            grace_period: grace,
            min_reclaim: reclaims.get(&signal).copied(),
        });
    }
    Ok(out)
}

/// `k<sep>v,k<sep>v` into a map (upstream's map-string-string flags).
fn parse_map(flag: &str, sep: char) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for part in flag.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once(sep)
            .ok_or_else(|| format!("malformed pair {part:?}, expect string{sep}string"))?;
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(out)
}

/// A `--eviction-hard`-style flag: `memory.available<100Mi,nodefs.available<10%`.
pub fn parse_statements(flag: &str) -> Result<BTreeMap<String, String>, String> {
    parse_map(flag, '<')
}

/// A `--eviction-soft-grace-period`-style flag: `memory.available=1m30s`.
pub fn parse_pairs(flag: &str) -> Result<BTreeMap<String, String>, String> {
    parse_map(flag, '=')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_upstreams_hard_thresholds() {
        let c = EvictionConfig::default();
        assert_eq!(c.thresholds.len(), 5);
        let mem = c.hard(Signal::MemoryAvailable).unwrap();
        assert_eq!(mem.value, ThresholdValue::Quantity(100 << 20));
        let nodefs = c.hard(Signal::NodeFsAvailable).unwrap();
        assert_eq!(nodefs.value, ThresholdValue::Percentage(0.1));
        assert_eq!(nodefs.value.quantity(1000), 100);
        assert_eq!(c.pressure_transition_period, Duration::from_secs(300));
    }

    #[test]
    fn flags_and_soft_thresholds_parse_like_upstream() {
        let hard = parse_statements("memory.available<1Gi, nodefs.inodesFree<5%").unwrap();
        let soft = parse_statements("memory.available<2Gi").unwrap();
        let grace = parse_pairs("memory.available=1m30s").unwrap();
        let t =
            parse_thresholds(&hard, &soft, &grace, &map(&[("memory.available", "500Mi")])).unwrap();
        assert_eq!(t.len(), 3);
        let soft = t.iter().find(|t| !t.is_hard()).unwrap();
        assert_eq!(soft.grace_period, Duration::from_secs(90));
        assert_eq!(soft.value, ThresholdValue::Quantity(2 << 30));
        assert_eq!(soft.min_reclaim, Some(ThresholdValue::Quantity(500 << 20)));

        assert_eq!(
            parse_thresholds(&map(&[]), &soft_map(), &map(&[]), &map(&[])).unwrap_err(),
            "grace period must be specified for the soft eviction threshold memory.available"
        );
        assert_eq!(
            parse_thresholds(
                &map(&[("cpu.available", "1")]),
                &map(&[]),
                &map(&[]),
                &map(&[])
            )
            .unwrap_err(),
            "unsupported eviction signal cpu.available"
        );
        assert!(parse_thresholds(
            &map(&[("nodefs.available", "120%")]),
            &map(&[]),
            &map(&[]),
            &map(&[])
        )
        .is_err());
        assert!(parse_statements("memory.available=1Gi").is_err());
    }

    fn soft_map() -> BTreeMap<String, String> {
        map(&[("memory.available", "1Gi")])
    }

    #[test]
    fn quantities_print_as_upstream() {
        assert_eq!(format_quantity(Signal::MemoryAvailable, 100 << 20), "100Mi");
        assert_eq!(format_bytes(1500), "1500");
        assert_eq!(format_quantity(Signal::NodeFsInodesFree, 150_000), "150k");
    }
}
