//! Node selectors and tolerations, parsed once per pod (upstream's
//! `k8s.io/component-helpers/scheduling/corev1/nodeaffinity` and
//! `helpers.go` `TolerationsTolerateTaint`). A requirement that cannot be
//! parsed (unknown operator, `Gt` on a non-number) makes its term match
//! nothing, as upstream's lazy error handling does.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Taint, Toleration,
};

#[derive(Debug, Clone, PartialEq)]
enum Op {
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
    Gt(i64),
    Lt(i64),
    /// An invalid requirement: matches nothing.
    Invalid,
}

#[derive(Debug, Clone, PartialEq)]
struct Req {
    key: String,
    op: Op,
}

impl Req {
    fn parse(r: &NodeSelectorRequirement) -> Self {
        let values = r.values.clone().unwrap_or_default();
        let num = |v: &[String]| match v {
            [one] => one.parse::<i64>().ok(),
            _ => None,
        };
        let op = match r.operator.as_str() {
            "In" if !values.is_empty() => Op::In(values),
            "NotIn" if !values.is_empty() => Op::NotIn(values),
            "Exists" if values.is_empty() => Op::Exists,
            "DoesNotExist" if values.is_empty() => Op::DoesNotExist,
            "Gt" => num(&values).map_or(Op::Invalid, Op::Gt),
            "Lt" => num(&values).map_or(Op::Invalid, Op::Lt),
            _ => Op::Invalid,
        };
        Req {
            key: r.key.clone(),
            op,
        }
    }

    fn matches(&self, value: Option<&str>) -> bool {
        match (&self.op, value) {
            (Op::In(vs), Some(v)) => vs.iter().any(|x| x == v),
            (Op::In(_), None) => false,
            (Op::NotIn(vs), Some(v)) => !vs.iter().any(|x| x == v),
            (Op::NotIn(_), None) => true,
            (Op::Exists, v) => v.is_some(),
            (Op::DoesNotExist, v) => v.is_none(),
            (Op::Gt(n), Some(v)) => v.parse::<i64>().is_ok_and(|x| x > *n),
            (Op::Lt(n), Some(v)) => v.parse::<i64>().is_ok_and(|x| x < *n),
            _ => false,
        }
    }
}

/// One `NodeSelectorTerm`: all expressions and fields must match; an empty
/// term matches nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    exprs: Vec<Req>,
    fields: Vec<Req>,
}

impl Term {
    pub fn parse(t: &NodeSelectorTerm) -> Self {
        let exprs = t
            .match_expressions
            .iter()
            .flatten()
            .map(Req::parse)
            .collect();
        let fields = t
            .match_fields
            .iter()
            .flatten()
            .map(|r| {
                let mut req = Req::parse(r);
                // Only metadata.name with In/NotIn is a valid field selector.
                if r.key != "metadata.name" || !matches!(req.op, Op::In(_) | Op::NotIn(_)) {
                    req.op = Op::Invalid;
                }
                req
            })
            .collect();
        Term { exprs, fields }
    }

    pub fn matches(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        if self.exprs.is_empty() && self.fields.is_empty() {
            return false;
        }
        self.exprs
            .iter()
            .all(|r| r.matches(labels.get(&r.key).map(String::as_str)))
            && self.fields.iter().all(|r| r.matches(Some(name)))
    }
}

/// A `NodeSelector`: any term matching is enough.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    terms: Vec<Term>,
}

impl Selector {
    pub fn parse(s: &NodeSelector) -> Self {
        Selector {
            terms: s.node_selector_terms.iter().map(Term::parse).collect(),
        }
    }

    pub fn matches(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        self.terms.iter().any(|t| t.matches(name, labels))
    }

    /// The node names every term restricts to with `metadata.name In`,
    /// when all terms do (upstream's PreFilter narrowing); `None` otherwise.
    pub fn node_names(&self) -> Option<Vec<String>> {
        let mut out = Vec::new();
        for t in &self.terms {
            let names = t.fields.iter().find_map(|r| match &r.op {
                Op::In(v) if r.key == "metadata.name" => Some(v.clone()),
                _ => None,
            })?;
            out.extend(names);
        }
        out.sort();
        out.dedup();
        Some(out)
    }
}

