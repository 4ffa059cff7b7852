//! The ClusterRoles for users, nodes and the control plane's components and
//! their default ClusterRoleBindings (upstream's `bootstrappolicy/policy.go`:
//! `ClusterRoles`, `ClusterRoleBindings`). The aggregated user-facing roles
//! are in [`super::aggregate_roles`], the rules of the nodes' agents in
//! [`super::node_roles`], the controllers' roles in
//! [`super::controller_roles`].

use serde_json::Value;

use super::{
    aggregate_roles, cluster_role, cluster_role_binding, events_rule, group, node_roles, rule,
    service_account, user, RuleBuilder, APPS, AUTHENTICATION, AUTHORIZATION, CERTIFICATES,
    COORDINATION, EXTENSIONS, KUBE_CONTROLLER_MANAGER, KUBE_PROXY, KUBE_SCHEDULER, LEGACY, POLICY,
    READ, READ_UPDATE, READ_WRITE, STORAGE, SYSTEM_NAMESPACE,
};

const SYSTEM_NODE: &str = "system:node";

/// The signers whose CSRs a role of their own may approve (upstream's
/// `capi.*SignerName`), with the role's name.
const APPROVER_ROLES: [(&str, &str); 4] = [
    ("legacy-unknown-approver", "kubernetes.io/legacy-unknown"),
    ("kubelet-serving-approver", "kubernetes.io/kubelet-serving"),
    (
        "kube-apiserver-client-approver",
        "kubernetes.io/kube-apiserver-client",
    ),
    (
        "kube-apiserver-client-kubelet-approver",
        "kubernetes.io/kube-apiserver-client-kubelet",
    ),
];

