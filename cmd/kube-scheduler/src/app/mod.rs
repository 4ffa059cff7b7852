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
        Err(e) => {
            eprintln!("error: {e:#}");
            return std::process::ExitCode::from(1);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match rt.block_on(server::run(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
