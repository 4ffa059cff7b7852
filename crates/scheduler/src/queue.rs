//! The scheduling queue (upstream's
//! `pkg/scheduler/backend/queue/scheduling_queue.go`): an active heap
//! ordered by the QueueSort plugin, a backoff heap ordered by when each
//! pod's backoff (1 s doubling to 10 s by default) ends, and the
//! unschedulable pool. A pod rejected by plugins waits in the pool until a
//! cluster event one of those plugins registered for arrives (or 5
//! minutes pass); a pod rejected by PreEnqueue (scheduling gates) waits
//! until the pod itself changes. So an unschedulable pod is never retried
//! in a hot loop.
//!
//! Heaps use lazy deletion: an entry whose sequence number no longer
//! matches its pod's slot is dropped when it surfaces.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::framework::runtime::Framework;
use crate::framework::{ClusterEvent, EventInterest, PodInfo, QueuedPodInfo};

/// How long a pod may stay unschedulable before it is retried anyway.
pub const UNSCHEDULABLE_MAX_STAY: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loc {
    Active,
    Backoff,
    Unschedulable,
    /// Popped and being scheduled or bound.
    InFlight,
}

struct Slot {
    qpi: QueuedPodInfo,
    loc: Loc,
    seq: u64,
    /// The pod changed while in flight: a failure retries it soon.
    updated_in_flight: bool,
}

/// How many pods wait where (`scheduler_pending_pods`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pending {
    pub active: usize,
    pub backoff: usize,
    pub unschedulable: usize,
    pub gated: usize,
}

type Less = dyn Fn(&QueuedPodInfo, &QueuedPodInfo) -> bool + Send + Sync;

#[derive(Default)]
struct Inner {
    slots: HashMap<String, Slot>,
    /// Keys of the slots in the unschedulable pool (gated or not), so
    /// cluster events scan only those.
    unschedulable: HashSet<String>,
    /// Pods nominated to a node by preemption: pod key → (node, pod).
    nominated: HashMap<String, (String, Arc<PodInfo>)>,
    active: Vec<(u64, QueuedPodInfo)>,
    backoff: BinaryHeap<Reverse<(Instant, u64, String)>>,
    seq: u64,
    scheduling_cycle: u64,
    move_request_cycle: u64,
    closed: bool,
}

/// The queue shared by the event handlers and the scheduling loop.
pub struct SchedulingQueue {
    inner: Mutex<Inner>,
    notify: Notify,
    less: Box<Less>,
    profiles: Arc<HashMap<String, Arc<Framework>>>,
    interests: HashMap<&'static str, Vec<EventInterest>>,
    initial_backoff: Duration,
    max_backoff: Duration,
}

/// A popped pod and the scheduling cycle it was popped in.
pub struct Popped {
    pub qpi: QueuedPodInfo,
    pub cycle: u64,
}

