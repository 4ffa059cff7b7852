//! A queue of keys for controllers whose work items are not objects of one
//! kind (the garbage collector's graph nodes), so kube-rs's `Controller`
//! does not fit. Delays and de-duplication are kube-rs's
//! [`scheduler`](kube::runtime::scheduler()); on top of it, client-go's
//! workqueue rule (util/workqueue/queue.go): a key is never processed by
//! two workers at once — one added while in flight is marked dirty and
//! processed again when the worker finishes.

use std::collections::HashSet;
use std::future::Future;
use std::hash::Hash;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use futures::StreamExt;
use kube::runtime::scheduler::{scheduler, ScheduleRequest};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::runner::ErrorBackoff;

/// The adding side; clone freely.
pub struct Queue<T> {
    tx: UnboundedSender<ScheduleRequest<T>>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
        }
    }
}

impl<T> Queue<T> {
    /// Processes `item` as soon as a worker is free.
    pub fn add(&self, item: T) {
        self.add_after(item, Duration::ZERO);
    }

    /// Processes `item` after `delay`.
    pub fn add_after(&self, item: T, delay: Duration) {
        let _ = self.tx.unbounded_send(ScheduleRequest {
            message: item,
            run_at: Instant::now() + delay,
        });
    }
}

/// A new queue and its receiving end for [`run_workers`].
pub fn new<T>() -> (Queue<T>, UnboundedReceiver<ScheduleRequest<T>>) {
    let (tx, rx) = unbounded();
    (Queue { tx }, rx)
}

/// Runs `work` for each key with at most `workers` at once; an error
/// requeues the key with per-key exponential backoff.
pub async fn run_workers<T, E, F, Fut>(
    name: &'static str,
    queue: Queue<T>,
    rx: UnboundedReceiver<ScheduleRequest<T>>,
    workers: usize,
    work: F,
) where
    T: Eq + Hash + Clone + std::fmt::Display + Send + Sync + 'static,
    E: std::fmt::Display + Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
{
    let work = Arc::new(work);
    let limit = Arc::new(Semaphore::new(workers.max(1)));
    let busy: Arc<Mutex<(HashSet<T>, HashSet<T>)>> = Arc::default();
    let backoff = Arc::new(ErrorBackoff::default());
    let mut due = pin!(scheduler(rx));
    while let Some(item) = due.next().await {
        {
            let mut b = busy.lock().unwrap_or_else(|p| p.into_inner());
            if b.0.contains(&item) {
                b.1.insert(item);
                continue;
            }
            b.0.insert(item.clone());
        }
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        let (work, busy, backoff, queue) =
            (work.clone(), busy.clone(), backoff.clone(), queue.clone());
        tokio::spawn(async move {
            let key = item.to_string();
            match work(item.clone()).await {
                Ok(()) => backoff.forget(&key),
                Err(e) => {
                    let delay = backoff.failed(&key);
                    tracing::warn!(controller = name, item = %key, error = %e, ?delay, "sync failed; retrying");
                    queue.add_after(item.clone(), delay);
                }
            }
            let again = {
                let mut b = busy.lock().unwrap_or_else(|p| p.into_inner());
                b.0.remove(&item);
                b.1.remove(&item)
            };
            if again {
                queue.add(item);
            }
            drop(permit);
        });
    }
}
