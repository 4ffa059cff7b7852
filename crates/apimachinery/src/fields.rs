//! Field selectors (upstream's `apimachinery/pkg/fields/selector.go`):
//! comma-separated `field=value`, `field==value` and `field!=value` terms.
//!
//! Values may contain `\\`, `\,` and `\=` escapes (upstream's `EscapeValue`
//! and `UnescapeValue`); field names are never escaped, so a term splits at
//! its first operator.

use std::fmt;

/// A field requirement's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    /// `=` or `==`.
    Equals,
    /// `!=`.
    NotEquals,
}

impl FieldOperator {
    /// The operator as printed in a selector.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldOperator::Equals => "=",
            FieldOperator::NotEquals => "!=",
        }
    }
}

/// One term of a field selector. `value` is unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub operator: FieldOperator,
    pub value: String,
}

impl FieldRequirement {
    fn matches(&self, have: &str) -> bool {
        match self.operator {
            FieldOperator::Equals => have == self.value,
            FieldOperator::NotEquals => have != self.value,
        }
    }
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.field,
            self.operator.as_str(),
            escape_value(&self.value)
        )
    }
}

/// A field selector: the AND of its requirements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

/// Escapes a literal for use as a field selector value (upstream's `EscapeValue`).
pub fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Undoes [`escape_value`] (upstream's `UnescapeValue`). Unknown escapes, a
/// trailing backslash, and an unescaped `,` or `=` are errors.
pub fn unescape_value(s: &str) -> Result<String, String> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(format!(
                    "invalid field selector: invalid escape sequence: \\{c}"
                ));
            }
            out.push(c);
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            // Upstream formats the rune with %v, which prints its code point.
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                ))
            }
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err("invalid field selector: invalid escape sequence: \\".to_string());
    }
    Ok(out)
}

/// Splits at commas not preceded by a backslash; escapes stay in the terms.
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Splits a term at the first operator, trying `!=` and `==` before `=` at
/// each position so `a==b` does not leave `=b` as the value.
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    const OPERATORS: [(&str, FieldOperator); 3] = [
        ("!=", FieldOperator::NotEquals),
        ("==", FieldOperator::Equals),
        ("=", FieldOperator::Equals),
    ];
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, operator) in OPERATORS {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], operator, value));
            }
        }
    }
    None
}

impl FieldSelector {
    /// The selector that matches everything.
    pub fn everything() -> FieldSelector {
        FieldSelector::default()
    }

    /// A selector requiring `field == value` (upstream's `OneTermEqualSelector`).
    pub fn one_term_equal(field: impl Into<String>, value: impl Into<String>) -> FieldSelector {
        FieldSelector {
            requirements: vec![FieldRequirement {
                field: field.into(),
                operator: FieldOperator::Equals,
                value: value.into(),
            }],
        }
    }

