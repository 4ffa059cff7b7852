//! The Roles and RoleBindings in the reserved namespaces `kube-system` and
//! `kube-public` (upstream's `bootstrappolicy/namespace_policy.go`): reading
//! the delegated-authentication config map, leader election of
//! kube-controller-manager and kube-scheduler, and the bootstrap-signer,
//! token-cleaner and (deprecated since 1.10) cloud-provider controllers.

use serde_json::Value;

use super::{
    events_rule, role, role_binding, rule, service_account, user, COORDINATION,
    KUBE_CONTROLLER_MANAGER, KUBE_SCHEDULER, LEGACY, PUBLIC_NAMESPACE, READ, SYSTEM_NAMESPACE,
};

const AUTHENTICATION_READER: &str = "extension-apiserver-authentication-reader";
const BOOTSTRAP_SIGNER: &str = "system:controller:bootstrap-signer";
const CLOUD_PROVIDER: &str = "system:controller:cloud-provider";
const TOKEN_CLEANER: &str = "system:controller:token-cleaner";
const CONTROLLER_MANAGER_LOCK: &str = "system::leader-locking-kube-controller-manager";
const SCHEDULER_LOCK: &str = "system::leader-locking-kube-scheduler";

pub(super) fn roles() -> Vec<Value> {
    let system = |name, rules| role(SYSTEM_NAMESPACE, name, rules);
    vec![
        // The config map that publishes the authentication configuration
        // extension API servers start from.
        system(
            AUTHENTICATION_READER,
            vec![rule(READ)
                .groups(&[LEGACY])
                .resources(&["configmaps"])
                .names(&["extension-apiserver-authentication"])],
        ),
        // Inspecting the bootstrap token secrets.
        system(
            BOOTSTRAP_SIGNER,
            vec![rule(READ).groups(&[LEGACY]).resources(&["secrets"])],
        ),
        system(
            CLOUD_PROVIDER,
            vec![rule(&["create", "get", "list", "watch"])
                .groups(&[LEGACY])
                .resources(&["configmaps"])],
        ),
        // Removing expired bootstrap tokens, only in kube-system.
        system(
            TOKEN_CLEANER,
            vec![
                rule(&["get", "list", "watch", "delete"])
                    .groups(&[LEGACY])
                    .resources(&["secrets"]),
                events_rule(),
            ],
        ),
        system(
            CONTROLLER_MANAGER_LOCK,
            vec![
                rule(&["watch"])
                    .groups(&[LEGACY])
                    .resources(&["configmaps"]),
                rule(&["get", "update"])
                    .groups(&[LEGACY])
                    .resources(&["configmaps"])
                    .names(&["kube-controller-manager"]),
                rule(&["get", "watch", "list", "create", "update"])
                    .groups(&[COORDINATION])
                    .resources(&["leases"]),
            ],
        ),
        system(
            SCHEDULER_LOCK,
            vec![
                rule(&["watch"])
                    .groups(&[LEGACY])
                    .resources(&["configmaps"]),
                rule(&["get", "update"])
                    .groups(&[LEGACY])
                    .resources(&["configmaps"])
                    .names(&["kube-scheduler"]),
            ],
        ),
        // Writing the signed cluster-info config map.
        role(
            PUBLIC_NAMESPACE,
            BOOTSTRAP_SIGNER,
            vec![
                rule(READ).groups(&[LEGACY]).resources(&["configmaps"]),
                rule(&["update"])
                    .groups(&[LEGACY])
                    .resources(&["configmaps"])
                    .names(&["cluster-info"]),
                events_rule(),
            ],
        ),
    ]
}

pub(super) fn role_bindings() -> Vec<Value> {
    let system = |name, role, subjects| role_binding(SYSTEM_NAMESPACE, name, role, subjects);
    let sa = |name| service_account(SYSTEM_NAMESPACE, name);
    vec![
        system(
            "system::extension-apiserver-authentication-reader",
            AUTHENTICATION_READER,
            vec![user(KUBE_CONTROLLER_MANAGER), user(KUBE_SCHEDULER)],
        ),
        // leader-election-controller runs coordinated leader election.
        system(
            CONTROLLER_MANAGER_LOCK,
            CONTROLLER_MANAGER_LOCK,
            vec![
                user(KUBE_CONTROLLER_MANAGER),
                sa("kube-controller-manager"),
                sa("leader-election-controller"),
            ],
        ),
        system(
            SCHEDULER_LOCK,
            SCHEDULER_LOCK,
            vec![user(KUBE_SCHEDULER), sa("kube-scheduler")],
        ),
        system(
            BOOTSTRAP_SIGNER,
            BOOTSTRAP_SIGNER,
            vec![sa("bootstrap-signer")],
        ),
        system(CLOUD_PROVIDER, CLOUD_PROVIDER, vec![sa("cloud-provider")]),
        system(TOKEN_CLEANER, TOKEN_CLEANER, vec![sa("token-cleaner")]),
        role_binding(
            PUBLIC_NAMESPACE,
            BOOTSTRAP_SIGNER,
            BOOTSTRAP_SIGNER,
            vec![sa("bootstrap-signer")],
        ),
    ]
}
