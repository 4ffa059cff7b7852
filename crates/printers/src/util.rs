//! Helpers every printer shares: tolerant JSON access, upstream's
//! `duration.HumanDuration` and `translateTimestampSince`, label and label
//! selector formatting (`labels.FormatLabels`, `metav1.FormatLabelSelector`),
//! `layoutContainerCells` and the "`a,b,c + N more...`" lists.
//!
//! Objects may be partial: every accessor answers a zero value (empty string,
//! 0, empty slice) where upstream's typed structs would hold one.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, Utc};
use serde_json::{Map, Value};

/// The value at `path` (object keys), if every step exists.
pub(crate) fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, key| cur.get(*key))
}

/// The string at `path`, or "" (upstream's zero value).
pub(crate) fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    get(v, path).and_then(Value::as_str).unwrap_or("")
}

/// The string at `path` when present (a `*string` upstream).
pub(crate) fn opt_str<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(v, path).and_then(Value::as_str)
}

/// An integer at `path` when present; floats are truncated like Go's conversion.
pub(crate) fn opt_int(v: &Value, path: &[&str]) -> Option<i64> {
    let n = get(v, path)?;
    n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))
}

/// The integer at `path`, or 0.
pub(crate) fn int_at(v: &Value, path: &[&str]) -> i64 {
    opt_int(v, path).unwrap_or(0)
}

/// The boolean at `path` when present (a `*bool` upstream).
pub(crate) fn opt_bool(v: &Value, path: &[&str]) -> Option<bool> {
    get(v, path).and_then(Value::as_bool)
}

/// The array at `path`, or an empty slice.
pub(crate) fn arr_at<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    get(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The object at `path`, if it is one (a non-nil pointer to a struct upstream).
pub(crate) fn obj_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Map<String, Value>> {
    get(v, path).and_then(Value::as_object)
}

/// Whether a struct pointer at `path` is set (`x != nil` upstream).
pub(crate) fn is_set(v: &Value, path: &[&str]) -> bool {
    obj_at(v, path).is_some()
}

/// Entries of a map or items of a list at `path` (`len(x)` upstream).
pub(crate) fn len_at(v: &Value, path: &[&str]) -> usize {
    match get(v, path) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    }
}

/// `metadata.name`.
pub(crate) fn name(obj: &Value) -> &str {
    apimachinery::meta::name(obj)
}

/// `metadata.annotations[key]`.
pub(crate) fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    get(obj, &["metadata", "annotations", key]).and_then(Value::as_str)
}

/// The AGE cell: time since `metadata.creationTimestamp`.
pub(crate) fn age(obj: &Value, now: DateTime<Utc>) -> Value {
    Value::from(translate_timestamp_since(
        opt_str(obj, &["metadata", "creationTimestamp"]),
        now,
    ))
}

/// A string cell.
pub(crate) fn cell(s: impl Into<String>) -> Value {
    Value::String(s.into())
}

/// `s`, or `fallback` when `s` is empty.
pub(crate) fn or<'a>(s: &'a str, fallback: &'a str) -> &'a str {
    if s.is_empty() {
        fallback
    } else {
        s
    }
}

/// A quantity rendered like `resource.Quantity.String()`; the server keeps
/// quantities in canonical form, so the stored text is printed as is. An unset
/// quantity is the zero quantity "0".
pub(crate) fn quantity(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".to_string(),
    }
}

/// A `*resource.Quantity`, which prints "<nil>" when unset.
pub(crate) fn quantity_ptr(v: Option<&Value>) -> String {
    match v {
        Some(Value::Null) | None => "<nil>".to_string(),
        some => quantity(some),
    }
}

/// An `IntOrString` as its `String()`.
pub(crate) fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// Parses a `metav1.Time` / `metav1.MicroTime`; the zero time reads as unset.
pub(crate) fn parse_time(ts: &str) -> Option<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(ts).ok()?.with_timezone(&Utc);
    // Go's zero time.Time serialises as 0001-01-01T00:00:00Z; IsZero() treats it as unset.
    if t.year() == 1 && t.timestamp() == ZERO_TIME_UNIX {
        return None;
    }
    Some(t)
}

