//! apiserver-bench: the load generator hack/bench-apiserver.sh drives. Each
//! subcommand runs one measurement against a running etcd or kube-apiserver
//! and prints one JSON line of figures on stdout (progress goes to stderr).
//! It never judges the figures; the script prints them next to the targets.
//! Upstream has no direct counterpart (its scalability tests live in
//! kubernetes/perf-tests and test/integration/apiserver benchmarks).

mod client;
mod etcd;
mod fanout;
mod list;
mod pod;
mod rest;
mod stats;

use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(about = "Load generator for hack/bench-apiserver.sh")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// How to reach the API server (the script's private cluster).
#[derive(Args, Clone)]
pub struct ApiArgs {
    /// https://IP:PORT of kube-apiserver
    #[arg(long, env = "BENCH_SERVER")]
    server: String,
    /// CA that signed the serving certificate
    #[arg(long, env = "BENCH_CA")]
    ca: String,
    /// admin client certificate (PEM)
    #[arg(long, env = "BENCH_CERT")]
    cert: String,
    /// admin client key (PEM)
    #[arg(long, env = "BENCH_KEY")]
    key: String,
}

impl ApiArgs {
    fn api(&self) -> Result<client::Api> {
        client::Api::new(&self.server, &self.ca, &self.cert, &self.key)
    }
}

/// How to reach etcd.
#[derive(Args, Clone)]
pub struct EtcdArgs {
    /// etcd client URL, e.g. http://127.0.0.1:2379
    #[arg(long, env = "BENCH_ETCD")]
    etcd: String,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum PutMode {
    /// a plain put per key
    Put,
    /// a create-if-absent transaction per key (what the API server sends)
    Txn,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReadMode {
    /// resourceVersion=0: served from the watch cache
    #[value(name = "0")]
    Cache,
    /// no resourceVersion: a quorum read from etcd (what kubectl sends)
    Quorum,
}

#[derive(Subcommand)]
enum Cmd {
    /// Raw etcd writes of a fixed value size under /bench/ (the baseline).
    EtcdPut {
        #[command(flatten)]
        etcd: EtcdArgs,
        #[arg(long, default_value_t = 10_000)]
        n: usize,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// bytes per value; use the stored pod size `setup` prints
        #[arg(long)]
        value_size: usize,
        #[arg(long, value_enum, default_value_t = PutMode::Put)]
        mode: PutMode,
    },
    /// Creates the bench namespace, measures the manifest and the bytes the
    /// API server stores for it in etcd (one probe pod, deleted afterwards).
    Setup {
        #[command(flatten)]
        api: ApiArgs,
        #[command(flatten)]
        etcd: EtcdArgs,
        /// the API server's --etcd-prefix
        #[arg(long, default_value = "/registry")]
        etcd_prefix: String,
    },
    /// POSTs N pods named bench-0 … with CONCURRENCY connections.
    CreatePods {
        #[command(flatten)]
        api: ApiArgs,
        #[arg(long, default_value_t = 10_000)]
        n: usize,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
    /// LISTs the bench namespace's pods as JSON, without compression.
    List {
        #[command(flatten)]
        api: ApiArgs,
        /// 0 (watch cache) or quorum (etcd, as kubectl sends it)
        #[arg(long, value_enum)]
        rv: ReadMode,
        /// page size (kubectl get uses 500); 0 = one response
        #[arg(long, default_value_t = 0)]
        limit: usize,
        #[arg(long, default_value_t = 10)]
        repeat: usize,
        /// fail unless the list has this many items
        #[arg(long)]
        expect: Option<usize>,
    },
    /// Opens WATCHERS watches on one pod, updates it ROUNDS times and
    /// measures each watcher's delivery latency.
    Fanout {
        #[command(flatten)]
        api: ApiArgs,
        #[arg(long, default_value_t = 1000)]
        watchers: usize,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// connections opened at the same time while setting up the watches
        #[arg(long, default_value_t = 32)]
        connect_concurrency: usize,
        /// kube-apiserver's pid: report its VmRSS while the watches are open
        #[arg(long)]
        server_pid: Option<u32>,
    },
}

/// Runs the subcommand; a failure is also reported as `{"error": …}` on
/// stdout so that the script can show it in its table and go on.
fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let msg = format!("{e:#}");
            eprintln!("apiserver-bench: {msg}");
            println!("{}", serde_json::json!({ "error": msg }));
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cli.cmd {
            Cmd::EtcdPut {
                etcd,
                n,
                concurrency,
                value_size,
                mode,
            } => etcd::put(&etcd.etcd, n, concurrency, value_size, mode).await,
            Cmd::Setup {
                api,
                etcd,
                etcd_prefix,
            } => rest::setup(&api.api()?, &etcd.etcd, &etcd_prefix).await,
            Cmd::CreatePods {
                api,
                n,
                concurrency,
            } => rest::create_pods(&api.api()?, n, concurrency).await,
            Cmd::List {
                api,
                rv,
                limit,
                repeat,
                expect,
            } => list::run(&api.api()?, rv, limit, repeat, expect).await,
            Cmd::Fanout {
                api,
                watchers,
                rounds,
                connect_concurrency,
                server_pid,
            } => {
                fanout::run(
                    &api.api()?,
                    watchers,
                    rounds,
                    connect_concurrency,
                    server_pid,
                )
                .await
            }
        }
    })
}
