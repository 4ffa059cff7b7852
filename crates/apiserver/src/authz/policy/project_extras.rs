//! Rules the default policy grants beyond upstream's, for requests this
//! project's components make differently. Each is a JSON merge patch where
//! upstream's controller sends an update (so the power granted is the
//! update's, already held), or a read upstream's component does not need.
//! An entry goes when its component makes upstream's request instead.

use super::{rule, RuleBuilder, APPS, BATCH, EXTENSIONS, LEGACY};

/// The extra rules of a controller's role, by its ServiceAccount name.
pub(super) fn controller_extras(controller: &str) -> Vec<RuleBuilder> {
    let patch = |group: &'static str, resources: &[&'static str]| {
        rule(&["patch"]).groups(&[group]).resources(resources)
    };
    match controller {
        // Annotations (revision), collisionCount and status are merge patches.
        "deployment-controller" => vec![
            patch(APPS, &["deployments", "deployments/status"]),
            patch(EXTENSIONS, &["deployments", "deployments/status"]),
        ],
        "replicaset-controller" => vec![patch(APPS, &["replicasets/status"])],
        "replication-controller" => vec![patch(LEGACY, &["replicationcontrollers/status"])],
        "daemon-set-controller" => vec![patch(APPS, &["daemonsets/status", "controllerrevisions"])],
        "statefulset-controller" => {
            vec![patch(APPS, &["statefulsets/status", "controllerrevisions"])]
        }
        "job-controller" => vec![patch(BATCH, &["jobs/status"])],
        "cronjob-controller" => vec![patch(BATCH, &["cronjobs/status"])],
        // Finalizers added and removed by merge patches.
        "pvc-protection-controller" => vec![patch(LEGACY, &["persistentvolumeclaims"])],
        "pv-protection-controller" => vec![patch(LEGACY, &["persistentvolumes"])],
        // Binding annotations, claimRef and phases.
        "persistent-volume-binder" => vec![patch(
            LEGACY,
            &[
                "persistentvolumes",
                "persistentvolumes/status",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
            ],
        )],
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use crate::authz::rules::Rule;
    use serde_json::Value;

    fn rules_of(name: &str) -> Vec<Rule> {
        let p = super::super::bootstrap();
        let role: &Value = p
            .cluster_roles
            .iter()
            .find(|r| r["metadata"]["name"] == name)
            .expect("role");
        Rule::parse_all(role)
    }

    #[test]
    fn controllers_may_patch_what_they_patch() {
        let deploy = rules_of("system:controller:deployment-controller");
        let patches = |rules: &[Rule], group: &str, resource: &str| {
            rules.iter().any(|r| {
                r.verbs.iter().any(|v| v == "patch")
                    && r.api_groups.iter().any(|g| g == group)
                    && r.resources.iter().any(|x| x == resource)
            })
        };
        assert!(patches(&deploy, "apps", "deployments/status"));
        assert!(patches(&deploy, "apps", "deployments"));
        let binder = rules_of("system:controller:persistent-volume-binder");
        assert!(patches(&binder, "", "persistentvolumeclaims/status"));
        // Upstream's rules stay: the extras only add.
        assert!(deploy.iter().any(|r| r.verbs.iter().any(|v| v == "update")
            && r.resources.iter().any(|x| x == "deployments/status")));
    }
}
