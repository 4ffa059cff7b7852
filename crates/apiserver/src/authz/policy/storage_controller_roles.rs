//! The rules of the volume controllers' `system:controller:*` roles:
//! attach/detach, binding, expansion, protection and SELinux conflict
//! warnings (upstream's `bootstrappolicy/controller_policy.go`);
//! [`super::controller_roles`] makes the roles and their bindings.

use super::controller_roles::Controller;
use super::{events_rule, rule, LEGACY, STORAGE};

pub(super) fn controllers() -> Vec<Controller> {
    vec![
        (
            "attachdetach-controller",
            vec![
                rule(&["list", "watch"])
                    .groups(&[LEGACY])
                    .resources(&["persistentvolumes", "persistentvolumeclaims"]),
                rule(&["get", "list", "watch"])
                    .groups(&[LEGACY])
                    .resources(&["nodes"]),
                rule(&["patch", "update"])
                    .groups(&[LEGACY])
                    .resources(&["nodes/status"]),
                rule(&["list", "watch"])
                    .groups(&[LEGACY])
                    .resources(&["pods"]),
                events_rule(),
                rule(&["get", "create", "delete", "list", "watch"])
                    .groups(&[STORAGE])
                    .resources(&["volumeattachments"]),
                rule(&["get", "watch", "list"])
                    .groups(&[STORAGE])
                    .resources(&["csidrivers"]),
                rule(&["get", "watch", "list"])
                    .groups(&[STORAGE])
                    .resources(&["csinodes"]),
            ],
        ),
        (
            "expand-controller",
            vec![
                rule(&["get", "list", "watch", "update", "patch"])
                    .groups(&[LEGACY])
                    .resources(&["persistentvolumes"]),
                rule(&["update", "patch"])
                    .groups(&[LEGACY])
                    .resources(&["persistentvolumeclaims/status"]),
                rule(&["get", "list", "watch"])
                    .groups(&[LEGACY])
                    .resources(&["persistentvolumeclaims"]),
                events_rule(),
            ],
        ),
        (
            "ephemeral-volume-controller",
            vec![
                rule(&["get", "list", "watch"])
                    .groups(&[LEGACY])
                    .resources(&["pods"]),
                rule(&["update"])
                    .groups(&[LEGACY])
                    .resources(&["pods/finalizers"]),
                rule(&["get", "list", "watch", "create"])
                    .groups(&[LEGACY])
                    .resources(&["persistentvolumeclaims"]),
                events_rule(),
            ],
        ),
        (
            "persistent-volume-binder",
            vec![
                rule(&["get", "list", "watch", "update", "create", "delete"])
                    .groups(&[LEGACY])
                    .resources(&["persistentvolumes"]),
                rule(&["update"])
                    .groups(&[LEGACY])
                    .resources(&["persistentvolumes/status"]),
                rule(&["get", "list", "watch", "update"])
                    .groups(&[LEGACY])
                    .resources(&["persistentvolumeclaims"]),
                rule(&["update"])
                    .groups(&[LEGACY])
                    .resources(&["persistentvolumeclaims/status"]),
                rule(&["list", "watch", "get", "create", "delete"])
                    .groups(&[LEGACY])
                    .resources(&["pods"]),
                rule(&["get", "list", "watch"])
                    .groups(&[STORAGE])
                    .resources(&["storageclasses"]),
                rule(&["list", "watch"])
                    .groups(&[LEGACY])
                    .resources(&["nodes"]),
                events_rule(),
                // The recycler watches its pod's events.
                rule(&["watch"]).groups(&[LEGACY]).resources(&["events"]),
            ],
        ),
        (
            "pvc-protection-controller",
            vec![
                rule(&["get", "list", "watch", "update"])
                    .groups(&[LEGACY])
                    .resources(&["persistentvolumeclaims"]),
                rule(&["list", "watch", "get"])
                    .groups(&[LEGACY])
                    .resources(&["pods"]),
                events_rule(),
            ],
        ),
        (
            "pv-protection-controller",
            vec![
                rule(&["get", "list", "watch", "update"])
                    .groups(&[LEGACY])
                    .resources(&["persistentvolumes"]),
                events_rule(),
            ],
        ),
        (
            // SELinuxChangePolicy, beta and on by default in 1.33.
            "selinux-warning-controller",
            vec![
                events_rule(),
                rule(&["get", "list", "watch"])
                    .groups(&[LEGACY])
                    .resources(&["persistentvolumes"]),
                rule(&["get", "list", "watch"])
                    .groups(&[LEGACY])
                    .resources(&["persistentvolumeclaims"]),
                rule(&["get", "list", "watch"])
                    .groups(&[LEGACY])
                    .resources(&["pods"]),
                rule(&["get", "list", "watch"])
                    .groups(&[STORAGE])
                    .resources(&["csidrivers"]),
            ],
        ),
    ]
}
