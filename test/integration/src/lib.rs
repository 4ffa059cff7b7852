//! Upstream's `test/integration/framework` in small: [`TestApiServer::start`]
//! runs a real kube-apiserver in this process on a real etcd (Debian's
//! `etcd-server`), with fresh certificates, and hands out a kube-rs
//! [`kube::Client`] plus an admin kubeconfig file so other components (the
//! scheduler, the controller manager) can be started against it in tests.
//! [`https::serve`] stands in for the HTTPS servers the API server talks to.

pub mod https;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use storage::etcd3::EtcdBackend;
use storage::testing::EtcdProcess;
use storage::{Cacher, Store};

pub use apiserver::authn::ServiceAccountConfig;

/// A running API server; everything is torn down on drop (etcd killed, its
/// data and the certificates removed).
pub struct TestApiServer {
    pub client: kube::Client,
    /// `https://127.0.0.1:<port>`
    pub url: String,
    /// An admin kubeconfig (user `admin`, group `system:masters`).
    pub kubeconfig: PathBuf,
    /// The CA that signs the serving and client certificates (PEM file).
    pub ca_file: PathBuf,
    pub etcd_endpoint: String,
    /// The CA, to sign client certificates for other users.
    ca: CertifiedIssuer<'static, KeyPair>,
    _etcd: EtcdProcess,
    dir: tempfile::TempDir,
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

type Error = Box<dyn std::error::Error + Send + Sync>;

/// What [`TestApiServer::raw`] got back.
#[derive(Debug)]
pub struct Raw {
    pub code: u16,
    /// The `Warning` header values (`299 - "…"`).
    pub warnings: Vec<String>,
    pub body: serde_json::Value,
}

impl TestApiServer {
    /// Starts etcd and the API server and waits until `/version` answers.
    /// Panics with a message naming what failed: this is test set-up.
    pub async fn start() -> Self {
        match Self::try_start().await {
            Ok(s) => s,
            Err(e) => panic!("test apiserver did not start: {e}"),
        }
    }

    pub async fn try_start() -> Result<Self, Error> {
        Self::try_start_with(|_| {}).await
    }

    /// Like [`Self::start`], with the configuration adjusted by `adjust`
    /// before the server starts.
    pub async fn start_with(adjust: impl FnOnce(&mut apiserver::Config)) -> Self {
        match Self::try_start_with(adjust).await {
            Ok(s) => s,
            Err(e) => panic!("test apiserver did not start: {e}"),
        }
    }

