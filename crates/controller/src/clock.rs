//! The time controllers decide with (upstream's k8s.io/utils/clock, which
//! the CronJob controller takes as a field so tests can use a fake clock).
//!
//! [`RealClock`] reads the system time. [`FakeClock`] holds a settable
//! instant and announces every step, so a controller that requeues "at the
//! next schedule time" can be woken when a test moves time instead of
//! waiting in real time.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use futures::stream::BoxStream;
use futures::StreamExt;
use jiff::Timestamp;

/// A source of "now".
pub trait Clock: Debug + Send + Sync {
    /// The current instant.
    fn now(&self) -> Timestamp;
    /// A stream that yields whenever time jumps (a fake clock being set);
    /// `None` for a clock that only moves forward on its own.
    fn steps(&self) -> Option<BoxStream<'static, ()>>;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealClock;

impl Clock for RealClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
    fn steps(&self) -> Option<BoxStream<'static, ()>> {
        None
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct FakeClock {
    now: Mutex<Timestamp>,
    tx: tokio::sync::watch::Sender<Timestamp>,
}

impl FakeClock {
    pub fn new(now: Timestamp) -> Arc<Self> {
        let (tx, _) = tokio::sync::watch::channel(now);
        Arc::new(Self {
            now: Mutex::new(now),
            tx,
        })
    }

    /// Sets the time and wakes every listener.
    pub fn set(&self, t: Timestamp) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = t;
        self.tx.send_replace(t);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn steps(&self) -> Option<BoxStream<'static, ()>> {
        let rx = self.tx.subscribe();
        Some(
            tokio_stream::wrappers::WatchStream::from_changes(rx)
                .map(|_| ())
                .boxed(),
        )
    }
}
