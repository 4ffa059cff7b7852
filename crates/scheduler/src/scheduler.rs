//! The scheduler: profiles, queue, cache, and the loop popping one pod at
//! a time through a scheduling cycle (synchronous, on the snapshot) and a
//! binding cycle (asynchronous, so the loop never waits for the API
//! server). Upstream's `pkg/scheduler/scheduler.go` and the cycle halves
//! of `schedule_one.go` (`scheduleOne`, `schedulingCycle`, `bindingCycle`,
//! `handleSchedulingFailure`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::cache::{Cache, Snapshot};
use crate::config::KubeSchedulerConfiguration;
use crate::framework::runtime::{Framework, Handle, Registry};
use crate::framework::{Code, CycleState, PodInfo, QueuedPodInfo};
use crate::metrics::{AttemptResult, SchedulerMetrics};
use crate::queue::{Popped, SchedulingQueue};
use crate::schedule_one::{Algorithm, ScheduleError};

/// `PodScheduled=False` reasons.
pub const REASON_UNSCHEDULABLE: &str = "Unschedulable";
pub const REASON_SCHEDULER_ERROR: &str = "SchedulerError";

/// A scheduling failure as the pod's condition and event show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// [`REASON_UNSCHEDULABLE`] or [`REASON_SCHEDULER_ERROR`].
    pub reason: &'static str,
    pub message: String,
    /// Set by preemption; `Some("")` clears a stale nomination.
    pub nominated_node: Option<String>,
}

/// Where outcomes are written: Events and pod status through the API
/// server, or nowhere (benchmarks).
#[async_trait::async_trait]
pub trait Reporter: Send + Sync {
    async fn scheduled(&self, pod: &PodInfo, node: &str);
    async fn failed(&self, pod: &PodInfo, failure: &Failure);
}

/// Reports nothing.
pub struct NoopReporter;

#[async_trait::async_trait]
impl Reporter for NoopReporter {
    async fn scheduled(&self, _: &PodInfo, _: &str) {}
    async fn failed(&self, _: &PodInfo, _: &Failure) {}
}

/// Why the scheduler could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// A profile's plugins could not be set up; the message names the field.
    #[error("profiles[{index}] ({name}): {message}")]
    Profile {
        index: usize,
        name: String,
        message: String,
    },
}

