//! Every controller the controller manager knows, by upstream's canonical
//! name and aliases, and the `--controllers` semantics (upstream's
//! cmd/kube-controller-manager/app/controllermanager.go:
//! `NewControllerDescriptors`, `KnownControllers`, `IsControllerEnabled`,
//! and names/controller_names.go).
//!
//! Registration is explicit: [`controller_descriptors`] lists them all, in
//! upstream's order; a name listed twice fails at start-up. A controller
//! this project has not written yet is still registered (so `--controllers`
//! accepts its name) with no start function.

use std::collections::BTreeSet;

use crate::{ControllerContext, StartError};

/// What a start function returns: the controller's loop, run until the
/// controller manager stops.
pub type ControllerFuture = futures::future::BoxFuture<'static, ()>;

/// Builds one controller from the shared context: subscribes to the shared
/// informers it needs and returns its loop (not yet polled).
pub type StartFn = fn(&ControllerContext) -> Result<ControllerFuture, StartError>;

/// One controller the manager can run.
#[derive(Clone)]
pub struct ControllerDescriptor {
    /// Upstream's canonical name (`namespace-controller`).
    pub name: &'static str,
    /// Older names `--controllers` also accepts (`namespace`).
    pub aliases: &'static [&'static str],
    /// Off unless named explicitly in `--controllers` (upstream's
    /// bootstrapsigner and tokencleaner).
    pub disabled_by_default: bool,
    /// A cloud-provider controller: upstream's kube-controller-manager skips
    /// these without an external cloud provider; so do we.
    pub cloud: bool,
    /// `None`: not implemented in this project yet (logged and skipped).
    pub start: Option<StartFn>,
}

const fn d(name: &'static str, aliases: &'static [&'static str]) -> ControllerDescriptor {
    ControllerDescriptor {
        name,
        aliases,
        disabled_by_default: false,
        cloud: false,
        start: None,
    }
}

impl ControllerDescriptor {
    const fn start(mut self, f: StartFn) -> Self {
        self.start = Some(f);
        self
    }
    const fn disabled(mut self) -> Self {
        self.disabled_by_default = true;
        self
    }
    const fn cloud(mut self) -> Self {
        self.cloud = true;
        self
    }
}

/// The ServiceAccount (in kube-system) a controller acts as with
/// `--use-service-account-credentials` (upstream's `ClientOrDie` names,
/// bound by the default policy to `system:controller:<name>`); None for
/// controllers that use the manager's own identity.
pub fn service_account(controller: &str) -> Option<&'static str> {
    Some(match controller {
        "endpoints-controller" => "endpoint-controller",
        "endpointslice-controller" => "endpointslice-controller",
        "endpointslice-mirroring-controller" => "endpointslicemirroring-controller",
        "replicationcontroller-controller" => "replication-controller",
        "pod-garbage-collector-controller" => "pod-garbage-collector",
        "resourcequota-controller" => "resourcequota-controller",
        "namespace-controller" => "namespace-controller",
        "serviceaccount-controller" => "service-account-controller",
        "garbage-collector-controller" => "generic-garbage-collector",
        "daemonset-controller" => "daemon-set-controller",
        "job-controller" => "job-controller",
        "deployment-controller" => "deployment-controller",
        "replicaset-controller" => "replicaset-controller",
        "horizontal-pod-autoscaler-controller" => "horizontal-pod-autoscaler",
        "disruption-controller" => "disruption-controller",
        "statefulset-controller" => "statefulset-controller",
        "cronjob-controller" => "cronjob-controller",
        "certificatesigningrequest-signing-controller"
        | "certificatesigningrequest-approving-controller"
        | "certificatesigningrequest-cleaner-controller" => "certificate-controller",
        "ttl-controller" => "ttl-controller",
        // The taint eviction controller uses the node controller's role, as upstream's.
        "node-ipam-controller" | "node-lifecycle-controller" | "taint-eviction-controller" => {
            "node-controller"
        }
        "persistentvolume-binder-controller" => "persistent-volume-binder",
        "persistentvolume-attach-detach-controller" => "attachdetach-controller",
        "persistentvolume-expander-controller" => "expand-controller",
        "clusterrole-aggregation-controller" => "clusterrole-aggregation-controller",
        "persistentvolumeclaim-protection-controller" => "pvc-protection-controller",
        "persistentvolume-protection-controller" => "pv-protection-controller",
        "ttl-after-finished-controller" => "ttl-after-finished-controller",
        "root-ca-certificate-publisher-controller" => "root-ca-cert-publisher",
        "ephemeral-volume-controller" => "ephemeral-volume-controller",
        "resourceclaim-controller" => "resource-claim-controller",
        "legacy-serviceaccount-token-cleaner-controller" => "legacy-service-account-token-cleaner",
        "validatingadmissionpolicy-status-controller" => {
            "validatingadmissionpolicy-status-controller"
        }
        "service-cidr-controller" => "service-cidrs-controller",
        _ => return None,
    })
}

