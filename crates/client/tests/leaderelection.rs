//! Two candidates on the real API server: one leads and renews, the other
//! waits; when the leader stops renewing, the other takes over after the
//! lease duration and the Lease records the transition.

use std::time::{Duration, Instant};

use client::leaderelection::{LeaderElectionOptions, LeaderElector};
use integration::TestApiServer;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;

fn opts() -> LeaderElectionOptions {
    LeaderElectionOptions {
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_secs(1),
        retry_period: Duration::from_millis(200),
        ..Default::default()
    }
}

async fn wait_for<F: Fn(&Lease) -> bool>(api: &Api<Lease>, what: &str, f: F) -> Lease {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(l)) = api.get_opt("test-component").await {
            if f(&l) {
                return l;
            }
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn holder(l: &Lease) -> Option<&str> {
    l.spec.as_ref()?.holder_identity.as_deref()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_candidate_takes_over_only_after_the_leader_stops_renewing() {
    let s = TestApiServer::start().await;
    let a = LeaderElector::new(s.client.clone(), &opts(), "test-component", "a");
    let b = LeaderElector::new(s.client.clone(), &opts(), "test-component", "b");
    let leases: Api<Lease> = Api::namespaced(s.client.clone(), "kube-system");

    let a_task = tokio::spawn({
        let a = a.clone();
        async move { a.run(std::future::pending::<()>()).await }
    });
    wait_for(&leases, "a to lead", |l| holder(l) == Some("a")).await;
    assert!(a.is_leader());

    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let b_task = tokio::spawn({
        let b = b.clone();
        async move {
            b.run(async move {
                let _ = started_tx.send(());
                std::future::pending::<()>().await
            })
            .await
        }
    });
    // a keeps renewing for longer than a lease duration while b waits.
    let renewed = wait_for(&leases, "a to renew past one lease duration", |l| {
        let spec = l.spec.as_ref();
        let acq = spec.and_then(|s| s.acquire_time.as_ref()).map(|t| t.0);
        let ren = spec.and_then(|s| s.renew_time.as_ref()).map(|t| t.0);
        matches!((acq, ren), (Some(a), Some(r)) if r.duration_since(a).as_millis() > 3000)
    })
    .await;
    assert_eq!(holder(&renewed), Some("a"));
    assert!(!b.is_leader(), "b must not lead while a renews");
    assert!(b.health_check_ok());

    a_task.abort();
    tokio::time::timeout(Duration::from_secs(15), started_rx)
        .await
        .expect("b took over within the deadline")
        .unwrap();
    let l = leases.get("test-component").await.unwrap();
    assert_eq!(holder(&l), Some("b"));
    assert_eq!(l.spec.as_ref().unwrap().lease_transitions, Some(1));
    assert_eq!(l.spec.as_ref().unwrap().lease_duration_seconds, Some(2));
    assert!(b.is_leader());
    b_task.abort();
}

#[tokio::test]
async fn without_leader_elect_work_runs_at_once() {
    let s = TestApiServer::start().await;
    let o = LeaderElectionOptions {
        leader_elect: false,
        ..opts()
    };
    let e = LeaderElector::new(s.client.clone(), &o, "test-component", "solo");
    let ran = tokio::time::timeout(Duration::from_secs(5), e.run(async {}))
        .await
        .expect("work ran");
    assert!(ran.is_ok());
    let leases: Api<Lease> = Api::namespaced(s.client.clone(), "kube-system");
    assert!(leases.get_opt("test-component").await.unwrap().is_none());
}

trait HealthOk {
    fn health_check_ok(&self) -> bool;
}

impl HealthOk for LeaderElector {
    fn health_check_ok(&self) -> bool {
        let checks = component_base::healthz::Checks::new(vec![self.health_check()]);
        checks.answer("healthz", None, "").map(|a| a.status) == Some(200)
    }
}
