//! `LimitRanger` (upstream's `plugin/pkg/admission/limitranger`): the
//! namespace's LimitRanges give new pods' containers their default requests
//! and limits (noted in the `kubernetes.io/limit-ranger` annotation), then
//! bound what containers, pods and PersistentVolumeClaims may ask for
//! (`min`, `max`, `maxLimitRequestRatio`). Pod updates are left alone, as
//! upstream does: containers' resources cannot change after creation.
//!
//! LimitRanges are read from the watch cache only (upstream adds a live
//! lookup when its informer holds none); one created a moment ago may not
//! apply yet.

use std::collections::BTreeMap;

use apimachinery::quantity::parse_f64;
use apimachinery::ApiError;
use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::{Attributes, Operation, Plugin};
use crate::state::ApiState;

const ANNOTATION: &str = "kubernetes.io/limit-ranger";

pub struct LimitRanger;

/// A resource list: name → quantity text, in name order.
type Resources = BTreeMap<String, String>;

fn resources(v: Option<&Value>) -> Resources {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, q)| Some((k.clone(), q.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// A quantity in thousandths, so that `100m` and `0.1` compare equal.
fn milli(q: &str) -> f64 {
    parse_f64(q).map(|v| (v * 1000.0).round()).unwrap_or(0.0)
}

/// What a quantity sum or maximum prints as (upstream's canonical form for
/// the common cases: `1500m`, `2`, plain bytes).
fn render(millis: f64) -> String {
    if millis % 1000.0 == 0.0 {
        format!("{}", (millis / 1000.0) as i64)
    } else {
        format!("{}m", millis as i64)
    }
}

fn items<'a>(range: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    range
        .pointer("/spec/limits")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |i| i.get("type").and_then(Value::as_str) == Some(kind))
}

