//! Exponential back-off per key (upstream's `k8s.io/client-go/util/flowcontrol`
//! `Backoff`, used by the kubelet for CrashLoopBackOff and image pulls:
//! 10 s doubling to 5 min). Times are passed in, so decisions are testable.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

/// Upstream's `backOffPeriod` and `MaxContainerBackOff`.
pub const INITIAL: Duration = Duration::from_secs(10);
pub const MAX: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy)]
struct Entry {
    backoff: Duration,
    last_update: SystemTime,
}

/// Per-key back-off.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    entries: HashMap<String, Entry>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(INITIAL, MAX)
    }
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            entries: HashMap::new(),
        }
    }

    /// An entry untouched for twice the maximum starts over.
    fn expired(&self, e: &Entry, now: SystemTime) -> bool {
        now.duration_since(e.last_update).unwrap_or_default() > self.max * 2
    }

    /// Records one more failure at `now`: the first waits `initial`, each
    /// next one twice the last, up to `max`.
    pub fn next(&mut self, key: &str, now: SystemTime) {
        let backoff = match self.entries.get(key) {
            Some(e) if !self.expired(e, now) => (e.backoff * 2).min(self.max),
            _ => self.initial,
        };
        self.entries.insert(
            key.to_string(),
            Entry {
                backoff,
                last_update: now,
            },
        );
    }

    /// The current back-off of `key`, zero when none.
    pub fn get(&self, key: &str) -> Duration {
        self.entries.get(key).map(|e| e.backoff).unwrap_or_default()
    }

    /// When `event_time` (say, the container's exit) is less than the
    /// current back-off ago, the time left; `None` when not in back-off.
    pub fn in_backoff_since(
        &self,
        key: &str,
        event_time: SystemTime,
        now: SystemTime,
    ) -> Option<Duration> {
        let e = self.entries.get(key)?;
        if self.expired(e, now) {
            return None;
        }
        let since = now.duration_since(event_time).unwrap_or_default();
        (since < e.backoff).then(|| e.backoff - since)
    }

    /// Whether the last failure of `key` is less than its back-off ago
    /// (upstream's `IsInBackOffSinceUpdate`): the time left.
    pub fn in_backoff_since_update(&self, key: &str, now: SystemTime) -> Option<Duration> {
        let e = self.entries.get(key)?;
        self.in_backoff_since(key, e.last_update, now)
    }

    /// Forgets `key` (the pod is gone).
    pub fn reset(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// Forgets every key starting with `prefix`.
    pub fn reset_prefix(&mut self, prefix: &str) {
        self.entries.retain(|k, _| !k.starts_with(prefix));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_and_starts_over_after_quiet() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut b = Backoff::default();
        assert_eq!(b.in_backoff_since("k", t0, t0), None);
        let mut want = vec![10, 20, 40, 80, 160, 300, 300];
        want.reverse();
        let mut t = t0;
        while let Some(w) = want.pop() {
            b.next("k", t);
            assert_eq!(b.get("k"), Duration::from_secs(w));
            t += Duration::from_secs(1);
        }
        // Exited 5 s ago with a 300 s back-off: 295 s left.
        assert_eq!(
            b.in_backoff_since("k", t - Duration::from_secs(5), t),
            Some(Duration::from_secs(295))
        );
        assert_eq!(
            b.in_backoff_since("k", t - Duration::from_secs(301), t),
            None
        );
        // Quiet for more than twice the cap: back to 10 s.
        let later = t + Duration::from_secs(601);
        assert_eq!(b.in_backoff_since("k", later, later), None);
        b.next("k", later);
        assert_eq!(b.get("k"), INITIAL);
    }
}
