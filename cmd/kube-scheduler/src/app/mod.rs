//! The kube-scheduler command (upstream's cmd/kube-scheduler/app):
//! options → validate → config → run.

mod config;
mod options;
mod server;

use clap::{CommandFactory, FromArgMatches};

pub fn run() -> std::process::ExitCode {
    let matches = options::Options::command().get_matches();
    let opts = match options::Options::from_arg_matches(&matches) {
        Ok(o) => o,
        Err(e) => e.exit(),
    };
    component_base::logs::init(opts.v);
    let config = match opts.complete(&matches) {
        Ok(c) => c,
        Err(e) => return component_base::cli::fail(e),
    };
    component_base::cli::run(None, server::run(config))
}
