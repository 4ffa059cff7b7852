//! `$(VAR)` references in env values, commands and args (upstream's
//! `third_party/forked/golang/expansion/expand.go`): `$(NAME)` becomes the
//! variable's value when it is defined and stays as written when not;
//! `$$` is an escaped `$`; anything else is kept.

/// Expands `input` with `lookup`.
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut last = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && i + 1 < bytes.len() {
            out.push_str(&input[last..i]);
            let (read, advance) = try_read_variable(&input[i + 1..], &lookup);
            out.push_str(&read);
            i += 1 + advance;
            last = i;
            continue;
        }
        i += 1;
    }
    out.push_str(&input[last..]);
    out
}

/// After a `$`: what to write and how many bytes were consumed.
fn try_read_variable(rest: &str, lookup: &impl Fn(&str) -> Option<String>) -> (String, usize) {
    match rest.as_bytes().first() {
        Some(b'$') => ("$".into(), 1),
        Some(b'(') => match rest.find(')') {
            Some(end) => {
                let name = &rest[1..end];
                let value = lookup(name).unwrap_or_else(|| format!("$({name})"));
                (value, end + 1)
            }
            // Unclosed: upstream keeps `$(` and the rest as written.
            None => (format!("${rest}"), rest.len()),
        },
        _ => ("$".into(), 0),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "VAR_A" => Some("A".into()),
            "VAR_EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn upstream_cases() {
        for (input, want) in [
            ("$(VAR_A)", "A"),
            ("___$(VAR_A)___", "___A___"),
            ("$(VAR_A)-$(VAR_A)", "A-A"),
            ("$(VAR_EMPTY)", ""),
            ("$(UNDEFINED)", "$(UNDEFINED)"),
            ("$$(VAR_A)", "$(VAR_A)"),
            ("$$$(VAR_A)", "$A"),
            ("$VAR_A", "$VAR_A"),
            ("$(VAR_A", "$(VAR_A"),
            ("foo$", "foo$"),
            ("no refs", "no refs"),
            ("$()", "$()"),
        ] {
            assert_eq!(expand(input, env), want, "input {input:?}");
        }
    }
}
