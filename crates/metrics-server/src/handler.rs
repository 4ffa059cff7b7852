//! Answering the metrics API's paths (upstream metrics-server's REST
//! storage behind the generic API server): discovery, get and list of
//! NodeMetrics and PodMetrics with label and field selectors, the Table
//! form, and upstream's Status errors. Only objects the informers know are
//! answered: metrics of a deleted pod disappear with it, and a node
//! selector (`--node-selector`) limits the nodes served.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use apimachinery::fields::FieldSelector;
use apimachinery::labels::Selector;
use apimachinery::resource::GroupResource;
use apimachinery::ApiError;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use serde_json::{Map, Value};

use crate::api;
use crate::storage::Storage;

/// What a request asked, already split from HTTP.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub accept: &'a str,
}

/// The metrics API over the informers' objects and the stored points.
#[derive(Clone)]
pub struct MetricsApi {
    pub storage: Arc<RwLock<Storage>>,
    pub nodes: Store<Node>,
    pub pods: Store<PartialObjectMeta<Pod>>,
    /// `--node-selector`: only these nodes are scraped and served.
    pub node_selector: Selector,
}

/// Which resource a path names.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    GroupList,
    Group,
    Resources,
    Nodes(Option<&'a str>),
    /// Namespace (`None`: every namespace) and name.
    Pods(Option<&'a str>, Option<&'a str>),
}

fn target(path: &str) -> Option<Target<'_>> {
    let path = path.trim_end_matches('/');
    let rest = match path {
        "/apis" => return Some(Target::GroupList),
        "/apis/metrics.k8s.io" => return Some(Target::Group),
        "/apis/metrics.k8s.io/v1beta1" => return Some(Target::Resources),
        p => p.strip_prefix("/apis/metrics.k8s.io/v1beta1/")?,
    };
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        ["nodes"] => Some(Target::Nodes(None)),
        ["nodes", name] if !name.is_empty() => Some(Target::Nodes(Some(name))),
        ["pods"] => Some(Target::Pods(None, None)),
        ["namespaces", ns, "pods"] if !ns.is_empty() => Some(Target::Pods(Some(ns), None)),
        ["namespaces", ns, "pods", name] if !ns.is_empty() && !name.is_empty() => {
            Some(Target::Pods(Some(ns), Some(name)))
        }
        _ => None,
    }
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<std::borrow::Cow<'a, str>> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
                .into()
        })
    })
}

/// Whether the client asked for `meta.k8s.io` Tables (`kubectl get`).
pub fn wants_table(accept: &str) -> bool {
    accept.split(',').any(|media| {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        params.contains(&"as=Table")
            && !params
                .iter()
                .any(|p| p.starts_with("g=") && *p != "g=meta.k8s.io")
    })
}

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

fn labels_of(labels: &Option<BTreeMap<String, String>>) -> Map<String, Value> {
    labels
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect()
}

fn selectors(query: &str) -> Result<(Selector, FieldSelector), ApiError> {
    let labels = match query_param(query, "labelSelector") {
        Some(s) => Selector::parse(&s)
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?,
        None => Selector::everything(),
    };
    let fields = match query_param(query, "fieldSelector") {
        Some(s) => FieldSelector::parse(&s).map_err(ApiError::bad_request)?,
        None => FieldSelector::everything(),
    };
    Ok((labels, fields))
}