pub(super) fn cluster_roles() -> Vec<Value> {
    let mut roles = vec![
        // A root role that can do anything.
        cluster_role(
            "cluster-admin",
            vec![
                rule(&["*"]).groups(&["*"]).resources(&["*"]),
                rule(&["*"]).urls(&["*"]),
            ],
        ),
        // Just enough to tell whether the server is ready and to discover
        // the API versions it serves.
        cluster_role(
            "system:discovery",
            vec![rule(&["get"]).urls(&[
                "/livez",
                "/readyz",
                "/healthz",
                "/version",
                "/version/",
                "/openapi",
                "/openapi/*",
                "/api",
                "/api/*",
                "/apis",
                "/apis/*",
            ])],
        ),
        // The metrics and the individual health checks, which may tell more
        // about the cluster than the aggregate ones.
        cluster_role(
            "system:monitoring",
            vec![rule(&["get"]).urls(&[
                "/metrics",
                "/metrics/slis",
                "/livez",
                "/readyz",
                "/healthz",
                "/livez/*",
                "/readyz/*",
                "/healthz/*",
            ])],
        ),
        // Enough for a user to learn about themselves.
        cluster_role(
            "system:basic-user",
            vec![
                rule(&["create"])
                    .groups(&[AUTHORIZATION])
                    .resources(&["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
                rule(&["create"])
                    .groups(&[AUTHENTICATION])
                    .resources(&["selfsubjectreviews"]),
            ],
        ),
        // Insensitive information, for everyone.
        cluster_role(
            "system:public-info-viewer",
            vec![rule(&["get"]).urls(&["/livez", "/readyz", "/healthz", "/version", "/version/"])],
        ),
    ];
    roles.extend(aggregate_roles::aggregate_roles());
    roles.extend([
        cluster_role(
            "system:heapster",
            vec![
                rule(READ)
                    .groups(&[LEGACY])
                    .resources(&["events", "pods", "nodes", "namespaces"]),
                rule(READ).groups(&[EXTENSIONS]).resources(&["deployments"]),
            ],
        ),
        cluster_role(SYSTEM_NODE, node_roles::node_rules()),
        // Not bound by default: where node-problem-detector runs varies.
        cluster_role(
            "system:node-problem-detector",
            vec![
                rule(&["get"]).groups(&[LEGACY]).resources(&["nodes"]),
                rule(&["patch"])
                    .groups(&[LEGACY])
                    .resources(&["nodes/status"]),
                events_rule(),
            ],
        ),
        // Bootstrapping a node's client certificate.
        cluster_role(
            "system:node-bootstrapper",
            vec![rule(&["create", "get", "list", "watch"])
                .groups(&[CERTIFICATES])
                .resources(&["certificatesigningrequests"])],
        ),
        // Delegated authentication and authorization (both creates are
        // non-mutating).
        cluster_role(
            "system:auth-delegator",
            vec![
                rule(&["create"])
                    .groups(&[AUTHENTICATION])
                    .resources(&["tokenreviews"]),
                rule(&["create"])
                    .groups(&[AUTHORIZATION])
                    .resources(&["subjectaccessreviews"]),
            ],
        ),
        // The aggregator must see whether the services it proxies to exist.
        cluster_role(
            "system:kube-aggregator",
            vec![rule(READ)
                .groups(&[LEGACY])
                .resources(&["services", "endpoints"])],
        ),
        cluster_role(
            "system:kube-controller-manager",
            kube_controller_manager_rules(),
        ),
        cluster_role(
            "system:kube-dns",
            vec![rule(&["list", "watch"])
                .groups(&[LEGACY])
                .resources(&["endpoints", "services"])],
        ),
        // An external, out-of-tree persistent volume provisioner.
        cluster_role(
            "system:persistent-volume-provisioner",
            vec![
                rule(&["get", "list", "watch", "create", "delete"])
                    .groups(&[LEGACY])
                    .resources(&["persistentvolumes"]),
                // update sets lock annotations on claims.
                rule(&["get", "list", "watch", "update"])
                    .groups(&[LEGACY])
                    .resources(&["persistentvolumeclaims"]),
                rule(READ).groups(&[STORAGE]).resources(&["storageclasses"]),
                // Watching provisioning's success and failure events.
                rule(&["watch"]).groups(&[LEGACY]).resources(&["events"]),
                events_rule(),
            ],
        ),
        // The csrapprover controller approves a node's client CSR.
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            vec![rule(&["create"])
                .groups(&[CERTIFICATES])
                .resources(&["certificatesigningrequests/nodeclient"])],
        ),
        // ... and one the node asked for itself.
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            vec![rule(&["create"])
                .groups(&[CERTIFICATES])
                .resources(&["certificatesigningrequests/selfnodeclient"])],
        ),
        cluster_role(
            "system:volume-scheduler",
            vec![
                rule(READ_UPDATE)
                    .groups(&[LEGACY])
                    .resources(&["persistentvolumes"]),
                rule(READ).groups(&[STORAGE]).resources(&["storageclasses"]),
                rule(READ_UPDATE)
                    .groups(&[LEGACY])
                    .resources(&["persistentvolumeclaims"]),
            ],
        ),
    ]);
    roles.extend(APPROVER_ROLES.into_iter().map(|(role, signer)| {
        cluster_role(
            &format!("system:certificates.k8s.io:{role}"),
            vec![rule(&["approve"])
                .groups(&[CERTIFICATES])
                .resources(&["signers"])
                .names(&[signer])],
        )
    }));
    roles.extend([
        // The service account issuer's OIDC discovery documents; the
        // slash-ended forms serve clients generated from older OpenAPI.
        cluster_role(
            "system:service-account-issuer-discovery",
            vec![rule(&["get"]).urls(&[
                "/.well-known/openid-configuration",
                "/.well-known/openid-configuration/",
                "/openid/v1/jwks",
                "/openid/v1/jwks/",
            ])],
        ),
        cluster_role(
            "system:kubelet-api-admin",
            node_roles::kubelet_api_admin_rules(),
        ),
        cluster_role("system:node-proxier", node_roles::node_proxier_rules()),
        cluster_role("system:kube-scheduler", kube_scheduler_rules()),
    ]);
    roles
}

pub(super) fn cluster_role_bindings() -> Vec<Value> {
    let authenticated = || group("system:authenticated");
    vec![
        cluster_role_binding("cluster-admin", vec![group("system:masters")]),
        cluster_role_binding("system:monitoring", vec![group("system:monitoring")]),
        cluster_role_binding("system:discovery", vec![authenticated()]),
        cluster_role_binding("system:basic-user", vec![authenticated()]),
        cluster_role_binding(
            "system:public-info-viewer",
            vec![authenticated(), group("system:unauthenticated")],
        ),
        cluster_role_binding("system:node-proxier", vec![user(KUBE_PROXY)]),
        cluster_role_binding(
            "system:kube-controller-manager",
            vec![user(KUBE_CONTROLLER_MANAGER)],
        ),
        cluster_role_binding(
            "system:kube-dns",
            vec![service_account(SYSTEM_NAMESPACE, "kube-dns")],
        ),
        cluster_role_binding("system:kube-scheduler", vec![user(KUBE_SCHEDULER)]),
        cluster_role_binding("system:volume-scheduler", vec![user(KUBE_SCHEDULER)]),
        // Binding system:node to the system:nodes group is deprecated since
        // the Node authorizer (1.7); the binding stays with no subjects so
        // that tightening reconciliation removes the group.
        cluster_role_binding(SYSTEM_NODE, vec![]),
        // Workloads may read the OIDC discovery documents: they point to
        // what issued their own tokens.
        cluster_role_binding(
            "system:service-account-issuer-discovery",
            vec![group("system:serviceaccounts")],
        ),
    ]
}

