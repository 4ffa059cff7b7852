//! The summary's JSON shape and the resource metrics' text, with the fake
//! runtime and a fake `/proc` and root cgroup.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::resource_metrics::{go_float, render};
use super::*;
use crate::cri::api::{ContainerConfig, ContainerMetadata, PodSandboxConfig, PodSandboxMetadata};
use crate::cri::fake::FakeRuntime;

const T0: i64 = 1_700_000_000_000_000_000;

fn fake_node(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let proc_root = dir.join("proc");
    let cg = dir.join("cgroup");
    std::fs::create_dir_all(proc_root.join("sys/kernel")).unwrap();
    std::fs::create_dir_all(cg.join("memory")).unwrap();
    std::fs::create_dir_all(cg.join("cpuacct")).unwrap();
    std::fs::write(proc_root.join("stat"), "cpu  1 2 3 4\nbtime 1600000000\n").unwrap();
    std::fs::write(
        proc_root.join("meminfo"),
        "MemTotal: 1000 kB\nMemFree: 100 kB\nMemAvailable: 500 kB\n",
    )
    .unwrap();
    std::fs::write(proc_root.join("sys/kernel/pid_max"), "4194304\n").unwrap();
    std::fs::write(proc_root.join("sys/kernel/threads-max"), "31000\n").unwrap();
    std::fs::write(proc_root.join("loadavg"), "0.1 0.2 0.3 2/345 999\n").unwrap();
    std::fs::write(cg.join("cpuacct/cpuacct.usage"), "42000000000\n").unwrap();
    std::fs::write(cg.join("memory/memory.usage_in_bytes"), "800000\n").unwrap();
    std::fs::write(
        cg.join("memory/memory.stat"),
        "total_rss 500000\ntotal_inactive_file 100000\ntotal_pgfault 7\ntotal_pgmajfault 1\n",
    )
    .unwrap();
    (cg, proc_root)
}

