//! Which container a `pods/log`, `pods/exec` or `pods/attach` request
//! means, and the kubelet URL it becomes (upstream's
//! `pkg/registry/core/pod/strategy.go`: `LogLocation`, `streamLocation`,
//! `validateContainer`, and `ValidatePodLogOptions`).

use apimachinery::field::FieldError;
use apimachinery::{ApiError, GroupResource};
use serde_json::{json, Value};

use crate::handlers::Query;
use crate::state::ApiState;

/// The pod `namespace/name`, read from the watch cache.
pub fn pod(state: &ApiState, namespace: &str, name: &str) -> Result<Value, ApiError> {
    let key = format!("{}pods/{namespace}/{name}", state.prefix);
    state
        .cacher
        .get(&key)
        .0
        .and_then(|o| o.value().ok())
        .ok_or_else(|| ApiError::not_found(&GroupResource::new("", "pods"), name))
}

fn names(pod: &Value, list: &str) -> Vec<String> {
    pod.pointer(&format!("/spec/{list}"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
        .collect()
}

fn has_container(pod: &Value, name: &str) -> bool {
    ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .any(|l| names(pod, l).iter().any(|n| n == name))
}

/// How the two upstream call sites word "say which container".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wording {
    /// `pods/log`: every container, Go-slice style.
    Log,
    /// exec/attach: containers, then init containers separately.
    Stream,
}

/// The container `requested` names, or the pod's only container.
pub fn choose(
    pod: &Value,
    pod_name: &str,
    requested: &str,
    wording: Wording,
) -> Result<String, ApiError> {
    if !requested.is_empty() {
        if !has_container(pod, requested) {
            return Err(ApiError::bad_request(format!(
                "container {requested} is not valid for pod {pod_name}"
            )));
        }
        return Ok(requested.to_string());
    }
    let containers = names(pod, "containers");
    match containers.len() {
        1 => Ok(containers[0].clone()),
        0 => Err(ApiError::bad_request(format!(
            "pod {pod_name} does not have a container"
        ))),
        _ => {
            let init = names(pod, "initContainers");
            let message = match wording {
                Wording::Log => {
                    let mut all = init;
                    all.extend(containers);
                    all.extend(names(pod, "ephemeralContainers"));
                    format!(
                        "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                        all.join(" ")
                    )
                }
                Wording::Stream => {
                    let mut m = format!(
                        "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                        containers.join(" ")
                    );
                    if !init.is_empty() {
                        m.push_str(&format!(
                            " or one of the init containers: [{}]",
                            init.join(" ")
                        ));
                    }
                    m
                }
            };
            Err(ApiError::bad_request(message))
        }
    }
}

fn integer(query: &Query, key: &str) -> Result<Option<i64>, ApiError> {
    query
        .get(key)
        .map(|v| {
            v.parse::<i64>().map_err(|_| {
                ApiError::bad_request(format!(
                    "unable to parse query parameter {key:?}: strconv.ParseInt: parsing {v:?}: invalid syntax"
                ))
            })
        })
        .transpose()
}

/// The kubelet query of a `pods/log` request, after upstream's checks.
pub fn log_query(query: &Query, pod_name: &str) -> Result<String, ApiError> {
    let tail = integer(query, "tailLines")?;
    let limit = integer(query, "limitBytes")?;
    let since = integer(query, "sinceSeconds")?;
    let since_time = query.get("sinceTime").filter(|s| !s.is_empty());
    let mut errs = Vec::new();
    if let Some(t) = tail.filter(|t| *t < 0) {
        errs.push(FieldError::invalid(
            "tailLines",
            &json!(t),
            "must be greater than or equal to 0",
        ));
    }
    if let Some(l) = limit.filter(|l| *l < 1) {
        errs.push(FieldError::invalid(
            "limitBytes",
            &json!(l),
            "must be greater than 0",
        ));
    }
    match (since, since_time) {
        (Some(_), Some(_)) => errs.push(FieldError::forbidden(
            "",
            "at most one of `sinceTime` or `sinceSeconds` may be specified",
        )),
        (Some(s), None) if s < 1 => errs.push(FieldError::invalid(
            "sinceSeconds",
            &json!(s),
            "must be greater than 0",
        )),
        _ => {}
    }
    if let Some(t) = since_time {
        if chrono::DateTime::parse_from_rfc3339(t).is_err() {
            return Err(ApiError::bad_request(format!(
                "unable to parse query parameter \"sinceTime\": parsing time {t:?} as RFC3339"
            )));
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::invalid("PodLogOptions", "", pod_name, &errs));
    }
    let mut params: Vec<(&str, String)> = Vec::new();
    for flag in ["follow", "previous", "timestamps"] {
        if query.flag(flag) {
            params.push((flag, "true".to_string()));
        }
    }
    if let Some(s) = since {
        params.push(("sinceSeconds", s.to_string()));
    }
    if let Some(t) = since_time {
        params.push(("sinceTime", t.to_string()));
    }
    if let Some(t) = tail {
        params.push(("tailLines", t.to_string()));
    }
    if let Some(l) = limit {
        params.push(("limitBytes", l.to_string()));
    }
    Ok(encode(&params))
}

/// `k=v&…` with values escaped, keys sorted as Go's `url.Values.Encode`.
pub fn encode(params: &[(&str, String)]) -> String {
    let mut sorted: Vec<&(&str, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    sorted
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The kubelet query of an exec/attach request (upstream's `streamParams`):
/// the streams asked for, `tty`, and for exec every `command` argument.
pub fn stream_query(raw_query: Option<&str>, exec: bool) -> String {
    let mut params: Vec<(&str, String)> = Vec::new();
    let mut commands = Vec::new();
    for pair in raw_query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_encoding::percent_decode_str(&v.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned();
        match k {
            "stdin" | "stdout" | "stderr" | "tty" if crate::handlers::query_bool(&v) => {
                params.push((stream_key(k), "1".into()))
            }
            "command" if exec => commands.push(v),
            _ => {}
        }
    }
    params.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = commands
        .iter()
        .map(|c| {
            format!(
                "command={}",
                percent_encoding::utf8_percent_encode(c, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>();
    out.extend(params.iter().map(|(k, v)| format!("{k}={v}")));
    out.join("&")
}

fn stream_key(k: &str) -> &'static str {
    match k {
        "stdin" => "input",
        "stdout" => "output",
        "stderr" => "error",
        _ => "tty",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(containers: &[&str], init: &[&str]) -> Value {
        let c = |n: &[&str]| n.iter().map(|n| json!({"name": n})).collect::<Vec<_>>();
        json!({"spec": {"containers": c(containers), "initContainers": c(init)}})
    }

    #[test]
    fn the_only_container_is_chosen() {
        assert_eq!(
            choose(&pod(&["a"], &[]), "p", "", Wording::Log).unwrap(),
            "a"
        );
        assert_eq!(
            choose(&pod(&["a", "b"], &["i"]), "p", "i", Wording::Log).unwrap(),
            "i"
        );
    }

    #[test]
    fn ambiguity_and_unknown_names_are_bad_requests_worded_like_upstream() {
        let p = pod(&["a", "b"], &["i"]);
        let e = choose(&p, "p", "", Wording::Log).unwrap_err();
        assert_eq!(e.code, 400);
        assert_eq!(
            e.message,
            "a container name must be specified for pod p, choose one of: [i a b]"
        );
        let e = choose(&p, "p", "", Wording::Stream).unwrap_err();
        assert_eq!(
            e.message,
            "a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [i]"
        );
        let e = choose(&p, "p", "zz", Wording::Stream).unwrap_err();
        assert_eq!(e.message, "container zz is not valid for pod p");
        let e = choose(&pod(&[], &[]), "p", "", Wording::Log).unwrap_err();
        assert_eq!(e.message, "pod p does not have a container");
    }

    #[test]
    fn log_options_are_validated_and_passed_on() {
        let q = Query::parse(Some("follow=true&tailLines=10&timestamps=true&container=x"));
        assert_eq!(
            log_query(&q, "p").unwrap(),
            "follow=true&tailLines=10&timestamps=true"
        );
        let e = log_query(&Query::parse(Some("tailLines=-1")), "p").unwrap_err();
        assert_eq!(e.code, 422);
        assert!(
            e.message.contains("tailLines: Invalid value: -1"),
            "{}",
            e.message
        );
        let e = log_query(
            &Query::parse(Some("sinceSeconds=5&sinceTime=2024-01-01T00:00:00Z")),
            "p",
        )
        .unwrap_err();
        assert_eq!(e.code, 422);
        let e = log_query(&Query::parse(Some("limitBytes=x")), "p").unwrap_err();
        assert_eq!(e.code, 400);
    }

    #[test]
    fn exec_queries_keep_every_command_argument_in_order() {
        let q = stream_query(
            Some(
                "command=sh&command=-c&command=echo+hi&container=c&stdin=true&stdout=true&tty=true",
            ),
            true,
        );
        assert_eq!(
            q,
            "command=sh&command=%2Dc&command=echo%20hi&input=1&output=1&tty=1"
        );
        assert_eq!(
            stream_query(Some("stdout=true&command=ls"), false),
            "output=1"
        );
        // Upstream's booleans: anything but 0 or false (the Python client
        // sends True).
        assert_eq!(
            stream_query(Some("stdout=True&stderr=False&stdin=0&tty=yes"), false),
            "output=1&tty=1"
        );
    }
}