    pub async fn try_start_with(
        adjust: impl FnOnce(&mut apiserver::Config),
    ) -> Result<Self, Error> {
        let etcd = EtcdProcess::start()?;
        let dir = tempfile::tempdir()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "integration-ca");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
        let server_key = KeyPair::generate()?;
        let mut sp = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])?;
        sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server = sp.signed_by(&server_key, &ca)?;
        let client_key = KeyPair::generate()?;
        let mut cp = CertificateParams::new(Vec::<String>::new())?;
        cp.distinguished_name.push(DnType::CommonName, "admin");
        cp.distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        cp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = cp.signed_by(&client_key, &ca)?;
        let sa_key = KeyPair::generate()?;
        let write = |name: &str, text: String| -> std::io::Result<PathBuf> {
            let p = dir.path().join(name);
            std::fs::write(&p, text)?;
            Ok(p)
        };
        let ca_file = write("ca.crt", ca.pem())?;
        let sa_key_file = write("sa.key", sa_key.serialize_pem())?;
        let port = free_port()?;
        let url = format!("https://127.0.0.1:{port}");
        let config = apiserver::Config {
            bind: format!("127.0.0.1:{port}").parse()?,
            advertise_address: "127.0.0.1".parse()?,
            tls_cert_file: write("server.crt", server.pem())?,
            tls_key_file: write("server.key", server_key.serialize_pem())?,
            client_ca_file: Some(ca_file.clone()),
            etcd_servers: vec![etcd.endpoint.clone()],
            etcd_prefix: "/registry".into(),
            service_cluster_ip_range: "10.0.0.0/24".into(),
            service_node_port_range: (30000, 32767),
            compaction_interval: Duration::ZERO,
            event_ttl: Duration::from_secs(3600),
            max_request_body: 3 * 1024 * 1024,
            watch_cache_history: 1000,
            service_accounts: ServiceAccountConfig {
                issuers: vec!["https://kubernetes.default.svc.cluster.local".into()],
                key_files: vec![sa_key_file.clone()],
                signing_key_file: Some(sa_key_file),
                ..Default::default()
            },
            aggregator: apiserver::aggregator::AggregatorConfig {
                enable_aggregator_routing: true,
                ..Default::default()
            },
            kubelet: Default::default(),
            // Like upstream's integration servers: no controller manager
            // creates `default` ServiceAccounts, untaints nodes or removes
            // storage protection finalizers here.
            admission: apiserver::admission::AdmissionConfig {
                disable: vec![
                    "ServiceAccount".into(),
                    "TaintNodesByCondition".into(),
                    "StorageObjectInUseProtection".into(),
                ],
                ..Default::default()
            },
            authorization_modes: vec![apiserver::authz::Mode::AlwaysAllow],
        };
        let mut config = config;
        adjust(&mut config);
        let backend = EtcdBackend::connect(&config.etcd_servers).await?;
        let store = Store::new(Arc::new(backend));
        let cacher = Cacher::new(store.clone(), "/registry/", config.watch_cache_history);
        let state = apiserver::ApiState::new(config, store, cacher.clone())?;
        tokio::spawn(cacher.clone().run());
        cacher.wait_ready().await;
        apiserver::bootstrap::run(&state).await?;
        tokio::spawn(apiserver::serve(state));

        let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
        let kubeconfig_text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: integration\n  cluster:\n    server: {url}\n    certificate-authority-data: {}\nusers:\n- name: admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: integration\n  context: {{cluster: integration, user: admin}}\ncurrent-context: integration\n",
            b64(ca.pem()),
            b64(client_cert.pem()),
            b64(client_key.serialize_pem())
        );
        let kubeconfig = write("admin.kubeconfig", kubeconfig_text.clone())?;
        let client = client_from_kubeconfig_text(&kubeconfig_text, true).await?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match tokio::time::timeout(Duration::from_secs(2), client.apiserver_version()).await {
                Ok(Ok(_)) => break,
                Ok(Err(e)) if Instant::now() >= deadline => return Err(e.into()),
                Err(e) if Instant::now() >= deadline => return Err(e.into()),
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        Ok(Self {
            client,
            url,
            kubeconfig,
            ca_file,
            etcd_endpoint: etcd.endpoint.clone(),
            ca,
            _etcd: etcd,
            dir,
        })
    }

    /// The directory holding the certificates and the kubeconfig; files a
    /// test writes here are removed with the server.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A client authenticated as `user` in `groups` by a client certificate
    /// this server's CA signed (CN = user, O = groups); no retries.
    pub async fn client_for(&self, user: &str, groups: &[&str]) -> kube::Client {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name.push(DnType::CommonName, user);
        for g in groups {
            p.distinguished_name.push(DnType::OrganizationName, *g);
        }
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = p.signed_by(&key, &self.ca).expect("client certificate");
        self.client_with_cert(&cert.pem(), &key.serialize_pem())
            .await
            .expect("client")
    }

    /// A client for another identity: `cert_pem`/`key_pem` as its client
    /// certificate, trusting this server's CA; no retries.
    pub async fn client_with_cert(
        &self,
        cert_pem: &str,
        key_pem: &str,
    ) -> Result<kube::Client, Error> {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let ca = std::fs::read_to_string(&self.ca_file)?;
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority-data: {}\nusers:\n- name: u\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n",
            self.url,
            b64(&ca),
            b64(cert_pem),
            b64(key_pem)
        );
        client_from_kubeconfig_text(&text, false).await
    }

    /// A client sending `token` as its bearer token, trusting this
    /// server's CA; no retries.
    pub async fn client_with_token(&self, token: &str) -> Result<kube::Client, Error> {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let ca = std::fs::read_to_string(&self.ca_file)?;
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority-data: {}\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n",
            self.url,
            b64(&ca),
        );
        client_from_kubeconfig_text(&text, false).await
    }

    /// One request as the admin with a JSON body (none when `Null`): the
    /// status, the `Warning` headers and the answer's JSON.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &serde_json::Value,
    ) -> Raw {
        request(&self.client, method, path, content_type, body).await
    }

    /// A new ServiceAccount `name` in `namespace` and a token for it
    /// (TokenRequest, the server's default audiences).
    pub async fn service_account_token(&self, namespace: &str, name: &str) -> String {
        let sa = self
            .raw(
                "POST",
                &format!("/api/v1/namespaces/{namespace}/serviceaccounts"),
                "application/json",
                &serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}),
            )
            .await;
        assert_eq!(sa.code, 201, "{}", sa.body);
        let t = self
            .raw(
                "POST",
                &format!("/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"),
                "application/json",
                &serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}),
            )
            .await;
        assert_eq!(t.code, 201, "{}", t.body);
        t.body["status"]["token"]
            .as_str()
            .expect("a token in the TokenRequest's status")
            .to_string()
    }

    /// A fresh client (own connection pool) for the same admin user.
    pub async fn new_client(&self) -> Result<kube::Client, Error> {
        client_from_kubeconfig_text(&std::fs::read_to_string(&self.kubeconfig)?, true).await
    }

    /// A client that does not retry 429/503/504 answers (kube-rs's default
    /// does, for minutes), for tests that assert those answers.
    pub async fn client_without_retries(&self) -> Result<kube::Client, Error> {
        client_from_kubeconfig_text(&std::fs::read_to_string(&self.kubeconfig)?, false).await
    }
}

async fn client_from_kubeconfig_text(text: &str, retry: bool) -> Result<kube::Client, Error> {
    let kc = kube::config::Kubeconfig::from_yaml(text)?;
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    cfg.default_retry = retry;
    Ok(kube::Client::try_from(cfg)?)
}

/// One request through `client` with a JSON body (none when `Null`): the
/// status, the `Warning` headers and the answer's JSON.
pub async fn request(
    client: &kube::Client,
    method: &str,
    path: &str,
    content_type: &str,
    body: &serde_json::Value,
) -> Raw {
    request_with(client, method, path, content_type, body, &[]).await
}

/// [`request`] with more headers (`Impersonate-User`, …).
pub async fn request_with(
    client: &kube::Client,
    method: &str,
    path: &str,
    content_type: &str,
    body: &serde_json::Value,
    headers: &[(&str, &str)],
) -> Raw {
    use http_body_util::BodyExt;
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("Content-Type", content_type)
        .header("Accept", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(bytes).expect("request");
    let resp = client
        .send(req.map(kube::client::Body::from))
        .await
        .expect("response");
    let code = resp.status().as_u16();
    let warnings = resp
        .headers()
        .get_all("warning")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    Raw {
        code,
        warnings,
        body: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    }
}
