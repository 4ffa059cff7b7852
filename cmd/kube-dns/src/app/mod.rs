//! The kube-dns command (upstream's `cmd/kube-dns/app`): flags are parsed
//! and checked into a `dns::run::Config`, then the server runs.

mod config;
mod options;
mod server;

use std::process::ExitCode;

use clap::Parser;

pub fn run() -> ExitCode {
    let opts = options::Options::parse();
    component_base::logs::init(opts.v);
    let config = match config::from_options(&opts) {
        Ok(c) => c,
        Err(e) => return component_base::cli::fail(e),
    };
    component_base::cli::run(None, server::run(opts, config))
}
