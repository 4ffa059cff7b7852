//! The pod's `/etc/hosts` (upstream's `kubelet_pods.go` `makeHostsMount`,
//! `ensureHostsFile`, `managedHostsFileContent`): written once per pod at
//! `<root>/pods/<uid>/etc-hosts` when the pod has an IP, and bind-mounted
//! read-write into every container that does not mount `/etc/hosts`
//! itself. A pod network pod gets localhost, the IPv6 names, its IPs with
//! its hostname (and FQDN when it has a subdomain) and `hostAliases`; a
//! host network pod gets the node's file and its `hostAliases`.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{HostAlias, Pod};

use super::labels::pod_namespace;
use super::sandbox::pod_hostname;

pub const ETC_HOSTS: &str = "/etc/hosts";
const HEADER: &str = "# Kubernetes-managed hosts file.\n";
const HEADER_HOST_NETWORK: &str = "# Kubernetes-managed hosts file (host network).\n";

/// Where the pod's file lives.
pub fn path(root_dir: &Path, pod_uid: &str) -> PathBuf {
    root_dir.join("pods").join(pod_uid).join("etc-hosts")
}

/// The pod's domain (upstream's `GeneratePodHostNameAndDomain`):
/// `<subdomain>.<namespace>.svc.<cluster domain>` when it has a subdomain.
pub fn host_domain(pod: &Pod, cluster_domain: &str) -> Option<String> {
    let sub = pod
        .spec
        .as_ref()?
        .subdomain
        .as_deref()
        .filter(|s| !s.is_empty())?;
    Some(format!("{sub}.{}.svc.{cluster_domain}", pod_namespace(pod)))
}

fn aliases(host_aliases: &[HostAlias]) -> String {
    if host_aliases.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n# Entries added by HostAliases.\n");
    for a in host_aliases {
        out.push_str(&format!(
            "{}\t{}\n",
            a.ip,
            a.hostnames.as_deref().unwrap_or_default().join("\t")
        ));
    }
    out
}

/// The file of a pod on the pod network.
pub fn managed_content(
    ips: &[String],
    hostname: &str,
    domain: Option<&str>,
    host_aliases: &[HostAlias],
) -> String {
    let mut out = String::from(HEADER);
    out.push_str("127.0.0.1\tlocalhost\n");
    out.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
    out.push_str("fe00::0\tip6-localnet\n");
    out.push_str("fe00::0\tip6-mcastprefix\n");
    out.push_str("fe00::1\tip6-allnodes\n");
    out.push_str("fe00::2\tip6-allrouters\n");
    for ip in ips {
        match domain {
            Some(d) => out.push_str(&format!("{ip}\t{hostname}.{d}\t{hostname}\n")),
            None => out.push_str(&format!("{ip}\t{hostname}\n")),
        }
    }
    out.push_str(&aliases(host_aliases));
    out
}

/// The file of a host network pod: the node's own, then the aliases.
pub fn host_network_content(node_hosts: &str, host_aliases: &[HostAlias]) -> String {
    format!("{HEADER_HOST_NETWORK}{node_hosts}{}", aliases(host_aliases))
}

/// Writes the pod's file unless it exists (it is written once, as
/// upstream's); its path.
pub fn ensure(
    root_dir: &Path,
    pod: &Pod,
    ips: &[String],
    cluster_domain: &str,
    node_hosts_file: &Path,
) -> std::io::Result<PathBuf> {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let file = path(root_dir, uid);
    if file.exists() {
        return Ok(file);
    }
    let spec = pod.spec.as_ref();
    let host_aliases = spec
        .and_then(|s| s.host_aliases.as_deref())
        .unwrap_or_default();
    let content = if spec.and_then(|s| s.host_network).unwrap_or(false) {
        let node = std::fs::read_to_string(node_hosts_file)?;
        host_network_content(&node, host_aliases)
    } else {
        managed_content(
            ips,
            &pod_hostname(pod),
            host_domain(pod, cluster_domain).as_deref(),
            host_aliases,
        )
    };
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&file, content)?;
    Ok(file)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn pod_network_file_as_upstream() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "web-0", "namespace": "shop", "uid": "u1"},
            "spec": {"subdomain": "web", "containers": [],
                "hostAliases": [{"ip": "10.1.2.3", "hostnames": ["foo.local", "bar.local"]}]}
        }));
        let tmp = tempfile::tempdir().unwrap();
        let f = ensure(
            tmp.path(),
            &p,
            &["10.88.0.7".into()],
            "cluster.local",
            Path::new("/nonexistent"),
        )
        .unwrap();
        assert_eq!(f, tmp.path().join("pods/u1/etc-hosts"));
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            "# Kubernetes-managed hosts file.\n\
             127.0.0.1\tlocalhost\n\
             ::1\tlocalhost ip6-localhost ip6-loopback\n\
             fe00::0\tip6-localnet\n\
             fe00::0\tip6-mcastprefix\n\
             fe00::1\tip6-allnodes\n\
             fe00::2\tip6-allrouters\n\
             10.88.0.7\tweb-0.web.shop.svc.cluster.local\tweb-0\n\
             \n\
             # Entries added by HostAliases.\n\
             10.1.2.3\tfoo.local\tbar.local\n"
        );
        // Written once: a later call keeps it.
        std::fs::write(&f, "kept").unwrap();
        ensure(
            tmp.path(),
            &p,
            &["10.88.0.9".into()],
            "cluster.local",
            Path::new("/x"),
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "kept");
        assert_eq!(
            managed_content(&["10.0.0.1".into()], "plain", None, &[]),
            format!("{HEADER}127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n10.0.0.1\tplain\n")
        );
    }

    #[test]
    fn host_network_file_copies_the_nodes() {
        let tmp = tempfile::tempdir().unwrap();
        let node = tmp.path().join("hosts");
        std::fs::write(&node, "127.0.0.1 localhost\n192.168.1.5 node1\n").unwrap();
        let p = pod(serde_json::json!({
            "metadata": {"name": "h", "uid": "u2"},
            "spec": {"hostNetwork": true, "containers": [],
                "hostAliases": [{"ip": "1.2.3.4", "hostnames": ["x"]}]}
        }));
        let f = ensure(
            tmp.path(),
            &p,
            &["192.168.1.5".into()],
            "cluster.local",
            &node,
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(f).unwrap(),
            "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n192.168.1.5 node1\n\n# Entries added by HostAliases.\n1.2.3.4\tx\n"
        );
    }
}