    /// A selector requiring each `field == value` pair (upstream's `SelectorFromSet`).
    pub fn from_set<'a>(set: impl IntoIterator<Item = (&'a str, &'a str)>) -> FieldSelector {
        let requirements = set
            .into_iter()
            .map(|(f, v)| FieldRequirement {
                field: f.to_string(),
                operator: FieldOperator::Equals,
                value: v.to_string(),
            })
            .collect();
        FieldSelector { requirements }
    }

    /// Parses a field selector (upstream's `ParseSelector`). Terms are
    /// sorted as written, empty terms skipped, and a term with neither field
    /// nor value (`=`) dropped.
    pub fn parse(s: &str) -> Result<FieldSelector, String> {
        let mut parts = split_terms(s);
        parts.sort_unstable();
        let mut requirements = Vec::new();
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            let Some((field, operator, raw)) = split_term(part) else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            let value = unescape_value(raw)?;
            if field.is_empty() && value.is_empty() {
                continue;
            }
            requirements.push(FieldRequirement {
                field: field.to_string(),
                operator,
                value,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// Rewrites each term's field and value (upstream's `Transform`, used
    /// to map field labels between versions); terms that become empty are dropped.
    pub fn transform<F>(self, mut f: F) -> Result<FieldSelector, String>
    where
        F: FnMut(&str, &str) -> Result<(String, String), String>,
    {
        let mut requirements = Vec::with_capacity(self.requirements.len());
        for r in self.requirements {
            let (field, value) = f(&r.field, &r.value)?;
            if field.is_empty() && value.is_empty() {
                continue;
            }
            requirements.push(FieldRequirement {
                field,
                operator: r.operator,
                value,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// Whether the selector does not restrict the selection.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The same selector with every field renamed by `rename`; the first
    /// field it does not know is returned as the error.
    pub fn rename_fields(
        &self,
        rename: impl Fn(&str) -> Option<&'static str>,
    ) -> Result<FieldSelector, String> {
        let mut requirements = self.requirements.clone();
        for r in &mut requirements {
            r.field = rename(&r.field).ok_or_else(|| r.field.clone())?.to_string();
        }
        Ok(FieldSelector { requirements })
    }

    /// The requirements, in parse order.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// Whether an object matches; `get` returns a field's value, and a field
    /// the object does not have counts as the empty string, as upstream's `fields.Set`.
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements
            .iter()
            .all(|r| r.matches(&get(&r.field).unwrap_or_default()))
    }

    /// The value `field` must have, if some term requires `field=value`
    /// (upstream's `RequiresExactMatch`).
    pub fn exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.operator == FieldOperator::Equals && r.field == field)
            .map(|r| r.value.as_str())
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for FieldSelector {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldSelector::parse(s)
    }
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // test tables
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn matches(selector: &str, fields: &[(&str, &str)]) -> bool {
        let set: BTreeMap<&str, &str> = fields.iter().copied().collect();
        let sel = FieldSelector::parse(selector).unwrap_or_else(|e| panic!("{selector}: {e}"));
        sel.matches(|f| set.get(f).map(|v| v.to_string()))
    }

    #[test]
    fn splits_terms() {
        let cases: &[(&str, &[&str])] = &[
            ("a", &["a"]),
            ("a=avalue", &["a=avalue"]),
            ("a=avalue,b=bvalue", &["a=avalue", "b=bvalue"]),
            (
                "a=avalue,b==bvalue,c!=cvalue",
                &["a=avalue", "b==bvalue", "c!=cvalue"],
            ),
            ("", &[]),
            ("a=a,", &["a=a", ""]),
            (",a=a", &["", "a=a"]),
            (r"k=\,,k2=v2", &[r"k=\,", "k2=v2"]),
            (r"k=\\,k2=v2", &[r"k=\\", "k2=v2"]),
            (r"k=\\\,,k2=v2", &[r"k=\\\,", "k2=v2"]),
            (r"k=\a\b\", &[r"k=\a\b\"]),
            (r"k=\", &[r"k=\"]),
            ("함=수,목=록", &["함=수", "목=록"]),
        ];
        for (input, want) in cases {
            assert_eq!(split_terms(input), *want, "{input}");
        }
    }

    #[test]
    fn splits_term() {
        use FieldOperator::*;
        let cases: &[(&str, Option<(&str, FieldOperator, &str)>)] = &[
            ("a=value", Some(("a", Equals, "value"))),
            ("b==value", Some(("b", Equals, "value"))),
            ("c!=value", Some(("c", NotEquals, "value"))),
            ("", None),
            ("a", None),
            (r"k=\,", Some(("k", Equals, r"\,"))),
            (r"k=\=", Some(("k", Equals, r"\="))),
            (r"k=\\\a\b\=\,\", Some(("k", Equals, r"\\\a\b\=\,\"))),
            ("함=수", Some(("함", Equals, "수"))),
        ];
        for (input, want) in cases {
            assert_eq!(split_term(input), *want, "{input}");
        }
    }

    #[test]
    fn escaping() {
        let cases = [
            ("", ""),
            ("a", "a"),
            ("=", r"\="),
            (",", r"\,"),
            (r"\", r"\\"),
            (r"\=\,\", r"\\\=\\\,\\"),
        ];
        for (raw, escaped) in cases {
            assert_eq!(escape_value(raw), escaped);
            assert_eq!(unescape_value(escaped).as_deref(), Ok(raw));
        }
        for bad in [r"\", r"\\\", r"\a", r"\!"] {
            let err = unescape_value(bad).expect_err(bad);
            assert!(err.contains("invalid escape sequence"), "{bad}: {err}");
        }
        assert_eq!(
            unescape_value(r"\a").err().as_deref(),
            Some(r"invalid field selector: invalid escape sequence: \a")
        );
        assert_eq!(
            unescape_value("a=b").err().as_deref(),
            Some("invalid field selector: unescaped character in value: 61")
        );
    }

    #[test]
    fn parse() {
        for good in ["x=a,y=b,z=c", "", "x!=a,y=b", r"x=a||y\=b", r"x=a\=\=b"] {
            let sel = FieldSelector::parse(good).unwrap_or_else(|e| panic!("{good}: {e}"));
            assert_eq!(sel.to_string(), good);
        }
        let bad: &[(&str, &str)] = &[
            (
                "x=a||y=b",
                "invalid field selector: unescaped character in value: 61",
            ),
            (
                "x==a==b",
                "invalid field selector: unescaped character in value: 61",
            ),
            ("x=a,b", "invalid selector: 'x=a,b'; can't understand 'b'"),
            (
                "x in (a)",
                "invalid selector: 'x in (a)'; can't understand 'x in (a)'",
            ),
            (
                "x in (a,b,c)",
                "invalid selector: 'x in (a,b,c)'; can't understand 'b'",
            ),
            ("x", "invalid selector: 'x'; can't understand 'x'"),
        ];
        for (input, want) in bad {
            assert_eq!(
                FieldSelector::parse(input).err().as_deref(),
                Some(*want),
                "{input}"
            );
        }
        assert_eq!(
            FieldSelector::parse("x=a,a=x").map(|s| s.to_string()),
            FieldSelector::parse("a=x,x=a").map(|s| s.to_string())
        );
        assert_eq!(
            FieldSelector::parse("b=1,a==2")
                .map(|s| s.to_string())
                .as_deref(),
            Ok("a=2,b=1")
        );
        assert!(FieldSelector::parse("=").is_ok_and(|s| s.is_empty()));
        assert!(FieldSelector::parse(",,").is_ok_and(|s| s.is_empty()));
        let sel = FieldSelector::parse(r"spec.nodeName!=,metadata.name=a\,b").expect("valid");
        assert_eq!(
            sel.requirements(),
            &[
                FieldRequirement {
                    field: "metadata.name".into(),
                    operator: FieldOperator::Equals,
                    value: "a,b".into()
                },
                FieldRequirement {
                    field: "spec.nodeName".into(),
                    operator: FieldOperator::NotEquals,
                    value: "".into()
                },
            ]
        );
    }

    #[test]
    fn matching() {
        let cases: &[(&str, &[(&str, &str)], bool)] = &[
            ("", &[("x", "y")], true),
            ("x=y", &[("x", "y")], true),
            ("x=y,z=w", &[("x", "y"), ("z", "w")], true),
            ("x!=y,z!=w", &[("x", "z"), ("z", "a")], true),
            ("notin=in", &[("notin", "in")], true),
            ("x=y", &[("x", "z")], false),
            ("x=y,z=w", &[("x", "w"), ("z", "w")], false),
            ("x!=y,z!=w", &[("x", "z"), ("z", "w")], false),
            ("x!=y", &[], true),
            ("x=", &[], true),
            ("x!=", &[], false),
            ("foo=bar,baz=blah", &[("foo", "bar"), ("baz", "blah")], true),
            (
                r"foo=bar,baz=blah,complex=\=value\\\,\\",
                &[("foo", "bar"), ("baz", "blah"), ("complex", r"=value\,\")],
                true,
            ),
            ("foo=blah", &[("foo", "bar")], false),
            (
                "foo=bar,foobar=bar,baz=blah",
                &[("foo", "bar"), ("baz", "blah")],
                false,
            ),
        ];
        for (selector, fields, want) in cases {
            assert_eq!(matches(selector, fields), *want, "{selector} {fields:?}");
        }
        let one = FieldSelector::one_term_equal("x", "y");
        assert!(one.matches(|_| Some("y".into())));
        assert!(!one.matches(|_| Some("z".into())));
        assert!(FieldSelector::from_set([("a", "b")]).matches(|_| Some("b".into())));
        assert!(FieldSelector::everything().is_empty());
    }

    #[test]
    fn exact_match() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("", "test", None),
            ("a=b", "test", None),
            ("test=b", "test", Some("b")),
            ("test==", "test", Some("")),
            ("test!=b", "test", None),
            ("test!=b,test=c", "test", Some("c")),
            ("a=b,test=c", "test", Some("c")),
        ];
        for (input, field, want) in cases {
            let sel = FieldSelector::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(sel.exact_match(field), *want, "{input}");
        }
    }

    #[test]
    fn transform() {
        let sel = FieldSelector::parse("a=1,drop=x").expect("valid");
        let out = sel
            .transform(|f, v| match f {
                "a" => Ok(("spec.a".into(), v.into())),
                "drop" => Ok((String::new(), String::new())),
                other => Err(format!("field label not supported: {other}")),
            })
            .expect("transform");
        assert_eq!(out.to_string(), "spec.a=1");
        let err = FieldSelector::parse("z=1")
            .expect("valid")
            .transform(|f, _| Err(format!("no {f}")));
        assert_eq!(err.err().as_deref(), Some("no z"));
    }
}
