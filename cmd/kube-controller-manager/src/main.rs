//! kube-controller-manager: flags → config → run (upstream's
//! cmd/kube-controller-manager/controller-manager.go).

mod app;

fn main() -> std::process::ExitCode {
    app::run()
}