/// A pod's required placement (upstream's `RequiredNodeAffinity`):
/// `spec.nodeSelector` and the required node affinity, both must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequiredNodeAffinity {
    pub node_selector: BTreeMap<String, String>,
    pub required: Option<Selector>,
}

impl RequiredNodeAffinity {
    pub fn matches(&self, node: &Node) -> bool {
        let empty = BTreeMap::new();
        let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
        let name = node.metadata.name.as_deref().unwrap_or("");
        self.matches_labels(name, labels)
    }

    pub fn matches_labels(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        self.node_selector
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self
                .required
                .as_ref()
                .is_none_or(|s| s.matches(name, labels))
    }
}

/// Upstream's `Toleration.ToleratesTaint`.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = t.effect.as_deref().filter(|e| !e.is_empty()) {
        if effect != taint.effect {
            return false;
        }
    }
    if let Some(key) = t.key.as_deref().filter(|k| !k.is_empty()) {
        if key != taint.key {
            return false;
        }
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

/// The first taint (whose effect `filter` accepts) that no toleration tolerates.
pub fn find_untolerated<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    filter: impl Fn(&Taint) -> bool,
) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| filter(t))
        .find(|taint| !tolerations.iter().any(|t| tolerates(t, taint)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn selector(v: serde_json::Value) -> Selector {
        Selector::parse(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn terms_and_operators() {
        let labels: BTreeMap<String, String> = [("zone", "a"), ("gen", "5")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let cases = [
            (
                "In",
                json!([{"key": "zone", "operator": "In", "values": ["a", "b"]}]),
                true,
            ),
            (
                "In miss",
                json!([{"key": "zone", "operator": "In", "values": ["b"]}]),
                false,
            ),
            (
                "NotIn absent key",
                json!([{"key": "x", "operator": "NotIn", "values": ["b"]}]),
                true,
            ),
            (
                "Exists",
                json!([{"key": "zone", "operator": "Exists"}]),
                true,
            ),
            (
                "DoesNotExist",
                json!([{"key": "zone", "operator": "DoesNotExist"}]),
                false,
            ),
            (
                "Gt",
                json!([{"key": "gen", "operator": "Gt", "values": ["4"]}]),
                true,
            ),
            (
                "Lt",
                json!([{"key": "gen", "operator": "Lt", "values": ["4"]}]),
                false,
            ),
            (
                "Gt not a number",
                json!([{"key": "gen", "operator": "Gt", "values": ["x"]}]),
                false,
            ),
            (
                "unknown operator",
                json!([{"key": "zone", "operator": "Near", "values": ["a"]}]),
                false,
            ),
        ];
        for (name, exprs, want) in cases {
            let s = selector(json!({"nodeSelectorTerms": [{"matchExpressions": exprs}]}));
            assert_eq!(s.matches("n1", &labels), want, "{name}");
        }
        let empty_term = selector(json!({"nodeSelectorTerms": [{}]}));
        assert!(
            !empty_term.matches("n1", &labels),
            "an empty term matches nothing"
        );
        let fields = selector(json!({"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}
        ]}));
        assert!(fields.matches("n1", &labels));
        assert!(!fields.matches("n2", &labels));
        assert_eq!(fields.node_names(), Some(vec!["n1".to_string()]));
    }

    #[test]
    fn tolerations() {
        let taint: Taint =
            serde_json::from_value(json!({"key": "k", "value": "v", "effect": "NoSchedule"}))
                .unwrap();
        let tol = |v: serde_json::Value| -> Toleration { serde_json::from_value(v).unwrap() };
        let cases = [
            (
                "equal",
                json!({"key": "k", "value": "v", "effect": "NoSchedule"}),
                true,
            ),
            ("wrong value", json!({"key": "k", "value": "w"}), false),
            (
                "exists any effect",
                json!({"key": "k", "operator": "Exists"}),
                true,
            ),
            ("wildcard", json!({"operator": "Exists"}), true),
            (
                "wrong effect",
                json!({"key": "k", "operator": "Exists", "effect": "NoExecute"}),
                false,
            ),
        ];
        for (name, t, want) in cases {
            assert_eq!(tolerates(&tol(t), &taint), want, "{name}");
        }
    }
}