impl SchedulingQueue {
    pub fn new(
        profiles: Arc<HashMap<String, Arc<Framework>>>,
        initial_backoff: Duration,
        max_backoff: Duration,
    ) -> Self {
        let mut interests: HashMap<&'static str, Vec<EventInterest>> = HashMap::new();
        for fwk in profiles.values() {
            for p in fwk.plugins() {
                interests
                    .entry(p.name())
                    .or_insert_with(|| p.events_to_register());
            }
        }
        let sorter = profiles.values().next().cloned();
        let less: Box<Less> = match sorter {
            Some(f) => Box::new(move |a, b| f.queue_sort_less(a, b)),
            None => Box::new(|a, b| a.timestamp < b.timestamp),
        };
        SchedulingQueue {
            inner: Mutex::default(),
            notify: Notify::new(),
            less,
            profiles,
            interests,
            initial_backoff,
            max_backoff,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn backoff_duration(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(20);
        self.initial_backoff
            .saturating_mul(1 << exp)
            .min(self.max_backoff)
    }

    fn backoff_expiry(&self, q: &QueuedPodInfo) -> Instant {
        q.timestamp + self.backoff_duration(q.attempts)
    }

    fn push_active(&self, inner: &mut Inner, key: &str) {
        inner.seq += 1;
        let seq = inner.seq;
        inner.unschedulable.remove(key);
        let Some(slot) = inner.slots.get_mut(key) else {
            return;
        };
        slot.loc = Loc::Active;
        slot.seq = seq;
        let entry = (seq, slot.qpi.clone());
        let heap = &mut inner.active;
        heap.push(entry);
        let mut i = heap.len() - 1;
        while i > 0 {
            let parent = (i - 1) / 2;
            if (self.less)(&heap[i].1, &heap[parent].1) {
                heap.swap(i, parent);
                i = parent;
            } else {
                break;
            }
        }
        self.notify.notify_one();
    }

    fn pop_heap(&self, heap: &mut Vec<(u64, QueuedPodInfo)>) -> Option<(u64, QueuedPodInfo)> {
        if heap.is_empty() {
            return None;
        }
        let last = heap.len() - 1;
        heap.swap(0, last);
        let top = heap.pop();
        let n = heap.len();
        let mut i = 0;
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut best = i;
            if l < n && (self.less)(&heap[l].1, &heap[best].1) {
                best = l;
            }
            if r < n && (self.less)(&heap[r].1, &heap[best].1) {
                best = r;
            }
            if best == i {
                break;
            }
            heap.swap(i, best);
            i = best;
        }
        top
    }

    fn push_backoff(&self, inner: &mut Inner, key: &str) {
        inner.seq += 1;
        let seq = inner.seq;
        inner.unschedulable.remove(key);
        let Some(slot) = inner.slots.get_mut(key) else {
            return;
        };
        slot.loc = Loc::Backoff;
        slot.seq = seq;
        let at = self.backoff_expiry(&slot.qpi);
        inner.backoff.push(Reverse((at, seq, key.to_string())));
        self.notify.notify_one();
    }

    /// Active when the pod's backoff is over, else the backoff queue.
    fn move_to_active_or_backoff(&self, inner: &mut Inner, key: &str, now: Instant) {
        let Some(slot) = inner.slots.get(key) else {
            return;
        };
        if slot.qpi.attempts > 0 && self.backoff_expiry(&slot.qpi) > now {
            self.push_backoff(inner, key);
        } else {
            self.push_active(inner, key);
        }
    }

    fn pre_enqueue(&self, qpi: &mut QueuedPodInfo) -> bool {
        let pod = &qpi.pod_info;
        let Some(fwk) = self.profiles.get(&pod.scheduler_name) else {
            return true;
        };
        let s = fwk.run_pre_enqueue(pod);
        qpi.gated = !s.is_success();
        if qpi.gated {
            qpi.unschedulable_plugins = HashSet::from([s.plugin]);
        }
        !qpi.gated
    }

    /// A new unscheduled pod.
    pub fn add(&self, pod: Arc<PodInfo>) {
        let mut inner = self.lock();
        Self::track_nomination(&mut inner, &pod);
        if inner.slots.contains_key(&pod.key) {
            drop(inner);
            return self.update(pod);
        }
        let key = pod.key.clone();
        let mut qpi = QueuedPodInfo::new(pod);
        let ok = self.pre_enqueue(&mut qpi);
        inner.slots.insert(
            key.clone(),
            Slot {
                qpi,
                loc: Loc::Unschedulable,
                seq: 0,
                updated_in_flight: false,
            },
        );
        if ok {
            self.push_active(&mut inner, &key);
        } else {
            inner.unschedulable.insert(key);
        }
    }

    /// An unscheduled pod changed.
    pub fn update(&self, pod: Arc<PodInfo>) {
        let mut inner = self.lock();
        Self::track_nomination(&mut inner, &pod);
        let key = pod.key.clone();
        let Some(slot) = inner.slots.get_mut(&key) else {
            drop(inner);
            return self.add(pod);
        };
        let changed = spec_changed(&slot.qpi.pod_info, &pod);
        slot.qpi.pod_info = pod;
        match slot.loc {
            Loc::InFlight => slot.updated_in_flight |= changed,
            Loc::Active => {
                if changed {
                    self.push_active(&mut inner, &key);
                }
            }
            Loc::Backoff => {}
            Loc::Unschedulable => {
                if !changed {
                    return;
                }
                let mut qpi = slot.qpi.clone();
                if self.pre_enqueue(&mut qpi) {
                    qpi.unschedulable_plugins.clear();
                    slot.qpi = qpi;
                    self.move_to_active_or_backoff(&mut inner, &key, Instant::now());
                } else {
                    slot.qpi = qpi;
                }
            }
        }
    }

    /// The pod was deleted or got assigned.
    fn track_nomination(inner: &mut Inner, pod: &Arc<PodInfo>) {
        let node = pod
            .pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.clone())
            .filter(|n| !n.is_empty());
        match node {
            Some(n) => {
                inner.nominated.insert(pod.key.clone(), (n, pod.clone()));
            }
            None => {
                inner.nominated.remove(&pod.key);
            }
        }
    }

