//! Flags checked (upstream's `Options.Validate`) and turned into the
//! server's configuration.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use metrics_server::scrape::{KubeletClient, Token};

use super::options::Options;

/// Where an in-cluster pod finds its ServiceAccount token.
const IN_CLUSTER_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// Upstream's default secure port (`NewSecureServingOptions`).
const DEFAULT_SECURE_PORT: u16 = 443;

fn duration(flag: &str, v: &str) -> anyhow::Result<Duration> {
    apimachinery::duration::parse_go_duration(v).with_context(|| format!("--{flag}={v:?}"))
}

fn kubelet_tls(o: &Options) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = if o.kubelet_insecure_tls {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(component_base::proxy::AcceptAny(provider)))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        if let Some(ca) = &o.kubelet_certificate_authority {
            let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
            for c in rustls_pemfile::certs(&mut pem.as_slice()) {
                roots.add(c.with_context(|| ca.display().to_string())?)?;
            }
        }
        builder.with_root_certificates(roots)
    };
    let mut cfg = builder.with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// The token sent to kubelets: the kubeconfig's, or the pod's own.
fn token(kube: &kube::Config) -> Token {
    use kube::config::AuthInfo;
    let AuthInfo {
        token, token_file, ..
    } = &kube.auth_info;
    if let Some(t) = token {
        return Token::Static(secret(t));
    }
    match token_file {
        Some(f) => Token::File(f.into()),
        None if std::path::Path::new(IN_CLUSTER_TOKEN).exists() => {
            Token::File(IN_CLUSTER_TOKEN.into())
        }
        None => Token::None,
    }
}

fn secret(s: &secrecy::SecretString) -> String {
    use secrecy::ExposeSecret;
    s.expose_secret().to_string()
}

pub fn from_options(
    o: &Options,
    kube: &kube::Config,
) -> anyhow::Result<metrics_server::run::Config> {
    let resolution = duration("metric-resolution", &o.metric_resolution)?;
    let timeout = duration("kubelet-request-timeout", &o.kubelet_request_timeout)?;
    if resolution < Duration::from_secs(10) {
        bail!(
            "metric-resolution should be a time duration at least 10s, but value {:?} provided",
            o.metric_resolution
        );
    }
    if timeout.is_zero() {
        bail!("kubelet-request-timeout should be positive");
    }
    if resolution.mul_f64(0.9) < timeout {
        bail!(
            "metric-resolution should be larger than kubelet-request-timeout, but metric-resolution value {:?} kubelet-request-timeout value {:?} provided",
            o.metric_resolution,
            o.kubelet_request_timeout
        );
    }
    if o.kubelet_insecure_tls && o.kubelet_certificate_authority.is_some() {
        bail!("cannot use both --kubelet-certificate-authority and --kubelet-insecure-tls");
    }
    apimachinery::labels::Selector::parse(&o.node_selector)
        .map_err(|e| anyhow::anyhow!("--node-selector={:?}: {e}", o.node_selector))?;
    let addr = o
        .serving
        .addr(DEFAULT_SECURE_PORT)
        .context("--secure-port=0: metrics-server needs its secure port")?;
    let _ = &o.cert_dir;
    Ok(metrics_server::run::Config {
        resolution,
        kubelet: KubeletClient {
            tls: Arc::new(kubelet_tls(o)?),
            port: o.kubelet_port,
            use_node_status_port: o.kubelet_use_node_status_port,
            address_types: o.kubelet_preferred_address_types.clone(),
            timeout,
            token: token(kube),
        },
        node_selector: o.node_selector.clone(),
        serving: o.serving.clone(),
        addr,
        always_allow_paths: o.authorization_always_allow_paths.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn kube() -> kube::Config {
        kube::Config::new("https://127.0.0.1:6443".parse().unwrap())
    }

    fn parse(args: &[&str]) -> anyhow::Result<metrics_server::run::Config> {
        let mut all = vec!["metrics-server"];
        all.extend_from_slice(args);
        from_options(&Options::parse_from(all), &kube())
    }

    #[test]
    fn defaults_and_upstreams_checks() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.resolution, Duration::from_secs(60));
        assert_eq!(c.addr.port(), 443);
        assert_eq!(c.kubelet.port, 10250);
        assert_eq!(c.kubelet.timeout, Duration::from_secs(10));
        assert_eq!(
            c.kubelet.address_types,
            [
                "Hostname",
                "InternalDNS",
                "InternalIP",
                "ExternalDNS",
                "ExternalIP"
            ]
        );
        let c = parse(&[
            "--metric-resolution=15s",
            "--secure-port=10250",
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            "--kubelet-use-node-status-port",
            "--kubelet-insecure-tls",
            "--cert-dir=/tmp",
        ])
        .unwrap();
        assert_eq!(c.resolution, Duration::from_secs(15));
        assert_eq!(c.addr.port(), 10250);
        assert!(c.kubelet.use_node_status_port);
        assert_eq!(c.kubelet.address_types, ["InternalIP", "Hostname"]);
        for bad in [
            &["--metric-resolution=5s"][..],
            &["--metric-resolution=10s"],
            &["--metric-resolution=soon"],
            &["--node-selector=a in"],
            &["--secure-port=0"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