/// All controllers, in upstream's order.
pub fn controller_descriptors() -> Vec<ControllerDescriptor> {
    vec![
        d("serviceaccount-token-controller", &["serviceaccount-token"])
            .start(crate::serviceaccount_token::start),
        d("endpoints-controller", &["endpoint"]).start(crate::endpoint::start),
        d("endpointslice-controller", &["endpointslice"]).start(crate::endpointslice::start),
        d(
            "endpointslice-mirroring-controller",
            &["endpointslicemirroring"],
        ),
        d(
            "replicationcontroller-controller",
            &["replicationcontroller"],
        )
        .start(crate::replicaset::start_replicationcontroller),
        d("pod-garbage-collector-controller", &["podgc"]).start(crate::podgc::start),
        d("resourcequota-controller", &["resourcequota"]).start(crate::resourcequota::start),
        d("namespace-controller", &["namespace"]).start(crate::namespace::start),
        d("serviceaccount-controller", &["serviceaccount"]).start(crate::serviceaccount::start),
        d("garbage-collector-controller", &["garbagecollector"])
            .start(crate::garbagecollector::start),
        d("daemonset-controller", &["daemonset"]).start(crate::daemon::start),
        d("job-controller", &["job"]).start(crate::job::start_job),
        d("deployment-controller", &["deployment"]).start(crate::deployment::start),
        d("replicaset-controller", &["replicaset"]).start(crate::replicaset::start_replicaset),
        d(
            "horizontal-pod-autoscaler-controller",
            &["horizontalpodautoscaling"],
        )
        .start(crate::podautoscaler::start),
        d("disruption-controller", &["disruption"]).start(crate::disruption::start),
        d("statefulset-controller", &["statefulset"]).start(crate::statefulset::start),
        d("cronjob-controller", &["cronjob"]).start(crate::cronjob::start),
        d(
            "certificatesigningrequest-signing-controller",
            &["csrsigning"],
        )
        .start(crate::certificates::start_signing),
        d(
            "certificatesigningrequest-approving-controller",
            &["csrapproving"],
        )
        .start(crate::certificates::start_approving),
        d(
            "certificatesigningrequest-cleaner-controller",
            &["csrcleaner"],
        )
        .start(crate::certificates::cleaner::start),
        d("ttl-controller", &["ttl"]),
        d("bootstrap-signer-controller", &["bootstrapsigner"]).disabled(),
        d("token-cleaner-controller", &["tokencleaner"]).disabled(),
        d("node-ipam-controller", &["nodeipam"]).start(crate::nodeipam::start),
        d("node-lifecycle-controller", &["nodelifecycle"]).start(crate::nodelifecycle::start),
        d("taint-eviction-controller", &[]).start(crate::nodelifecycle::start_taint_eviction),
        d("service-lb-controller", &["service"]).cloud(),
        d("node-route-controller", &["route"]).cloud(),
        d("cloud-node-lifecycle-controller", &["cloud-node-lifecycle"]).cloud(),
        d(
            "persistentvolume-binder-controller",
            &["persistentvolume-binder"],
        )
        .start(crate::persistentvolume::start),
        d(
            "persistentvolume-attach-detach-controller",
            &["attachdetach"],
        ),
        d(
            "persistentvolume-expander-controller",
            &["persistentvolume-expander"],
        ),
        d(
            "clusterrole-aggregation-controller",
            &["clusterrole-aggregation"],
        )
        .start(crate::clusterroleaggregation::start),
        d(
            "persistentvolumeclaim-protection-controller",
            &["pvc-protection"],
        )
        .start(crate::volumeprotection::start_pvc_protection),
        d("persistentvolume-protection-controller", &["pv-protection"])
            .start(crate::volumeprotection::start_pv_protection),
        d("ttl-after-finished-controller", &["ttl-after-finished"])
            .start(crate::ttlafterfinished::start_ttl_after_finished),
        d(
            "root-ca-certificate-publisher-controller",
            &["root-ca-cert-publisher"],
        )
        .start(crate::rootcacertpublisher::start),
        d("ephemeral-volume-controller", &["ephemeral-volume"]),
        d(
            "storageversion-garbage-collector-controller",
            &["storage-version-gc"],
        ),
        d("resourceclaim-controller", &["resource-claim-controller"]),
        d(
            "legacy-serviceaccount-token-cleaner-controller",
            &["legacy-service-account-token-cleaner"],
        ),
        d("validatingadmissionpolicy-status-controller", &[]),
        d("service-cidr-controller", &[]),
        d("storage-version-migrator-controller", &[]),
        d("selinux-warning-controller", &[]).disabled(),
    ]
}

/// Why `--controllers` or the registry is wrong.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectionError {
    /// A `--controllers` entry names no controller (upstream's message).
    #[error("{0:?} is not in the list of known controllers")]
    Unknown(String),
    /// Two descriptors share a name or alias: a programming error caught at start-up.
    #[error("controller name {0:?} is registered twice")]
    Duplicate(String),
}