    /// Records (or, with `None`/empty, clears) a preemption nomination
    /// before the API server reflects it.
    pub fn nominate(&self, pod: &Arc<PodInfo>, node: Option<&str>) {
        let mut inner = self.lock();
        match node.filter(|n| !n.is_empty()) {
            Some(n) => {
                inner
                    .nominated
                    .insert(pod.key.clone(), (n.to_string(), pod.clone()));
            }
            None => {
                inner.nominated.remove(&pod.key);
            }
        }
    }

    /// Nominated pods by node (upstream's `NominatedPodsForNode`).
    pub fn nominated_by_node(&self) -> HashMap<String, Vec<Arc<PodInfo>>> {
        let inner = self.lock();
        let mut out: HashMap<String, Vec<Arc<PodInfo>>> = HashMap::new();
        for (node, pod) in inner.nominated.values() {
            out.entry(node.clone()).or_default().push(pod.clone());
        }
        out
    }

    pub fn delete(&self, key: &str) {
        let mut inner = self.lock();
        inner.nominated.remove(key);
        inner.slots.remove(key);
        inner.unschedulable.remove(key);
    }

    /// The next pod to schedule, waiting for one; `None` once closed.
    pub async fn pop(&self) -> Option<Popped> {
        loop {
            let notified = self.notify.notified();
            let wait = {
                let mut inner = self.lock();
                if inner.closed {
                    return None;
                }
                let now = Instant::now();
                self.flush_backoff_completed(&mut inner, now);
                while let Some((seq, qpi)) = self.pop_heap(&mut inner.active) {
                    let key = qpi.pod_info.key.clone();
                    let live = inner
                        .slots
                        .get(&key)
                        .is_some_and(|s| s.seq == seq && s.loc == Loc::Active);
                    if !live {
                        continue;
                    }
                    inner.scheduling_cycle += 1;
                    let cycle = inner.scheduling_cycle;
                    if let Some(slot) = inner.slots.get_mut(&key) {
                        slot.loc = Loc::InFlight;
                        slot.qpi.attempts += 1;
                        return Some(Popped {
                            qpi: slot.qpi.clone(),
                            cycle,
                        });
                    }
                }
                inner
                    .backoff
                    .peek()
                    .map(|Reverse((at, _, _))| at.saturating_duration_since(now))
            };
            let wait = wait
                .unwrap_or(Duration::from_secs(1))
                .max(Duration::from_millis(1));
            let _ = tokio::time::timeout(wait, notified).await;
        }
    }

    fn flush_backoff_completed(&self, inner: &mut Inner, now: Instant) {
        while let Some(Reverse((at, seq, key))) = inner.backoff.peek().cloned() {
            if at > now {
                break;
            }
            inner.backoff.pop();
            let live = inner
                .slots
                .get(&key)
                .is_some_and(|s| s.seq == seq && s.loc == Loc::Backoff);
            if live {
                self.push_active(inner, &key);
            }
        }
    }

    /// A scheduling attempt failed: back to the pool or the backoff queue.
    /// `plugins` are the rejecting plugins (empty for an internal error).
    pub fn requeue(&self, key: &str, cycle: u64, plugins: HashSet<&'static str>, error: bool) {
        let mut inner = self.lock();
        let move_cycle = inner.move_request_cycle;
        let Some(slot) = inner.slots.get_mut(key) else {
            return;
        };
        if slot.loc != Loc::InFlight {
            return;
        }
        slot.qpi.timestamp = Instant::now();
        slot.qpi.unschedulable_plugins = plugins;
        let soon = error || slot.updated_in_flight || move_cycle >= cycle;
        slot.updated_in_flight = false;
        if soon {
            self.push_backoff(&mut inner, key);
        } else {
            slot.loc = Loc::Unschedulable;
            inner.unschedulable.insert(key.to_string());
        }
    }

