//! kube-scheduler: flags → config → run (upstream's cmd/kube-scheduler/scheduler.go).

mod app;

fn main() -> std::process::ExitCode {
    app::run()
}
