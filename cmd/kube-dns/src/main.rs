//! kube-dns: flags → config → serve (upstream's cmd/kube-dns/dns.go).

mod app;

fn main() -> std::process::ExitCode {
    app::run()
}