    /// A cluster event: moves the unschedulable pods it may help.
    pub fn move_all_to_active_or_backoff(&self, event: ClusterEvent) {
        let mut inner = self.lock();
        inner.move_request_cycle = inner.scheduling_cycle;
        if inner.unschedulable.is_empty() {
            return;
        }
        let keys: Vec<String> = inner
            .unschedulable
            .iter()
            .filter_map(|k| inner.slots.get_key_value(k))
            .filter(|(_, s)| s.loc == Loc::Unschedulable && !s.qpi.gated)
            .filter(|(_, s)| self.helps(&s.qpi, &event))
            .map(|(k, _)| k.clone())
            .collect();
        let now = Instant::now();
        for k in keys {
            self.move_to_active_or_backoff(&mut inner, &k, now);
        }
    }

    fn helps(&self, q: &QueuedPodInfo, event: &ClusterEvent) -> bool {
        q.unschedulable_plugins.is_empty()
            || q.unschedulable_plugins.iter().any(|p| {
                self.interests
                    .get(p)
                    .is_some_and(|list| list.iter().any(|i| i.matches(event)))
            })
    }

    /// Retries pods unschedulable for longer than [`UNSCHEDULABLE_MAX_STAY`].
    pub fn flush_unschedulable_leftover(&self) {
        let mut inner = self.lock();
        let now = Instant::now();
        let keys: Vec<String> = inner
            .unschedulable
            .iter()
            .filter_map(|k| inner.slots.get_key_value(k))
            .filter(|(_, s)| s.loc == Loc::Unschedulable && !s.qpi.gated)
            .filter(|(_, s)| {
                now.saturating_duration_since(s.qpi.timestamp) > UNSCHEDULABLE_MAX_STAY
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            self.move_to_active_or_backoff(&mut inner, &k, now);
        }
    }

    pub fn pending(&self) -> Pending {
        let inner = self.lock();
        let mut p = Pending::default();
        for s in inner.slots.values() {
            match s.loc {
                Loc::Active => p.active += 1,
                Loc::Backoff => p.backoff += 1,
                Loc::Unschedulable if s.qpi.gated => p.gated += 1,
                Loc::Unschedulable => p.unschedulable += 1,
                Loc::InFlight => {}
            }
        }
        p
    }

    /// Whether the queue holds the pod anywhere (or has it in flight).
    pub fn contains(&self, key: &str) -> bool {
        self.lock().slots.contains_key(key)
    }

    pub fn keys(&self) -> Vec<String> {
        self.lock().slots.keys().cloned().collect()
    }

    pub fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_waiters();
        self.notify.notify_one();
    }
}

