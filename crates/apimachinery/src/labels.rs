//! Label selectors: parsing, matching and printing (upstream's
//! `apimachinery/pkg/labels/selector.go`), plus the conversion from a
//! `metav1.LabelSelector` (upstream's `LabelSelectorAsSelector` in
//! `pkg/apis/meta/v1/helpers.go`).
//!
//! The parser is upstream's: a byte lexer and a recursive-descent parser
//! with one token of lookahead, giving the same errors for the same input.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::hash::BuildHasher;

use serde_json::Value;

use crate::field::{aggregate, quote, FieldError};
use crate::validation::{is_qualified_name, is_valid_label_value};

/// Read access to a set of labels.
pub trait Labels {
    /// The value of the label `key`, if the set has it.
    fn get(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(String::as_str)
    }
}

impl<S: BuildHasher> Labels for HashMap<String, String, S> {
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key).map(String::as_str)
    }
}

/// `metadata.labels` as held in a JSON object; non-string values are absent.
impl Labels for serde_json::Map<String, Value> {
    fn get(&self, key: &str) -> Option<&str> {
        serde_json::Map::get(self, key).and_then(Value::as_str)
    }
}

/// A requirement's operator (upstream's `selection.Operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

impl Operator {
    /// Upstream's string value of the operator (`=`, `notin`, `gt`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The binary operators, in the order upstream lists them in parse errors.
const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

/// One condition on one label key. Build it with [`Requirement::new`], which
/// validates it like upstream's `NewRequirement`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    /// Sorted.
    pub values: Vec<String>,
}

/// Renders a list of values as Go's `json.Marshal` prints a `[]string`; an
/// empty list prints as `null`, since upstream's callers pass nil slices.
fn values_json(values: &[String]) -> Value {
    if values.is_empty() {
        Value::Null
    } else {
        Value::from(values.to_vec())
    }
}

/// Upstream's `validateLabelKey` with the parser's nil path (printed `<nil>`).
fn validate_label_key(key: &str, path: &str) -> Option<FieldError> {
    let errs = is_qualified_name(key);
    if errs.is_empty() {
        None
    } else {
        Some(FieldError::invalid_str(path, key, errs.join("; ")))
    }
}