pub struct Scheduler {
    pub cache: Mutex<Cache>,
    pub queue: Arc<SchedulingQueue>,
    pub profiles: Arc<HashMap<String, Arc<Framework>>>,
    algorithm: Mutex<Algorithm>,
    snapshot: Mutex<Snapshot>,
    reporter: Arc<dyn Reporter>,
    pub metrics: Arc<SchedulerMetrics>,
    pods_synced: AtomicBool,
    nodes_synced: AtomicBool,
    /// Woken when a watcher finished its initial list.
    synced_changed: tokio::sync::Notify,
    writers: Mutex<Option<crate::listers::Writers>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Scheduler {
    pub fn new(
        config: &KubeSchedulerConfiguration,
        registry: &Registry,
        handle: &Handle,
        reporter: Arc<dyn Reporter>,
        metrics: Arc<SchedulerMetrics>,
    ) -> Result<Arc<Self>, SchedulerError> {
        let mut profiles = HashMap::new();
        for (index, p) in config.profiles.iter().enumerate() {
            let fwk =
                Framework::new(p, registry, handle).map_err(|message| SchedulerError::Profile {
                    index,
                    name: p.scheduler_name.clone(),
                    message,
                })?;
            profiles.insert(p.scheduler_name.clone(), Arc::new(fwk));
        }
        let profiles = Arc::new(profiles);
        let queue = Arc::new(SchedulingQueue::new(
            profiles.clone(),
            config.initial_backoff(),
            config.max_backoff(),
        ));
        Ok(Arc::new(Scheduler {
            cache: Mutex::default(),
            queue,
            profiles,
            algorithm: Mutex::new(Algorithm {
                percentage_of_nodes_to_score: config.percentage_of_nodes_to_score.unwrap_or(0),
                ..Default::default()
            }),
            snapshot: Mutex::default(),
            reporter,
            metrics,
            pods_synced: AtomicBool::new(false),
            nodes_synced: AtomicBool::new(false),
            synced_changed: tokio::sync::Notify::new(),
            writers: Mutex::new(None),
        }))
    }

    /// Keeps the lister writers until [`crate::spawn`] starts them.
    pub fn set_writers(&self, w: crate::listers::Writers) {
        *lock(&self.writers) = Some(w);
    }

    pub fn take_writers(&self) -> Option<crate::listers::Writers> {
        lock(&self.writers).take()
    }

    /// Whether the pod and node watchers have listed everything once
    /// (upstream's `sched-handler-sync` readiness check).
    pub fn synced(&self) -> bool {
        self.pods_synced.load(Ordering::Relaxed) && self.nodes_synced.load(Ordering::Relaxed)
    }

    pub(crate) fn mark_synced(&self, pods: bool) {
        let flag = if pods {
            &self.pods_synced
        } else {
            &self.nodes_synced
        };
        flag.store(true, Ordering::Relaxed);
        self.synced_changed.notify_waiters();
    }

    /// Declares the caches listed, for in-memory drivers (benchmarks) that
    /// fill the cache and queue themselves instead of running watchers.
    pub fn assume_synced(&self) {
        self.mark_synced(true);
        self.mark_synced(false);
    }

    /// Whether a pod naming this scheduler is ours.
    pub fn responsible_for(&self, scheduler_name: &str) -> bool {
        self.profiles.contains_key(scheduler_name)
    }

    /// Pops and schedules pods until the queue closes — once the pod and
    /// node watchers have listed everything (upstream's `WaitForCacheSync`
    /// before `Run`): a pod tried against a half-listed cluster would be
    /// reported unschedulable with no event left to requeue it.
    pub async fn run(self: Arc<Self>) {
        loop {
            let changed = self.synced_changed.notified();
            if self.synced() {
                break;
            }
            changed.await;
        }
        while let Some(p) = self.queue.pop().await {
            self.schedule_one(p);
        }
    }

    /// One scheduling cycle; the binding cycle is spawned.
    pub fn schedule_one(self: &Arc<Self>, popped: Popped) {
        let Popped { qpi, cycle } = popped;
        let pod = qpi.pod_info.clone();
        let Some(fwk) = self.profiles.get(&pod.scheduler_name).cloned() else {
            self.queue.delete(&pod.key);
            return;
        };
        if lock(&self.cache).contains_pod(&pod.key) {
            // Assumed or already bound: nothing to do.
            self.queue.delete(&pod.key);
            return;
        }
        let start = Instant::now();
        let mut state = CycleState::default();
        let result = {
            let mut snap = lock(&self.snapshot);
            lock(&self.cache).update_snapshot(&mut snap);
            let mut alg = lock(&self.algorithm);
            alg.nominated = self.queue.nominated_by_node();
            let r = alg.schedule_pod(&fwk, &mut state, &pod, &snap);
            drop(alg);
            match r {
                Ok(r) => Ok(r),
                Err(ScheduleError::Fit(mut fit)) => {
                    let (res, status) =
                        fwk.run_post_filter(&state, &pod, &snap, &fit.diagnosis.node_to_status);
                    fit.diagnosis.post_filter_msg = status.message();
                    Err((
                        ScheduleError::Fit(fit),
                        res.and_then(|r| r.nominated_node_name),
                    ))
                }
                Err(e) => Err((e, None)),
            }
        };
        let result = match result {
            Ok(r) => r,
            Err((e, nominated)) => {
                let (plugins, error) = match &e {
                    ScheduleError::Fit(f) => (f.diagnosis.unschedulable_plugins.clone(), false),
                    ScheduleError::NoNodes => (HashSet::new(), false),
                    ScheduleError::Internal(_) => (HashSet::new(), true),
                };
                let failure = Failure {
                    reason: if error {
                        REASON_SCHEDULER_ERROR
                    } else {
                        REASON_UNSCHEDULABLE
                    },
                    message: e.to_string(),
                    nominated_node: nominated,
                };
                self.fail(&fwk, &qpi, cycle, plugins, error, failure, start);
                return;
            }
        };
        let host = result.suggested_host;
        let mut assumed = (*pod).clone();
        assumed.node_name = host.clone();
        let assumed = Arc::new(assumed);
        if let Err(e) = lock(&self.cache).assume_pod(assumed.clone(), &host) {
            let failure = Failure {
                reason: REASON_SCHEDULER_ERROR,
                message: e.to_string(),
                nominated_node: None,
            };
            self.fail(&fwk, &qpi, cycle, HashSet::new(), true, failure, start);
            return;
        }
        let reserve = fwk.run_reserve(&state, &assumed, &host);
        let permit = if reserve.is_success() {
            fwk.run_permit(&state, &assumed, &host)
        } else {
            reserve
        };
        if !permit.is_success() {
            fwk.run_unreserve(&state, &assumed, &host);
            let _ = lock(&self.cache).forget_pod(&pod.key);
            let error = !permit.is_rejected();
            let plugins = if error {
                HashSet::new()
            } else {
                HashSet::from([permit.plugin])
            };
            let failure = Failure {
                reason: if error {
                    REASON_SCHEDULER_ERROR
                } else {
                    REASON_UNSCHEDULABLE
                },
                message: permit.message(),
                nominated_node: None,
            };
            self.fail(&fwk, &qpi, cycle, plugins, error, failure, start);
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            me.binding_cycle(fwk, state, qpi, assumed, host, cycle, start)
                .await;
        });
    }

