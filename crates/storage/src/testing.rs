//! A real etcd process on free loopback ports, for integration tests and
//! benchmarks of this and other crates. Needs the `etcd` binary (Debian's
//! `etcd-server`) on PATH.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running etcd, killed (and its data removed) on drop.
pub struct EtcdProcess {
    child: Child,
    dir: PathBuf,
    log: PathBuf,
    pub endpoint: String,
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl EtcdProcess {
    /// Starts etcd and waits until it answers; errors name what failed.
    ///
    /// The ports come from the kernel's ephemeral range and are released
    /// before etcd binds them, so a test running in parallel (or an outgoing
    /// connection) can take one in between; etcd then exits at once. Such an
    /// early exit is retried on fresh ports a few times.
    pub fn start() -> Result<Self, String> {
        let mut last = String::new();
        for _ in 0..5 {
            match Self::start_once()? {
                Ok(proc) => return Ok(proc),
                Err(exited) => last = exited,
            }
        }
        Err(last)
    }

    /// `Err` for a setup failure; `Ok(Err(_))` when etcd exited early.
    fn start_once() -> Result<Result<Self, String>, String> {
        let client = free_port().map_err(|e| e.to_string())?;
        let peer = free_port().map_err(|e| e.to_string())?;
        let dir = std::env::temp_dir().join(format!("etcd-test-{}-{client}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let log = dir.with_extension("log");
        let log_file =
            std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let endpoint = format!("http://127.0.0.1:{client}");
        let child = Command::new("etcd")
            .arg("--data-dir")
            .arg(&dir)
            .args([
                "--listen-client-urls",
                &endpoint,
                "--advertise-client-urls",
                &endpoint,
            ])
            .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
            .args([
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
            ])
            .args([
                "--initial-cluster",
                &format!("default=http://127.0.0.1:{peer}"),
            ])
            .args(["--log-level", "error", "--logger", "zap"])
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("starting etcd (install Debian's etcd-server): {e}"))?;
        let mut proc = EtcdProcess {
            child,
            dir,
            log,
            endpoint,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", client)).is_ok() {
                return Ok(Ok(proc));
            }
            if let Ok(Some(status)) = proc.child.try_wait() {
                let said = std::fs::read_to_string(&proc.log).unwrap_or_default();
                let tail: String = said.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
                return Ok(Err(format!("etcd exited early: {status}: {tail}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("etcd did not start listening within 20s".into())
    }
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(&self.log);
    }
}
