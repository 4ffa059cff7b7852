//! Resource quantities (upstream's `api/resource.Quantity`): [`Quantity`]
//! exact, with upstream's canonical text (`exact.rs`), and [`parse_f64`]
//! as an approximate number (`AsApproximateFloat64`): decimal SI suffixes
//! (`n u m k M G T P E`), binary ones (`Ki` … `Ei`) and decimal exponents
//! (`1e3`); `None` when the text is no quantity.

mod exact;

pub use exact::{Format, Quantity};

/// The quantity's value (`"100m"` → 0.1, `"1Gi"` → 1073741824).
pub fn parse_f64(text: &str) -> Option<f64> {
    let s = text.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let base: f64 = num.parse().ok()?;
    // Decimal suffixes as powers of ten; negative ones divide so that
    // `500n` is the nearest float to 5e-7 rather than 500 × 1e-9.
    let v = match suffix {
        "Ki" => base * 1024.0,
        "Mi" => base * 1024f64.powi(2),
        "Gi" => base * 1024f64.powi(3),
        "Ti" => base * 1024f64.powi(4),
        "Pi" => base * 1024f64.powi(5),
        "Ei" => base * 1024f64.powi(6),
        _ => {
            let exp = match suffix {
                "" => 0,
                "n" => -9,
                "u" => -6,
                "m" => -3,
                "k" => 3,
                "M" => 6,
                "G" => 9,
                "T" => 12,
                "P" => 15,
                "E" => 18,
                e if e.starts_with(['e', 'E']) => e[1..].parse::<i32>().ok()?,
                _ => return None,
            };
            if exp >= 0 {
                base * 10f64.powi(exp)
            } else {
                base / 10f64.powi(-exp)
            }
        }
    };
    v.is_finite().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::parse_f64;

    #[test]
    fn suffixes_and_exponents() {
        assert_eq!(parse_f64("100m"), Some(0.1));
        assert_eq!(parse_f64("1Gi"), Some(1073741824.0));
        assert_eq!(parse_f64("1Ei"), Some(1024f64.powi(6)));
        assert_eq!(parse_f64("2E"), Some(2e18));
        assert_eq!(parse_f64("1e3"), Some(1000.0));
        assert_eq!(parse_f64("500n"), Some(5e-7));
        assert_eq!(parse_f64(" 3 "), Some(3.0));
        assert_eq!(parse_f64("1Gb"), None);
        assert_eq!(parse_f64("Gi"), None);
    }
}
