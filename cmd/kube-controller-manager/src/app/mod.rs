//! The kube-controller-manager command (upstream's
//! cmd/kube-controller-manager/app/controllermanager.go).

mod options;
mod server;

use clap::Parser;

pub fn run() -> std::process::ExitCode {
    let opts = options::Options::parse();
    component_base::logs::init(opts.v);
    let config = match opts.complete() {
        Ok(c) => c,
        Err(e) => return component_base::cli::fail(e),
    };
    component_base::cli::run(None, server::run(config))
}
