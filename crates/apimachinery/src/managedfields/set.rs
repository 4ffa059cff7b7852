//! Field sets: the ownership unit of server-side apply (structured-merge-diff's
//! `fieldpath.Set`) and their `FieldsV1` encoding in `metadata.managedFields`
//! (`f:<field>`, `k:{<key fields>}`, `v:<value>`, `i:<index>`, and `.` for an
//! element that is itself a member and has members below it).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A tree of path elements; a node is a member when the path to it is in
/// the set. The root is never a member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Set {
    member: bool,
    children: BTreeMap<String, Set>,
}

/// The `FieldsV1` element for a struct or map field.
pub fn field(name: &str) -> String {
    format!("f:{name}")
}

/// The element of an associative list item: its key fields, sorted by name.
pub fn key(fields: &[(&str, &Value)]) -> String {
    let mut sorted: Vec<&(&str, &Value)> = fields.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut m = Map::new();
    for (k, v) in sorted {
        m.insert((*k).to_string(), (*v).clone());
    }
    format!("k:{}", Value::Object(m))
}

/// The element of a set-list item.
pub fn value(v: &Value) -> String {
    format!("v:{v}")
}

impl Set {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }

    /// Whether `path` itself is a member.
    pub fn has(&self, path: &[String]) -> bool {
        match path.split_first() {
            None => self.member,
            Some((first, rest)) => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    pub fn insert(&mut self, path: &[String]) {
        match path.split_first() {
            None => self.member = true,
            Some((first, rest)) => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    /// Adds every member of `other`.
    pub fn union(&mut self, other: &Set) {
        self.member |= other.member;
        for (k, c) in &other.children {
            self.children.entry(k.clone()).or_default().union(c);
        }
    }

    /// The members of `self` that are not members of `other`.
    pub fn difference(&self, other: &Set) -> Set {
        let mut out = Set {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (k, c) in &self.children {
            let d = match other.children.get(k) {
                Some(o) => c.difference(o),
                None => c.clone(),
            };
            if !d.is_empty() {
                out.children.insert(k.clone(), d);
            }
        }
        out
    }

    /// Like [`Self::difference`], but a member of `other` also removes
    /// everything below it (a removed field takes its children along).
    pub fn recursive_difference(&self, other: &Set) -> Set {
        let mut out = Set {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (k, c) in &self.children {
            let d = match other.children.get(k) {
                Some(o) if o.member => continue,
                Some(o) => c.recursive_difference(o),
                None => c.clone(),
            };
            if !d.is_empty() {
                out.children.insert(k.clone(), d);
            }
        }
        out
    }

    pub fn intersection(&self, other: &Set) -> Set {
        let mut out = Set {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (k, c) in &self.children {
            if let Some(o) = other.children.get(k) {
                let i = c.intersection(o);
                if !i.is_empty() {
                    out.children.insert(k.clone(), i);
                }
            }
        }
        out
    }

    /// Every member path, in order.
    pub fn members(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if self.member {
            out.push(prefix.clone());
        }
        for (k, c) in &self.children {
            prefix.push(k.clone());
            c.collect(prefix, out);
            prefix.pop();
        }
    }

    /// The child at one element, when present.
    pub fn child(&self, element: &str) -> Option<&Set> {
        self.children.get(element)
    }

    pub fn children(&self) -> impl Iterator<Item = (&String, &Set)> {
        self.children.iter()
    }

    pub fn is_member(&self) -> bool {
        self.member
    }

    /// The `fieldsV1` JSON of this set.
    pub fn to_fields_v1(&self) -> Value {
        let mut m = Map::new();
        if self.member && !self.children.is_empty() {
            m.insert(".".into(), Value::Object(Map::new()));
        }
        for (k, c) in &self.children {
            m.insert(k.clone(), c.to_fields_v1());
        }
        Value::Object(m)
    }

    /// Parses `fieldsV1`; errors name the bad element.
    pub fn from_fields_v1(v: &Value) -> Result<Set, String> {
        let Value::Object(m) = v else {
            return Err("fieldsV1 must be an object".into());
        };
        let mut out = Set::new();
        for (k, c) in m {
            if k == "." {
                out.member = true;
                continue;
            }
            if !(k.starts_with("f:")
                || k.starts_with("k:")
                || k.starts_with("v:")
                || k.starts_with("i:"))
            {
                return Err(format!("unknown path element {k:?}"));
            }
            let mut child = Set::from_fields_v1(c)?;
            if child.children.is_empty() {
                child.member = true;
            }
            out.children.insert(k.clone(), child);
        }
        Ok(out)
    }
}

/// A path as upstream prints it in conflicts: `.spec.replicas`,
/// `.spec.containers[name="web"].image`, `.metadata.finalizers[="x"]`.
pub fn path_string(path: &[String]) -> String {
    let mut out = String::new();
    for e in path {
        if let Some(f) = e.strip_prefix("f:") {
            out.push('.');
            out.push_str(f);
        } else if let Some(k) = e.strip_prefix("k:") {
            let parts: Vec<String> = match serde_json::from_str::<Value>(k) {
                Ok(Value::Object(m)) => m.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                _ => vec![k.to_string()],
            };
            out.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = e.strip_prefix("v:") {
            out.push_str(&format!("[={v}]"));
        } else if let Some(i) = e.strip_prefix("i:") {
            out.push_str(&format!("[{i}]"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn fields_v1_round_trip_with_dot_markers() {
        let v = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}}}, "f:replicas": {}}
        });
        let s = Set::from_fields_v1(&v).unwrap();
        assert!(s.has(&p(&["f:metadata", "f:labels"])));
        assert!(!s.has(&p(&["f:metadata"])));
        assert!(s.has(&p(&[
            "f:spec",
            "f:containers",
            "k:{\"name\":\"c\"}",
            "f:image"
        ])));
        assert_eq!(s.to_fields_v1(), v);
        assert!(Set::from_fields_v1(&json!({"x:y": {}})).is_err());
    }

    #[test]
    fn set_algebra() {
        let mut a = Set::new();
        a.insert(&p(&["f:spec", "f:replicas"]));
        a.insert(&p(&["f:spec", "f:template"]));
        a.insert(&p(&["f:spec", "f:template", "f:x"]));
        let mut b = Set::new();
        b.insert(&p(&["f:spec", "f:replicas"]));
        assert_eq!(a.intersection(&b), b);
        let d = a.difference(&b);
        assert!(
            !d.has(&p(&["f:spec", "f:replicas"])) && d.has(&p(&["f:spec", "f:template", "f:x"]))
        );
        let mut t = Set::new();
        t.insert(&p(&["f:spec", "f:template"]));
        let r = a.recursive_difference(&t);
        assert_eq!(r.members(), vec![p(&["f:spec", "f:replicas"])]);
        let mut u = b.clone();
        u.union(&t);
        assert_eq!(u.members().len(), 2);
    }

    #[test]
    fn paths_print_like_upstream() {
        assert_eq!(path_string(&p(&["f:spec", "f:replicas"])), ".spec.replicas");
        let k = key(&[("name", &json!("web"))]);
        assert_eq!(k, "k:{\"name\":\"web\"}");
        assert_eq!(
            path_string(&p(&["f:spec", "f:containers", &k, "f:image"])),
            ".spec.containers[name=\"web\"].image"
        );
        assert_eq!(
            key(&[("protocol", &json!("TCP")), ("containerPort", &json!(80))]),
            "k:{\"containerPort\":80,\"protocol\":\"TCP\"}"
        );
    }
}