/// Unix seconds of 0001-01-01T00:00:00Z.
const ZERO_TIME_UNIX: i64 = -62_135_596_800;

/// Upstream's `duration.HumanDuration`: ~2-3 significant figures.
pub fn human_duration(d: Duration) -> String {
    // Allow a deviation of up to two seconds (exclusive) to tolerate clock skew.
    let seconds = d.num_seconds();
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = d.num_minutes();
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = d.num_hours();
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        return format!("{hours}h{m}m");
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        return format!("{}d{}h", hours / 24, h);
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        return format!("{}y{}d", hours / 24 / 365, dy);
    }
    format!("{}y", hours / 24 / 365)
}

/// Upstream's `translateTimestampSince`: "<unknown>" for an unset time.
pub fn translate_timestamp_since(ts: Option<&str>, now: DateTime<Utc>) -> String {
    match ts.and_then(parse_time) {
        Some(t) => human_duration(now.signed_duration_since(t)),
        None => "<unknown>".to_string(),
    }
}

/// `labels.FormatLabels`: sorted `k=v` pairs, "<none>" when empty.
pub(crate) fn format_labels(m: Option<&Map<String, Value>>) -> String {
    let s = labels_string(m);
    if s.is_empty() {
        "<none>".to_string()
    } else {
        s
    }
}