/// Whether an update changed what scheduling looks at (upstream's
/// `isPodUpdated` ignores status and bookkeeping metadata).
fn spec_changed(old: &PodInfo, new: &PodInfo) -> bool {
    old.pod.spec != new.pod.spec
        || old.pod.metadata.labels != new.pod.metadata.labels
        || old.pod.metadata.annotations != new.pod.metadata.annotations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::{ActionType, EventResource};
    use crate::plugins::testing::{default_profiles, pod_meta};
    use serde_json::json;

    fn queue() -> SchedulingQueue {
        SchedulingQueue::new(
            default_profiles(),
            Duration::from_secs(1),
            Duration::from_secs(10),
        )
    }

    fn pod(name: &str, spec: serde_json::Value) -> Arc<PodInfo> {
        Arc::new(pod_meta(json!({"name": name, "namespace": "ns"}), spec))
    }

    async fn pop_now(q: &SchedulingQueue) -> Option<Popped> {
        tokio::time::timeout(Duration::from_millis(50), q.pop())
            .await
            .ok()
            .flatten()
    }

    const NODE_ADD: ClusterEvent =
        ClusterEvent::new(EventResource::Node, ActionType::Add, "NodeAdd");
    const PV_ADD: ClusterEvent =
        ClusterEvent::new(EventResource::PersistentVolume, ActionType::Add, "PvAdd");

    #[tokio::test]
    async fn pops_by_priority_then_age() {
        let q = queue();
        q.add(pod("low", json!({"priority": 1})));
        q.add(pod("high", json!({"priority": 100})));
        q.add(pod("low2", json!({"priority": 1})));
        let order: Vec<String> = [pop_now(&q).await, pop_now(&q).await, pop_now(&q).await]
            .into_iter()
            .map(|p| p.map(|p| p.qpi.pod_info.name.clone()).unwrap_or_default())
            .collect();
        assert_eq!(order, vec!["high", "low", "low2"]);
        assert!(pop_now(&q).await.is_none());
    }

    #[tokio::test]
    async fn gated_pods_wait_until_the_gates_are_removed() {
        let q = queue();
        q.add(pod(
            "g",
            json!({"schedulingGates": [{"name": "example.com/wait"}]}),
        ));
        assert_eq!(q.pending().gated, 1);
        q.move_all_to_active_or_backoff(NODE_ADD);
        assert!(pop_now(&q).await.is_none(), "cluster events do not ungate");
        q.add(pod("g", json!({})));
        let p = pop_now(&q).await.expect("ungated pod is active");
        assert_eq!(p.qpi.pod_info.name, "g");
    }

    #[tokio::test]
    async fn unschedulable_pods_move_only_on_events_their_plugins_registered() {
        let q = queue();
        q.add(pod("a", json!({})));
        let p = pop_now(&q).await.unwrap();
        q.requeue("ns/a", p.cycle, HashSet::from(["TaintToleration"]), false);
        assert_eq!(q.pending().unschedulable, 1);
        q.move_all_to_active_or_backoff(PV_ADD);
        assert_eq!(
            q.pending().unschedulable,
            1,
            "TaintToleration ignores PV events"
        );
        q.move_all_to_active_or_backoff(NODE_ADD);
        let pending = q.pending();
        assert_eq!(pending.unschedulable, 0);
        assert_eq!(pending.backoff, 1, "still within its 1s backoff");
    }

    #[tokio::test]
    async fn a_move_during_the_attempt_sends_the_pod_to_backoff() {
        let q = queue();
        q.add(pod("a", json!({})));
        let p = pop_now(&q).await.unwrap();
        q.move_all_to_active_or_backoff(NODE_ADD);
        q.requeue("ns/a", p.cycle, HashSet::from(["NodeResourcesFit"]), false);
        assert_eq!(q.pending().backoff, 1);
    }

    #[tokio::test]
    async fn errors_back_off_exponentially() {
        let q = queue();
        assert_eq!(q.backoff_duration(1), Duration::from_secs(1));
        assert_eq!(q.backoff_duration(2), Duration::from_secs(2));
        assert_eq!(q.backoff_duration(4), Duration::from_secs(8));
        assert_eq!(q.backoff_duration(5), Duration::from_secs(10));
        assert_eq!(q.backoff_duration(60), Duration::from_secs(10));
        q.add(pod("a", json!({})));
        let p = pop_now(&q).await.unwrap();
        q.requeue("ns/a", p.cycle, HashSet::new(), true);
        assert_eq!(q.pending().backoff, 1);
        assert!(pop_now(&q).await.is_none(), "not before the backoff ends");
        let p = tokio::time::timeout(Duration::from_secs(5), q.pop())
            .await
            .expect("after 1s")
            .unwrap();
        assert_eq!(p.qpi.attempts, 2);
    }

    #[tokio::test]
    async fn leftover_unschedulable_pods_are_flushed_after_five_minutes() {
        let q = queue();
        q.add(pod("a", json!({})));
        let p = pop_now(&q).await.unwrap();
        q.requeue("ns/a", p.cycle, HashSet::from(["NodeAffinity"]), false);
        q.flush_unschedulable_leftover();
        assert_eq!(q.pending().unschedulable, 1);
        if let Some(s) = q.lock().slots.get_mut("ns/a") {
            s.qpi.timestamp -= UNSCHEDULABLE_MAX_STAY + Duration::from_secs(1);
        }
        q.flush_unschedulable_leftover();
        assert!(pop_now(&q).await.is_some());
    }

    #[tokio::test]
    async fn deleted_and_status_only_updates() {
        let q = queue();
        q.add(pod("a", json!({})));
        let p = pop_now(&q).await.unwrap();
        q.requeue("ns/a", p.cycle, HashSet::from(["NodeAffinity"]), false);
        // The same spec again (a status write): stays unschedulable.
        q.update(pod("a", json!({})));
        assert_eq!(q.pending().unschedulable, 1);
        // A spec change: retried.
        q.update(pod("a", json!({"nodeSelector": {"a": "b"}})));
        assert_eq!(q.pending().unschedulable, 0);
        q.delete("ns/a");
        assert!(!q.contains("ns/a"));
        assert!(pop_now(&q).await.is_none());
    }
}
