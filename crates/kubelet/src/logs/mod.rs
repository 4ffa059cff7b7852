//! Container logs: reading them for `/containerLogs` ([`read`]), rotating
//! them by size ([`rotate`], upstream's `pkg/kubelet/logs`), and the files
//! around them — the `/var/log/containers` links and the removal of a
//! removed container's or pod's logs ([`files`]).

pub mod files;
pub mod read;
pub mod rotate;

pub use read::{parse_cri_line, read, render, since, LogError, LogLine, LogOptions};