/// `labels.Set.String()`: sorted `k=v` pairs joined by ",".
fn labels_string(m: Option<&Map<String, Value>>) -> String {
    let Some(m) = m else { return String::new() };
    let sorted: BTreeMap<&str, &str> = m
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
        .collect();
    sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The outcome of upstream's `metav1.LabelSelectorAsSelector(...).String()`.
pub(crate) enum Selector {
    /// A nil selector (`labels.Nothing()`) or an empty one (`labels.Everything()`):
    /// both print as "".
    Empty,
    /// The requirements, printed.
    Requirements(String),
    /// The selector cannot be converted (unknown operator, wrong value count).
    Invalid,
}

/// Converts a `metav1.LabelSelector` (JSON) the way `LabelSelectorAsSelector`
/// does and prints it like `labels.Selector.String()`: requirements sorted by
/// key, values of `in`/`notin` sorted.
pub(crate) fn label_selector(sel: Option<&Value>) -> Selector {
    let Some(sel) = sel.filter(|s| s.is_object()) else {
        return Selector::Empty;
    };
    let match_labels = obj_at(sel, &["matchLabels"]);
    let exprs = arr_at(sel, &["matchExpressions"]);
    if match_labels.map_or(0, Map::len) + exprs.len() == 0 {
        return Selector::Empty;
    }
    let mut reqs: Vec<(String, String)> = Vec::new();
    for (k, v) in match_labels.into_iter().flatten() {
        if k.is_empty() {
            return Selector::Invalid;
        }
        reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
    }
    for e in exprs {
        let key = str_at(e, &["key"]);
        let mut values: Vec<&str> = arr_at(e, &["values"])
            .iter()
            .map(|v| v.as_str().unwrap_or(""))
            .collect();
        values.sort_unstable();
        if key.is_empty() {
            return Selector::Invalid;
        }
        let text = match str_at(e, &["operator"]) {
            "In" | "NotIn" if values.is_empty() => return Selector::Invalid,
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" | "DoesNotExist" if !values.is_empty() => return Selector::Invalid,
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => return Selector::Invalid,
        };
        reqs.push((key.to_string(), text));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Selector::Requirements(
        reqs.into_iter()
            .map(|(_, t)| t)
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// `metav1.FormatLabelSelector`: "<none>" when empty, "<error>" when invalid.
pub(crate) fn format_label_selector(sel: Option<&Value>) -> String {
    match label_selector(sel) {
        Selector::Empty => "<none>".to_string(),
        Selector::Requirements(s) if s.is_empty() => "<none>".to_string(),
        Selector::Requirements(s) => s,
        Selector::Invalid => "<error>".to_string(),
    }
}

/// `layoutContainerCells`: container names and images, each joined by ",".
pub(crate) fn container_cells(containers: &[Value]) -> (Value, Value) {
    let names: Vec<&str> = containers.iter().map(|c| str_at(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_at(c, &["image"])).collect();
    (cell(names.join(",")), cell(images.join(",")))
}

/// `listWithMoreString`: "a,b,c + N more...", "<unset>" when empty.
pub(crate) fn list_with_more(list: &[String], more: bool, count: usize, max: usize) -> String {
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count.saturating_sub(max));
    }
    if ret.is_empty() {
        return "<unset>".to_string();
    }
    ret
}

/// Go's `net.JoinHostPort`.
pub(crate) fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Upstream's `printBoolPtr`: "True", "False" or "<unset>".
pub(crate) fn bool_ptr(b: Option<bool>) -> String {
    match b {
        Some(true) => "True".to_string(),
        Some(false) => "False".to_string(),
        None => "<unset>".to_string(),
    }
}

/// Whether `conditions` holds `type_` with status "True" (the first match decides).
pub(crate) fn has_condition(conditions: &[Value], type_: &str) -> bool {
    conditions
        .iter()
        .find(|c| str_at(c, &["type"]) == type_)
        .is_some_and(|c| str_at(c, &["status"]) == "True")
}

/// A fixed "now" for tests, and timestamps relative to it.
#[cfg(test)]
pub(crate) mod testing {
    use chrono::{DateTime, Duration, Utc};

    pub(crate) fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    /// The RFC 3339 time `secs` seconds before [`now`].
    pub(crate) fn ago(secs: i64) -> String {
        (now() - Duration::seconds(secs)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn human_duration_matches_upstream() {
        let cases = [
            (-3, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (182, "3m2s"),
            (600, "10m"),
            (179 * 60 + 59, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 5 * 60, "3h5m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (2 * 86400, "2d"),
            (2 * 86400 + 3 * 3600, "2d3h"),
            (8 * 86400, "8d"),
            (729 * 86400, "729d"),
            (730 * 86400, "2y"),
            (731 * 86400, "2y1d"),
            (8 * 365 * 86400, "8y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(Duration::seconds(secs)), want, "{secs}s");
        }
        assert_eq!(human_duration(Duration::milliseconds(-1500)), "0s");
    }

    #[test]
    fn translate_timestamp_since_handles_unset_and_zero() {
        let now = parse_time("2024-01-01T00:10:00Z").unwrap_or_default();
        assert_eq!(translate_timestamp_since(None, now), "<unknown>");
        assert_eq!(
            translate_timestamp_since(Some("0001-01-01T00:00:00Z"), now),
            "<unknown>"
        );
        assert_eq!(translate_timestamp_since(Some("garbage"), now), "<unknown>");
        assert_eq!(
            translate_timestamp_since(Some("2024-01-01T00:05:00Z"), now),
            "5m"
        );
        assert_eq!(
            translate_timestamp_since(Some("2024-01-01T00:09:55.123456Z"), now),
            "4s"
        );
    }

    #[test]
    fn label_selectors_print_like_upstream() {
        let cases = [
            (json!(null), "<none>"),
            (json!({}), "<none>"),
            (json!({"matchLabels": {"b": "2", "a": "1"}}), "a=1,b=2"),
            (
                json!({"matchLabels": {"app": "x"}, "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["web", "api"]},
                    {"key": "env", "operator": "DoesNotExist"},
                    {"key": "zone", "operator": "NotIn", "values": ["b"]},
                    {"key": "gpu", "operator": "Exists"}
                ]}),
                "app=x,!env,gpu,tier in (api,web),zone notin (b)",
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}),
                "<error>",
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
                "<error>",
            ),
        ];
        for (sel, want) in cases {
            let sel = if sel.is_null() { None } else { Some(&sel) };
            assert_eq!(format_label_selector(sel), want);
        }
        assert_eq!(format_labels(None), "<none>");
        assert_eq!(
            format_labels(json!({"b": "2", "a": "1"}).as_object()),
            "a=1,b=2"
        );
    }
}
