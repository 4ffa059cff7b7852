//! metrics-server: flags → config → serve (upstream's
//! `cmd/metrics-server/metrics-server.go`).

mod app;

fn main() -> std::process::ExitCode {
    app::run()
}
