//! Stored objects as bytes: values are kept without their resourceVersion,
//! so serving one means adding it. Splicing `"resourceVersion":"<rev>"` into
//! the top-level `metadata` object of the stored JSON avoids parsing and
//! re-serialising every object of a quorum LIST or GET.

/// The stored JSON with `metadata.resourceVersion` set to `revision`, or
/// `None` when the bytes are not an object with an object `metadata` (the
/// caller then takes the parsing path).
pub fn with_resource_version(data: &[u8], revision: i64) -> Option<Vec<u8>> {
    let at = metadata_body(data)?;
    let rv = format!("\"resourceVersion\":\"{revision}\"");
    let empty = data.get(skip_ws(data, at)?) == Some(&b'}');
    let mut out = Vec::with_capacity(data.len() + rv.len() + 1);
    out.extend_from_slice(&data[..at]);
    out.extend_from_slice(rv.as_bytes());
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(&data[at..]);
    Some(out)
}

fn skip_ws(d: &[u8], mut i: usize) -> Option<usize> {
    while i < d.len() && matches!(d[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    (i < d.len()).then_some(i)
}

/// The index just past a string that starts at `i` (`d[i] == '"'`).
fn skip_string(d: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    while i < d.len() {
        match d[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// The index just past the JSON value that starts at `i`.
fn skip_value(d: &[u8], i: usize) -> Option<usize> {
    match *d.get(i)? {
        b'"' => skip_string(d, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < d.len() {
                match d[j] {
                    b'"' => {
                        j = skip_string(d, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < d.len() && !matches!(d[j], b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')
            {
                j += 1;
            }
            Some(j)
        }
    }
}

/// The index just inside the `{` of the top-level `metadata` value.
fn metadata_body(d: &[u8]) -> Option<usize> {
    let mut i = skip_ws(d, 0)?;
    if d[i] != b'{' {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(d, i)?;
        match d[i] {
            b'}' => return None,
            b',' => {
                i += 1;
                continue;
            }
            b'"' => {}
            _ => return None,
        }
        let key_end = skip_string(d, i)?;
        let key = &d[i + 1..key_end - 1];
        i = skip_ws(d, key_end)?;
        if d[i] != b':' {
            return None;
        }
        i = skip_ws(d, i + 1)?;
        if key == b"metadata" {
            return (d[i] == b'{').then_some(i + 1);
        }
        i = skip_value(d, i)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn spliced(input: &str, rev: i64) -> Option<Value> {
        with_resource_version(input.as_bytes(), rev)
            .map(|b| serde_json::from_slice(&b).expect("valid JSON"))
    }

    #[test]
    fn adds_the_resource_version_to_the_top_level_metadata_only() {
        assert_eq!(
            spliced(
                r#"{"aaa":{"metadata":{"x":1}},"kind":"K","metadata":{"name":"n"},"spec":{"s":"\"metadata\":{"}}"#,
                7
            ),
            Some(
                json!({"aaa": {"metadata": {"x": 1}}, "kind": "K", "metadata": {"resourceVersion": "7", "name": "n"}, "spec": {"s": "\"metadata\":{"}})
            )
        );
        assert_eq!(
            spliced(r#" { "metadata" : { } } "#, 3),
            Some(json!({"metadata": {"resourceVersion": "3"}}))
        );
        assert_eq!(
            spliced(
                r#"{"a":[1,{"b":"}"}],"n":null,"t":true,"metadata":{"uid":"u"}}"#,
                9
            ),
            Some(
                json!({"a": [1, {"b": "}"}], "n": null, "t": true, "metadata": {"resourceVersion": "9", "uid": "u"}})
            )
        );
    }

    #[test]
    fn anything_else_takes_the_slow_path() {
        for bad in [
            r#"{"kind":"K"}"#,
            r#"{"metadata":null}"#,
            "[]",
            "",
            r#"{"metadata":{"#,
            r#"{"a":"unterminated"#,
        ] {
            assert_eq!(with_resource_version(bad.as_bytes(), 1), None, "{bad}");
        }
    }
}
