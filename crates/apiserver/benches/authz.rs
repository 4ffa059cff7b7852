//! The cost of one RBAC decision (no target in the issues; it is paid by
//! every request of a user outside system:masters). The policy is the
//! bootstrap one plus `AUTHZ_BENCH_NAMESPACES` namespaces, each with a
//! RoleBinding of `edit` to its ServiceAccount and one of `view` to a user;
//! the aggregated roles get their rules as the aggregation controller
//! would. Prints ns per decision for an allowed namespaced request, denied
//! ones (every applicable binding walked) and a discovery request.
//!
//! `cargo bench -p apiserver --bench authz` (env: `AUTHZ_BENCH_NAMESPACES`,
//! `AUTHZ_BENCH_ITERATIONS`). Never run in CI.

use std::time::Instant;

use apiserver::authz::rbac::Rbac;
use apiserver::authz::{policy, Attributes, Decision};
use component_base::authn::User;
use serde_json::{json, Value};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Fills admin/edit/view as the aggregation controller would.
fn aggregate(roles: &mut [Value]) {
    for name in ["view", "edit", "admin"] {
        let label = format!("/metadata/labels/rbac.authorization.k8s.io~1aggregate-to-{name}");
        let rules: Vec<Value> = roles
            .iter()
            .filter(|r| r.pointer(&label) == Some(&json!("true")))
            .flat_map(|r| r["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        if let Some(r) = roles.iter_mut().find(|r| r["metadata"]["name"] == name) {
            r["rules"] = json!(rules);
        }
    }
}

fn binding(ns: &str, name: &str, role: &str, subject: Value) -> Value {
    json!({"metadata": {"name": name, "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [subject]})
}

fn time(what: &str, iterations: usize, rbac: &Rbac, a: &Attributes, allowed: bool) {
    let start = Instant::now();
    for _ in 0..iterations {
        let d = rbac.authorize(a);
        assert_eq!(matches!(d, Decision::Allow(_)), allowed, "{what}: {d:?}");
    }
    let ns = start.elapsed().as_nanos() as f64 / iterations as f64;
    println!("{what:<60} {ns:>8.0} ns/decision");
}

fn resource<'a>(
    user: &'a User,
    verb: &'a str,
    group: &'a str,
    resource: &'a str,
    ns: &'a str,
) -> Attributes<'a> {
    Attributes {
        user,
        verb,
        resource_request: true,
        namespace: ns,
        api_group: group,
        resource,
        subresource: "",
        name: "",
        path: "",
    }
}

fn main() {
    let namespaces = env("AUTHZ_BENCH_NAMESPACES", 1000);
    let iterations = env("AUTHZ_BENCH_ITERATIONS", 200_000);
    let p = policy::bootstrap();
    let mut cluster_roles = p.cluster_roles;
    aggregate(&mut cluster_roles);
    let rbac = Rbac::default();
    rbac.load("clusterroles", cluster_roles);
    rbac.load("clusterrolebindings", p.cluster_role_bindings);
    rbac.load("roles", p.roles);
    let mut bindings = p.role_bindings;
    for i in 0..namespaces {
        let ns = format!("team-{i}");
        let sa = json!({"kind": "ServiceAccount", "name": "app", "namespace": ns});
        let dev = json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": format!("dev-{i}")});
        bindings.push(binding(&ns, "app-edit", "edit", sa));
        bindings.push(binding(&ns, "viewer", "view", dev));
    }
    rbac.load("rolebindings", bindings);
    println!(
        "policy: bootstrap + {namespaces} namespaces x 2 RoleBindings; {iterations} decisions each"
    );

    let ns = format!("team-{}", namespaces / 2);
    let sa = User {
        name: format!("system:serviceaccount:{ns}:app"),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{ns}"),
            "system:authenticated".into(),
        ],
        ..User::default()
    };
    time(
        "allowed: ServiceAccount creates deployments (edit)",
        iterations,
        &rbac,
        &resource(&sa, "create", "apps", "deployments", &ns),
        true,
    );
    time(
        "denied: ServiceAccount deletes nodes (cluster scope)",
        iterations,
        &rbac,
        &resource(&sa, "delete", "", "nodes", ""),
        false,
    );
    time(
        "denied: ServiceAccount creates rolebindings (not in edit)",
        iterations,
        &rbac,
        &resource(
            &sa,
            "create",
            "rbac.authorization.k8s.io",
            "rolebindings",
            &ns,
        ),
        false,
    );
    let discovery = Attributes {
        resource_request: false,
        path: "/apis/apps/v1",
        ..resource(&sa, "get", "", "", "")
    };
    time(
        "allowed: GET /apis/apps/v1 (system:discovery)",
        iterations,
        &rbac,
        &discovery,
        true,
    );
}
