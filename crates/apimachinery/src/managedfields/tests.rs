//! The operations on a small Deployment-like schema: ownership on create,
//! updates moving fields, apply conflicts, force, shared ownership and
//! removal of fields an applier stopped sending.

use serde_json::{json, Value};

use super::*;

/// Types by name: `spec`, `containers` (map by name), `container`,
/// `ports` (map by containerPort+protocol), `finalizers` (set), `selector`
/// (atomic struct); everything else is a free-form map or scalar.
struct Toy;

impl Schema for Toy {
    type Node = &'static str;
    fn field(&self, parent: &&'static str, name: &str) -> &'static str {
        match (*parent, name) {
            ("root", "spec") => "spec",
            ("root", "metadata") => "metadata",
            ("metadata", "finalizers") => "finalizers",
            ("spec", "containers") => "containers",
            ("spec", "selector") => "selector",
            ("container", "ports") => "ports",
            ("container", "args") => "args",
            _ => "",
        }
    }
    fn item(&self, list: &&'static str) -> &'static str {
        match *list {
            "containers" => "container",
            _ => "",
        }
    }
    fn list_kind(&self, list: &&'static str) -> ListKind {
        match *list {
            "containers" => ListKind::Map(vec!["name".into()]),
            "ports" => ListKind::Map(vec!["containerPort".into(), "protocol".into()]),
            "finalizers" => ListKind::Set,
            _ => ListKind::Atomic,
        }
    }
    fn atomic_map(&self, node: &&'static str) -> bool {
        *node == "selector"
    }
    fn is_struct(&self, node: &&'static str) -> bool {
        matches!(*node, "root" | "spec" | "metadata" | "container")
    }
    fn key_default(&self, list: &&'static str, key: &str) -> Option<Value> {
        (*list == "ports" && key == "protocol").then(|| json!("TCP"))
    }
}

fn who<'a>(manager: &'a str) -> Writer<'a> {
    Writer {
        manager,
        api_version: "apps/v1",
        subresource: "",
        now: "2026-12-02T00:00:00Z",
    }
}

fn deployment() -> Value {
    json!({
        "metadata": {"labels": {"app": "web"}, "finalizers": ["a"]},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}], "args": ["x"]}]
        }
    })
}

#[test]
fn field_sets_follow_list_types_and_key_defaults() {
    let s = to_field_set(&Toy, &"root", &deployment());
    assert_eq!(
        s.to_fields_v1(),
        json!({
            "f:metadata": {"f:finalizers": {"v:\"a\"": {}}, "f:labels": {"f:app": {}}},
            "f:spec": {
                "f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:args": {}, "f:image": {}, "f:name": {},
                    "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}},
                "f:replicas": {},
                "f:selector": {}
            }
        })
    );
}

