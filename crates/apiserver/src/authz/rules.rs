//! RBAC PolicyRules: matching a request (upstream's `RuleAllows` and the
//! `rbac/v1` helpers) and whether one set of rules covers another (the
//! escalation check's `Covers`, `BreakdownRule` and `CompactString`).

use serde_json::Value;

use super::Attributes;

/// One PolicyRule, parsed once when the policy changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

fn strings(v: &Value, field: &str) -> Vec<String> {
    v.get(field)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn has(set: &[String], s: &str) -> bool {
    set.iter().any(|x| x == s)
}

fn has_all(set: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| has(set, w))
}

impl Rule {
    pub fn parse(v: &Value) -> Self {
        Rule {
            verbs: strings(v, "verbs"),
            api_groups: strings(v, "apiGroups"),
            resources: strings(v, "resources"),
            resource_names: strings(v, "resourceNames"),
            non_resource_urls: strings(v, "nonResourceURLs"),
        }
    }

    /// The rules of a Role or ClusterRole object.
    pub fn parse_all(role: &Value) -> Vec<Rule> {
        role.get("rules")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(Rule::parse).collect())
            .unwrap_or_default()
    }

    pub fn to_json(&self) -> Value {
        let mut v = serde_json::json!({ "verbs": self.verbs });
        let mut set = |k: &str, l: &Vec<String>| {
            if !l.is_empty() {
                v[k] = serde_json::json!(l);
            }
        };
        set("apiGroups", &self.api_groups);
        set("resources", &self.resources);
        set("resourceNames", &self.resource_names);
        set("nonResourceURLs", &self.non_resource_urls);
        v
    }

    fn verb_matches(&self, verb: &str) -> bool {
        has(&self.verbs, "*") || has(&self.verbs, verb)
    }

    fn group_matches(&self, group: &str) -> bool {
        has(&self.api_groups, "*") || has(&self.api_groups, group)
    }

    fn resource_matches(&self, combined: &str, subresource: &str) -> bool {
        self.resources.iter().any(|r| {
            r == "*"
                || r == combined
                || (!subresource.is_empty()
                    && r.len() == subresource.len() + 2
                    && r.starts_with("*/")
                    && r.ends_with(subresource))
        })
    }

    fn name_matches(&self, name: &str) -> bool {
        self.resource_names.is_empty() || has(&self.resource_names, name)
    }

    fn url_matches(&self, path: &str) -> bool {
        self.non_resource_urls.iter().any(|u| {
            u == "*" || u == path || (u.ends_with('*') && path.starts_with(u.trim_end_matches('*')))
        })
    }

    /// Upstream's `RuleAllows`.
    pub fn allows(&self, a: &Attributes) -> bool {
        if a.resource_request {
            let combined = if a.subresource.is_empty() {
                a.resource.to_string()
            } else {
                format!("{}/{}", a.resource, a.subresource)
            };
            self.verb_matches(a.verb)
                && self.group_matches(a.api_group)
                && self.resource_matches(&combined, a.subresource)
                && self.name_matches(a.name)
        } else {
            self.verb_matches(a.verb) && self.url_matches(a.path)
        }
    }

    /// One rule per group × resource × verb (× name), or per URL × verb
    /// (upstream's `BreakdownRule`).
    pub fn breakdown(&self) -> Vec<Rule> {
        let mut out = Vec::new();
        for group in &self.api_groups {
            for resource in &self.resources {
                for verb in &self.verbs {
                    let one = |names: Vec<String>| Rule {
                        verbs: vec![verb.clone()],
                        api_groups: vec![group.clone()],
                        resources: vec![resource.clone()],
                        resource_names: names,
                        non_resource_urls: vec![],
                    };
                    if self.resource_names.is_empty() {
                        out.push(one(vec![]));
                    } else {
                        for n in &self.resource_names {
                            out.push(one(vec![n.clone()]));
                        }
                    }
                }
            }
        }
        for url in &self.non_resource_urls {
            for verb in &self.verbs {
                out.push(Rule {
                    verbs: vec![verb.clone()],
                    non_resource_urls: vec![url.clone()],
                    ..Rule::default()
                });
            }
        }
        out
    }

    /// Whether this (owner's) rule grants everything `sub` does
    /// (upstream's `ruleCovers`).
    fn covers(&self, sub: &Rule) -> bool {
        let verbs = has(&self.verbs, "*") || has_all(&self.verbs, &sub.verbs);
        let groups = has(&self.api_groups, "*") || has_all(&self.api_groups, &sub.api_groups);
        let resources = has(&self.resources, "*")
            || sub.resources.iter().all(|r| {
                has(&self.resources, r)
                    || r.split_once('/')
                        .is_some_and(|(_, sub)| has(&self.resources, &format!("*/{sub}")))
            });
        let urls = sub.non_resource_urls.iter().all(|p| {
            self.non_resource_urls
                .iter()
                .any(|o| o == p || (o.ends_with('*') && p.starts_with(o.trim_end_matches('*'))))
        });
        let names = if sub.resource_names.is_empty() {
            self.resource_names.is_empty()
        } else {
            self.resource_names.is_empty() || has_all(&self.resource_names, &sub.resource_names)
        };
        verbs && groups && resources && urls && names
    }

    /// `{APIGroups:["apps"], Resources:["deployments"], Verbs:["get"]}`
    /// (upstream's `CompactString`, Go's `%q` of a string slice).
    pub fn compact_string(&self) -> String {
        let q = |l: &[String]| {
            let parts: Vec<String> = l.iter().map(|s| format!("{s:?}")).collect();
            format!("[{}]", parts.join(" "))
        };
        let mut parts = Vec::new();
        if !self.api_groups.is_empty() {
            parts.push(format!("APIGroups:{}", q(&self.api_groups)));
        }
        if !self.resources.is_empty() {
            parts.push(format!("Resources:{}", q(&self.resources)));
        }
        if !self.non_resource_urls.is_empty() {
            parts.push(format!("NonResourceURLs:{}", q(&self.non_resource_urls)));
        }
        if !self.resource_names.is_empty() {
            parts.push(format!("ResourceNames:{}", q(&self.resource_names)));
        }
        if !self.verbs.is_empty() {
            parts.push(format!("Verbs:{}", q(&self.verbs)));
        }
        format!("{{{}}}", parts.join(", "))
    }
}

