//! kubelet: flags → config → run (upstream's cmd/kubelet/kubelet.go).

mod app;

fn main() -> std::process::ExitCode {
    app::run()
}
