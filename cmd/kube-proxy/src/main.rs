//! kube-proxy: flags → config → run (upstream's cmd/kube-proxy/proxy.go).

mod app;

fn main() -> std::process::ExitCode {
    app::run()
}
