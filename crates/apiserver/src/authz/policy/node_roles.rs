//! The rules of the roles for what runs on nodes: the kubelet
//! (`system:node`, upstream's `NodeRules`), full access to the kubelet's API
//! (`system:kubelet-api-admin`) and kube-proxy (`system:node-proxier`), from
//! upstream's `bootstrappolicy/policy.go`; [`super::cluster_roles`] makes
//! the roles.

use super::{
    events_rule, rule, RuleBuilder, AUTHENTICATION, AUTHORIZATION, CERTIFICATES, COORDINATION,
    DISCOVERY, EVENTS, LEGACY, NETWORKING, NODE, READ, STORAGE,
};

/// What a kubelet needs (upstream's `NodeRules`); the Node authorizer and
/// the NodeRestriction admission plugin narrow most of it to the node's own
/// objects.
pub(super) fn node_rules() -> Vec<RuleBuilder> {
    vec![
        // Checking API access; both creates are non-mutating.
        rule(&["create"])
            .groups(&[AUTHENTICATION])
            .resources(&["tokenreviews"]),
        rule(&["create"])
            .groups(&[AUTHORIZATION])
            .resources(&["subjectaccessreviews", "localsubjectaccessreviews"]),
        // Services populate the environment of containers.
        rule(READ).groups(&[LEGACY]).resources(&["services"]),
        // Registering the Node object and reporting its status.
        rule(&["create", "get", "list", "watch"])
            .groups(&[LEGACY])
            .resources(&["nodes"]),
        rule(&["update", "patch"])
            .groups(&[LEGACY])
            .resources(&["nodes/status"]),
        rule(&["update", "patch"])
            .groups(&[LEGACY])
            .resources(&["nodes"]),
        // events.k8s.io too: this kubelet records through it (upstream's
        // role gains it in 1.35).
        rule(&["create", "update", "patch"])
            .groups(&[LEGACY, EVENTS])
            .resources(&["events"]),
        rule(READ).groups(&[LEGACY]).resources(&["pods"]),
        // Mirror pods, pod status, evictions of the node's own pods.
        rule(&["create", "delete"])
            .groups(&[LEGACY])
            .resources(&["pods"]),
        rule(&["update", "patch"])
            .groups(&[LEGACY])
            .resources(&["pods/status"]),
        rule(&["create"])
            .groups(&[LEGACY])
            .resources(&["pods/eviction"]),
        // Secret and config map volumes, image pull secrets, env sources.
        rule(READ)
            .groups(&[LEGACY])
            .resources(&["secrets", "configmaps"]),
        rule(&["get"])
            .groups(&[LEGACY])
            .resources(&["persistentvolumeclaims", "persistentvolumes"]),
        rule(&["get"]).groups(&[LEGACY]).resources(&["endpoints"]),
        // Rotating the kubelet's own client certificate.
        rule(&["create", "get", "list", "watch"])
            .groups(&[CERTIFICATES])
            .resources(&["certificatesigningrequests"]),
        // The node's heartbeat lease.
        rule(&["get", "create", "update", "patch", "delete"])
            .groups(&[COORDINATION])
            .resources(&["leases"]),
        rule(&["get"])
            .groups(&[STORAGE])
            .resources(&["volumeattachments"]),
        // Tokens for the service accounts of the node's pods.
        rule(&["create"])
            .groups(&[LEGACY])
            .resources(&["serviceaccounts/token"]),
        // Volume expansion reports on the claim's status.
        rule(&["get", "update", "patch"])
            .groups(&[LEGACY])
            .resources(&["persistentvolumeclaims/status"]),
        rule(&["get", "watch", "list"])
            .groups(&[STORAGE])
            .resources(&["csidrivers"]),
        rule(&["get", "create", "update", "patch", "delete"])
            .groups(&[STORAGE])
            .resources(&["csinodes"]),
        rule(READ).groups(&[NODE]).resources(&["runtimeclasses"]),
    ]
}

/// Full access to the kubelet's API. The nodes/pods, nodes/healthz and
/// nodes/configz subresources are KubeletFineGrainedAuthz's, beta and on by
/// default since 1.33.
pub(super) fn kubelet_api_admin_rules() -> Vec<RuleBuilder> {
    vec![
        rule(READ).groups(&[LEGACY]).resources(&["nodes"]),
        rule(&["proxy"]).groups(&[LEGACY]).resources(&["nodes"]),
        rule(&["*"]).groups(&[LEGACY]).resources(&[
            "nodes/proxy",
            "nodes/metrics",
            "nodes/stats",
            "nodes/log",
        ]),
        rule(&["*"])
            .groups(&[LEGACY])
            .resources(&["nodes/pods", "nodes/healthz", "nodes/configz"]),
    ]
}

/// kube-proxy. ServiceCIDRs are MultiCIDRServiceAllocator's, GA in 1.33.
pub(super) fn node_proxier_rules() -> Vec<RuleBuilder> {
    vec![
        rule(&["list", "watch"])
            .groups(&[LEGACY])
            .resources(&["services", "endpoints"]),
        rule(READ).groups(&[LEGACY]).resources(&["nodes"]),
        events_rule(),
        rule(&["list", "watch"])
            .groups(&[NETWORKING])
            .resources(&["servicecidrs"]),
        rule(&["list", "watch"])
            .groups(&[DISCOVERY])
            .resources(&["endpointslices"]),
    ]
}