/// Sets the Container items' defaults on every container that lacks them
/// and returns what was set, in upstream's annotation wording.
fn default_containers(range: &Value, pod: &mut Value) -> Vec<String> {
    let (mut limits, mut requests) = (Resources::new(), Resources::new());
    for item in items(range, "Container") {
        limits.extend(resources(item.get("default")));
        requests.extend(resources(item.get("defaultRequest")));
    }
    let mut notes = Vec::new();
    if limits.is_empty() && requests.is_empty() {
        return notes;
    }
    for (field, label) in [
        ("containers", "container"),
        ("initContainers", "init container"),
    ] {
        let Some(list) = pod
            .pointer_mut(&format!("/spec/{field}"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for c in list.iter_mut() {
            let name = c
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let Some(c) = c.as_object_mut() else { continue };
            let r = c.entry("resources").or_insert_with(|| json!({}));
            let Some(r) = r.as_object_mut() else { continue };
            for (kind, defaults, word) in [
                ("requests", &requests, "request"),
                ("limits", &limits, "limit"),
            ] {
                let list = r.entry(kind).or_insert_with(|| json!({}));
                if list.is_null() {
                    *list = json!({});
                }
                let Some(list) = list.as_object_mut() else {
                    continue;
                };
                let mut set = Vec::new();
                for (k, v) in defaults {
                    if !list.contains_key(k) {
                        list.insert(k.clone(), json!(v));
                        set.push(k.as_str());
                    }
                }
                if !set.is_empty() {
                    notes.push(format!("{} {word} for {label} {name}", set.join(", ")));
                }
            }
        }
    }
    notes
}

/// Upstream's min/max/ratio checks of one item against what asks.
struct Check<'a> {
    kind: &'a str,
    requests: &'a Resources,
    limits: &'a Resources,
}

impl Check<'_> {
    fn min(&self, res: &str, bound: &str, errs: &mut Vec<String>) {
        let kind = self.kind;
        match self.requests.get(res) {
            None => errs.push(format!(
                "minimum {res} usage per {kind} is {bound}.  No request is specified"
            )),
            Some(r) if milli(r) < milli(bound) => errs.push(format!(
                "minimum {res} usage per {kind} is {bound}, but request is {r}"
            )),
            _ => match self.limits.get(res) {
                Some(l) if milli(l) < milli(bound) => errs.push(format!(
                    "minimum {res} usage per {kind} is {bound}, but limit is {l}"
                )),
                _ => {}
            },
        }
    }

    fn max(&self, res: &str, bound: &str, errs: &mut Vec<String>) {
        let kind = self.kind;
        match self.limits.get(res) {
            None => errs.push(format!(
                "maximum {res} usage per {kind} is {bound}.  No limit is specified"
            )),
            Some(l) if milli(l) > milli(bound) => errs.push(format!(
                "maximum {res} usage per {kind} is {bound}, but limit is {l}"
            )),
            _ => match self.requests.get(res) {
                Some(r) if milli(r) > milli(bound) => errs.push(format!(
                    "maximum {res} usage per {kind} is {bound}, but request is {r}"
                )),
                _ => {}
            },
        }
    }

    /// Claims: only the request counts against a max.
    fn max_request(&self, res: &str, bound: &str, errs: &mut Vec<String>) {
        let kind = self.kind;
        match self.requests.get(res) {
            None => errs.push(format!(
                "maximum {res} usage per {kind} is {bound}.  No request is specified"
            )),
            Some(r) if milli(r) > milli(bound) => errs.push(format!(
                "maximum {res} usage per {kind} is {bound}, but request is {r}"
            )),
            _ => {}
        }
    }

    fn ratio(&self, res: &str, bound: &str, errs: &mut Vec<String>) {
        let kind = self.kind;
        let req = self.requests.get(res).map(|r| milli(r)).unwrap_or(0.0);
        let lim = self.limits.get(res).map(|l| milli(l)).unwrap_or(0.0);
        if req == 0.0 {
            errs.push(format!("{res} max limit to request ratio per {kind} is {bound}, but no request is specified or request is 0"));
        } else if lim == 0.0 {
            errs.push(format!("{res} max limit to request ratio per {kind} is {bound}, but no limit is specified or limit is 0"));
        } else if lim / req * 1000.0 > milli(bound) {
            errs.push(format!(
                "{res} max limit to request ratio per {kind} is {bound}, but provided ratio is {:.6}",
                lim / req
            ));
        }
    }

    fn item(&self, item: &Value, errs: &mut Vec<String>) {
        for (res, bound) in resources(item.get("min")) {
            self.min(&res, &bound, errs);
        }
        for (res, bound) in resources(item.get("max")) {
            if self.kind == "PersistentVolumeClaim" {
                self.max_request(&res, &bound, errs);
            } else {
                self.max(&res, &bound, errs);
            }
        }
        for (res, bound) in resources(item.get("maxLimitRequestRatio")) {
            self.ratio(&res, &bound, errs);
        }
    }
}

fn container_resources(c: &Value, kind: &str) -> Resources {
    resources(c.pointer(&format!("/resources/{kind}")))
}

