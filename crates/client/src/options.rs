//! The flags every component uses to reach the API server (upstream's
//! `--kubeconfig`, `--master`, `--kube-api-qps`, `--kube-api-burst`) and the
//! kube-rs client built from them. Like client-go, requests go through a
//! client-side rate limiter: `qps` requests per second on average, up to
//! `burst` at once; a negative QPS turns the limiter off.

use std::path::PathBuf;
use std::time::Duration;

use kube::client::ClientBuilder;

/// Why no client could be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The kubeconfig file could not be read or parsed.
    #[error("invalid kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// Neither a kubeconfig nor in-cluster configuration was found.
    #[error("no configuration for the API server: {0}")]
    Infer(#[from] kube::config::InferConfigError),
    /// `--master` is not a URL.
    #[error("invalid --master {0:?}")]
    Master(String),
    /// kube-rs could not build the client (TLS material, proxies …).
    #[error("building the client: {0}")]
    Build(#[from] kube::Error),
}

/// Upstream's connection flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KubeOptions {
    /// Path to kubeconfig file with authorization and master location information.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The address of the Kubernetes API server (overrides any value in kubeconfig).
    #[arg(long)]
    pub master: Option<String>,
    /// QPS to use while talking with kubernetes apiserver (negative: no limit).
    #[arg(long = "kube-api-qps", allow_negative_numbers = true)]
    pub kube_api_qps: Option<f32>,
    /// Burst to use while talking with kubernetes apiserver.
    #[arg(long = "kube-api-burst")]
    pub kube_api_burst: Option<u32>,
}

/// The scheduler's upstream defaults (the controller manager's are 20/30).
pub const DEFAULT_QPS: f32 = 50.0;
pub const DEFAULT_BURST: u32 = 100;

impl KubeOptions {
    /// A client with [`DEFAULT_QPS`]/[`DEFAULT_BURST`] unless the flags say otherwise.
    pub async fn client(&self) -> Result<kube::Client, ClientError> {
        self.client_with_defaults(DEFAULT_QPS, DEFAULT_BURST).await
    }

    /// A client whose unset QPS/burst take this component's defaults.
    pub async fn client_with_defaults(
        &self,
        qps: f32,
        burst: u32,
    ) -> Result<kube::Client, ClientError> {
        let config = self.config().await?;
        let qps = self.kube_api_qps.filter(|q| *q != 0.0).unwrap_or(qps);
        let burst = self.kube_api_burst.filter(|b| *b > 0).unwrap_or(burst);
        let builder = ClientBuilder::try_from(config)?;
        Ok(match rate_window(qps, burst) {
            Some((n, per)) => builder
                .with_layer(&tower::limit::RateLimitLayer::new(n, per))
                .build(),
            None => builder.build(),
        })
    }

    /// The kube-rs configuration: `--kubeconfig` when given, else the usual
    /// inference (in-cluster ServiceAccount, then `$KUBECONFIG`/~/.kube/config);
    /// `--master` overrides the server.
    pub async fn config(&self) -> Result<kube::Config, ClientError> {
        let mut config = match &self.kubeconfig {
            Some(path) => {
                let kc = kube::config::Kubeconfig::read_from(path).map_err(|source| {
                    ClientError::Kubeconfig {
                        path: path.clone(),
                        source,
                    }
                })?;
                kube::Config::from_custom_kubeconfig(kc, &Default::default())
                    .await
                    .map_err(|source| ClientError::Kubeconfig {
                        path: path.clone(),
                        source,
                    })?
            }
            None => kube::Config::infer().await?,
        };
        if let Some(master) = &self.master {
            config.cluster_url = master
                .parse()
                .map_err(|_| ClientError::Master(master.clone()))?;
        }
        Ok(config)
    }
}

/// The limiter's window: `burst` requests per `burst / qps` seconds, which
/// averages `qps` and lets `burst` through at once. `None`: unlimited.
pub(crate) fn rate_window(qps: f32, burst: u32) -> Option<(u64, Duration)> {
    if qps < 0.0 || !qps.is_finite() {
        return None;
    }
    let burst = burst.max(1);
    Some((
        u64::from(burst),
        Duration::from_secs_f64(f64::from(burst) / f64::from(qps)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_window_averages_qps_and_admits_burst() {
        assert_eq!(rate_window(50.0, 100), Some((100, Duration::from_secs(2))));
        assert_eq!(
            rate_window(20.0, 30),
            Some((30, Duration::from_millis(1500)))
        );
        assert_eq!(rate_window(-1.0, 30), None);
    }

    #[tokio::test]
    async fn missing_kubeconfig_is_named_in_the_error() {
        let o = KubeOptions {
            kubeconfig: Some("/nonexistent/kubeconfig".into()),
            ..Default::default()
        };
        let Err(e) = o.client().await else {
            panic!("a missing kubeconfig must fail")
        };
        let e = e.to_string();
        assert!(e.contains("/nonexistent/kubeconfig"), "{e}");
    }
}
