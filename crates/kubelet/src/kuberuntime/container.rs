//! A container's CRI configuration (upstream's
//! `pkg/kubelet/kuberuntime/kuberuntime_container.go` `generateContainerConfig`
//! with `kubelet_pods.go` `makeEnvironmentVariables` and `makeMounts`, and
//! `kuberuntime_container_linux.go` for resources).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Container, EnvVar, Pod};

use crate::cri::api::{
    ContainerConfig, ContainerMetadata, ImageSpec, KeyValue, LinuxContainerConfig,
    LinuxContainerResources, LinuxContainerSecurityContext, Mount,
};

use super::expansion::expand;
use super::hosts_file;
use super::labels::{self, pod_name, pod_namespace, pod_uid, ContainerType};
use super::quantity;
use super::termination_message;
use crate::volume::{subpath, PodVolumes};

/// Why a container's configuration could not be made; shown as the
/// `CreateContainerConfigError` waiting reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("configmap \"{0}\" not found")]
    ConfigMapNotFound(String),
    #[error("couldn't find key {key} in ConfigMap {namespace}/{name}")]
    ConfigMapKey {
        namespace: String,
        name: String,
        key: String,
    },
    #[error("secret \"{0}\" not found")]
    SecretNotFound(String),
    #[error("couldn't find key {key} in Secret {namespace}/{name}")]
    SecretKey {
        namespace: String,
        name: String,
        key: String,
    },
    #[error("unsupported fieldPath: {0}")]
    FieldPath(String),
    #[error("unsupported container resource: {0}")]
    Resource(String),
    #[error("volume {0:?} not found in the pod's volumes")]
    Volume(String),
    /// A volume the container mounts could not be set up.
    #[error("{0}")]
    Mount(String),
    /// A subPath or subPathExpr that is refused or could not be made.
    #[error("{0}")]
    SubPath(String),
}

/// The ConfigMaps and Secrets the pod's env refers to, fetched beforehand
/// (name → data; Secret values decoded).
#[derive(Debug, Clone, Default)]
pub struct EnvSources {
    pub config_maps: HashMap<String, BTreeMap<String, String>>,
    pub secrets: HashMap<String, BTreeMap<String, String>>,
    /// The Service variables the pod sees ([`crate::envvars`]), in order.
    pub services: Vec<(String, String)>,
}

/// What a container's configuration needs besides the pod.
#[derive(Debug, Clone, Default)]
pub struct ContainerSettings {
    pub pod_ips: Vec<String>,
    pub host_ips: Vec<String>,
    pub node_name: String,
    /// `--root-dir` (volumes live under `<root>/pods/<uid>/volumes`).
    pub root_dir: PathBuf,
    /// The node's memory, for the Burstable OOM score and as the default
    /// of an unset `limits.memory` in `resourceFieldRef`.
    pub memory_capacity: f64,
    /// The node's CPUs, the default of an unset `limits.cpu`.
    pub cpu_capacity: f64,
    /// `--cluster-domain`, for the FQDN in `/etc/hosts`.
    pub cluster_domain: String,
    /// The node's hosts file, copied for host network pods.
    pub node_hosts_file: PathBuf,
}

fn field_ref(pod: &Pod, path: &str, s: &ContainerSettings) -> Result<String, ConfigError> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let sub = |prefix: &str| -> Option<String> {
        path.strip_prefix(prefix)?
            .strip_prefix("['")?
            .strip_suffix("']")
            .map(str::to_string)
    };
    if let Some(k) = sub("metadata.labels") {
        return Ok(meta
            .labels
            .as_ref()
            .and_then(|l| l.get(&k))
            .cloned()
            .unwrap_or_default());
    }
    if let Some(k) = sub("metadata.annotations") {
        return Ok(meta
            .annotations
            .as_ref()
            .and_then(|l| l.get(&k))
            .cloned()
            .unwrap_or_default());
    }
    Ok(match path {
        "metadata.name" => pod_name(pod).into(),
        "metadata.namespace" => pod_namespace(pod).into(),
        "metadata.uid" => pod_uid(pod).into(),
        "spec.nodeName" => spec
            .and_then(|s| s.node_name.clone())
            .unwrap_or_else(|| s.node_name.clone()),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" => s.host_ips.first().cloned().unwrap_or_default(),
        "status.hostIPs" => s.host_ips.join(","),
        "status.podIP" => s.pod_ips.first().cloned().unwrap_or_default(),
        "status.podIPs" => s.pod_ips.join(","),
        other => return Err(ConfigError::FieldPath(other.into())),
    })
}

