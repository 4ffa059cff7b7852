//! The Pod Security Standards checks (upstream's
//! `k8s.io/pod-security-admission/policy`), on a pod spec as JSON. Each
//! check yields a forbidden reason and a detail in upstream's words; a
//! level runs its checks in upstream's order (sorted by check ID), the
//! restricted versions replacing their baseline counterparts.

use serde_json::Value;

/// A policy level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "privileged" => Some(Level::Privileged),
            "baseline" => Some(Level::Baseline),
            "restricted" => Some(Level::Restricted),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// One failed check: upstream's `ForbiddenReason` and `ForbiddenDetail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub reason: &'static str,
    pub detail: String,
}

struct Container<'a> {
    name: &'a str,
    v: &'a Value,
}

fn containers(spec: &Value) -> Vec<Container<'_>> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|f| spec.get(*f).and_then(Value::as_array))
        .flatten()
        .map(|c| Container {
            name: c.get("name").and_then(Value::as_str).unwrap_or(""),
            v: c,
        })
        .collect()
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `container "a"` / `containers "a", "b"`.
fn plural(names: &[&str], one: &str, many: &str) -> String {
    if names.len() == 1 {
        format!("{one} {}", quoted(names))
    } else {
        format!("{many} {}", quoted(names))
    }
}

/// `pod`, `pod and container "a"`, or `containers "a", "b"`: who set it.
fn pod_and(pod: bool, names: &[&str]) -> String {
    match (pod, names.is_empty()) {
        (true, true) => "pod".to_string(),
        (true, false) => format!("pod and {}", plural(names, "container", "containers")),
        _ => plural(names, "container", "containers"),
    }
}

fn sc<'a>(c: &'a Value) -> &'a Value {
    c.get("securityContext").unwrap_or(&Value::Null)
}

fn is_true(v: Option<&Value>) -> bool {
    v.and_then(Value::as_bool) == Some(true)
}

const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];
const RESTRICTED_VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

type Check = fn(&Value, &Value) -> Option<Violation>;

fn allow_privilege_escalation(_meta: &Value, spec: &Value) -> Option<Violation> {
    let bad: Vec<&str> = containers(spec)
        .iter()
        .filter(|c| {
            sc(c.v)
                .get("allowPrivilegeEscalation")
                .and_then(Value::as_bool)
                != Some(false)
        })
        .map(|c| c.name)
        .collect();
    (!bad.is_empty()).then(|| Violation {
        reason: "allowPrivilegeEscalation != false",
        detail: format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            plural(&bad, "container", "containers")
        ),
    })
}

fn app_armor(meta: &Value, spec: &Value) -> Option<Violation> {
    let mut bad = Vec::new();
    for (k, v) in meta
        .get("annotations")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if k.starts_with("container.apparmor.security.beta.kubernetes.io/") {
            let p = v.as_str().unwrap_or("");
            if p != "runtime/default" && !p.starts_with("localhost/") {
                bad.push(format!("{k}={p:?}"));
            }
        }
    }
    let unconfined = |v: &Value| {
        v.pointer("/appArmorProfile/type").and_then(Value::as_str) == Some("Unconfined")
    };
    if unconfined(sc(spec)) {
        bad.push("pod must not set securityContext.appArmorProfile.type to \"Unconfined\"".into());
    }
    for c in containers(spec) {
        if unconfined(sc(c.v)) {
            bad.push(format!("container {:?} must not set securityContext.appArmorProfile.type to \"Unconfined\"", c.name));
        }
    }
    (!bad.is_empty()).then(|| Violation {
        reason: "forbidden AppArmor profiles",
        detail: bad.join(", "),
    })
}

