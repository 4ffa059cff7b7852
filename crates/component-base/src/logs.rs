//! Logging: `tracing` with klog's verbosity. `-v=0..=2` logs info and above,
//! `3..=4` adds debug, `5+` adds trace; `RUST_LOG` overrides.

use tracing_subscriber::EnvFilter;

/// The `tracing` level for a klog verbosity.
pub fn level_for(verbosity: u8) -> &'static str {
    match verbosity {
        0..=2 => "info",
        3..=4 => "debug",
        _ => "trace",
    }
}

/// Libraries whose debug output is wire-level chatter (frames, polls,
/// handshakes): they stay at info unless `-v` reaches 7 (klog's level for
/// HTTP traffic) or `RUST_LOG` says otherwise.
const CHATTY: &[&str] = &[
    "h2",
    "hyper",
    "hyper_util",
    "rustls",
    "tower",
    "tonic",
    "kube_client",
    "kube_runtime",
    "tokio_util",
    "want",
    "mio",
];

/// The filter for a klog verbosity.
pub fn directives(verbosity: u8) -> String {
    let mut d = level_for(verbosity).to_string();
    if verbosity < 7 {
        for c in CHATTY {
            d.push_str(&format!(",{c}=info"));
        }
    }
    d
}

/// Installs the subscriber once; later calls are no-ops.
pub fn init(verbosity: u8) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(directives(verbosity)));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    #[test]
    fn klog_levels() {
        assert_eq!(super::level_for(0), "info");
        assert!(super::directives(3).starts_with("debug,h2=info"));
        assert_eq!(super::directives(7), "trace");
        assert_eq!(super::level_for(4), "debug");
        assert_eq!(super::level_for(9), "trace");
    }
}
