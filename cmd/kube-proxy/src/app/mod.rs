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
    component_base::cli::run(Some(2), server::run(opts))
}
