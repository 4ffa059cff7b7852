use std::collections::HashMap;

use super::*;
use crate::cri::api::{ContainerConfig, ContainerMetadata, ImageSpec, PodSandboxConfig};
use crate::cri::fake::FakeRuntime;

fn write(root: &Path, rel: &str, body: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

async fn container(fake: &FakeRuntime, name: &str) -> String {
    let sb = fake
        .run_pod_sandbox(PodSandboxConfig::default())
        .await
        .unwrap();
    let labels = HashMap::from([
        (POD_NAME.to_string(), "web".to_string()),
        (POD_NAMESPACE.to_string(), "default".to_string()),
        (CONTAINER_NAME.to_string(), name.to_string()),
    ]);
    let id = fake
        .create_container(
            &sb,
            ContainerConfig {
                metadata: Some(ContainerMetadata {
                    name: name.into(),
                    attempt: 0,
                }),
                image: Some(ImageSpec {
                    image: "busybox:1.35".into(),
                    ..Default::default()
                }),
                labels,
                ..Default::default()
            },
            PodSandboxConfig::default(),
        )
        .await
        .unwrap();
    fake.start_container(&id).await.unwrap();
    id
}

fn machine() -> MachineInfo {
    MachineInfo {
        num_cores: 2,
        memory_bytes: 8 << 30,
        ephemeral_storage_bytes: 0,
        machine_id: "m1".into(),
        system_uuid: "u1".into(),
        boot_id: "b1".into(),
        kernel_version: String::new(),
        os_image: String::new(),
    }
}

/// The sample line of `family` with `labels`, without its timestamp.
fn value(text: &str, family: &str, labels: &str) -> Option<String> {
    let prefix = format!("{family}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|rest| rest.split(' ').next().unwrap_or("").to_string())
}

#[tokio::test]
async fn containers_and_the_root_from_their_cgroups() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let fake = FakeRuntime::new();
    let app = container(&fake, "app").await;
    let side = container(&fake, "side").await;
    fake.set_container_stats(&side, 1, 4_000_000_000, 123);
    let stopped = container(&fake, "gone").await;
    fake.exit(&stopped, 0);
    write(root, "cpuacct/cpuacct.usage", "90000000000\n");
    write(root, "memory/memory.usage_in_bytes", "5000\n");
    write(root, "memory/memory.stat", "total_inactive_file 1000\n");
    let c = format!("k8s.io/{app}");
    write(root, &format!("cpuacct/{c}/cpuacct.usage"), "2500000000\n");
    write(
        root,
        &format!("cpuacct/{c}/cpuacct.stat"),
        "user 150\nsystem 50\n",
    );
    write(root, &format!("cpu/{c}/cpu.cfs_quota_us"), "50000\n");
    write(
        root,
        &format!("cpu/{c}/cpu.stat"),
        "nr_periods 10\nnr_throttled 3\nthrottled_time 2000000000\n",
    );
    write(
        root,
        &format!("memory/{c}/memory.usage_in_bytes"),
        "1000000\n",
    );
    write(
        root,
        &format!("memory/{c}/memory.max_usage_in_bytes"),
        "2000000\n",
    );
    write(root, &format!("memory/{c}/memory.failcnt"), "0\n");
    write(
        root,
        &format!("memory/{c}/memory.stat"),
        "total_cache 300000\ntotal_rss 600000\ntotal_mapped_file 1000\ntotal_inactive_file 200000\npgfault 5\npgmajfault 1\ntotal_pgfault 7\ntotal_pgmajfault 2\n",
    );

    let text = render(&fake, &fake, root, &machine()).await;
    let l = format!(
        "container=\"app\",id=\"/k8s.io/{app}\",image=\"busybox:1.35\",name=\"{app}\",namespace=\"default\",pod=\"web\""
    );
    let with_cpu = format!(
        "container=\"app\",cpu=\"total\",id=\"/k8s.io/{app}\",image=\"busybox:1.35\",name=\"{app}\",namespace=\"default\",pod=\"web\""
    );
    let v = |family: &str, labels: &str| value(&text, family, labels);
    assert_eq!(
        v("container_cpu_usage_seconds_total", &with_cpu).as_deref(),
        Some("2.5"),
        "{text}"
    );
    assert_eq!(
        v("container_cpu_user_seconds_total", &l).as_deref(),
        Some("1.5")
    );
    assert_eq!(
        v("container_cpu_system_seconds_total", &l).as_deref(),
        Some("0.5")
    );
    assert_eq!(
        v("container_cpu_cfs_throttled_periods_total", &l).as_deref(),
        Some("3")
    );
    assert_eq!(
        v("container_cpu_cfs_throttled_seconds_total", &l).as_deref(),
        Some("2")
    );
    assert_eq!(
        v("container_memory_working_set_bytes", &l).as_deref(),
        Some("800000")
    );
    assert_eq!(
        v("container_memory_usage_bytes", &l).as_deref(),
        Some("1e+06")
    );
    assert_eq!(v("container_memory_rss", &l).as_deref(), Some("600000"));
    assert_eq!(v("container_memory_cache", &l).as_deref(), Some("300000"));
    assert_eq!(
        v("container_memory_max_usage_bytes", &l).as_deref(),
        Some("2e+06")
    );
    let failures = format!(
        "container=\"app\",failure_type=\"pgmajfault\",id=\"/k8s.io/{app}\",image=\"busybox:1.35\",name=\"{app}\",namespace=\"default\",pod=\"web\",scope=\"hierarchy\""
    );
    assert_eq!(
        v("container_memory_failures_total", &failures).as_deref(),
        Some("2")
    );
    assert!(v("container_start_time_seconds", &l).is_some());
    assert!(v("container_last_seen", &l).is_some());
    // No cgroup found: the runtime's figures, an empty id.
    let side_cpu = format!(
        "container=\"side\",cpu=\"total\",id=\"\",image=\"busybox:1.35\",name=\"{side}\",namespace=\"default\",pod=\"web\""
    );
    assert_eq!(
        v("container_cpu_usage_seconds_total", &side_cpu).as_deref(),
        Some("4")
    );
    // The node's root cgroup.
    let node = "container=\"\",cpu=\"total\",id=\"/\",image=\"\",name=\"\",namespace=\"\",pod=\"\"";
    assert_eq!(
        v("container_cpu_usage_seconds_total", node).as_deref(),
        Some("90")
    );
    let node = "container=\"\",id=\"/\",image=\"\",name=\"\",namespace=\"\",pod=\"\"";
    assert_eq!(
        v("container_memory_working_set_bytes", node).as_deref(),
        Some("4000")
    );
    // Exited containers are left out; no quota, no CFS series.
    assert!(!text.contains("\"gone\""), "{text}");
    assert!(!text.contains("container_cpu_cfs_periods_total{container=\"side\""));
    let m = "boot_id=\"b1\",machine_id=\"m1\",system_uuid=\"u1\"";
    assert_eq!(v("machine_cpu_cores", m).as_deref(), Some("2"));
    assert_eq!(
        v("machine_memory_bytes", m).as_deref(),
        Some("8.589934592e+09")
    );
    assert!(text.contains("\ncontainer_scrape_error 0\n"), "{text}");
    assert!(text.contains("# TYPE container_cpu_usage_seconds_total counter\n"));
    assert!(
        text.contains("# HELP container_memory_working_set_bytes Current working set in bytes.\n")
    );
}