fn caps_add(c: &Container<'_>) -> Vec<String> {
    sc(c.v)
        .pointer("/capabilities/add")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn capabilities_baseline(_meta: &Value, spec: &Value) -> Option<Violation> {
    let mut names = Vec::new();
    let mut caps: Vec<String> = Vec::new();
    for c in containers(spec) {
        let bad: Vec<String> = caps_add(&c)
            .into_iter()
            .filter(|a| !BASELINE_CAPABILITIES.contains(&a.as_str()))
            .collect();
        if !bad.is_empty() {
            names.push(c.name);
            for b in bad {
                if !caps.contains(&b) {
                    caps.push(b);
                }
            }
        }
    }
    (!names.is_empty()).then(|| Violation {
        reason: "non-default capabilities",
        detail: format!(
            "{} must not include {} in securityContext.capabilities.add",
            plural(&names, "container", "containers"),
            quoted(&caps.iter().map(String::as_str).collect::<Vec<_>>())
        ),
    })
}

fn capabilities_restricted(_meta: &Value, spec: &Value) -> Option<Violation> {
    let mut no_drop = Vec::new();
    let mut adds = Vec::new();
    let mut caps: Vec<String> = Vec::new();
    for c in containers(spec) {
        let drops_all = sc(c.v)
            .pointer("/capabilities/drop")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|x| x == "ALL"));
        if !drops_all {
            no_drop.push(c.name);
        }
        let bad: Vec<String> = caps_add(&c)
            .into_iter()
            .filter(|a| a != "NET_BIND_SERVICE")
            .collect();
        if !bad.is_empty() {
            adds.push(c.name);
            for b in bad {
                if !caps.contains(&b) {
                    caps.push(b);
                }
            }
        }
    }
    let mut details = Vec::new();
    if !no_drop.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            plural(&no_drop, "container", "containers")
        ));
    }
    if !adds.is_empty() {
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            plural(&adds, "container", "containers"),
            quoted(&caps.iter().map(String::as_str).collect::<Vec<_>>())
        ));
    }
    (!details.is_empty()).then(|| Violation {
        reason: "unrestricted capabilities",
        detail: details.join("; "),
    })
}