impl MetricsApi {
    /// The answer to `req` at `now_ns` (Unix nanoseconds): a JSON object,
    /// or the Status error upstream answers.
    pub fn serve(&self, req: &Request<'_>, now_ns: i64) -> Result<Value, ApiError> {
        let target = target(req.path).ok_or_else(ApiError::not_found_path)?;
        let gr = |r: &str| GroupResource::new(api::GROUP, r);
        let resource = match &target {
            Target::Nodes(_) => Some("nodes"),
            Target::Pods(..) => Some("pods"),
            _ => None,
        };
        if req.method != "GET" && req.method != "HEAD" {
            return Err(match resource {
                Some(r) => ApiError::method_not_supported(&gr(r), &verb_of(req.method)),
                None => ApiError::new(
                    405,
                    "MethodNotAllowed",
                    "the server does not allow this method on the requested resource",
                ),
            });
        }
        if let Some(r) = resource {
            if query_param(req.query, "watch").is_some_and(|w| w == "true" || w == "1") {
                return Err(ApiError::method_not_supported(&gr(r), "watch"));
            }
        }
        let value = match target {
            Target::GroupList => return Ok(api::api_group_list()),
            Target::Group => return Ok(api::api_group()),
            Target::Resources => return Ok(api::resource_list()),
            Target::Nodes(Some(name)) => self.node(name, now_ns)?,
            Target::Pods(Some(ns), Some(name)) => self.pod(ns, name, now_ns)?,
            Target::Nodes(None) => {
                let (labels, fields) = selectors(req.query)?;
                api::list("NodeMetrics", self.list_nodes(&labels, &fields, now_ns))
            }
            Target::Pods(ns, _) => {
                let (labels, fields) = selectors(req.query)?;
                api::list("PodMetrics", self.list_pods(ns, &labels, &fields, now_ns))
            }
        };
        if wants_table(req.accept) {
            let include = query_param(req.query, "includeObject").unwrap_or_default();
            let items = match value.get("items").and_then(Value::as_array) {
                Some(items) => items.clone(),
                None => vec![value],
            };
            return Ok(api::table(&items, &include));
        }
        Ok(value)
    }

    fn node_allowed(&self, node: &Node) -> bool {
        self.node_selector.is_empty()
            || node
                .metadata
                .labels
                .as_ref()
                .is_some_and(|l| self.node_selector.matches(l))
    }

    fn node_object(&self, node: &Node, now_ns: i64) -> Option<Value> {
        let name = node.metadata.name.as_deref()?;
        let usage = self.storage.read().ok()?.node(name)?;
        Some(api::node_metrics(
            name,
            &labels_of(&node.metadata.labels),
            &usage,
            now_ns,
        ))
    }

    fn node(&self, name: &str, now_ns: i64) -> Result<Value, ApiError> {
        let node = self
            .nodes
            .get(&ObjectRef::new(name))
            .filter(|n| self.node_allowed(n))
            .ok_or_else(|| ApiError::not_found(&GroupResource::new("", "node"), name))?;
        self.node_object(&node, now_ns).ok_or_else(|| {
            ApiError::not_found(&GroupResource::new(api::GROUP, "nodemetrics"), name)
        })
    }

    fn list_nodes(&self, labels: &Selector, fields: &FieldSelector, now_ns: i64) -> Vec<Value> {
        let mut items: Vec<Value> = self
            .nodes
            .state()
            .iter()
            .filter(|n| self.node_allowed(n))
            .filter(|n| labels.matches(n.metadata.labels.as_ref().unwrap_or(&NO_LABELS)))
            .filter(|n| {
                fields.matches(|f| match f {
                    "metadata.name" => n.metadata.name.clone(),
                    _ => None,
                })
            })
            .filter_map(|n| self.node_object(n, now_ns))
            .collect();
        items.sort_by(|a, b| apimachinery::meta::name(a).cmp(apimachinery::meta::name(b)));
        items
    }

    fn pod_object(&self, pod: &PartialObjectMeta<Pod>, now_ns: i64) -> Option<Value> {
        let (ns, name) = (
            pod.metadata.namespace.as_deref()?,
            pod.metadata.name.as_deref()?,
        );
        let (containers, window) = self.storage.read().ok()?.pod(ns, name)?;
        Some(api::pod_metrics(
            ns,
            name,
            &labels_of(&pod.metadata.labels),
            &containers,
            &window,
            now_ns,
        ))
    }

    fn pod(&self, ns: &str, name: &str, now_ns: i64) -> Result<Value, ApiError> {
        let pod = self
            .pods
            .get(&ObjectRef::new(name).within(ns))
            .ok_or_else(|| ApiError::not_found(&GroupResource::new("", "pods"), name))?;
        self.pod_object(&pod, now_ns).ok_or_else(|| {
            ApiError::not_found(
                &GroupResource::new(api::GROUP, "podmetrics"),
                &format!("{ns}/{name}"),
            )
        })
    }

