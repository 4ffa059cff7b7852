use std::io::Read;

use super::*;
use crate::cri::api::{ContainerConfig, ContainerMetadata, PodSandboxConfig};
use crate::cri::fake::FakeRuntime;

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn gunzip(p: &Path) -> String {
    let mut s = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(p).unwrap())
        .read_to_string(&mut s)
        .unwrap();
    s
}

#[test]
fn validation_uses_upstream_messages() {
    assert_eq!(LogRotatePolicy::default().validate(), Ok(()));
    let bad = LogRotatePolicy {
        max_files: 1,
        max_workers: 0,
        monitor_interval: Duration::from_secs(1),
        ..Default::default()
    };
    let e = bad.validate().unwrap_err();
    assert!(
        e.contains("containerLogMaxFiles must be greater than 1"),
        "{e}"
    );
    assert!(
        e.contains("containerLogMaxWorkers must be greater than or equal to 1"),
        "{e}"
    );
    assert!(e.contains("containerLogMonitorInterval must be a positive time duration greater than or equal to 3s"), "{e}");
}

#[test]
fn max_size_is_a_quantity_of_whole_bytes() {
    assert_eq!(parse_max_size("10Mi"), Ok(10 << 20));
    assert_eq!(parse_max_size("1k"), Ok(1000));
    assert_eq!(parse_max_size("-1"), Ok(-1));
    assert!(parse_max_size("1.5").is_err());
    assert!(parse_max_size("ten").is_err());
}

#[test]
fn prepare_drops_leftovers_and_the_oldest_and_compresses_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("0.log");
    for (f, body) in [
        ("0.log", "current"),
        ("0.log.20260101-000001.gz", "gz1"),
        ("0.log.20260101-000002", "two"),
        ("0.log.20260101-000003", "three"),
        ("0.log.20260101-000003.gz.tmp", "partial"),
        ("0.log.20260101-000000", "already compressed"),
        ("0.log.20260101-000000.gz", "gz0"),
        ("1.log", "other instance"),
    ] {
        std::fs::write(tmp.path().join(f), body).unwrap();
    }
    // Four files kept: the current one, the one about to rotate, two more.
    prepare(&log, 4).unwrap();
    assert_eq!(
        names(tmp.path()),
        vec![
            "0.log",
            "0.log.20260101-000002.gz",
            "0.log.20260101-000003.gz",
            "1.log"
        ]
    );
    assert_eq!(
        gunzip(&tmp.path().join("0.log.20260101-000003.gz")),
        "three"
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "current");
}

async fn running_container(fake: &FakeRuntime, dir: &Path) -> String {
    let sb = fake
        .run_pod_sandbox(PodSandboxConfig {
            log_directory: dir.to_string_lossy().into_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
    let id = fake
        .create_container(
            &sb,
            ContainerConfig {
                metadata: Some(ContainerMetadata {
                    name: "main".into(),
                    attempt: 0,
                }),
                log_path: "main/0.log".into(),
                ..Default::default()
            },
            PodSandboxConfig::default(),
        )
        .await
        .unwrap();
    fake.start_container(&id).await.unwrap();
    std::fs::create_dir_all(dir.join("main")).unwrap();
    id
}

#[tokio::test]
async fn big_logs_of_running_containers_rotate_and_at_most_max_files_stay() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = FakeRuntime::new();
    let id = running_container(&fake, tmp.path()).await;
    let stopped = running_container(&fake, &tmp.path().join("other")).await;
    fake.exit(&stopped, 0);
    let log = tmp.path().join("main/0.log");
    let other = tmp.path().join("other/main/0.log");
    std::fs::write(&other, "x".repeat(4096)).unwrap();
    let m = ContainerLogManager::new(
        Arc::new(fake.clone()),
        LogRotatePolicy {
            max_size: 1024,
            max_files: 3,
            ..Default::default()
        },
    );
    // Small: nothing happens.
    std::fs::write(&log, "small").unwrap();
    assert_eq!(m.rotate_logs().await.unwrap(), 0);
    for round in 0..4 {
        let body = format!("round {round} {}", "y".repeat(2048));
        std::fs::write(&log, &body).unwrap();
        assert_eq!(m.rotate_logs().await.unwrap(), 1, "round {round}");
        // A new, empty current file from the runtime, and the old content
        // in the newest rotated file (uncompressed).
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "");
        let files = names(&tmp.path().join("main"));
        assert!(files.len() <= 3, "{files:?}");
        let newest = files
            .iter()
            .filter(|f| f.starts_with("0.log.") && !f.ends_with(".gz"))
            .max()
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("main").join(newest)).unwrap(),
            body
        );
    }
    let files = names(&tmp.path().join("main"));
    assert_eq!(files.len(), 3, "{files:?}");
    assert_eq!(
        files.iter().filter(|f| f.ends_with(".gz")).count(),
        1,
        "{files:?}"
    );
    // The exited container's log is left alone.
    assert_eq!(names(&tmp.path().join("other/main")), vec!["0.log"]);
    let reopens = fake
        .calls()
        .iter()
        .filter(|c| c.starts_with("ReopenContainerLog"))
        .count();
    assert_eq!(reopens, 4);
    let _ = id;
}

#[tokio::test]
async fn a_failed_reopen_puts_the_log_back() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = FakeRuntime::new();
    let id = running_container(&fake, tmp.path()).await;
    let log = tmp.path().join("main/0.log");
    std::fs::write(&log, "z".repeat(2048)).unwrap();
    let m = ContainerLogManager::new(
        Arc::new(fake.clone()),
        LogRotatePolicy {
            max_size: 1024,
            ..Default::default()
        },
    );
    // The container ends between the listing and the reopen: simulated by
    // calling the rotation of the latest file directly.
    fake.exit(&id, 0);
    let e = m.rotate_latest(&id, &log).await.unwrap_err();
    assert!(e.contains("failed to reopen container log"), "{e}");
    assert_eq!(names(&tmp.path().join("main")), vec!["0.log"]);
    assert_eq!(std::fs::read_to_string(&log).unwrap().len(), 2048);
}