/// A `resourceFieldRef` value (upstream's `ExtractContainerResourceValue`):
/// the limit or request divided by the divisor and rounded up; an unset
/// limit is the node's capacity (upstream: allocatable), an unset request is
/// the limit or zero.
pub(crate) fn resource_field_ref(
    c: &Container,
    r: &k8s_openapi::api::core::v1::ResourceFieldSelector,
    s: &ContainerSettings,
) -> Result<String, ConfigError> {
    let res = c.resources.as_ref();
    let get = |limits: bool, name: &str| {
        res.and_then(|r| {
            if limits {
                r.limits.as_ref()
            } else {
                r.requests.as_ref()
            }
        })
        .and_then(|m| m.get(name))
        .and_then(quantity::parse)
    };
    let value = match r.resource.as_str() {
        "limits.cpu" => get(true, "cpu").unwrap_or(s.cpu_capacity),
        "limits.memory" => get(true, "memory").unwrap_or(s.memory_capacity),
        "requests.cpu" => get(false, "cpu").or(get(true, "cpu")).unwrap_or(0.0),
        "requests.memory" => get(false, "memory").or(get(true, "memory")).unwrap_or(0.0),
        other => return Err(ConfigError::Resource(other.into())),
    };
    let divisor = r
        .divisor
        .as_ref()
        .and_then(quantity::parse)
        .filter(|d| *d > 0.0)
        .unwrap_or(1.0);
    Ok(format!("{}", (value / divisor).ceil() as i64))
}

/// The container's environment in order, `$(VAR)` references expanded
/// against the variables before them and the Service variables, which come
/// last and only where the container defines no variable of that name
/// (upstream's `makeEnvironmentVariables`).
pub fn make_environment(
    pod: &Pod,
    container: &Container,
    sources: &EnvSources,
    s: &ContainerSettings,
) -> Result<Vec<(String, String)>, ConfigError> {
    let ns = pod_namespace(pod);
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |env: &mut Vec<(String, String)>, k: String, v: String| match env
        .iter_mut()
        .find(|(name, _)| *name == k)
    {
        Some(e) => e.1 = v,
        None => env.push((k, v)),
    };
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(cm) = &from.config_map_ref {
            let name = cm.name.clone();
            match sources.config_maps.get(&name) {
                Some(data) => {
                    for (k, v) in data {
                        set(&mut env, format!("{prefix}{k}"), v.clone());
                    }
                }
                None if cm.optional == Some(true) => {}
                None => return Err(ConfigError::ConfigMapNotFound(name)),
            }
        }
        if let Some(sr) = &from.secret_ref {
            let name = sr.name.clone();
            match sources.secrets.get(&name) {
                Some(data) => {
                    for (k, v) in data {
                        set(&mut env, format!("{prefix}{k}"), v.clone());
                    }
                }
                None if sr.optional == Some(true) => {}
                None => return Err(ConfigError::SecretNotFound(name)),
            }
        }
    }
    for EnvVar {
        name,
        value,
        value_from,
    } in container.env.iter().flatten()
    {
        let v = if let Some(from) = value_from {
            if let Some(f) = &from.field_ref {
                field_ref(pod, &f.field_path, s)?
            } else if let Some(k) = &from.config_map_key_ref {
                match sources.config_maps.get(&k.name).map(|d| d.get(&k.key)) {
                    Some(Some(v)) => v.clone(),
                    _ if k.optional == Some(true) => continue,
                    Some(None) => {
                        return Err(ConfigError::ConfigMapKey {
                            namespace: ns.into(),
                            name: k.name.clone(),
                            key: k.key.clone(),
                        })
                    }
                    None => return Err(ConfigError::ConfigMapNotFound(k.name.clone())),
                }
            } else if let Some(k) = &from.secret_key_ref {
                match sources.secrets.get(&k.name).map(|d| d.get(&k.key)) {
                    Some(Some(v)) => v.clone(),
                    _ if k.optional == Some(true) => continue,
                    Some(None) => {
                        return Err(ConfigError::SecretKey {
                            namespace: ns.into(),
                            name: k.name.clone(),
                            key: k.key.clone(),
                        })
                    }
                    None => return Err(ConfigError::SecretNotFound(k.name.clone())),
                }
            } else if let Some(r) = &from.resource_field_ref {
                resource_field_ref(container, r, s)?
            } else {
                String::new()
            }
        } else {
            let raw = value.clone().unwrap_or_default();
            let snapshot = env.clone();
            expand(&raw, |n| {
                snapshot
                    .iter()
                    .chain(sources.services.iter())
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| v.clone())
            })
        };
        set(&mut env, name.clone(), v);
    }
    for (k, v) in &sources.services {
        if !env.iter().any(|(name, _)| name == k) {
            env.push((k.clone(), v.clone()));
        }
    }
    Ok(env)
}

