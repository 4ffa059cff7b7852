//! Resource quantities as numbers, enough for cgroup settings and QoS
//! (upstream's `resource.Quantity` `MilliValue`/`Value`). Parsing is
//! lenient: a malformed quantity reads as absent, since the API server
//! validated it already.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The quantity's value as a float (`"100m"` → 0.1, `"1Gi"` → 1073741824).
pub fn parse(q: &Quantity) -> Option<f64> {
    apimachinery::quantity::parse_f64(&q.0)
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
