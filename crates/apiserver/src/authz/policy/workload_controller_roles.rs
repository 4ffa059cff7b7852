//! The rules of the workload controllers' `system:controller:*` roles:
//! Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs, CronJobs,
//! autoscaling and disruption budgets (upstream's
//! `bootstrappolicy/controller_policy.go`); [`super::controller_roles`]
//! makes the roles and their bindings.

use super::controller_roles::Controller;
use super::{
    events_rule, rule, APPS, AUTOSCALING, BATCH, CUSTOM_METRICS, EXTENSIONS, EXTERNAL_METRICS,
    LEGACY, METRICS, POLICY,
};

pub(super) fn controllers() -> Vec<Controller> {
    vec![
        (
            "cronjob-controller",
            vec![
                rule(&["get", "list", "watch", "update"])
                    .groups(&[BATCH])
                    .resources(&["cronjobs"]),
                rule(&[
                    "get", "list", "watch", "create", "update", "delete", "patch",
                ])
                .groups(&[BATCH])
                .resources(&["jobs"]),
                rule(&["update"])
                    .groups(&[BATCH])
                    .resources(&["cronjobs/status"]),
                rule(&["update"])
                    .groups(&[BATCH])
                    .resources(&["cronjobs/finalizers"]),
                rule(&["list", "watch", "delete"])
                    .groups(&[LEGACY])
                    .resources(&["pods"]),
                events_rule(),
            ],
        ),
        (
            "daemon-set-controller",
            vec![
                rule(&["get", "list", "watch"])
                    .groups(&[EXTENSIONS, APPS])
                    .resources(&["daemonsets"]),
                rule(&["update"])
                    .groups(&[EXTENSIONS, APPS])
                    .resources(&["daemonsets/status"]),
                rule(&["update"])
                    .groups(&[EXTENSIONS, APPS])
                    .resources(&["daemonsets/finalizers"]),
                rule(&["list", "watch"])
                    .groups(&[LEGACY])
                    .resources(&["nodes"]),
                rule(&["list", "watch", "create", "delete", "patch"])
                    .groups(&[LEGACY])
                    .resources(&["pods"]),
                rule(&["create"])
                    .groups(&[LEGACY])
                    .resources(&["pods/binding"]),
                rule(&[
                    "get", "list", "watch", "create", "delete", "update", "patch",
                ])
                .groups(&[APPS])
                .resources(&["controllerrevisions"]),
                events_rule(),
            ],
        ),
        (
            "deployment-controller",
            vec![
                rule(&["get", "list", "watch", "update"])
                    .groups(&[EXTENSIONS, APPS])
                    .resources(&["deployments"]),
                rule(&["update"])
                    .groups(&[EXTENSIONS, APPS])
                    .resources(&["deployments/status"]),
                rule(&["update"])
                    .groups(&[EXTENSIONS, APPS])
                    .resources(&["deployments/finalizers"]),
                rule(&[
                    "get", "list", "watch", "create", "update", "patch", "delete",
                ])
                .groups(&[APPS, EXTENSIONS])
                .resources(&["replicasets"]),
                // update is still needed, kubernetes/kubernetes#36897.
                rule(&["get", "list", "watch", "update"])
                    .groups(&[LEGACY])
                    .resources(&["pods"]),
                events_rule(),
            ],
        ),
        (
            "disruption-controller",
            vec![
                rule(&["get", "list", "watch"])
                    .groups(&[EXTENSIONS, APPS])
                    .resources(&["deployments"]),
                rule(&["get", "list", "watch"])
                    .groups(&[APPS, EXTENSIONS])
                    .resources(&["replicasets"]),
                rule(&["get", "list", "watch"])
                    .groups(&[LEGACY])
                    .resources(&["replicationcontrollers"]),
                rule(&["get", "list", "watch"])
                    .groups(&[POLICY])
                    .resources(&["poddisruptionbudgets"]),
                rule(&["get", "list", "watch"])
                    .groups(&[APPS])
                    .resources(&["statefulsets"]),
                rule(&["update"])
                    .groups(&[POLICY])
                    .resources(&["poddisruptionbudgets/status"]),
                rule(&["patch", "update"])
                    .groups(&[LEGACY])
                    .resources(&["pods/status"]),
                rule(&["get"]).groups(&["*"]).resources(&["*/scale"]),
                events_rule(),
            ],
        ),
        (
            "horizontal-pod-autoscaler",
            vec![
                rule(&["get", "list", "watch"])
                    .groups(&[AUTOSCALING])
                    .resources(&["horizontalpodautoscalers"]),
                rule(&["update"])
                    .groups(&[AUTOSCALING])
                    .resources(&["horizontalpodautoscalers/status"]),
                rule(&["get", "update"])
                    .groups(&["*"])
                    .resources(&["*/scale"]),
                rule(&["list", "watch"])
                    .groups(&[LEGACY])
                    .resources(&["pods"]),
                // Resource, custom and external metrics.
                rule(&["list", "watch"])
                    .groups(&[METRICS])
                    .resources(&["pods"]),
                rule(&["get", "list", "watch"])
                    .groups(&[CUSTOM_METRICS])
                    .resources(&["*"]),
                rule(&["get", "list", "watch"])
                    .groups(&[EXTERNAL_METRICS])
                    .resources(&["*"]),
                events_rule(),
            ],
        ),
        (
            "job-controller",
            vec![
                rule(&["get", "list", "watch", "update", "patch"])
                    .groups(&[BATCH])
                    .resources(&["jobs"]),
                rule(&["update"])
                    .groups(&[BATCH])
                    .resources(&["jobs/status"]),
                rule(&["update"])
                    .groups(&[BATCH])
                    .resources(&["jobs/finalizers"]),
                rule(&["list", "watch", "create", "delete", "patch"])
                    .groups(&[LEGACY])
                    .resources(&["pods"]),
                events_rule(),
            ],
        ),
        (
            "replicaset-controller",
            vec![
                rule(&["get", "list", "watch", "update"])
                    .groups(&[APPS, EXTENSIONS])
                    .resources(&["replicasets"]),
                rule(&["update"])
                    .groups(&[APPS, EXTENSIONS])
                    .resources(&["replicasets/status"]),
                rule(&["update"])
                    .groups(&[APPS, EXTENSIONS])
                    .resources(&["replicasets/finalizers"]),
                rule(&["list", "watch", "patch", "create", "delete"])
                    .groups(&[LEGACY])
                    .resources(&["pods"]),
                events_rule(),
            ],
        ),
        (
            "replication-controller",
            vec![
                // get and update keep 1.0 controllers working.
                rule(&["get", "list", "watch", "update"])
                    .groups(&[LEGACY])
                    .resources(&["replicationcontrollers"]),
                rule(&["update"])
                    .groups(&[LEGACY])
                    .resources(&["replicationcontrollers/status"]),
                rule(&["update"])
                    .groups(&[LEGACY])
                    .resources(&["replicationcontrollers/finalizers"]),
                rule(&["list", "watch", "patch", "create", "delete"])
                    .groups(&[LEGACY])
                    .resources(&["pods"]),
                events_rule(),
            ],
        ),
        (
            "statefulset-controller",
            vec![
                rule(&["list", "watch"])
                    .groups(&[LEGACY])
                    .resources(&["pods"]),
                rule(&["get", "list", "watch"])
                    .groups(&[APPS])
                    .resources(&["statefulsets"]),
                rule(&["update"])
                    .groups(&[APPS])
                    .resources(&["statefulsets/status"]),
                rule(&["update"])
                    .groups(&[APPS])
                    .resources(&["statefulsets/finalizers"]),
                rule(&["get", "create", "delete", "update", "patch"])
                    .groups(&[LEGACY])
                    .resources(&["pods"]),
                rule(&[
                    "get", "create", "delete", "update", "patch", "list", "watch",
                ])
                .groups(&[APPS])
                .resources(&["controllerrevisions"]),
                rule(&["get", "create", "list", "watch"])
                    .groups(&[LEGACY])
                    .resources(&["persistentvolumeclaims"]),
                // Claim retention: re-owning claims and deleting them.
                rule(&["update", "delete"])
                    .groups(&[LEGACY])
                    .resources(&["persistentvolumeclaims"]),
                rule(&["update"])
                    .groups(&[LEGACY])
                    .resources(&["pods/finalizers"]),
                events_rule(),
            ],
        ),
        (
            "ttl-after-finished-controller",
            vec![
                rule(&["get", "list", "watch", "delete"])
                    .groups(&[BATCH])
                    .resources(&["jobs"]),
                events_rule(),
            ],
        ),
    ]
}