/// The pod's QoS class (upstream's `qos.GetPodQOS`).
pub fn qos_class(pod: &Pod) -> &'static str {
    let Some(spec) = &pod.spec else {
        return "BestEffort";
    };
    let mut any = false;
    let mut guaranteed = true;
    for c in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        let r = c.resources.as_ref();
        let requests = r.and_then(|r| r.requests.as_ref());
        let limits = r.and_then(|r| r.limits.as_ref());
        for name in ["cpu", "memory"] {
            let req = requests.and_then(|m| m.get(name)).and_then(quantity::parse);
            let lim = limits.and_then(|m| m.get(name)).and_then(quantity::parse);
            if req.is_some_and(|v| v > 0.0) || lim.is_some_and(|v| v > 0.0) {
                any = true;
            }
            // Requests default to limits, so an absent request is equal.
            match (req.or(lim), lim) {
                (Some(a), Some(b)) if a == b => {}
                _ => guaranteed = false,
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn resources(pod: &Pod, c: &Container, s: &ContainerSettings) -> LinuxContainerResources {
    let r = c.resources.as_ref();
    let get =
        |m: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
         k: &str| m.and_then(|m| m.get(k)).and_then(quantity::parse);
    let limits = r.and_then(|r| r.limits.as_ref());
    let requests = r.and_then(|r| r.requests.as_ref());
    let cpu_limit = get(limits, "cpu");
    let cpu_request = get(requests, "cpu").or(cpu_limit);
    let mem_limit = get(limits, "memory");
    let mem_request = get(requests, "memory").or(mem_limit);
    let mut out = LinuxContainerResources {
        // Upstream's MilliCPUToShares: 2 at least.
        cpu_shares: cpu_request
            .map(|c| ((c * 1024.0) as i64).max(2))
            .unwrap_or(2),
        ..Default::default()
    };
    if let Some(c) = cpu_limit {
        out.cpu_period = 100_000;
        out.cpu_quota = ((c * 100_000.0) as i64).max(1000);
    }
    if let Some(m) = mem_limit {
        out.memory_limit_in_bytes = m as i64;
    }
    out.oom_score_adj = match qos_class(pod) {
        "Guaranteed" => -997,
        "BestEffort" => 1000,
        _ => {
            let req = mem_request.unwrap_or(0.0);
            let adj = if s.memory_capacity > 0.0 {
                1000 - (1000.0 * req / s.memory_capacity) as i64
            } else {
                1000
            };
            adj.clamp(2, 999)
        }
    };
    out
}

/// The CRI configuration for `container` as its `restart_count`th restart.
#[allow(clippy::too_many_arguments)]
pub fn generate_container_config(
    pod: &Pod,
    container: &Container,
    ty: ContainerType,
    restart_count: i32,
    image_ref: &str,
    sources: &EnvSources,
    volumes: &PodVolumes,
    s: &ContainerSettings,
) -> Result<ContainerConfig, ConfigError> {
    let env = make_environment(pod, container, sources, s)?;
    let lookup = |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let command = container
        .command
        .iter()
        .flatten()
        .map(|c| expand(c, lookup))
        .collect();
    let args = container
        .args
        .iter()
        .flatten()
        .map(|c| expand(c, lookup))
        .collect();
    let mut mounts = Vec::new();
    for (index, m) in container.volume_mounts.iter().flatten().enumerate() {
        let base = volumes.host_path(&m.name)?;
        // subPathExpr expands `$(VAR)` from the container's env (upstream's
        // `ExpandContainerVolumeMounts`).
        let sub = match m.sub_path_expr.as_deref().filter(|p| !p.is_empty()) {
            Some(expr) => expand(expr, lookup),
            None => m.sub_path.clone().unwrap_or_default(),
        };
        let host = if sub.is_empty() {
            base.to_path_buf()
        } else {
            // Upstream's `<pod>/volume-subpaths/<volume>/<container>/<index>`.
            let target = s
                .root_dir
                .join("pods")
                .join(pod_uid(pod))
                .join("volume-subpaths")
                .join(&m.name)
                .join(&container.name)
                .join(index.to_string());
            let plain = |p: &str| !p.is_empty() && !p.contains('/') && p != "." && p != "..";
            if !(plain(pod_uid(pod)) && plain(&m.name) && plain(&container.name)) {
                return Err(ConfigError::SubPath(format!(
                    "cannot place the subPath of volume {:?}",
                    m.name
                )));
            }
            subpath::prepare_safe(base, &sub, &target).map_err(ConfigError::SubPath)?
        };
        mounts.push(Mount {
            container_path: m.mount_path.clone(),
            host_path: host.to_string_lossy().into_owned(),
            readonly: m.read_only.unwrap_or(false),
            ..Default::default()
        });
    }
    // A file for the termination message, per instance.
    let message_path = container
        .termination_message_path
        .clone()
        .unwrap_or_else(|| "/dev/termination-log".into());
    if !message_path.is_empty() && s.root_dir.is_absolute() {
        let file = termination_message::create_file(&s.root_dir, pod_uid(pod), &container.name)
            .map_err(|e| {
                ConfigError::Mount(format!(
                    "failed to create the termination message file: {e}"
                ))
            })?;
        mounts.push(Mount {
            container_path: message_path,
            host_path: file.to_string_lossy().into_owned(),
            readonly: false,
            ..Default::default()
        });
    }
    // Upstream's managed /etc/hosts once the pod has an IP, unless the
    // container mounts its own.
    if !s.pod_ips.is_empty()
        && s.root_dir.is_absolute()
        && !mounts
            .iter()
            .any(|m| m.container_path == hosts_file::ETC_HOSTS)
    {
        let node_hosts = if s.node_hosts_file.as_os_str().is_empty() {
            std::path::Path::new(hosts_file::ETC_HOSTS)
        } else {
            s.node_hosts_file.as_path()
        };
        let file = hosts_file::ensure(&s.root_dir, pod, &s.pod_ips, &s.cluster_domain, node_hosts)
            .map_err(|e| ConfigError::Mount(format!("failed to create the hosts file: {e}")))?;
        mounts.push(Mount {
            container_path: hosts_file::ETC_HOSTS.into(),
            host_path: file.to_string_lossy().into_owned(),
            readonly: false,
            ..Default::default()
        });
    }
    let sc = container.security_context.as_ref();
    let psc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    Ok(ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: container.name.clone(),
            attempt: restart_count.max(0) as u32,
        }),
        image: Some(ImageSpec {
            image: image_ref.into(),
            user_specified_image: container.image.clone().unwrap_or_default(),
            ..Default::default()
        }),
        command,
        args,
        working_dir: container.working_dir.clone().unwrap_or_default(),
        envs: env
            .into_iter()
            .map(|(key, value)| KeyValue { key, value })
            .collect(),
        mounts,
        labels: labels::new_container_labels(container, pod, ty),
        annotations: labels::new_container_annotations(container, pod, restart_count),
        log_path: format!("{}/{}.log", container.name, restart_count),
        stdin: container.stdin.unwrap_or(false),
        stdin_once: container.stdin_once.unwrap_or(false),
        tty: container.tty.unwrap_or(false),
        linux: Some(LinuxContainerConfig {
            resources: Some(resources(pod, container, s)),
            security_context: Some(LinuxContainerSecurityContext {
                privileged: sc.and_then(|c| c.privileged).unwrap_or(false),
                run_as_user: sc
                    .and_then(|c| c.run_as_user)
                    .or(psc.and_then(|c| c.run_as_user))
                    .map(|value| crate::cri::api::Int64Value { value }),
                run_as_group: sc
                    .and_then(|c| c.run_as_group)
                    .or(psc.and_then(|c| c.run_as_group))
                    .map(|value| crate::cri::api::Int64Value { value }),
                readonly_rootfs: sc
                    .and_then(|c| c.read_only_root_filesystem)
                    .unwrap_or(false),
                ..Default::default()
            }),
        }),
        ..Default::default()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ConfigMapKeySelector, EnvVarSource, ObjectFieldSelector, PodSpec, ResourceRequirements,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(containers: Vec<Container>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns1".into()),
                uid: Some("u1".into()),
                labels: Some([("app".to_string(), "x".to_string())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers,
                node_name: Some("n1".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn var(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some(value.into()),
            value_from: None,
        }
    }

    fn field(name: &str, path: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: path.into(),
                    api_version: None,
                }),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn service_variables_come_last_expand_and_yield_to_the_containers() {
        let c = Container {
            name: "app".into(),
            env: Some(vec![
                var("API", "https://$(KUBERNETES_SERVICE_HOST):443"),
                var("WEB_SERVICE_HOST", "mine"),
            ]),
            ..Default::default()
        };
        let p = pod(vec![c.clone()]);
        let src = EnvSources {
            services: [
                ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
                ("WEB_SERVICE_HOST", "10.0.0.3"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .to_vec(),
            ..Default::default()
        };
        let env = make_environment(&p, &c, &src, &Default::default()).unwrap();
        assert_eq!(
            env,
            [
                ("API", "https://10.0.0.1:443"),
                ("WEB_SERVICE_HOST", "mine"),
                ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
    }

    #[test]
    fn env_values_field_refs_and_expansion_in_order() {
        let c = Container {
            name: "app".into(),
            env: Some(vec![
                var("A", "a"),
                field("POD", "metadata.name"),
                field("IP", "status.podIP"),
                field("APP", "metadata.labels['app']"),
                var("B", "$(A)-$(POD)-$(LATER)"),
                var("LATER", "z"),
            ]),
            command: Some(vec!["echo".into(), "$(B)".into()]),
            ..Default::default()
        };
        let p = pod(vec![c.clone()]);
        let s = ContainerSettings {
            pod_ips: vec!["10.88.0.5".into()],
            ..Default::default()
        };
        let env = make_environment(&p, &c, &EnvSources::default(), &s).unwrap();
        assert_eq!(
            env,
            [
                ("A", "a"),
                ("POD", "web"),
                ("IP", "10.88.0.5"),
                ("APP", "x"),
                ("B", "a-web-$(LATER)"),
                ("LATER", "z"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        let cfg = generate_container_config(
            &p,
            &c,
            ContainerType::Regular,
            2,
            "sha256:x",
            &EnvSources::default(),
            &PodVolumes::default(),
            &s,
        )
        .unwrap();
        assert_eq!(cfg.command, vec!["echo", "a-web-$(LATER)"]);
        assert_eq!(cfg.log_path, "app/2.log");
        assert_eq!(cfg.metadata.unwrap().attempt, 2);
        assert_eq!(
            cfg.annotations
                .get(labels::CONTAINER_RESTART_COUNT)
                .map(String::as_str),
            Some("2")
        );
    }

    #[test]
    fn missing_config_map_key_is_a_config_error_unless_optional() {
        let mk = |optional| Container {
            name: "app".into(),
            env: Some(vec![EnvVar {
                name: "K".into(),
                value: None,
                value_from: Some(EnvVarSource {
                    config_map_key_ref: Some(ConfigMapKeySelector {
                        name: "cm".into(),
                        key: "k".into(),
                        optional,
                    }),
                    ..Default::default()
                }),
            }]),
            ..Default::default()
        };
        let c = mk(None);
        let p = pod(vec![c.clone()]);
        let err =
            make_environment(&p, &c, &EnvSources::default(), &Default::default()).unwrap_err();
        assert_eq!(err.to_string(), "configmap \"cm\" not found");
        let c = mk(Some(true));
        assert!(
            make_environment(&p, &c, &EnvSources::default(), &Default::default())
                .unwrap()
                .is_empty()
        );
        let mut src = EnvSources::default();
        src.config_maps
            .insert("cm".into(), [("k".to_string(), "v".to_string())].into());
        let c = mk(None);
        assert_eq!(
            make_environment(&p, &c, &src, &Default::default()).unwrap()[0].1,
            "v"
        );
    }

    #[test]
    fn resource_field_refs_round_up_and_default_to_the_node() {
        use k8s_openapi::api::core::v1::ResourceFieldSelector;
        let env = |name: &str, resource: &str, divisor: Option<&str>| EnvVar {
            name: name.into(),
            value: None,
            value_from: Some(EnvVarSource {
                resource_field_ref: Some(ResourceFieldSelector {
                    resource: resource.into(),
                    divisor: divisor.map(|d| Quantity(d.into())),
                    container_name: None,
                }),
                ..Default::default()
            }),
        };
        let c = Container {
            name: "app".into(),
            resources: Some(ResourceRequirements {
                limits: Some([("cpu".to_string(), Quantity("1500m".into()))].into()),
                requests: Some([("memory".to_string(), Quantity("64Mi".into()))].into()),
                ..Default::default()
            }),
            env: Some(vec![
                env("CPU", "limits.cpu", None),
                env("CPU_M", "limits.cpu", Some("1m")),
                env("MEM_MI", "requests.memory", Some("1Mi")),
                env("MEM_LIMIT", "limits.memory", None),
            ]),
            ..Default::default()
        };
        let p = pod(vec![c.clone()]);
        let s = ContainerSettings {
            memory_capacity: 1024.0,
            cpu_capacity: 2.0,
            ..Default::default()
        };
        let got = make_environment(&p, &c, &EnvSources::default(), &s).unwrap();
        let values: Vec<&str> = got.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(values, ["2", "1500", "64", "1024"]);
    }

    #[test]
    fn qos_classes() {
        let with = |req: &[(&str, &str)], lim: &[(&str, &str)]| {
            let q = |v: &[(&str, &str)]| {
                (!v.is_empty()).then(|| {
                    v.iter()
                        .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                        .collect()
                })
            };
            pod(vec![Container {
                name: "a".into(),
                resources: Some(ResourceRequirements {
                    requests: q(req),
                    limits: q(lim),
                    ..Default::default()
                }),
                ..Default::default()
            }])
        };
        assert_eq!(qos_class(&with(&[], &[])), "BestEffort");
        assert_eq!(qos_class(&with(&[("cpu", "100m")], &[])), "Burstable");
        assert_eq!(
            qos_class(&with(&[], &[("cpu", "1"), ("memory", "1Gi")])),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&with(
                &[("cpu", "500m")],
                &[("cpu", "1"), ("memory", "1Gi")]
            )),
            "Burstable"
        );
    }
}