fn host_namespaces(_meta: &Value, spec: &Value) -> Option<Violation> {
    let set: Vec<&str> = ["hostNetwork", "hostPID", "hostIPC"]
        .into_iter()
        .filter(|f| is_true(spec.get(*f)))
        .collect();
    (!set.is_empty()).then(|| Violation {
        reason: "host namespaces",
        detail: set
            .iter()
            .map(|f| format!("{f}=true"))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

fn volumes(spec: &Value) -> Vec<(&str, &Value)> {
    spec.get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|v| (v.get("name").and_then(Value::as_str).unwrap_or(""), v))
        .collect()
}

fn host_path_volumes(_meta: &Value, spec: &Value) -> Option<Violation> {
    let bad: Vec<&str> = volumes(spec)
        .into_iter()
        .filter(|(_, v)| v.get("hostPath").is_some())
        .map(|(n, _)| n)
        .collect();
    (!bad.is_empty()).then(|| Violation {
        reason: "hostPath volumes",
        detail: plural(&bad, "volume", "volumes"),
    })
}

fn host_ports(_meta: &Value, spec: &Value) -> Option<Violation> {
    let mut names = Vec::new();
    let mut ports = Vec::new();
    for c in containers(spec) {
        let used: Vec<i64> =
            c.v.get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| p.get("hostPort").and_then(Value::as_i64))
                .filter(|p| *p != 0)
                .collect();
        if !used.is_empty() {
            names.push(c.name);
            ports.extend(used);
        }
    }
    (!names.is_empty()).then(|| Violation {
        reason: "hostPort",
        detail: format!(
            "{} {} {}",
            plural(&names, "container", "containers"),
            if ports.len() == 1 {
                "uses hostPort"
            } else {
                "use hostPorts"
            },
            ports
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

fn host_process(_meta: &Value, spec: &Value) -> Option<Violation> {
    let hp = |v: &Value| is_true(v.pointer("/windowsOptions/hostProcess"));
    let pod = hp(sc(spec));
    let names: Vec<&str> = containers(spec)
        .iter()
        .filter(|c| hp(sc(c.v)))
        .map(|c| c.name)
        .collect();
    if !pod && names.is_empty() {
        return None;
    }
    let who = pod_and(pod, &names);
    Some(Violation {
        reason: "hostProcess",
        detail: format!("{who} must not set securityContext.windowsOptions.hostProcess=true"),
    })
}

fn privileged(_meta: &Value, spec: &Value) -> Option<Violation> {
    let bad: Vec<&str> = containers(spec)
        .iter()
        .filter(|c| is_true(sc(c.v).get("privileged")))
        .map(|c| c.name)
        .collect();
    (!bad.is_empty()).then(|| Violation {
        reason: "privileged",
        detail: format!(
            "{} must not set securityContext.privileged=true",
            plural(&bad, "container", "containers")
        ),
    })
}

fn proc_mount(_meta: &Value, spec: &Value) -> Option<Violation> {
    let bad: Vec<&str> = containers(spec)
        .iter()
        .filter(|c| {
            sc(c.v)
                .get("procMount")
                .and_then(Value::as_str)
                .is_some_and(|m| m != "Default")
        })
        .map(|c| c.name)
        .collect();
    (!bad.is_empty()).then(|| Violation {
        reason: "procMount",
        detail: format!(
            "{} must not set securityContext.procMount to \"Unmasked\"",
            plural(&bad, "container", "containers")
        ),
    })
}

fn restricted_volumes(_meta: &Value, spec: &Value) -> Option<Violation> {
    let mut names = Vec::new();
    let mut types: Vec<String> = Vec::new();
    for (n, v) in volumes(spec) {
        let t = v
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.as_str())
            .find(|k| *k != "name");
        if let Some(t) = t.filter(|t| !RESTRICTED_VOLUMES.contains(t)) {
            names.push(n);
            if !types.iter().any(|x| x == t) {
                types.push(t.to_string());
            }
        }
    }
    (!names.is_empty()).then(|| Violation {
        reason: "restricted volume types",
        detail: format!(
            "{} {} {}",
            plural(&names, "volume", "volumes"),
            if names.len() == 1 {
                "uses restricted volume type"
            } else {
                "use restricted volume types"
            },
            quoted(&types.iter().map(String::as_str).collect::<Vec<_>>())
        ),
    })
}

fn run_as_non_root(_meta: &Value, spec: &Value) -> Option<Violation> {
    let pod = sc(spec).get("runAsNonRoot").and_then(Value::as_bool);
    let mut explicit_false = Vec::new();
    let mut implicit = Vec::new();
    for c in containers(spec) {
        match sc(c.v).get("runAsNonRoot").and_then(Value::as_bool) {
            Some(false) => explicit_false.push(c.name),
            Some(true) => {}
            None if pod != Some(true) => implicit.push(c.name),
            None => {}
        }
    }
    let mut details = Vec::new();
    if pod == Some(false) {
        details.push("pod must not set securityContext.runAsNonRoot=false".to_string());
    }
    if !explicit_false.is_empty() {
        details.push(format!(
            "{} must not set securityContext.runAsNonRoot=false",
            plural(&explicit_false, "container", "containers")
        ));
    }
    if !implicit.is_empty() && pod != Some(false) {
        details.push(format!(
            "pod or {} must set securityContext.runAsNonRoot=true",
            plural(&implicit, "container", "containers")
        ));
    }
    (!details.is_empty()).then(|| Violation {
        reason: "runAsNonRoot != true",
        detail: details.join("; "),
    })
}

fn run_as_user(_meta: &Value, spec: &Value) -> Option<Violation> {
    let zero = |v: &Value| v.get("runAsUser").and_then(Value::as_i64) == Some(0);
    let pod = zero(sc(spec));
    let names: Vec<&str> = containers(spec)
        .iter()
        .filter(|c| zero(sc(c.v)))
        .map(|c| c.name)
        .collect();
    if !pod && names.is_empty() {
        return None;
    }
    let who = pod_and(pod, &names);
    Some(Violation {
        reason: "runAsUser=0",
        detail: format!("{who} must not set runAsUser=0"),
    })
}

fn se_linux(_meta: &Value, spec: &Value) -> Option<Violation> {
    let allowed_types = [
        "",
        "container_t",
        "container_init_t",
        "container_kvm_t",
        "container_engine_t",
    ];
    let mut details = Vec::new();
    let mut check = |who: String, v: &Value| {
        let Some(o) = v.get("seLinuxOptions") else {
            return;
        };
        let s = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("");
        let mut bad = Vec::new();
        if !allowed_types.contains(&s("type")) {
            bad.push(format!("type {:?}", s("type")));
        }
        if !s("user").is_empty() {
            bad.push(format!("user {:?}", s("user")));
        }
        if !s("role").is_empty() {
            bad.push(format!("role {:?}", s("role")));
        }
        if !bad.is_empty() {
            details.push(format!(
                "{who} set forbidden securityContext.seLinuxOptions: {}",
                bad.join(", ")
            ));
        }
    };
    check("pod".into(), sc(spec));
    for c in containers(spec) {
        check(format!("container {:?}", c.name), sc(c.v));
    }
    (!details.is_empty()).then(|| Violation {
        reason: "seLinuxOptions",
        detail: details.join("; "),
    })
}

fn seccomp_type(v: &Value) -> Option<&str> {
    v.pointer("/seccompProfile/type").and_then(Value::as_str)
}

fn seccomp_baseline(_meta: &Value, spec: &Value) -> Option<Violation> {
    let mut details = Vec::new();
    if seccomp_type(sc(spec)) == Some("Unconfined") {
        details.push(
            "pod must not set securityContext.seccompProfile.type to \"Unconfined\"".to_string(),
        );
    }
    let names: Vec<&str> = containers(spec)
        .iter()
        .filter(|c| seccomp_type(sc(c.v)) == Some("Unconfined"))
        .map(|c| c.name)
        .collect();
    if !names.is_empty() {
        details.push(format!(
            "{} must not set securityContext.seccompProfile.type to \"Unconfined\"",
            plural(&names, "container", "containers")
        ));
    }
    (!details.is_empty()).then(|| Violation {
        reason: "seccompProfile",
        detail: details.join("; "),
    })
}

fn seccomp_restricted(_meta: &Value, spec: &Value) -> Option<Violation> {
    let ok = |t: Option<&str>| matches!(t, Some("RuntimeDefault" | "Localhost"));
    let pod = seccomp_type(sc(spec));
    let mut details = Vec::new();
    if pod.is_some() && !ok(pod) {
        details.push(format!(
            "pod must not set securityContext.seccompProfile.type to {:?}",
            pod.unwrap_or("")
        ));
    }
    let mut bad = Vec::new();
    let mut unset = Vec::new();
    for c in containers(spec) {
        match seccomp_type(sc(c.v)) {
            Some(t) if !ok(Some(t)) => bad.push(c.name),
            None if !ok(pod) => unset.push(c.name),
            _ => {}
        }
    }
    if !bad.is_empty() {
        details.push(format!(
            "{} must not set securityContext.seccompProfile.type to \"Unconfined\"",
            plural(&bad, "container", "containers")
        ));
    }
    if !unset.is_empty() && pod.is_none() {
        details.push(format!(
            "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
            plural(&unset, "container", "containers")
        ));
    }
    (!details.is_empty()).then(|| Violation {
        reason: "seccompProfile",
        detail: details.join("; "),
    })
}

fn sysctls(_meta: &Value, spec: &Value) -> Option<Violation> {
    let bad: Vec<&str> = sc(spec)
        .get("sysctls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("name").and_then(Value::as_str))
        .filter(|n| !SAFE_SYSCTLS.contains(n))
        .collect();
    (!bad.is_empty()).then(|| Violation {
        reason: "forbidden sysctls",
        detail: bad.join(", "),
    })
}

/// The checks of `level`, in upstream's order (sorted by check ID).
fn checks(level: Level) -> Vec<Check> {
    match level {
        Level::Privileged => vec![],
        Level::Baseline => vec![
            app_armor,
            capabilities_baseline,
            host_namespaces,
            host_path_volumes,
            host_ports,
            host_process,
            privileged,
            proc_mount,
            se_linux,
            seccomp_baseline,
            sysctls,
        ],
        Level::Restricted => vec![
            allow_privilege_escalation,
            app_armor,
            capabilities_restricted,
            host_namespaces,
            host_ports,
            host_process,
            privileged,
            proc_mount,
            restricted_volumes,
            run_as_non_root,
            run_as_user,
            se_linux,
            seccomp_restricted,
            sysctls,
        ],
    }
}

/// What `meta` and `spec` (a pod's, or a template's) violate at `level`.
pub fn evaluate(level: Level, meta: &Value, spec: &Value) -> Vec<Violation> {
    checks(level)
        .into_iter()
        .filter_map(|c| c(meta, spec))
        .collect()
}

/// Upstream's aggregated text: `reason (detail), reason (detail)`.
pub fn describe(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| format!("{} ({})", v.reason, v.detail))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_plain_pod_violates_restricted_like_upstream_says() {
        let spec = json!({"containers": [{"name": "nginx", "image": "nginx"}]});
        let v = evaluate(Level::Restricted, &json!({}), &spec);
        assert_eq!(
            describe(&v),
            "allowPrivilegeEscalation != false (container \"nginx\" must set securityContext.allowPrivilegeEscalation=false), \
             unrestricted capabilities (container \"nginx\" must set securityContext.capabilities.drop=[\"ALL\"]), \
             runAsNonRoot != true (pod or container \"nginx\" must set securityContext.runAsNonRoot=true), \
             seccompProfile (pod or container \"nginx\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"
        );
        assert!(evaluate(Level::Baseline, &json!({}), &spec).is_empty());
        assert!(evaluate(Level::Privileged, &json!({}), &json!({"hostNetwork": true})).is_empty());
    }

    #[test]
    fn a_restricted_pod_passes() {
        let spec = json!({
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "app", "securityContext": {"allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}}],
            "volumes": [{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "c"}}],
        });
        assert_eq!(evaluate(Level::Restricted, &json!({}), &spec), vec![]);
    }

    #[test]
    fn baseline_violations() {
        let spec = json!({
            "hostNetwork": true, "hostPID": true,
            "securityContext": {"sysctls": [{"name": "net.core.somaxconn", "value": "1"}, {"name": "kernel.shm_rmid_forced", "value": "1"}]},
            "containers": [
                {"name": "a", "securityContext": {"privileged": true, "capabilities": {"add": ["NET_ADMIN", "CHOWN"]}},
                 "ports": [{"containerPort": 80, "hostPort": 8080}]},
                {"name": "b", "securityContext": {"privileged": true}},
            ],
            "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
        });
        let v = evaluate(Level::Baseline, &json!({}), &spec);
        assert_eq!(
            describe(&v),
            "non-default capabilities (container \"a\" must not include \"NET_ADMIN\" in securityContext.capabilities.add), \
             host namespaces (hostNetwork=true, hostPID=true), hostPath volumes (volume \"root\"), \
             hostPort (container \"a\" uses hostPort 8080), \
             privileged (containers \"a\", \"b\" must not set securityContext.privileged=true), \
             forbidden sysctls (net.core.somaxconn)"
        );
        // Restricted reports the volume by type instead.
        let r = evaluate(Level::Restricted, &json!({}), &spec);
        assert!(describe(&r).contains(
            "restricted volume types (volume \"root\" uses restricted volume type \"hostPath\")"
        ));
        assert!(!describe(&r).contains("hostPath volumes"));
    }
}
