//! Checks of the bootstrap policy against upstream's: every binding
//! resolves, every object is marked as a default, the rules are well formed,
//! and spot checks of the roles whose powers matter most.

use std::collections::BTreeSet;

use super::*;

fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

/// The object named `wanted` in `namespace` (None: cluster-scoped).
fn find<'a>(objects: &'a [Value], namespace: Option<&str>, wanted: &str) -> &'a Value {
    let found = objects
        .iter()
        .find(|o| name(o) == wanted && o["metadata"]["namespace"].as_str() == namespace);
    found.unwrap_or_else(|| panic!("{namespace:?}/{wanted} is missing"))
}

fn cluster_role<'a>(policy: &'a Policy, wanted: &str) -> &'a Value {
    find(&policy.cluster_roles, None, wanted)
}

fn cluster_binding<'a>(policy: &'a Policy, wanted: &str) -> &'a Value {
    find(&policy.cluster_role_bindings, None, wanted)
}

fn strings(value: &Value) -> Vec<&str> {
    let list = value.as_array().map(Vec::as_slice).unwrap_or_default();
    list.iter().filter_map(Value::as_str).collect()
}

fn covers(list: &Value, wanted: &str) -> bool {
    strings(list).iter().any(|s| *s == wanted || *s == "*")
}

