//! Resource quantities as numbers, enough for cgroup settings and QoS
//! (upstream's `resource.Quantity` `MilliValue`/`Value`). Parsing is
//! lenient: a malformed quantity reads as absent, since the API server
//! validated it already.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The quantity's value as a float (`"100m"` → 0.1, `"1Gi"` → 1073741824).
pub fn parse(q: &Quantity) -> Option<f64> {
    let s = q.0.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        e if e.starts_with(['e', 'E']) => 10f64.powi(e[1..].parse().ok()?),
        _ => return None,
    };
    Some(n * mult)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn suffixes() {
        let p = |s: &str| parse(&Quantity(s.into()));
        assert_eq!(p("100m"), Some(0.1));
        assert_eq!(p("2"), Some(2.0));
        assert_eq!(p("1Gi"), Some(1073741824.0));
        assert_eq!(p("128M"), Some(128e6));
        assert_eq!(p("1e3"), Some(1000.0));
        assert_eq!(p("bogus"), None);
    }
}