/// Every permission (cluster-admin's rules).
pub fn everything() -> Vec<Rule> {
    let all = || vec!["*".to_string()];
    vec![
        Rule {
            verbs: all(),
            api_groups: all(),
            resources: all(),
            ..Rule::default()
        },
        Rule {
            verbs: all(),
            non_resource_urls: all(),
            ..Rule::default()
        },
    ]
}

/// The broken-down rules of `requested` that no rule of `owner` covers
/// (upstream's `Covers`), empty when the owner holds them all.
pub fn missing(owner: &[Rule], requested: &[Rule]) -> Vec<Rule> {
    let mut out: Vec<Rule> = Vec::new();
    for r in requested {
        for sub in r.breakdown() {
            if !owner.iter().any(|o| o.covers(&sub)) && !out.contains(&sub) {
                out.push(sub);
            }
        }
    }
    out
}

/// Merges broken-down rules that differ only in their verbs (upstream's
/// `CompactRules`), keeping first-seen order.
pub fn compact(rules: Vec<Rule>) -> Vec<Rule> {
    let mut out: Vec<Rule> = Vec::new();
    for r in rules {
        let simple = r.api_groups.len() == 1
            && r.resources.len() == 1
            && r.resource_names.len() <= 1
            && r.non_resource_urls.is_empty();
        if simple {
            if let Some(o) = out.iter_mut().find(|o| {
                o.api_groups == r.api_groups
                    && o.resources == r.resources
                    && o.resource_names == r.resource_names
                    && o.non_resource_urls.is_empty()
            }) {
                for v in r.verbs {
                    if !o.verbs.contains(&v) {
                        o.verbs.push(v);
                    }
                }
                continue;
            }
        }
        out.push(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs<'a>(
        user: &'a component_base::authn::User,
        verb: &'a str,
        group: &'a str,
        resource: &'a str,
        sub: &'a str,
        name: &'a str,
    ) -> Attributes<'a> {
        Attributes {
            user,
            verb,
            resource_request: true,
            namespace: "default",
            api_group: group,
            resource,
            subresource: sub,
            name,
            path: "",
        }
    }

    #[test]
    fn matches_like_upstream() {
        let u = component_base::authn::User::default();
        let r = Rule::parse(
            &json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "*/status"]}),
        );
        assert!(r.allows(&attrs(&u, "get", "", "pods", "", "x")));
        assert!(!r.allows(&attrs(&u, "delete", "", "pods", "", "x")));
        assert!(!r.allows(&attrs(&u, "get", "apps", "pods", "", "x")));
        assert!(!r.allows(&attrs(&u, "get", "", "pods", "log", "x")));
        assert!(r.allows(&attrs(&u, "get", "", "nodes", "status", "x")));
        let named = Rule::parse(
            &json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["configmaps"], "resourceNames": ["a"]}),
        );
        assert!(named.allows(&attrs(&u, "update", "x", "configmaps", "", "a")));
        assert!(!named.allows(&attrs(&u, "update", "x", "configmaps", "", "b")));
        assert!(!named.allows(&attrs(&u, "list", "x", "configmaps", "", "")));
        let urls =
            Rule::parse(&json!({"verbs": ["get"], "nonResourceURLs": ["/healthz", "/apis/*"]}));
        let mut a = attrs(&u, "get", "", "", "", "");
        a.resource_request = false;
        a.path = "/apis/apps/v1";
        assert!(urls.allows(&a));
        a.path = "/healthz/etcd";
        assert!(!urls.allows(&a));
        a.path = "/healthz";
        assert!(urls.allows(&a));
    }

    #[test]
    fn covers_and_reports_what_is_missing() {
        let owner = vec![
            Rule::parse(
                &json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "*/status"]}),
            ),
            Rule::parse(&json!({"verbs": ["get"], "nonResourceURLs": ["/api/*"]})),
        ];
        let wanted = vec![Rule::parse(
            &json!({"verbs": ["get", "delete", "watch"], "apiGroups": [""], "resources": ["pods", "nodes/status"]}),
        )];
        let m = compact(missing(&owner, &wanted));
        let s: Vec<String> = m.iter().map(Rule::compact_string).collect();
        assert_eq!(
            s,
            vec![
                r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete" "watch"]}"#,
                r#"{APIGroups:[""], Resources:["nodes/status"], Verbs:["delete" "watch"]}"#,
            ]
        );
        let urls = vec![Rule::parse(
            &json!({"verbs": ["get"], "nonResourceURLs": ["/api/v1"]}),
        )];
        assert!(missing(&owner, &urls).is_empty());
        let named = vec![Rule::parse(
            &json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"]}),
        )];
        assert!(missing(&owner, &named).is_empty());
        let owner_named = vec![Rule::parse(
            &json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"]}),
        )];
        let all = vec![Rule::parse(
            &json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}),
        )];
        assert_eq!(missing(&owner_named, &all).len(), 1);
    }
}
