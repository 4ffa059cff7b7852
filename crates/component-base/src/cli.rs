//! Running a component's command (upstream's `component-base/cli.Run`):
//! a tokio runtime, the component's future, and the process's exit status
//! — 0, or 1 with the error (and its causes) logged and printed.

use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;

/// Runs `main` to completion on a multi-threaded runtime with
/// `worker_threads` (default: one per core).
pub fn run<E: Display>(
    worker_threads: Option<usize>,
    main: impl Future<Output = Result<(), E>>,
) -> ExitCode {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = worker_threads {
        builder.worker_threads(n);
    }
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(main) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Prints a start-up error (bad flags or configuration) and exits 1.
pub fn fail(e: impl Display) -> ExitCode {
    eprintln!("error: {e:#}");
    ExitCode::from(1)
}