async fn pod_with_container(fake: &FakeRuntime) -> (String, String) {
    let sb = fake
        .run_pod_sandbox(PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: "web".into(),
                uid: "uid-1".into(),
                namespace: "default".into(),
                attempt: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let c = fake
        .create_container(
            &sb,
            ContainerConfig {
                metadata: Some(ContainerMetadata {
                    name: "main".into(),
                    attempt: 0,
                }),
                labels: HashMap::new(),
                ..Default::default()
            },
            PodSandboxConfig::default(),
        )
        .await
        .unwrap();
    fake.start_container(&c).await.unwrap();
    (sb, c)
}

#[tokio::test]
async fn summary_json_has_upstream_shape_and_rates_come_from_two_samples() {
    let dir = tempfile::tempdir().unwrap();
    let (cg, proc_root) = fake_node(dir.path());
    let logs = dir.path().join("logs");
    let log_dir = logs.join("default_web_uid-1/main");
    std::fs::create_dir_all(&log_dir).unwrap();
    std::fs::write(log_dir.join("0.log"), "0123456789").unwrap();
    let fake = FakeRuntime::new();
    let (_, c) = pod_with_container(&fake).await;
    let p = StatsProvider::new(
        "node-a",
        dir.path(),
        &logs,
        Arc::new(fake.clone()),
        Arc::new(fake.clone()),
    )
    .with_roots(cg, proc_root);

    fake.set_container_stats(&c, T0, 1_000_000_000, 5 * 1024 * 1024);
    let first = p.summary(Detail::Full).await.unwrap();
    let c0 = &first.pods[0].containers[0];
    assert_eq!(
        c0.cpu.as_ref().unwrap().usage_nano_cores,
        None,
        "one sample has no rate"
    );
    assert_eq!(first.node.cpu.as_ref().unwrap().usage_nano_cores, None);

    // Half a core over one second.
    fake.set_container_stats(&c, T0 + 1_000_000_000, 1_500_000_000, 5 * 1024 * 1024);
    let s = p.summary(Detail::Full).await.unwrap();
    let j = serde_json::to_value(&s).unwrap();
    let node = &j["node"];
    assert_eq!(node["nodeName"], "node-a");
    assert_eq!(node["startTime"], "2020-09-13T12:26:40Z");
    assert_eq!(node["cpu"]["usageCoreNanoSeconds"], 42_000_000_000u64);
    assert!(
        node["cpu"]["usageNanoCores"].is_u64(),
        "second node sample has a rate"
    );
    assert_eq!(node["memory"]["usageBytes"], 800_000);
    assert_eq!(node["memory"]["workingSetBytes"], 700_000);
    assert_eq!(node["memory"]["availableBytes"], 1_024_000 - 700_000);
    assert_eq!(node["memory"]["rssBytes"], 500_000);
    assert_eq!(node["memory"]["pageFaults"], 7);
    assert_eq!(node["memory"]["majorPageFaults"], 1);
    assert_eq!(node["rlimit"]["maxpid"], 31_000);
    assert_eq!(node["rlimit"]["curproc"], 345);
    assert!(node["fs"]["capacityBytes"].as_u64().unwrap() > 0);
    fake.add_image("busybox");
    let image_fs = &serde_json::to_value(p.summary(Detail::Full).await.unwrap()).unwrap()["node"]
        ["runtime"]["imageFs"];
    assert_eq!(image_fs["usedBytes"], 1 << 20, "{image_fs}");
    assert!(image_fs["capacityBytes"].as_u64().unwrap() > 0);
    let time = node["cpu"]["time"].as_str().unwrap();
    assert!(time.ends_with('Z') && time.len() == 20, "{time}");

    let pod = &j["pods"][0];
    assert_eq!(
        pod["podRef"],
        serde_json::json!({"name": "web", "namespace": "default", "uid": "uid-1"})
    );
    let ctr = &pod["containers"][0];
    assert_eq!(ctr["name"], "main");
    assert_eq!(ctr["cpu"]["time"], "2023-11-14T22:13:21Z");
    assert_eq!(ctr["cpu"]["usageNanoCores"], 500_000_000);
    assert_eq!(ctr["cpu"]["usageCoreNanoSeconds"], 1_500_000_000u64);
    assert_eq!(ctr["memory"]["workingSetBytes"], 5 * 1024 * 1024);
    assert_eq!(ctr["logs"]["usedBytes"], 10);
    assert_eq!(ctr["rootfs"]["usedBytes"], 0);
    assert_eq!(pod["cpu"]["usageNanoCores"], 500_000_000);
    assert_eq!(pod["memory"]["workingSetBytes"], 5 * 1024 * 1024);
    assert_eq!(pod["ephemeral-storage"]["usedBytes"], 10);
    assert!(pod.get("volume").is_none());

    // The same sample again keeps the rate; a restarted counter starts over.
    let again = p.summary(Detail::CpuAndMemory).await.unwrap();
    let cpu = again.pods[0].containers[0].cpu.clone().unwrap();
    assert_eq!(cpu.usage_nano_cores, Some(500_000_000));
    assert!(again.node.fs.is_none() && again.pods[0].containers[0].logs.is_none());
    fake.set_container_stats(&c, T0 + 2_000_000_000, 10, 0);
    let reset = p.summary(Detail::CpuAndMemory).await.unwrap();
    assert_eq!(
        reset.pods[0].containers[0]
            .cpu
            .as_ref()
            .unwrap()
            .usage_nano_cores,
        None
    );

    // A container that is gone leaves no sample behind.
    assert_eq!(p.samples_kept(), 2);
    fake.stop_container(&c, 0).await.unwrap();
    fake.remove_container(&c).await.unwrap();
    let s = p.summary(Detail::Full).await.unwrap();
    assert!(s.pods[0].containers.is_empty());
    assert_eq!(p.samples_kept(), 1, "only the node's sample stays");
}

#[tokio::test]
async fn resource_metrics_text_uses_upstream_names_labels_and_millisecond_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let (cg, proc_root) = fake_node(dir.path());
    let fake = FakeRuntime::new();
    let (_, c) = pod_with_container(&fake).await;
    let p = StatsProvider::new(
        "node-a",
        dir.path(),
        dir.path(),
        Arc::new(fake.clone()),
        Arc::new(fake.clone()),
    )
    .with_roots(cg, proc_root);
    fake.set_container_stats(&c, T0 + 1_000_000_000, 1_500_000_000, 5 * 1024 * 1024);
    let s = p.summary(Detail::CpuAndMemory).await;
    let start = s.as_ref().unwrap().pods[0].containers[0].start_time;
    let node_ms = s.as_ref().unwrap().node.cpu.as_ref().unwrap().time.millis();
    let text = render(&s);
    let want = [
        "# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds",
        "# TYPE container_cpu_usage_seconds_total counter",
        "container_cpu_usage_seconds_total{container=\"main\",namespace=\"default\",pod=\"web\"} 1.5 1700000001000",
        "# TYPE container_memory_working_set_bytes gauge",
        "container_memory_working_set_bytes{container=\"main\",namespace=\"default\",pod=\"web\"} 5.24288e+06 1700000001000",
        &format!(
            "container_start_time_seconds{{container=\"main\",namespace=\"default\",pod=\"web\"}} {}",
            go_float(start.seconds_f64()),
        ),
        &format!("node_cpu_usage_seconds_total 42 {node_ms}"),
        &format!("node_memory_working_set_bytes 700000 {node_ms}"),
        "pod_cpu_usage_seconds_total{namespace=\"default\",pod=\"web\"} 1.5 1700000001000",
        "pod_memory_working_set_bytes{namespace=\"default\",pod=\"web\"} 5.24288e+06 1700000001000",
        "# TYPE resource_scrape_error gauge",
        "resource_scrape_error 0",
    ];
    let lines: Vec<&str> = text.lines().collect();
    for w in want {
        assert!(lines.contains(&w), "missing {w:?} in\n{text}");
    }
    // Families come sorted by name, as client_golang writes them.
    let names: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(names.len(), 8);

    let failed = render(&Err(StatsError::Cri(crate::cri::CriError::Unsupported(
        "ListContainerStats",
    ))));
    assert!(failed.ends_with("resource_scrape_error 1\n"), "{failed}");
    assert!(!failed.contains("node_cpu"));
}

#[test]
fn floats_print_like_go() {
    for (v, want) in [
        (0.0, "0"),
        (1.5, "1.5"),
        (42.0, "42"),
        (700000.0, "700000"),
        (5_242_880.0, "5.24288e+06"),
        (1_700_000_001.25, "1.70000000125e+09"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
    ] {
        assert_eq!(go_float(v), want, "{v}");
    }
}
