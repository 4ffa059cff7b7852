//! Running the packet-filter tools (`nft`, `iptables-restore`, `iptables`,
//! `iptables-save`), optionally inside a network namespace — which is how
//! the tests keep their rules off the host.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;

/// Why a tool could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The program could not be started or fed.
    #[error("running {program}: {source}")]
    Spawn {
        program: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The program ran and refused the input (its first lines of stderr).
    #[error("{program} failed: {message}")]
    Rejected {
        program: &'static str,
        message: String,
    },
}

/// Runs `program args…` (through `ip netns exec` with `netns`), feeding it
/// `input` on stdin; its stdout on success.
pub async fn run(
    program: &'static str,
    args: &[&str],
    netns: Option<&str>,
    input: Option<&str>,
) -> Result<String, ApplyError> {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = tokio::process::Command::new("ip");
            c.args(["netns", "exec", ns, program]);
            c
        }
        None => tokio::process::Command::new(program),
    };
    cmd.args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let spawn = |source| ApplyError::Spawn { program, source };
    let mut child = cmd.spawn().map_err(spawn)?;
    if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
        stdin.write_all(input.as_bytes()).await.map_err(spawn)?;
    }
    let out = child.wait_with_output().await.map_err(spawn)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        // The tools repeat the offending line; the first lines say enough.
        let short: Vec<&str> = err.lines().take(6).collect();
        Err(ApplyError::Rejected {
            program,
            message: short.join("\n"),
        })
    }
}
