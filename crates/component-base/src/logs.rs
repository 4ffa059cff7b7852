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

/// Installs the subscriber once; later calls are no-ops.
pub fn init(verbosity: u8) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level_for(verbosity)));
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
        assert_eq!(super::level_for(4), "debug");
        assert_eq!(super::level_for(9), "trace");
    }
}
