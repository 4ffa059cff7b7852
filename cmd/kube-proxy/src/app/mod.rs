//! The kube-proxy command (upstream's `cmd/kube-proxy/app`): options are
//! parsed and validated, a `KubeProxyConfiguration` file overrides the
//! defaults, and the proxier runs with its health and metrics servers.

mod config;
mod options;
mod server;

use std::process::ExitCode;

use clap::Parser;

pub fn run() -> ExitCode {
    let opts = options::Options::parse();
    component_base::logs::init(opts.v);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kube-proxy: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(server::run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