#[test]
fn create_then_update_moves_changed_fields_to_the_writer() {
    let mut managers = Vec::new();
    let obj = deployment();
    update(
        &Toy,
        &"root",
        &mut managers,
        None,
        &obj,
        &who("kubectl-create"),
    );
    assert_eq!(managers.len(), 1);
    let fields = managers[0].set.to_fields_v1();
    // Free-form maps added whole are members themselves; declared structs are not.
    assert_eq!(fields["f:metadata"]["f:labels"]["."], json!({}));
    assert!(fields["f:spec"].get(".").is_none());
    // A granular list is its items; an atomic struct is owned whole.
    assert!(fields["f:spec"]["f:containers"].get(".").is_none());
    assert!(fields["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]
        .get(".")
        .is_some());
    assert_eq!(fields["f:spec"]["f:selector"], json!({}));

    let mut scaled = obj.clone();
    scaled["spec"]["replicas"] = json!(3);
    update(
        &Toy,
        &"root",
        &mut managers,
        Some(&obj),
        &scaled,
        &who("kubectl-scale"),
    );
    assert_eq!(managers.len(), 2);
    let path = vec!["f:spec".to_string(), "f:replicas".to_string()];
    assert!(!managers[0].set.has(&path));
    assert!(managers[1].set.has(&path));
    assert_eq!(managers[1].set.members(), vec![path]);
}

#[test]
fn apply_conflicts_unless_forced_and_shares_equal_values() {
    let mut managers = Vec::new();
    let obj = deployment();
    update(
        &Toy,
        &"root",
        &mut managers,
        None,
        &obj,
        &who("kubectl-create"),
    );

    // The same value as the live object: no conflict, shared ownership.
    let same = json!({"spec": {"replicas": 1}});
    let out = apply(
        &Toy,
        &"root",
        &mut managers,
        Some(&obj),
        &same,
        &who("ci"),
        false,
    )
    .unwrap();
    assert_eq!(out, obj);
    let path = vec!["f:spec".to_string(), "f:replicas".to_string()];
    assert!(managers.iter().all(|m| m.set.has(&path)));

    // A different value: a conflict naming the owner and the field.
    let more = json!({"spec": {"replicas": 5}});
    let err = apply(
        &Toy,
        &"root",
        &mut managers,
        Some(&obj),
        &more,
        &who("ci"),
        false,
    )
    .unwrap_err();
    assert_eq!(
        err,
        vec![Conflict {
            manager: "\"kubectl-create\" using apps/v1".into(),
            field: ".spec.replicas".into()
        }]
    );
    // Forced: the applier takes the field over.
    let out = apply(
        &Toy,
        &"root",
        &mut managers,
        Some(&obj),
        &more,
        &who("ci"),
        true,
    )
    .unwrap();
    assert_eq!(out["spec"]["replicas"], json!(5));
    let creator = managers
        .iter()
        .find(|m| m.manager == "kubectl-create")
        .unwrap();
    assert!(!creator.set.has(&path));
    let ci = managers.iter().find(|m| m.manager == "ci").unwrap();
    assert_eq!(ci.operation, "Apply");
    assert!(ci.set.has(&path));
}

#[test]
fn fields_an_applier_stops_sending_are_removed_unless_someone_else_owns_them() {
    let mut managers = Vec::new();
    let first = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"containers": [
        {"name": "web", "image": "nginx"}, {"name": "side", "image": "busybox"}]}});
    let live = apply(
        &Toy,
        &"root",
        &mut managers,
        None,
        &first,
        &who("me"),
        false,
    )
    .unwrap();
    assert_eq!(live, first);
    // Someone else sets label b too (same value) and adds label c.
    let mut other = live.clone();
    other["metadata"]["labels"]["c"] = json!("3");
    update(
        &Toy,
        &"root",
        &mut managers,
        Some(&live),
        &other,
        &who("editor"),
    );
    let shared = json!({"metadata": {"labels": {"b": "2"}}});
    apply(
        &Toy,
        &"root",
        &mut managers,
        Some(&other),
        &shared,
        &who("helper"),
        false,
    )
    .unwrap();

    // Now "me" drops label a, label b and the side container.
    let second = json!({"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}});
    let out = apply(
        &Toy,
        &"root",
        &mut managers,
        Some(&other),
        &second,
        &who("me"),
        false,
    )
    .unwrap();
    assert_eq!(out["metadata"]["labels"], json!({"b": "2", "c": "3"}));
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "web", "image": "nginx:2"}])
    );
}

#[test]
fn associative_lists_merge_by_key_and_sets_unite() {
    let live = deployment();
    let config = json!({"metadata": {"finalizers": ["b"]}, "spec": {"containers": [
        {"name": "web", "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}]},
        {"name": "new", "image": "busybox"}]}});
    let out = merge(&Toy, &"root", &live, &config);
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "b"]));
    let cs = out["spec"]["containers"].as_array().unwrap();
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[0]["image"], json!("nginx"));
    // The port without a protocol matched the one with the default protocol.
    assert_eq!(cs[0]["ports"].as_array().unwrap().len(), 1);
    assert_eq!(cs[0]["ports"][0]["name"], json!("http"));
    // An atomic list is replaced whole; an atomic struct too.
    let out = merge(
        &Toy,
        &"root",
        &live,
        &json!({"spec": {"selector": {"matchExpressions": []}, "containers": [{"name": "web", "args": ["y"]}]}}),
    );
    assert_eq!(out["spec"]["selector"], json!({"matchExpressions": []}));
    assert_eq!(out["spec"]["containers"][0]["args"], json!(["y"]));
}