    #[allow(clippy::too_many_arguments)]
    async fn binding_cycle(
        self: Arc<Self>,
        fwk: Arc<Framework>,
        state: CycleState,
        qpi: QueuedPodInfo,
        assumed: Arc<PodInfo>,
        host: String,
        cycle: u64,
        start: Instant,
    ) {
        let mut status = fwk.run_pre_bind(&state, &assumed, &host).await;
        if status.is_success() {
            status = fwk.run_bind(&state, &assumed, &host).await;
        }
        if status.is_success() {
            self.queue.delete(&assumed.key);
            self.metrics.observe_attempt(
                AttemptResult::Scheduled,
                &fwk.scheduler_name,
                start.elapsed().as_secs_f64(),
            );
            tracing::debug!(pod = %assumed.key, node = %host, "bound");
            fwk.run_post_bind(&state, &assumed, &host);
            self.reporter.scheduled(&assumed, &host).await;
            return;
        }
        fwk.run_unreserve(&state, &assumed, &host);
        if let Err(e) = lock(&self.cache).forget_pod(&assumed.key) {
            tracing::debug!(pod = %assumed.key, error = %e, "forgetting a pod whose binding failed");
        }
        let message = if status.code == Code::Skip {
            "no bind plugin bound the pod".to_string()
        } else {
            status.message()
        };
        tracing::info!(pod = %assumed.key, node = %host, error = %message, "binding failed");
        let failure = Failure {
            reason: REASON_SCHEDULER_ERROR,
            message,
            nominated_node: None,
        };
        self.fail(&fwk, &qpi, cycle, HashSet::new(), true, failure, start);
        // A move request may be needed for pods waiting on this node's room.
        self.queue
            .move_all_to_active_or_backoff(crate::framework::ClusterEvent::new(
                crate::framework::EventResource::AssignedPod,
                crate::framework::ActionType::Delete,
                "AssignedPodDelete",
            ));
    }

    #[allow(clippy::too_many_arguments)]
    fn fail(
        self: &Arc<Self>,
        fwk: &Framework,
        qpi: &QueuedPodInfo,
        cycle: u64,
        plugins: HashSet<&'static str>,
        error: bool,
        failure: Failure,
        start: Instant,
    ) {
        let pod = qpi.pod_info.clone();
        self.metrics.observe_attempt(
            if error {
                AttemptResult::Error
            } else {
                AttemptResult::Unschedulable
            },
            &fwk.scheduler_name,
            start.elapsed().as_secs_f64(),
        );
        tracing::info!(pod = %pod.key, reason = failure.reason, message = %failure.message, "unable to schedule pod");
        self.queue.requeue(&pod.key, cycle, plugins, error);
        let reporter = self.reporter.clone();
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(async move { reporter.failed(&pod, &failure).await });
        }
    }

    /// The cache's view, for tests.
    pub fn with_cache<T>(&self, f: impl FnOnce(&Cache) -> T) -> T {
        f(&lock(&self.cache))
    }

    pub fn cache_mut(&self) -> MutexGuard<'_, Cache> {
        lock(&self.cache)
    }
}
