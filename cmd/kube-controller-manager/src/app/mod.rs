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
            std::process::ExitCode::from(1)
        }
    }
}