/// Bootstrapping kube-controller-manager: shared informers, and the service
/// accounts and tokens that give each controller its own identity.
fn kube_controller_manager_rules() -> Vec<RuleBuilder> {
    vec![
        events_rule(),
        // Leader election.
        rule(&["create"])
            .groups(&[COORDINATION])
            .resources(&["leases"]),
        rule(&["get", "update"])
            .groups(&[COORDINATION])
            .resources(&["leases"])
            .names(&["kube-controller-manager"]),
        rule(&["create"])
            .groups(&[LEGACY])
            .resources(&["secrets", "serviceaccounts"]),
        rule(&["delete"]).groups(&[LEGACY]).resources(&["secrets"]),
        rule(&["get"]).groups(&[LEGACY]).resources(&[
            "namespaces",
            "secrets",
            "serviceaccounts",
            "configmaps",
        ]),
        rule(&["update"])
            .groups(&[LEGACY])
            .resources(&["secrets", "serviceaccounts"]),
        rule(&["create"])
            .groups(&[AUTHENTICATION])
            .resources(&["tokenreviews"]),
        rule(&["create"])
            .groups(&[AUTHORIZATION])
            .resources(&["subjectaccessreviews"]),
        // Every shared informer.
        rule(&["list", "watch"]).groups(&["*"]).resources(&["*"]),
        rule(&["create"])
            .groups(&[LEGACY])
            .resources(&["serviceaccounts/token"]),
    ]
}

/// kube-scheduler; the dynamic resource allocation rules stay out while
/// DynamicResourceAllocation is off by default (1.33).
fn kube_scheduler_rules() -> Vec<RuleBuilder> {
    vec![
        events_rule(),
        // Leader election.
        rule(&["create"])
            .groups(&[COORDINATION])
            .resources(&["leases"]),
        rule(&["get", "update", "list", "watch"])
            .groups(&[COORDINATION])
            .resources(&["leases"])
            .names(&["kube-scheduler"]),
        rule(READ_WRITE)
            .groups(&[COORDINATION])
            .resources(&["leasecandidates"]),
        // Fundamental resources.
        rule(READ).groups(&[LEGACY]).resources(&["nodes"]),
        rule(&["get", "list", "watch", "delete"])
            .groups(&[LEGACY])
            .resources(&["pods"]),
        rule(&["create"])
            .groups(&[LEGACY])
            .resources(&["pods/binding", "bindings"]),
        rule(&["patch", "update"])
            .groups(&[LEGACY])
            .resources(&["pods/status"]),
        // What selects pods.
        rule(READ)
            .groups(&[LEGACY])
            .resources(&["services", "replicationcontrollers"]),
        rule(READ)
            .groups(&[APPS, EXTENSIONS])
            .resources(&["replicasets"]),
        rule(READ).groups(&[APPS]).resources(&["statefulsets"]),
        // What pods use or what applies to them.
        rule(READ)
            .groups(&[POLICY])
            .resources(&["poddisruptionbudgets"]),
        rule(READ)
            .groups(&[LEGACY])
            .resources(&["persistentvolumeclaims", "persistentvolumes"]),
        rule(&["create"])
            .groups(&[AUTHENTICATION])
            .resources(&["tokenreviews"]),
        rule(&["create"])
            .groups(&[AUTHORIZATION])
            .resources(&["subjectaccessreviews"]),
        // Volume limits.
        rule(READ).groups(&[STORAGE]).resources(&["csinodes"]),
        rule(READ)
            .groups(&[STORAGE])
            .resources(&["volumeattachments"]),
        // The namespaceSelector of pod affinity.
        rule(READ).groups(&[LEGACY]).resources(&["namespaces"]),
        rule(READ).groups(&[STORAGE]).resources(&["csidrivers"]),
        rule(READ)
            .groups(&[STORAGE])
            .resources(&["csistoragecapacities"]),
    ]
}