/// Checks the registry for duplicate names and aliases.
pub fn check_registry(all: &[ControllerDescriptor]) -> Result<(), SelectionError> {
    let mut seen = BTreeSet::new();
    for c in all {
        for n in std::iter::once(&c.name).chain(c.aliases) {
            if !seen.insert(*n) {
                return Err(SelectionError::Duplicate((*n).to_string()));
            }
        }
    }
    Ok(())
}

/// `--controllers` with aliases replaced by canonical names; every entry is
/// `*`, `name` or `-name`. Unknown names are an error, as upstream's
/// validation says.
pub fn resolve(
    all: &[ControllerDescriptor],
    flag: &[String],
) -> Result<Vec<String>, SelectionError> {
    flag.iter()
        .map(|entry| {
            let entry = entry.trim();
            if entry == "*" {
                return Ok("*".to_string());
            }
            let (neg, name) = match entry.strip_prefix('-') {
                Some(n) => ("-", n),
                None => ("", entry),
            };
            let canonical = all
                .iter()
                .find(|c| c.name == name || c.aliases.contains(&name))
                .map(|c| c.name)
                .ok_or_else(|| SelectionError::Unknown(name.to_string()))?;
            Ok(format!("{neg}{canonical}"))
        })
        .collect()
}

/// Upstream's `IsControllerEnabled` over resolved entries: the first entry
/// naming the controller (`name` or `-name`) decides; otherwise `*` turns
/// on every controller not disabled by default; without `*`, it is off.
pub fn is_enabled(c: &ControllerDescriptor, resolved: &[String]) -> bool {
    let mut star = false;
    for e in resolved {
        if e == c.name {
            return true;
        }
        if e.strip_prefix('-') == Some(c.name) {
            return false;
        }
        if e == "*" {
            star = true;
        }
    }
    star && !c.disabled_by_default
}

/// The descriptors `--controllers` turns on, cloud ones excluded.
pub fn enabled(flag: &[String]) -> Result<Vec<ControllerDescriptor>, SelectionError> {
    let all = controller_descriptors();
    check_registry(&all)?;
    let resolved = resolve(&all, flag)?;
    Ok(all
        .into_iter()
        .filter(|c| !c.cloud && is_enabled(c, &resolved))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(flag: &[&str]) -> Result<Vec<&'static str>, SelectionError> {
        let flag: Vec<String> = flag.iter().map(|s| s.to_string()).collect();
        Ok(enabled(&flag)?.into_iter().map(|c| c.name).collect())
    }

    #[test]
    fn registry_has_no_duplicates() {
        assert_eq!(check_registry(&controller_descriptors()), Ok(()));
    }

    #[test]
    fn duplicate_alias_is_caught() {
        let mut all = controller_descriptors();
        all.push(d("extra", &["namespace"]));
        assert_eq!(
            check_registry(&all),
            Err(SelectionError::Duplicate("namespace".into()))
        );
    }

    #[test]
    fn star_enables_all_but_disabled_by_default_and_cloud() {
        let on = names(&["*"]).unwrap_or_default();
        assert!(on.contains(&"namespace-controller"));
        assert!(on.contains(&"garbage-collector-controller"));
        assert!(!on.contains(&"bootstrap-signer-controller"));
        assert!(!on.contains(&"token-cleaner-controller"));
        assert!(!on.contains(&"service-lb-controller"));
    }

    #[test]
    fn selection_table() {
        let cases: &[(&[&str], &str, bool)] = &[
            (&["*", "-namespace"], "namespace-controller", false),
            (
                &["*", "-namespace-controller"],
                "namespace-controller",
                false,
            ),
            (&["*", "-namespace"], "serviceaccount-controller", true),
            (
                &["*", "bootstrapsigner"],
                "bootstrap-signer-controller",
                true,
            ),
            (&["*", "tokencleaner"], "token-cleaner-controller", true),
            (&["*"], "token-cleaner-controller", false),
            // Without a star only the named controllers run.
            (&["namespace"], "namespace-controller", true),
            (&["namespace"], "serviceaccount-controller", false),
            // The first mention wins, as upstream.
            (&["namespace", "-namespace"], "namespace-controller", true),
            (&["-namespace", "namespace"], "namespace-controller", false),
            (
                &["-bootstrapsigner", "*"],
                "bootstrap-signer-controller",
                false,
            ),
            (&[], "namespace-controller", false),
        ];
        for (flag, name, want) in cases {
            let on = names(flag).unwrap_or_default();
            assert_eq!(on.contains(name), *want, "--controllers={flag:?} {name}");
        }
    }

    #[test]
    fn unknown_names_are_refused_like_upstream() {
        let e = names(&["*", "-nosuch"]).err();
        assert_eq!(e, Some(SelectionError::Unknown("nosuch".into())));
        assert_eq!(
            e.map(|e| e.to_string()),
            Some("\"nosuch\" is not in the list of known controllers".into())
        );
    }
}