impl Requirement {
    /// Validates and builds a requirement (upstream's `NewRequirement`): the
    /// key must be a qualified name, values valid label values, `in`/`notin`
    /// need values, the equality operators exactly one, `exists`/`!` none, and
    /// `gt`/`lt` one integer. The error is upstream's aggregated message.
    pub fn new(
        key: impl Into<String>,
        operator: Operator,
        values: Vec<String>,
    ) -> Result<Requirement, String> {
        let key = key.into();
        let mut errs = Vec::new();
        errs.extend(validate_label_key(&key, "key"));
        match operator {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    errs.push(FieldError::invalid(
                        "values",
                        &values_json(&values),
                        "for 'in', 'notin' operators, values set can't be empty",
                    ));
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    errs.push(FieldError::invalid(
                        "values",
                        &values_json(&values),
                        "exact-match compatibility requires one single value",
                    ));
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    errs.push(FieldError::invalid(
                        "values",
                        &values_json(&values),
                        "values set must be empty for exists and does not exist",
                    ));
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(FieldError::invalid(
                        "values",
                        &values_json(&values),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(FieldError::invalid_str(
                            format!("values[{i}]"),
                            v,
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
        }
        for (i, v) in values.iter().enumerate() {
            let msgs = is_valid_label_value(v);
            if !msgs.is_empty() {
                errs.push(FieldError::invalid_str(
                    format!("values[{i}][{key}]"),
                    v,
                    msgs.join("; "),
                ));
            }
        }
        if !errs.is_empty() {
            return Err(aggregate(&errs));
        }
        let mut values = values;
        values.sort();
        Ok(Requirement {
            key,
            operator,
            values,
        })
    }

    /// Whether the labels satisfy this requirement. `!=` and `notin` match a
    /// set without the key; `gt`/`lt` need the key with an integer value.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                value.is_some_and(|v| self.has_value(v))
            }
            Operator::NotIn | Operator::NotEquals => !value.is_some_and(|v| self.has_value(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(Ok(have)) = value.map(str::parse::<i64>) else {
                    return false;
                };
                let [want] = self.values.as_slice() else {
                    return false;
                };
                let Ok(want) = want.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }

    fn has_value(&self, value: &str) -> bool {
        self.values.iter().any(|v| v == value)
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let (op, parens) = match self.operator {
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
            Operator::In => (" in ", true),
            Operator::NotIn => (" notin ", true),
            Operator::GreaterThan => (">", false),
            Operator::LessThan => ("<", false),
            other => (other.as_str(), false),
        };
        f.write_str(op)?;
        if parens {
            f.write_str("(")?;
        }
        let mut sorted: Vec<&str> = self.values.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        f.write_str(&sorted.join(","))?;
        if parens {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A label selector: the AND of its requirements, sorted by key. One built by
/// [`Selector::nothing`] matches no labels at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
    /// False for upstream's `Nothing()` selector.
    selectable: bool,
}

impl Default for Selector {
    fn default() -> Self {
        Selector::everything()
    }
}

impl Selector {
    /// The selector that matches every set of labels.
    pub fn everything() -> Selector {
        Selector {
            requirements: Vec::new(),
            selectable: true,
        }
    }

    /// The selector that matches nothing (a null `metav1.LabelSelector`).
    pub fn nothing() -> Selector {
        Selector {
            requirements: Vec::new(),
            selectable: false,
        }
    }

    /// Builds a selector from requirements, sorting them by key.
    pub fn from_requirements(mut requirements: Vec<Requirement>) -> Selector {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Selector {
            requirements,
            selectable: true,
        }
    }

    /// A selector requiring each label of the set (upstream's
    /// `SelectorFromValidatedSet`: the set is not validated).
    pub fn from_set<'a>(set: impl IntoIterator<Item = (&'a str, &'a str)>) -> Selector {
        let requirements = set
            .into_iter()
            .map(|(k, v)| Requirement {
                key: k.to_string(),
                operator: Operator::Equals,
                values: vec![v.to_string()],
            })
            .collect();
        Selector::from_requirements(requirements)
    }

    /// Parses upstream's label selector syntax (`labels.Parse`), e.g.
    /// `x in (foo,,baz),y,z notin (),!w,v!=1,u>3`.
    pub fn parse(s: &str) -> Result<Selector, String> {
        let requirements = Parser::new(s).parse()?;
        Ok(Selector::from_requirements(requirements))
    }

    /// Converts a `metav1.LabelSelector` held as JSON (upstream's
    /// `LabelSelectorAsSelector`): null selects nothing, `{}` everything.
    pub fn from_label_selector(sel: &Value) -> Result<Selector, String> {
        let obj = match sel {
            Value::Null => return Ok(Selector::nothing()),
            Value::Object(obj) => obj,
            other => return Err(format!("a label selector must be an object, not {other}")),
        };
        let match_labels = match obj.get("matchLabels") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(_) => return Err("matchLabels must be an object".to_string()),
        };
        let expressions = match obj.get("matchExpressions") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(a)) => a.as_slice(),
            Some(_) => return Err("matchExpressions must be a list".to_string()),
        };
        if match_labels.map_or(0, |m| m.len()) + expressions.len() == 0 {
            return Ok(Selector::everything());
        }
        let mut requirements = Vec::new();
        for (k, v) in match_labels.into_iter().flatten() {
            let Some(v) = v.as_str() else {
                return Err(format!("matchLabels[{k}] must be a string"));
            };
            requirements.push(Requirement::new(
                k.clone(),
                Operator::Equals,
                vec![v.to_string()],
            )?);
        }
        for expr in expressions {
            let key = expr.get("key").and_then(Value::as_str).unwrap_or("");
            let op_name = expr.get("operator").and_then(Value::as_str).unwrap_or("");
            let operator = match op_name {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(format!(
                        "{} is not a valid pod selector operator",
                        quote(other)
                    ))
                }
            };
            let values = match expr.get("values") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(vs)) => {
                    let mut out = Vec::with_capacity(vs.len());
                    for v in vs {
                        match v.as_str() {
                            Some(s) => out.push(s.to_string()),
                            None => {
                                return Err("matchExpressions values must be strings".to_string())
                            }
                        }
                    }
                    out
                }
                Some(_) => return Err("matchExpressions values must be a list".to_string()),
            };
            requirements.push(Requirement::new(key, operator, values)?);
        }
        Ok(Selector::from_requirements(requirements))
    }

    /// Whether the selector does not restrict the selection (false for
    /// [`Selector::nothing`], as upstream).
    pub fn is_empty(&self) -> bool {
        self.selectable && self.requirements.is_empty()
    }

    /// Whether this is the selector that matches nothing.
    pub fn is_nothing(&self) -> bool {
        !self.selectable
    }

    /// The requirements, sorted by key (none for [`Selector::nothing`]).
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Adds a requirement, keeping the requirements sorted by key. Adding to
    /// [`Selector::nothing`] leaves it matching nothing.
    pub fn add_requirement(mut self, requirement: Requirement) -> Selector {
        if self.selectable {
            let at = self
                .requirements
                .partition_point(|r| r.key <= requirement.key);
            self.requirements.insert(at, requirement);
        }
        self
    }

    /// Whether all requirements match the labels.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        self.selectable && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// The value a matching object must have for `label`, if the selector
    /// pins it with `=`, `==` or a one-value `in` (upstream's `RequiresExactMatch`).
    pub fn requires_exact_match(&self, label: &str) -> Option<&str> {
        let r = self.requirements.iter().find(|r| r.key == label)?;
        match (r.operator, r.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [only]) => Some(only),
            _ => None,
        }
    }
}