    fn list_pods(
        &self,
        ns: Option<&str>,
        labels: &Selector,
        fields: &FieldSelector,
        now_ns: i64,
    ) -> Vec<Value> {
        let mut items: Vec<Value> = self
            .pods
            .state()
            .iter()
            .filter(|p| ns.is_none() || p.metadata.namespace.as_deref() == ns)
            .filter(|p| labels.matches(p.metadata.labels.as_ref().unwrap_or(&NO_LABELS)))
            .filter(|p| {
                fields.matches(|f| match f {
                    "metadata.name" => p.metadata.name.clone(),
                    "metadata.namespace" => p.metadata.namespace.clone(),
                    _ => None,
                })
            })
            .filter_map(|p| self.pod_object(p, now_ns))
            .collect();
        items.sort_by(|a, b| {
            let key = |v: &Value| {
                (
                    apimachinery::meta::namespace(v).to_string(),
                    apimachinery::meta::name(v).to_string(),
                )
            };
            key(a).cmp(&key(b))
        });
        items
    }
}

fn verb_of(method: &str) -> String {
    match method {
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => "delete",
        other => other,
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Batch, Point};
    use kube::runtime::reflector;
    use kube::runtime::watcher::Event;
    use std::time::Duration;

    const S: i64 = 1_000_000_000;

    fn node(name: &str, labels: &[(&str, &str)]) -> Node {
        let mut n = Node::default();
        n.metadata.name = Some(name.into());
        n.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        n
    }

    fn pod(ns: &str, name: &str, labels: &[(&str, &str)]) -> PartialObjectMeta<Pod> {
        let mut p = PartialObjectMeta::<Pod>::default();
        p.metadata.name = Some(name.into());
        p.metadata.namespace = Some(ns.into());
        p.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        p
    }

    fn point(at: i64, cpu_s: i64, memory: u64) -> Point {
        Point {
            start_ns: 1,
            timestamp_ns: at * S,
            cpu_ns: (cpu_s * S) as u64,
            memory,
        }
    }

    fn metrics_api() -> MetricsApi {
        let (nodes, mut nw) = reflector::store();
        for n in [
            node("n1", &[("zone", "a")]),
            node("n2", &[("zone", "b")]),
            node("n3", &[]),
        ] {
            nw.apply_watcher_event(&Event::Apply(n));
        }
        let (pods, mut pw) = reflector::store();
        for p in [
            pod("default", "web", &[("app", "web")]),
            pod("default", "db", &[("app", "db")]),
            pod("kube-system", "dns", &[]),
            pod("default", "unmeasured", &[]),
        ] {
            pw.apply_watcher_event(&Event::Apply(p));
        }
        let mut storage = Storage::new(Duration::from_secs(15));
        for (t, cpu) in [(1000, 10), (1010, 15)] {
            let mut b = Batch::default();
            for n in ["n1", "n2", "gone"] {
                b.nodes.insert(n.into(), point(t, cpu, 1 << 20));
            }
            for (ns, p) in [
                ("default", "web"),
                ("default", "db"),
                ("kube-system", "dns"),
                ("default", "deleted"),
            ] {
                b.pods
                    .entry((ns.into(), p.into()))
                    .or_default()
                    .insert("c".into(), point(t, cpu / 5, 4096));
            }
            storage.store(b);
        }
        MetricsApi {
            storage: Arc::new(RwLock::new(storage)),
            nodes,
            pods,
            node_selector: Selector::everything(),
        }
    }

    fn get(api: &MetricsApi, path: &str, query: &str) -> Result<Value, ApiError> {
        api.serve(
            &Request {
                method: "GET",
                path,
                query,
                accept: "application/json",
            },
            2000 * S,
        )
    }

    fn names(v: &Value) -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                format!(
                    "{}/{}",
                    apimachinery::meta::namespace(i),
                    apimachinery::meta::name(i)
                )
            })
            .collect()
    }

    #[test]
    fn lists_and_gets_what_the_informers_and_the_storage_both_have() {
        let a = metrics_api();
        let nodes = get(&a, "/apis/metrics.k8s.io/v1beta1/nodes", "").unwrap();
        assert_eq!(nodes["kind"], "NodeMetricsList");
        assert_eq!(
            names(&nodes),
            ["/n1", "/n2"],
            "n3 has no points, gone no Node"
        );
        assert_eq!(nodes["items"][0]["usage"]["cpu"], "500m");
        assert_eq!(nodes["items"][0]["window"], "10s");
        let pods = get(&a, "/apis/metrics.k8s.io/v1beta1/pods", "").unwrap();
        assert_eq!(
            names(&pods),
            ["default/db", "default/web", "kube-system/dns"]
        );
        let pods = get(
            &a,
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
            "labelSelector=app%3Dweb",
        )
        .unwrap();
        assert_eq!(names(&pods), ["default/web"]);
        assert_eq!(pods["items"][0]["containers"][0]["usage"]["cpu"], "100m");
        let one = get(
            &a,
            "/apis/metrics.k8s.io/v1beta1/namespaces/kube-system/pods/dns",
            "",
        )
        .unwrap();
        assert_eq!(one["kind"], "PodMetrics");
        let n = get(
            &a,
            "/apis/metrics.k8s.io/v1beta1/nodes",
            "labelSelector=zone%20in%20(b)",
        )
        .unwrap();
        assert_eq!(names(&n), ["/n2"]);
        let n = get(
            &a,
            "/apis/metrics.k8s.io/v1beta1/nodes",
            "fieldSelector=metadata.name%3Dn1",
        )
        .unwrap();
        assert_eq!(names(&n), ["/n1"]);
    }

    #[test]
    fn errors_are_upstreams() {
        let a = metrics_api();
        let e = get(
            &a,
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/unmeasured",
            "",
        )
        .unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                404,
                "podmetrics.metrics.k8s.io \"default/unmeasured\" not found"
            )
        );
        let e = get(
            &a,
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/deleted",
            "",
        )
        .unwrap_err();
        assert_eq!(e.message, "pods \"deleted\" not found");
        let e = get(&a, "/apis/metrics.k8s.io/v1beta1/nodes/n3", "").unwrap_err();
        assert_eq!(e.message, "nodemetrics.metrics.k8s.io \"n3\" not found");
        let e = get(&a, "/apis/metrics.k8s.io/v1beta1/nodes/gone", "").unwrap_err();
        assert_eq!(e.message, "node \"gone\" not found");
        let e = get(&a, "/apis/metrics.k8s.io/v1beta1/nodes", "watch=true").unwrap_err();
        assert_eq!(e.code, 405);
        let e = a
            .serve(
                &Request {
                    method: "DELETE",
                    path: "/apis/metrics.k8s.io/v1beta1/nodes/n1",
                    ..Default::default()
                },
                0,
            )
            .unwrap_err();
        assert_eq!(e.code, 405);
        assert_eq!(
            get(&a, "/apis/metrics.k8s.io/v1beta1/services", "")
                .unwrap_err()
                .code,
            404
        );
        assert_eq!(
            get(
                &a,
                "/apis/metrics.k8s.io/v1beta1/nodes",
                "labelSelector=a%20in"
            )
            .unwrap_err()
            .code,
            400
        );
    }

    #[test]
    fn tables_and_discovery() {
        let a = metrics_api();
        let t = a
            .serve(
                &Request {
                    method: "GET",
                    path: "/apis/metrics.k8s.io/v1beta1/nodes",
                    query: "",
                    accept: "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
                },
                0,
            )
            .unwrap();
        assert_eq!(t["kind"], "Table");
        assert_eq!(
            t["rows"][1]["cells"],
            serde_json::json!(["n2", "500m", "1Mi", "10s"])
        );
        let r = get(&a, "/apis/metrics.k8s.io/v1beta1", "").unwrap();
        assert_eq!(r["resources"][0]["kind"], "NodeMetrics");
        assert_eq!(
            get(&a, "/apis", "").unwrap()["groups"][0]["name"],
            "metrics.k8s.io"
        );
        let mut only_a = a.clone();
        only_a.node_selector = Selector::parse("zone=a").unwrap();
        let n = get(&only_a, "/apis/metrics.k8s.io/v1beta1/nodes", "").unwrap();
        assert_eq!(names(&n), ["/n1"]);
        assert_eq!(
            get(&only_a, "/apis/metrics.k8s.io/v1beta1/nodes/n2", "")
                .unwrap_err()
                .code,
            404
        );
    }
}