fn rules(role: &Value) -> &[Value] {
    role["rules"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Whether some rule of `role` allows `verb` on `group`/`resource`.
fn allows(role: &Value, verb: &str, group: &str, resource: &str) -> bool {
    rules(role).iter().any(|r| {
        covers(&r["verbs"], verb)
            && covers(&r["apiGroups"], group)
            && covers(&r["resources"], resource)
    })
}

/// A binding's subjects as "Kind name" or "Kind namespace/name".
fn subjects(binding: &Value) -> Vec<String> {
    let list = binding["subjects"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let field = |s: &Value, f: &str| s[f].as_str().unwrap_or_default().to_owned();
    list.iter()
        .map(|s| match s["namespace"].as_str() {
            Some(ns) => format!("{} {ns}/{}", field(s, "kind"), field(s, "name")),
            None => format!("{} {}", field(s, "kind"), field(s, "name")),
        })
        .collect()
}

fn all(policy: &Policy) -> impl Iterator<Item = &Value> {
    let roles = policy.cluster_roles.iter().chain(&policy.roles);
    let bindings = policy
        .cluster_role_bindings
        .iter()
        .chain(&policy.role_bindings);
    roles.chain(bindings)
}

#[test]
fn names_are_unique_per_kind_and_namespace() {
    let policy = bootstrap();
    let mut seen = BTreeSet::new();
    for o in all(&policy) {
        let key = (
            o["kind"].as_str(),
            o["metadata"]["namespace"].as_str(),
            name(o),
        );
        assert!(seen.insert(key), "{key:?} appears twice");
    }
}

#[test]
fn every_binding_refers_to_a_role_of_the_policy() {
    let policy = bootstrap();
    for b in &policy.cluster_role_bindings {
        assert_eq!(b["roleRef"]["kind"], "ClusterRole", "{}", name(b));
        cluster_role(&policy, b["roleRef"]["name"].as_str().unwrap_or_default());
    }
    for b in &policy.role_bindings {
        let wanted = b["roleRef"]["name"].as_str().unwrap_or_default();
        match b["roleRef"]["kind"].as_str() {
            Some("Role") => {
                find(&policy.roles, b["metadata"]["namespace"].as_str(), wanted);
            }
            Some("ClusterRole") => {
                cluster_role(&policy, wanted);
            }
            kind => panic!("{} refers to a {kind:?}", name(b)),
        }
    }
    for b in policy
        .cluster_role_bindings
        .iter()
        .chain(&policy.role_bindings)
    {
        assert_eq!(b["roleRef"]["apiGroup"], RBAC_GROUP, "{}", name(b));
    }
}

#[test]
fn every_object_carries_the_bootstrap_label_and_annotation() {
    let policy = bootstrap();
    for o in all(&policy) {
        let meta = &o["metadata"];
        assert_eq!(o["apiVersion"], RBAC_V1);
        assert_eq!(
            meta["labels"][BOOTSTRAPPING_LABEL],
            "rbac-defaults",
            "{}",
            name(o)
        );
        assert_eq!(
            meta["annotations"][AUTOUPDATE_ANNOTATION],
            "true",
            "{}",
            name(o)
        );
        let namespaced = matches!(o["kind"].as_str(), Some("Role" | "RoleBinding"));
        assert_eq!(meta["namespace"].is_string(), namespaced, "{}", name(o));
    }
}

/// Upstream's `RuleOrDie` checks: verbs always; resources with apiGroups, or
/// nonResourceURLs alone; every list sorted. Only aggregated roles lack rules.
#[test]
fn every_rule_is_well_formed() {
    let policy = bootstrap();
    for r in policy.cluster_roles.iter().chain(&policy.roles) {
        for rule in rules(r) {
            assert!(!strings(&rule["verbs"]).is_empty(), "{}: {rule}", name(r));
            if rule.get("nonResourceURLs").is_some() {
                assert!(rule.get("apiGroups").is_none() && rule.get("resources").is_none());
            } else {
                assert!(rule["apiGroups"].is_array() && rule["resources"].is_array());
            }
            for list in rule.as_object().into_iter().flat_map(|o| o.values()) {
                let sorted = strings(list).windows(2).all(|w| w[0] <= w[1]);
                assert!(sorted, "{}: {rule}", name(r));
            }
        }
        let aggregated = r.get("aggregationRule").is_some();
        assert_eq!(rules(r).is_empty(), aggregated, "{}", name(r));
        assert!(r["rules"].is_array(), "{}", name(r));
    }
}

#[test]
fn cluster_admin_can_do_anything_and_is_bound_to_masters() {
    let policy = bootstrap();
    let expected = json!([
        {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
        {"verbs": ["*"], "nonResourceURLs": ["*"]},
    ]);
    assert_eq!(cluster_role(&policy, "cluster-admin")["rules"], expected);
    let expected = json!([{"kind": "Group", "apiGroup": RBAC_GROUP, "name": "system:masters"}]);
    assert_eq!(
        cluster_binding(&policy, "cluster-admin")["subjects"],
        expected
    );
}

#[test]
fn everyone_may_learn_about_themselves_and_the_server() {
    let policy = bootstrap();
    let authenticated = "Group system:authenticated";
    let bound = |role| subjects(cluster_binding(&policy, role));
    assert_eq!(bound("system:basic-user"), [authenticated]);
    assert_eq!(bound("system:discovery"), [authenticated]);
    assert_eq!(
        bound("system:public-info-viewer"),
        [authenticated, "Group system:unauthenticated"]
    );
    let basic = cluster_role(&policy, "system:basic-user");
    assert!(allows(
        basic,
        "create",
        AUTHORIZATION,
        "selfsubjectaccessreviews"
    ));
    assert!(allows(
        basic,
        "create",
        AUTHENTICATION,
        "selfsubjectreviews"
    ));
}

#[test]
fn kube_proxy_watches_endpointslices() {
    let policy = bootstrap();
    let proxier = cluster_role(&policy, "system:node-proxier");
    assert!(allows(proxier, "list", DISCOVERY, "endpointslices"));
    assert!(allows(proxier, "watch", DISCOVERY, "endpointslices"));
    assert!(allows(proxier, "watch", NETWORKING, "servicecidrs"));
    assert!(!allows(proxier, "update", LEGACY, "services"));
    let binding = cluster_binding(&policy, "system:node-proxier");
    assert_eq!(subjects(binding), ["User system:kube-proxy"]);
}

#[test]
fn admin_edit_and_view_aggregate_labelled_roles() {
    let policy = bootstrap();
    let label = |to: &str| format!("rbac.authorization.k8s.io/aggregate-to-{to}");
    for role in ["admin", "edit", "view"] {
        let selectors = &cluster_role(&policy, role)["aggregationRule"]["clusterRoleSelectors"];
        assert_eq!(
            *selectors,
            json!([{"matchLabels": {label(role): "true"}}]),
            "{role}"
        );
    }
    let labels = |role| &cluster_role(&policy, role)["metadata"]["labels"];
    for (role, into) in [
        ("edit", "admin"),
        ("view", "edit"),
        ("system:aggregate-to-admin", "admin"),
        ("system:aggregate-to-edit", "edit"),
        ("system:aggregate-to-view", "view"),
    ] {
        assert_eq!(labels(role)[label(into)], "true", "{role}");
    }
    assert!(labels("admin").get(label("admin")).is_none());

    let edit = cluster_role(&policy, "system:aggregate-to-edit");
    assert!(allows(edit, "create", APPS, "deployments"));
    assert!(allows(edit, "get", LEGACY, "secrets"));
    assert!(allows(edit, "create", COORDINATION, "leases"));
    // CVE-2021-25740: editors may read endpoints but not write them.
    assert!(!allows(edit, "create", LEGACY, "endpoints"));
    let view = cluster_role(&policy, "system:aggregate-to-view");
    assert!(allows(view, "list", DISCOVERY, "endpointslices"));
    assert!(!allows(view, "get", LEGACY, "secrets"));
    let admin = cluster_role(&policy, "system:aggregate-to-admin");
    assert!(allows(admin, "create", RBAC_GROUP, "rolebindings"));
}

#[test]
fn controllers_are_bound_to_their_service_accounts() {
    let policy = bootstrap();
    let deployment = "system:controller:deployment-controller";
    let expected = json!([
        {"kind": "ServiceAccount", "name": "deployment-controller", "namespace": "kube-system"}
    ]);
    assert_eq!(cluster_binding(&policy, deployment)["subjects"], expected);
    let mut count = 0;
    for b in &policy.cluster_role_bindings {
        if let Some(sa) = name(b).strip_prefix("system:controller:") {
            assert_eq!(subjects(b), [format!("ServiceAccount kube-system/{sa}")]);
            count += 1;
        }
    }
    assert_eq!(count, 35);
    let role = cluster_role(&policy, deployment);
    assert!(allows(role, "create", APPS, "replicasets"));
    assert!(allows(role, "update", APPS, "deployments/status"));
    assert!(allows(role, "patch", EVENTS, "events"));
    let gc = cluster_role(&policy, "system:controller:generic-garbage-collector");
    assert!(allows(gc, "delete", "policy", "poddisruptionbudgets"));
    let endpoints = cluster_role(&policy, "system:controller:endpoint-controller");
    assert!(allows(endpoints, "watch", LEGACY, "endpoints"));
}

#[test]
fn cluster_role_names_are_upstreams() {
    // Those of a 1.33 cluster with the default feature gates.
    const CONTROLLERS: &str = "attachdetach-controller certificate-controller \
        clusterrole-aggregation-controller cronjob-controller daemon-set-controller \
        deployment-controller disruption-controller endpoint-controller endpointslice-controller \
        endpointslicemirroring-controller ephemeral-volume-controller expand-controller \
        generic-garbage-collector horizontal-pod-autoscaler job-controller \
        legacy-service-account-token-cleaner namespace-controller node-controller \
        persistent-volume-binder pod-garbage-collector pv-protection-controller \
        pvc-protection-controller replicaset-controller replication-controller \
        resourcequota-controller root-ca-cert-publisher route-controller \
        selinux-warning-controller service-account-controller service-cidrs-controller \
        service-controller statefulset-controller ttl-after-finished-controller ttl-controller \
        validatingadmissionpolicy-status-controller";
    const OTHERS: &str = "admin cluster-admin edit view system:aggregate-to-admin \
        system:aggregate-to-edit system:aggregate-to-view system:auth-delegator system:basic-user \
        system:certificates.k8s.io:certificatesigningrequests:nodeclient \
        system:certificates.k8s.io:certificatesigningrequests:selfnodeclient \
        system:certificates.k8s.io:kube-apiserver-client-approver \
        system:certificates.k8s.io:kube-apiserver-client-kubelet-approver \
        system:certificates.k8s.io:kubelet-serving-approver \
        system:certificates.k8s.io:legacy-unknown-approver system:discovery system:heapster \
        system:kube-aggregator system:kube-controller-manager system:kube-dns \
        system:kube-scheduler system:kubelet-api-admin system:monitoring system:node \
        system:node-bootstrapper system:node-problem-detector system:node-proxier \
        system:persistent-volume-provisioner system:public-info-viewer \
        system:service-account-issuer-discovery system:volume-scheduler";
    let policy = bootstrap();
    let names: BTreeSet<String> = policy
        .cluster_roles
        .iter()
        .map(|r| name(r).into())
        .collect();
    let controllers = CONTROLLERS.split_whitespace();
    let wanted: BTreeSet<String> = OTHERS
        .split_whitespace()
        .map(str::to_owned)
        .chain(controllers.map(|c| format!("system:controller:{c}")))
        .collect();
    assert_eq!(names, wanted);
    assert_eq!(policy.cluster_roles.len(), 66);
    assert_eq!(policy.cluster_role_bindings.len(), 47);
}

#[test]
fn component_roles_spot_checks() {
    let policy = bootstrap();
    // Deprecated since the Node authorizer: the binding stays, empty.
    assert!(cluster_binding(&policy, "system:node")
        .get("subjects")
        .is_none());
    let node = cluster_role(&policy, "system:node");
    assert!(allows(node, "create", LEGACY, "serviceaccounts/token"));
    assert!(allows(node, "patch", LEGACY, "pods/status"));
    assert!(allows(node, "update", COORDINATION, "leases"));
    assert!(!allows(node, "list", LEGACY, "serviceaccounts"));

    let scheduler = cluster_role(&policy, "system:kube-scheduler");
    let lease_rule = json!({
        "verbs": ["get", "list", "update", "watch"],
        "apiGroups": [COORDINATION],
        "resources": ["leases"],
        "resourceNames": ["kube-scheduler"],
    });
    assert!(rules(scheduler).contains(&lease_rule));
    assert!(allows(scheduler, "create", LEGACY, "pods/binding"));
    for role in ["system:kube-scheduler", "system:volume-scheduler"] {
        assert_eq!(
            subjects(cluster_binding(&policy, role)),
            ["User system:kube-scheduler"]
        );
    }

    let kubelet_admin = cluster_role(&policy, "system:kubelet-api-admin");
    assert!(allows(kubelet_admin, "proxy", LEGACY, "nodes"));
    assert!(allows(kubelet_admin, "get", LEGACY, "nodes/configz"));

    let cleaner = "system:controller:legacy-service-account-token-cleaner";
    let tracking = json!(["kube-apiserver-legacy-service-account-token-tracking"]);
    assert_eq!(
        rules(cluster_role(&policy, cleaner))[0]["resourceNames"],
        tracking
    );
    let issuer = cluster_binding(&policy, "system:service-account-issuer-discovery");
    assert_eq!(subjects(issuer), ["Group system:serviceaccounts"]);
    let dns = cluster_binding(&policy, "system:kube-dns");
    assert_eq!(subjects(dns), ["ServiceAccount kube-system/kube-dns"]);
}

#[test]
fn namespaced_roles_spot_checks() {
    let policy = bootstrap();
    assert_eq!((policy.roles.len(), policy.role_bindings.len()), (7, 7));
    let system = Some(SYSTEM_NAMESPACE);
    let public = Some(PUBLIC_NAMESPACE);

    let reader = find(
        &policy.roles,
        system,
        "extension-apiserver-authentication-reader",
    );
    let expected = json!([{
        "verbs": ["get", "list", "watch"],
        "apiGroups": [""],
        "resources": ["configmaps"],
        "resourceNames": ["extension-apiserver-authentication"],
    }]);
    assert_eq!(reader["rules"], expected);
    let reader_binding = find(
        &policy.role_bindings,
        system,
        "system::extension-apiserver-authentication-reader",
    );
    assert_eq!(reader_binding["roleRef"]["name"], name(reader));
    assert_eq!(
        subjects(reader_binding),
        [
            "User system:kube-controller-manager",
            "User system:kube-scheduler"
        ]
    );

    let signer = "system:controller:bootstrap-signer";
    assert!(allows(
        find(&policy.roles, public, signer),
        "update",
        LEGACY,
        "configmaps"
    ));
    assert!(allows(
        find(&policy.roles, system, signer),
        "list",
        LEGACY,
        "secrets"
    ));
    let signer_binding = find(&policy.role_bindings, public, signer);
    assert_eq!(
        subjects(signer_binding),
        ["ServiceAccount kube-system/bootstrap-signer"]
    );

    let lock = "system::leader-locking-kube-controller-manager";
    assert!(allows(
        find(&policy.roles, system, lock),
        "create",
        COORDINATION,
        "leases"
    ));
    assert_eq!(
        subjects(find(&policy.role_bindings, system, lock)),
        [
            "User system:kube-controller-manager",
            "ServiceAccount kube-system/kube-controller-manager",
            "ServiceAccount kube-system/leader-election-controller",
        ]
    );
}