impl fmt::Display for Selector {
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

impl std::str::FromStr for Selector {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Selector::parse(s)
    }
}

/// A lexer token (upstream's `Token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn keyword(s: &[u8]) -> Option<Token> {
    Some(match s {
        b")" => Token::ClosedPar,
        b"," => Token::Comma,
        b"!" => Token::DoesNotExist,
        b"==" => Token::DoubleEquals,
        b"=" => Token::Equals,
        b">" => Token::GreaterThan,
        b"in" => Token::In,
        b"<" => Token::LessThan,
        b"!=" => Token::NotEquals,
        b"notin" => Token::NotIn,
        b"(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(ch: u8) -> bool {
    matches!(ch, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special_symbol(ch: u8) -> bool {
    matches!(ch, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Upstream's `Lexer`: reads bytes, and like upstream treats a NUL byte as
/// the end of input.
struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn read(&mut self) -> u8 {
        match self.s.as_bytes().get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => 0,
        }
    }

    fn unread(&mut self) {
        self.pos = self.pos.saturating_sub(1);
    }

    /// The text between two byte offsets. Offsets always sit next to ASCII
    /// bytes or the ends, so they are character boundaries; fall back to a
    /// lossy copy rather than panic if that ever stops being true.
    fn text(&self, start: usize, end: usize) -> String {
        match self.s.get(start..end) {
            Some(t) => t.to_string(),
            None => String::from_utf8_lossy(self.s.as_bytes().get(start..end).unwrap_or_default())
                .into_owned(),
        }
    }

    fn scan_id_or_keyword(&mut self) -> (Token, String) {
        let start = self.pos;
        let mut end;
        loop {
            end = self.pos;
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if is_special_symbol(ch) || is_whitespace(ch) {
                self.unread();
                break;
            }
        }
        let lit = self.text(start, end);
        match keyword(lit.as_bytes()) {
            Some(tok) => (tok, lit),
            None => (Token::Identifier, lit),
        }
    }

    fn scan_special_symbol(&mut self) -> (Token, String) {
        let mut buffer = Vec::new();
        let mut last: Option<(Token, usize)> = None;
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if !is_special_symbol(ch) {
                self.unread();
                break;
            }
            buffer.push(ch);
            if let Some(tok) = keyword(&buffer) {
                last = Some((tok, buffer.len()));
            } else if last.is_some() {
                self.unread();
                break;
            }
        }
        match last {
            Some((tok, len)) => (tok, String::from_utf8_lossy(&buffer[..len]).into_owned()),
            None => (
                Token::Error,
                format!(
                    "error expected: keyword found '{}'",
                    String::from_utf8_lossy(&buffer)
                ),
            ),
        }
    }

    fn lex(&mut self) -> (Token, String) {
        let mut ch = self.read();
        while is_whitespace(ch) {
            ch = self.read();
        }
        if ch == 0 {
            return (Token::EndOfString, String::new());
        }
        self.unread();
        if is_special_symbol(ch) {
            self.scan_special_symbol()
        } else {
            self.scan_id_or_keyword()
        }
    }
}

/// Whether `in` and `notin` are keywords (key and operator position) or
/// plain identifiers (values, and keys at the start of a requirement).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

struct Parser {
    items: Vec<(Token, String)>,
    position: usize,
}

type Set = BTreeSet<String>;

impl Parser {
    fn new(s: &str) -> Parser {
        let mut lexer = Lexer { s, pos: 0 };
        let mut items = Vec::new();
        loop {
            let item = lexer.lex();
            let end = item.0 == Token::EndOfString;
            items.push(item);
            if end {
                break;
            }
        }
        Parser { items, position: 0 }
    }

    fn item(&self, at: usize, context: Context) -> (Token, String) {
        // The scan always ends with EndOfString, and the parser stops there.
        let (tok, lit) = self
            .items
            .get(at)
            .or(self.items.last())
            .cloned()
            .unwrap_or((Token::EndOfString, String::new()));
        match (context, tok) {
            (Context::Values, Token::In | Token::NotIn) => (Token::Identifier, lit),
            _ => (tok, lit),
        }
    }

    fn lookahead(&self, context: Context) -> (Token, String) {
        self.item(self.position, context)
    }

    fn consume(&mut self, context: Context) -> (Token, String) {
        let item = self.item(self.position, context);
        if self.position < self.items.len() {
            self.position += 1;
        }
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Context::Values);
            match tok {
                Token::Identifier | Token::DoesNotExist => {
                    let r = self
                        .parse_requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(r);
                    let (t, l) = self.consume(Context::Values);
                    match t {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (t2, l2) = self.lookahead(Context::Values);
                            if t2 != Token::Identifier && t2 != Token::DoesNotExist {
                                return Err(format!(
                                    "found '{l2}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => return Err(format!("found '{l}', expected: ',' or 'end of string'")),
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    ))
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, operator) = self.parse_key_and_infer_operator()?;
        if let Some(op @ (Operator::Exists | Operator::DoesNotExist)) = operator {
            return Requirement::new(key, op, Vec::new());
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::new(key, operator, values.into_iter().collect())
    }

    /// Reads `[!] KEY`; with nothing after the key the operator is `exists`.
    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<Operator>), String> {
        let mut operator = None;
        let (mut tok, mut lit) = self.consume(Context::Values);
        if tok == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            (tok, lit) = self.consume(Context::Values);
        }
        if tok != Token::Identifier {
            return Err(format!("found '{lit}', expected: identifier"));
        }
        // Upstream validates the key here with a nil field path.
        if let Some(err) = validate_label_key(&lit, "<nil>") {
            return Err(err.to_string());
        }
        let (next, _) = self.lookahead(Context::Values);
        if (next == Token::EndOfString || next == Token::Comma) && operator.is_none() {
            operator = Some(Operator::Exists);
        }
        Ok((lit, operator))
    }

    fn parse_operator(&mut self) -> Result<Operator, String> {
        let (tok, lit) = self.consume(Context::KeyAndOperator);
        Ok(match tok {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => return Err(format!("found '{lit}', expected: {BINARY_OPERATORS}")),
        })
    }

    /// Reads `( VALUE, … )`; `()` means the one empty value.
    fn parse_values(&mut self) -> Result<Set, String> {
        let (tok, lit) = self.consume(Context::Values);
        if tok != Token::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (tok, lit) = self.lookahead(Context::Values);
        match tok {
            Token::Identifier | Token::Comma => {
                let set = self.parse_identifiers_list()?;
                let (tok, _) = self.consume(Context::Values);
                if tok != Token::ClosedPar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                Ok(set)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(Set::from([String::new()]))
            }
            _ => Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    }

    /// Reads a comma-separated list of possibly empty identifiers, up to the `)`.
    fn parse_identifiers_list(&mut self) -> Result<Set, String> {
        let mut set = Set::new();
        loop {
            let (tok, lit) = self.consume(Context::Values);
            match tok {
                Token::Identifier => {
                    set.insert(lit);
                    let (tok2, lit2) = self.lookahead(Context::Values);
                    match tok2 {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(set),
                        _ => return Err(format!("found '{lit2}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    if set.is_empty() {
                        set.insert(String::new()); // "(,"
                    }
                    let (tok2, _) = self.lookahead(Context::Values);
                    if tok2 == Token::ClosedPar {
                        set.insert(String::new()); // ",)"
                        return Ok(set);
                    }
                    if tok2 == Token::Comma {
                        self.consume(Context::Values);
                        set.insert(String::new()); // ",,"
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    /// Reads the one value of an `=`, `==`, `!=`, `>` or `<`; none means empty.
    fn parse_exact_value(&mut self) -> Result<Set, String> {
        let (tok, _) = self.lookahead(Context::Values);
        if tok == Token::EndOfString || tok == Token::Comma {
            return Ok(Set::from([String::new()]));
        }
        let (tok, lit) = self.consume(Context::Values);
        if tok == Token::Identifier {
            Ok(Set::from([lit]))
        } else {
            Err(format!("found '{lit}', expected: identifier"))
        }
    }
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // test tables
mod tests {
    use super::*;
    use serde_json::json;

    fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req(key: &str, op: Operator, values: &[&str]) -> Requirement {
        Requirement::new(key, op, values.iter().map(|s| s.to_string()).collect())
            .expect("valid requirement")
    }

    #[test]
    fn parse_round_trips() {
        let good = [
            "x=a,y=b,z=c",
            "",
            "x!=a,y=b",
            "x=",
            "x= ",
            "x=,z= ",
            "x= ,z= ",
            "!x",
            "x>1",
            "x>1,z<5",
        ];
        for s in good {
            let sel = Selector::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(sel.to_string(), s.replace(' ', ""), "{s}");
        }
        assert_eq!(
            Selector::parse("x=a,a=x").map(|s| s.to_string()),
            Selector::parse("a=x,x=a").map(|s| s.to_string())
        );
    }

    #[test]
    fn parse_errors() {
        let name_part = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
        let cases: &[(&str, String)] = &[
            ("x=a||y=b", "unable to parse requirement: values[0][x]: Invalid value: \"a||y\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".into()),
            ("x==a==b", "found '==', expected: ',' or 'end of string'".into()),
            ("!x=a", "found '=', expected: ',' or 'end of string'".into()),
            ("x<a", "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer".into()),
            ("&foo", format!("unable to parse requirement: <nil>: Invalid value: \"&foo\": {name_part}")),
            ("x,y", "".into()),
            (",x,y", "found ',', expected: !, identifier, or 'end of string'".into()),
            ("x nott in (y)", format!("unable to parse requirement: found 'nott', expected: {BINARY_OPERATORS}")),
            ("a in (xyz),", "found '', expected: identifier after ','".into()),
            ("a in (xyz)b notin ()", "found 'b', expected: ',' or 'end of string'".into()),
            ("a in (xyz abc)", "unable to parse requirement: found 'abc', expected: ',' or ')'".into()),
            ("a notin(", "unable to parse requirement: found '', expected: ',', ')' or identifier".into()),
            ("a (", "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt".into()),
            ("(", "found '(', expected: !, identifier, or 'end of string'".into()),
            ("x in", "unable to parse requirement: found '' expected: '('".into()),
            ("x in (a,=)", "unable to parse requirement: found '=', expected: ',', or identifier".into()),
            // As upstream: ",," consumes both commas, so ",,)" finds the ")" where it wants a value.
            ("x in (a,,)", "unable to parse requirement: found ')', expected: ',', or identifier".into()),
            ("x=(", "unable to parse requirement: found '(', expected: identifier".into()),
            ("x>-1", "unable to parse requirement: values[0][x]: Invalid value: \"-1\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".into()),
            ("x>a-", "unable to parse requirement: [values[0]: Invalid value: \"a-\": for 'Gt', 'Lt' operators, the value must be an integer, values[0][x]: Invalid value: \"a-\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')]".into()),
        ];
        for (input, want) in cases {
            let got = Selector::parse(input);
            if want.is_empty() {
                assert!(got.is_ok(), "{input}: {got:?}");
            } else {
                assert_eq!(got.err().as_deref(), Some(want.as_str()), "{input}");
            }
        }
        let long_key = "a".repeat(254);
        assert!(Selector::parse(&long_key).is_err());
    }

    #[test]
    fn parse_structure() {
        use Operator::*;
        let cases: &[(&str, &[(&str, Operator, &[&str])])] = &[
            ("", &[]),
            ("\rx", &[("x", Exists, &[])]),
            (
                "this-is-a-dns.domain.com/key-with-dash",
                &[("this-is-a-dns.domain.com/key-with-dash", Exists, &[])],
            ),
            (
                "this-is-another-dns.domain.com/key-with-dash in (so,what)",
                &[(
                    "this-is-another-dns.domain.com/key-with-dash",
                    In,
                    &["so", "what"],
                )],
            ),
            (
                "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
                &[(
                    "0.1.2.domain/99",
                    NotIn,
                    &["10.10.100.1", "tick.tack.clock"],
                )],
            ),
            ("foo  in\t (abc)", &[("foo", In, &["abc"])]),
            ("x notin\n (abc)", &[("x", NotIn, &["abc"])]),
            ("x  notin\t\t(abc,def)", &[("x", NotIn, &["abc", "def"])]),
            ("x in (abc,)", &[("x", In, &["", "abc"])]),
            ("x in ()", &[("x", In, &[""])]),
            (
                "x notin (abc,,def),bar,z in (),w",
                &[
                    ("bar", Exists, &[]),
                    ("w", Exists, &[]),
                    ("x", NotIn, &["", "abc", "def"]),
                    ("z", In, &[""]),
                ],
            ),
            ("x,y in (a)", &[("x", Exists, &[]), ("y", In, &["a"])]),
            ("x=a", &[("x", Equals, &["a"])]),
            ("x==a", &[("x", DoubleEquals, &["a"])]),
            ("x>1", &[("x", GreaterThan, &["1"])]),
            ("x<7", &[("x", LessThan, &["7"])]),
            (
                "x=a,y!=b,z in (h,i,j)",
                &[
                    ("x", Equals, &["a"]),
                    ("y", NotEquals, &["b"]),
                    ("z", In, &["h", "i", "j"]),
                ],
            ),
            ("x notin ( )", &[("x", NotIn, &[""])]),
            ("x notin (, a)", &[("x", NotIn, &["", "a"])]),
            ("x in (a,,b)", &[("x", In, &["", "a", "b"])]),
            ("x in (a,,,)", &[("x", In, &["", "a"])]),
            ("a ", &[("a", Exists, &[])]),
            (
                "a in (x,y,notin, z,in)",
                &[("a", In, &["in", "notin", "x", "y", "z"])],
            ),
            ("in in (in)", &[("in", In, &["in"])]),
            ("notin=in", &[("notin", Equals, &["in"])]),
        ];
        for (input, want) in cases {
            let sel = Selector::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            let want: Vec<Requirement> = want.iter().map(|(k, op, vs)| req(k, *op, vs)).collect();
            assert_eq!(sel.requirements(), want.as_slice(), "{input}");
        }
    }

    #[test]
    fn matching() {
        let cases: &[(&str, &[(&str, &str)], bool)] = &[
            ("", &[("x", "y")], true),
            ("x=y", &[("x", "y")], true),
            ("x=y,z=w", &[("x", "y"), ("z", "w")], true),
            ("x!=y,z!=w", &[("x", "z"), ("z", "a")], true),
            ("notin=in", &[("notin", "in")], true),
            ("x", &[("x", "z")], true),
            ("!x", &[("y", "z")], true),
            ("x>1", &[("x", "2")], true),
            ("x<1", &[("x", "0")], true),
            ("x<1", &[("x", "-5")], true),
            ("x=z", &[], false),
            ("x=y", &[("x", "z")], false),
            ("x=y,z=w", &[("x", "w"), ("z", "w")], false),
            ("x!=y,z!=w", &[("x", "z"), ("z", "w")], false),
            ("x", &[("y", "z")], false),
            ("!x", &[("x", "z")], false),
            ("x>1", &[("x", "0")], false),
            ("x<1", &[("x", "2")], false),
            ("x>1", &[], false),
            ("x>1", &[("x", "v2")], false),
            ("x!=y", &[], true),
            ("x notin (a,b)", &[], true),
            ("x notin (a,b)", &[("x", "a")], false),
            ("x notin (a,b)", &[("x", "c")], true),
            ("x in (a,b)", &[("x", "b")], true),
            ("x in (a,b)", &[], false),
            ("x in ()", &[("x", "")], true),
            ("x in ()", &[("y", "baz")], false),
            ("x notin (),y", &[("y", "")], true),
            ("!x,y", &[("y", "")], true),
            ("x notin (),!y", &[("y", "")], false),
            (
                "foo=bar,foobar=bar,baz=blah",
                &[("foo", "bar"), ("baz", "blah")],
                false,
            ),
            ("foo=bar,baz=blah", &[("foo", "bar"), ("baz", "blah")], true),
        ];
        for (input, labels, want) in cases {
            let sel = Selector::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            let labels = set(labels);
            assert_eq!(sel.matches(&labels), *want, "{input} {labels:?}");
            let hashed: HashMap<String, String> = labels.clone().into_iter().collect();
            assert_eq!(sel.matches(&hashed), *want, "{input} (HashMap)");
            let json: serde_json::Map<String, Value> = labels
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            assert_eq!(sel.matches(&json), *want, "{input} (JSON)");
        }
    }

    #[test]
    fn json_labels_skip_non_strings() {
        let labels = json!({"x": 1});
        let labels = labels.as_object().expect("object");
        assert!(Selector::parse("!x")
            .map(|s| s.matches(labels))
            .unwrap_or(false));
    }

    #[test]
    fn requirement_constructor() {
        use Operator::*;
        let long = "a".repeat(254);
        let cases: &[(&str, Operator, &[&str], bool)] = &[
            ("x", In, &[], false),
            ("x", NotIn, &[], false),
            ("x", In, &["foo"], true),
            ("x", NotIn, &["foo"], true),
            ("x", Exists, &[], true),
            ("x", DoesNotExist, &[], true),
            ("x", Exists, &["a"], false),
            ("x", Equals, &["a", "b"], false),
            ("1foo", In, &["bar"], true),
            ("1234", In, &["bar"], true),
            ("y", GreaterThan, &["1"], true),
            ("z", LessThan, &["6"], true),
            ("foo", GreaterThan, &["bar"], false),
            ("barz", LessThan, &["blah"], false),
            ("x", GreaterThan, &["1", "2"], false),
            (&long, Exists, &[], false),
        ];
        for (key, op, values, ok) in cases {
            let got = Requirement::new(*key, *op, values.iter().map(|s| s.to_string()).collect());
            assert_eq!(got.is_ok(), *ok, "{key} {op} {values:?}: {got:?}");
        }
        assert_eq!(
            Requirement::new("x", In, vec![]).err().as_deref(),
            Some("values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty")
        );
        assert_eq!(
            Requirement::new("x", Exists, vec!["a".into()]).err().as_deref(),
            Some("values: Invalid value: [\"a\"]: values set must be empty for exists and does not exist")
        );
        assert!(Requirement::new("a/b/c", Exists, vec![])
            .err()
            .is_some_and(|e| e.starts_with("key: Invalid value: \"a/b/c\": a valid label key")));
        assert_eq!(req("x", In, &["b", "a"]).values, vec!["a", "b"]);
    }

    #[test]
    fn to_string() {
        use Operator::*;
        let cases: &[(&[(&str, Operator, &[&str])], &str)] = &[
            (
                &[
                    ("x", In, &["abc", "def"]),
                    ("y", NotIn, &["jkl"]),
                    ("z", Exists, &[]),
                ],
                "x in (abc,def),y notin (jkl),z",
            ),
            (
                &[
                    ("x", NotIn, &["abc", "def"]),
                    ("y", NotEquals, &["jkl"]),
                    ("z", DoesNotExist, &[]),
                ],
                "x notin (abc,def),y!=jkl,!z",
            ),
            (
                &[
                    ("x", NotIn, &["abc"]),
                    ("y", In, &["jkl", "mno"]),
                    ("z", NotIn, &[""]),
                ],
                "x notin (abc),y in (jkl,mno),z notin ()",
            ),
            (
                &[
                    ("x", Equals, &["abc"]),
                    ("y", DoubleEquals, &["jkl"]),
                    ("z", NotEquals, &["a"]),
                    ("z", Exists, &[]),
                ],
                "x=abc,y==jkl,z!=a,z",
            ),
            (
                &[
                    ("x", GreaterThan, &["2"]),
                    ("y", LessThan, &["8"]),
                    ("z", Exists, &[]),
                ],
                "x>2,y<8,z",
            ),
        ];
        for (reqs, want) in cases {
            let sel = Selector::from_requirements(
                reqs.iter().map(|(k, op, vs)| req(k, *op, vs)).collect(),
            );
            assert_eq!(sel.to_string(), *want);
        }
    }

    #[test]
    fn everything_and_nothing() {
        let labels = set(&[("x", "y")]);
        assert!(Selector::everything().matches(&labels));
        assert!(Selector::everything().is_empty());
        assert!(!Selector::nothing().matches(&labels));
        assert!(!Selector::nothing().is_empty());
        assert_eq!(Selector::nothing().to_string(), "");
        assert!(!Selector::nothing()
            .add_requirement(req("x", Operator::Exists, &[]))
            .matches(&labels));
        assert!(Selector::everything()
            .add_requirement(req("x", Operator::Exists, &[]))
            .matches(&labels));
        assert!(Selector::from_set([("x", "y")]).matches(&labels));
        assert!(!Selector::from_set([("x", "z")]).matches(&labels));
    }

    #[test]
    fn exact_match() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("", "test", None),
            ("a=b", "test", None),
            ("test=b", "test", Some("b")),
            ("test==b", "test", Some("b")),
            ("test=", "test", Some("")),
            ("test in (b)", "test", Some("b")),
            ("test in (b,c)", "test", None),
            ("test!=b", "test", None),
            ("a=b,test=c", "test", Some("c")),
        ];
        for (input, label, want) in cases {
            let sel = Selector::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(sel.requires_exact_match(label), *want, "{input}");
        }
    }

    #[test]
    fn from_label_selector() {
        let cases: &[(Value, Result<&str, &str>)] = &[
            (json!({}), Ok("")),
            (json!({"matchLabels": {}, "matchExpressions": []}), Ok("")),
            (json!({"matchLabels": {"b": "2", "a": "1"}}), Ok("a=1,b=2")),
            (
                json!({"matchLabels": {"app": "web"}, "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["fe", "be"]},
                    {"key": "env", "operator": "NotIn", "values": ["dev"]},
                    {"key": "gpu", "operator": "Exists"},
                    {"key": "old", "operator": "DoesNotExist"}]}),
                Ok("app=web,env notin (dev),gpu,!old,tier in (be,fe)"),
            ),
            (json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}), Err("\"Gt\" is not a valid pod selector operator")),
            (json!({"matchExpressions": [{"key": "a", "operator": "In"}]}), Err("values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty")),
            (json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}), Err("values: Invalid value: [\"x\"]: values set must be empty for exists and does not exist")),
            (json!({"matchLabels": {"a": "-x"}}), Err("values[0][a]: Invalid value: \"-x\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")),
        ];
        for (input, want) in cases {
            let got = Selector::from_label_selector(input).map(|s| s.to_string());
            let want = want.map(str::to_string).map_err(str::to_string);
            assert_eq!(got, want, "{input}");
        }
        let nothing = Selector::from_label_selector(&Value::Null).expect("null is valid");
        assert!(nothing.is_nothing());
        assert!(!nothing.matches(&set(&[])));
        let everything = Selector::from_label_selector(&json!({})).expect("{} is valid");
        assert!(everything.matches(&set(&[("a", "b")])));
        let sel = Selector::from_label_selector(
            &json!({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["x"]}]}),
        )
        .expect("valid");
        assert!(sel.matches(&set(&[])));
        assert!(!sel.matches(&set(&[("a", "x")])));
    }
}
