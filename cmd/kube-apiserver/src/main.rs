//! kube-apiserver: flags → config → run (upstream's cmd/kube-apiserver/apiserver.go).

mod app;

fn main() -> std::process::ExitCode {
    app::run()
}
