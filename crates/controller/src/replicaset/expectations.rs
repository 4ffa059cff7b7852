//! Expectations (upstream's pkg/controller/controller_utils.go
//! `ControllerExpectations`/`UIDTrackingControllerExpectations`): after a
//! controller creates or deletes pods it must not act again until its cache
//! has seen those writes, or it would create extra pods or delete wanted
//! ones.
//!
//! Upstream counts adds and deletes in event handlers. Here the
//! expectation is the set of pod uids written, checked against the cache
//! at the next sync: a created uid must be in the cache, a deleted one
//! gone or terminating. Both ways the controller waits for its own writes;
//! this way a restart starts from an empty record and the cache alone
//! (the rebuilt state) decides, and an expectation never waits for an
//! event it missed. Like upstream, a record older than 5 minutes is
//! dropped, so a lost write cannot wedge the controller.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upstream's `ExpectationsTimeout`.
pub const TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[derive(Debug)]
struct Record {
    creates: HashSet<String>,
    deletes: HashSet<String>,
    at: Instant,
}

/// Per-controller-key expectations.
#[derive(Debug, Default)]
pub struct Expectations {
    records: Mutex<HashMap<String, Record>>,
}

/// What the cache says about one pod uid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Absent,
    Present,
    Terminating,
}

impl Expectations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Pods just created for `key`.
    pub fn expect_creations(&self, key: &str, uids: impl IntoIterator<Item = String>) {
        let mut r = self.lock();
        let rec = r.entry(key.to_string()).or_insert_with(|| Record {
            creates: HashSet::new(),
            deletes: HashSet::new(),
            at: Instant::now(),
        });
        rec.creates.extend(uids);
        rec.at = Instant::now();
    }

    /// Pods just deleted for `key`.
    pub fn expect_deletions(&self, key: &str, uids: impl IntoIterator<Item = String>) {
        let mut r = self.lock();
        let rec = r.entry(key.to_string()).or_insert_with(|| Record {
            creates: HashSet::new(),
            deletes: HashSet::new(),
            at: Instant::now(),
        });
        rec.deletes.extend(uids);
        rec.at = Instant::now();
    }

    /// Upstream's `SatisfiedExpectations`: whether the cache has caught up
    /// with every write for `key` (or the record expired). Observed
    /// entries are dropped.
    pub fn satisfied(&self, key: &str, seen: impl Fn(&str) -> Seen) -> bool {
        let mut r = self.lock();
        let Some(rec) = r.get_mut(key) else {
            return true;
        };
        rec.creates.retain(|uid| seen(uid) == Seen::Absent);
        rec.deletes.retain(|uid| seen(uid) == Seen::Present);
        if rec.creates.is_empty() && rec.deletes.is_empty() || rec.at.elapsed() > TIMEOUT {
            r.remove(key);
            return true;
        }
        false
    }

    /// The controller is gone: forget its record.
    pub fn delete(&self, key: &str) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creations_wait_for_the_cache() {
        let e = Expectations::default();
        assert!(e.satisfied("rs", |_| Seen::Absent), "no record: satisfied");
        e.expect_creations("rs", ["a".to_string(), "b".to_string()]);
        assert!(!e.satisfied("rs", |_| Seen::Absent));
        assert!(!e.satisfied("rs", |u| if u == "a" {
            Seen::Present
        } else {
            Seen::Absent
        }));
        // A created pod seen already terminating counts as observed too.
        assert!(e.satisfied("rs", |u| if u == "b" {
            Seen::Terminating
        } else {
            Seen::Absent
        }));
    }

    #[test]
    fn deletions_wait_until_gone_or_terminating() {
        let e = Expectations::default();
        e.expect_deletions("rs", ["a".to_string(), "b".to_string()]);
        assert!(!e.satisfied("rs", |_| Seen::Present));
        assert!(!e.satisfied("rs", |u| if u == "a" {
            Seen::Absent
        } else {
            Seen::Present
        }));
        assert!(e.satisfied("rs", |_| Seen::Terminating));
    }

    #[test]
    fn keys_are_independent() {
        let e = Expectations::default();
        e.expect_creations("one", ["a".to_string()]);
        assert!(e.satisfied("two", |_| Seen::Absent));
        assert!(!e.satisfied("one", |_| Seen::Absent));
        e.delete("one");
        assert!(e.satisfied("one", |_| Seen::Absent));
    }
}