/// The pod's total of `kind` (upstream's podRequests/podLimits): app
/// containers and sidecars add up, each other init container (plus the
/// sidecars started before it) sets a floor.
fn pod_total(pod: &Value, kind: &str) -> Resources {
    let list = |f: &str| {
        pod.pointer(&format!("/spec/{f}"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let add = |into: &mut BTreeMap<String, f64>, r: &Resources| {
        for (k, v) in r {
            *into.entry(k.clone()).or_default() += milli(v);
        }
    };
    let mut total = BTreeMap::new();
    for c in list("containers") {
        add(&mut total, &container_resources(&c, kind));
    }
    let (mut sidecars, mut floor) = (BTreeMap::new(), BTreeMap::<String, f64>::new());
    for c in list("initContainers") {
        let own = container_resources(&c, kind);
        let need = if c.get("restartPolicy").and_then(Value::as_str) == Some("Always") {
            add(&mut total, &own);
            add(&mut sidecars, &own);
            sidecars.clone()
        } else {
            let mut need = sidecars.clone();
            add(&mut need, &own);
            need
        };
        for (k, v) in need {
            let f = floor.entry(k).or_default();
            *f = f.max(v);
        }
    }
    for (k, v) in floor {
        let t = total.entry(k).or_default();
        *t = t.max(v);
    }
    total.into_iter().map(|(k, v)| (k, render(v))).collect()
}

fn validate_pod(range: &Value, pod: &Value, errs: &mut Vec<String>) {
    for item in items(range, "Container") {
        for field in ["containers", "initContainers"] {
            let list = pod
                .pointer(&format!("/spec/{field}"))
                .and_then(Value::as_array);
            for c in list.into_iter().flatten() {
                let (requests, limits) = (
                    container_resources(c, "requests"),
                    container_resources(c, "limits"),
                );
                Check {
                    kind: "Container",
                    requests: &requests,
                    limits: &limits,
                }
                .item(item, errs);
            }
        }
    }
    for item in items(range, "Pod") {
        let (requests, limits) = (pod_total(pod, "requests"), pod_total(pod, "limits"));
        Check {
            kind: "Pod",
            requests: &requests,
            limits: &limits,
        }
        .item(item, errs);
    }
}

fn validate_claim(range: &Value, claim: &Value, errs: &mut Vec<String>) {
    let requests = resources(claim.pointer("/spec/resources/requests"));
    let none = Resources::new();
    for item in items(range, "PersistentVolumeClaim") {
        Check {
            kind: "PersistentVolumeClaim",
            requests: &requests,
            limits: &none,
        }
        .item(item, errs);
    }
}

/// Upstream's aggregate error text: one message alone, several in brackets.
fn aggregate(mut errs: Vec<String>) -> Option<String> {
    let mut seen = std::collections::HashSet::new();
    errs.retain(|e| seen.insert(e.clone()));
    match errs.len() {
        0 => None,
        1 => errs.pop(),
        _ => Some(format!("[{}]", errs.join(", "))),
    }
}

fn ranges(state: &ApiState, namespace: &str) -> Vec<Value> {
    let prefix = format!("{}limitranges/{namespace}/", state.prefix);
    let (items, _) = state.cacher.list(&prefix, &|_| true);
    items.iter().filter_map(|o| o.value().ok()).collect()
}

/// Whether the plugin looks at this request: creates of pods, creates and
/// updates of claims, nothing being deleted.
fn applies(a: &Attributes<'_>) -> bool {
    let deleting = a.old.is_some_and(|o| {
        o.pointer("/metadata/deletionTimestamp")
            .is_some_and(|t| !t.is_null())
    });
    match a.operation {
        _ if deleting => false,
        Operation::Create => a.is("", "pods") || a.is("", "persistentvolumeclaims"),
        Operation::Update => a.is("", "persistentvolumeclaims"),
        Operation::Delete => false,
    }
}

#[async_trait]
impl Plugin for LimitRanger {
    fn name(&self) -> &'static str {
        "LimitRanger"
    }

    async fn admit(
        &self,
        state: &ApiState,
        a: &Attributes<'_>,
        obj: &mut Value,
    ) -> Result<(), ApiError> {
        if !applies(a) || a.resource != "pods" {
            return Ok(());
        }
        let mut notes = Vec::new();
        for range in ranges(state, a.namespace) {
            notes.extend(default_containers(&range, obj));
        }
        if !notes.is_empty() {
            let meta = apimachinery::meta::metadata_mut(obj);
            let annotations = meta
                .entry("annotations")
                .or_insert_with(|| Value::Object(Map::new()));
            if !annotations.is_object() {
                *annotations = Value::Object(Map::new());
            }
            if let Some(m) = annotations.as_object_mut() {
                m.insert(
                    ANNOTATION.into(),
                    json!(format!("LimitRanger plugin set: {}", notes.join("; "))),
                );
            }
        }
        Ok(())
    }

    async fn validate(
        &self,
        state: &ApiState,
        a: &Attributes<'_>,
        obj: &Value,
    ) -> Result<(), ApiError> {
        if !applies(a) {
            return Ok(());
        }
        for range in ranges(state, a.namespace) {
            let mut errs = Vec::new();
            if a.resource == "pods" {
                validate_pod(&range, obj, &mut errs);
            } else {
                validate_claim(&range, obj, &mut errs);
            }
            if let Some(message) = aggregate(errs) {
                return Err(a.forbidden(message));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(limits: Value) -> Value {
        json!({"spec": {"limits": limits}})
    }

    fn errors(range: &Value, pod: &Value) -> Option<String> {
        let mut errs = Vec::new();
        validate_pod(range, pod, &mut errs);
        aggregate(errs)
    }

    #[test]
    fn defaults_fill_only_what_is_missing_and_are_noted() {
        let r = range(
            json!([{"type": "Container", "default": {"cpu": "500m", "memory": "128Mi"},
            "defaultRequest": {"cpu": "100m"}}]),
        );
        let mut pod = json!({"spec": {"containers": [
            {"name": "app", "resources": {"limits": {"memory": "1Gi"}}},
            {"name": "side"}],
            "initContainers": [{"name": "init", "resources": {"requests": {"cpu": "1"}}}]}});
        let notes = default_containers(&r, &mut pod);
        assert_eq!(
            notes,
            [
                "cpu request for container app",
                "cpu limit for container app",
                "cpu request for container side",
                "cpu, memory limit for container side",
                "cpu, memory limit for init container init",
            ]
        );
        assert_eq!(
            pod["spec"]["containers"][0]["resources"]["limits"],
            json!({"cpu": "500m", "memory": "1Gi"})
        );
        assert_eq!(
            pod["spec"]["initContainers"][0]["resources"]["requests"],
            json!({"cpu": "1"})
        );
    }

    #[test]
    fn container_bounds_use_upstream_messages() {
        let r =
            range(json!([{"type": "Container", "max": {"cpu": "1"}, "min": {"memory": "64Mi"}}]));
        let pod = json!({"spec": {"containers": [{"name": "a", "resources": {
            "requests": {"cpu": "500m", "memory": "32Mi"}, "limits": {"cpu": "2"}}}]}});
        assert_eq!(
            errors(&r, &pod).as_deref(),
            Some("[minimum memory usage per Container is 64Mi, but request is 32Mi, maximum cpu usage per Container is 1, but limit is 2]")
        );
        let ok = json!({"spec": {"containers": [{"name": "a", "resources": {
            "requests": {"cpu": "1000m", "memory": "64Mi"}, "limits": {"cpu": "1"}}}]}});
        assert_eq!(errors(&r, &ok), None);
        let none = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(
            errors(
                &range(json!([{"type": "Container", "max": {"cpu": "1"}}])),
                &none
            )
            .as_deref(),
            Some("maximum cpu usage per Container is 1.  No limit is specified")
        );
    }

    #[test]
    fn pod_totals_count_sidecars_and_the_largest_init_container() {
        let pod = json!({"spec": {
            "containers": [{"resources": {"requests": {"cpu": "500m"}}}, {"resources": {"requests": {"cpu": "250m"}}}],
            "initContainers": [
                {"restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}},
                {"resources": {"requests": {"cpu": "2"}}}]}});
        // Sum 850m; the plain init container needs 2 + the 100m sidecar.
        assert_eq!(
            pod_total(&pod, "requests").get("cpu").map(String::as_str),
            Some("2100m")
        );
        let r = range(json!([{"type": "Pod", "max": {"cpu": "2"}}]));
        assert_eq!(
            errors(&r, &pod).as_deref(),
            Some("maximum cpu usage per Pod is 2.  No limit is specified")
        );
    }

    #[test]
    fn ratio_and_claims() {
        let r = range(json!([{"type": "Container", "maxLimitRequestRatio": {"cpu": "2"}}]));
        let pod = json!({"spec": {"containers": [{"resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "300m"}}}]}});
        assert_eq!(
            errors(&r, &pod).as_deref(),
            Some(
                "cpu max limit to request ratio per Container is 2, but provided ratio is 3.000000"
            )
        );
        let claims = range(
            json!([{"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "10Gi"}}]),
        );
        let mut errs = Vec::new();
        validate_claim(
            &claims,
            &json!({"spec": {"resources": {"requests": {"storage": "20Gi"}}}}),
            &mut errs,
        );
        assert_eq!(
            errs,
            ["maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi"]
        );
    }
}
