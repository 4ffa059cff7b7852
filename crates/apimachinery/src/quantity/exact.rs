//! Resource quantities as the quota code needs them (upstream's
//! apimachinery/pkg/api/resource `Quantity`): parsing, addition,
//! comparison and the canonical text upstream serialises.
//!
//! The value is held as a count of nano-units in an `i128` (upstream keeps
//! an int64 with a base-10 scale, or an arbitrary-precision decimal beyond
//! that). Nano is upstream's finest precision: a value with more digits is
//! rounded up (away from zero) to the next nano, as upstream's parser does.
//! An `i128` of nanos reaches about 1.7·10²⁹, far beyond any real request;
//! text beyond that does not parse.
//!
//! Canonical form, as upstream's `CanonicalizeBytes`: zero is `"0"`; a
//! binary-SI quantity (`Ki` … `Ei`) keeps a binary suffix when its value is
//! a whole number of at least 1024 (`1.5Gi` → `1536Mi`), otherwise it is
//! written as decimal SI (`0.5Ki` → `512`); decimal quantities use the
//! largest exponent that is a multiple of three and loses no digit
//! (`1000m` → `1`, `0.5` → `500m`, `1500000` → `1500k`); exponent form
//! stays exponent form (`1e5` → `100e3`).
//!
//! Equality and ordering compare values only, like upstream's `Cmp` and
//! `apiequality.Semantic`: `1Gi == 1073741824`.

use std::cmp::Ordering;
use std::fmt;

const NANOS_PER_UNIT: i128 = 1_000_000_000;

/// How a quantity is written (upstream's `resource.Format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `12e6`.
    DecimalExponent,
    /// `12Mi`.
    BinarySI,
    /// `12M`, `500m`.
    DecimalSI,
}

/// A quantity: its value and the format it prints in.
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

impl Default for Quantity {
    /// Upstream's `resource.Quantity{Format: DecimalSI}`, the zero every
    /// tracked resource starts from.
    fn default() -> Self {
        Self {
            nanos: 0,
            format: Format::DecimalSI,
        }
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}
impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

/// Decimal SI suffixes by base-10 exponent.
const DECIMAL_SUFFIXES: [(i32, &str); 10] = [
    (-9, "n"),
    (-6, "u"),
    (-3, "m"),
    (0, ""),
    (3, "k"),
    (6, "M"),
    (9, "G"),
    (12, "T"),
    (15, "P"),
    (18, "E"),
];

/// Binary SI suffixes by power of 1024.
const BINARY_SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];

/// What a suffix multiplies by.
enum Multiplier {
    /// 10^n.
    Decimal(i32),
    /// 2^n.
    Binary(u32),
}

fn interpret_suffix(suffix: &str) -> Option<(Multiplier, Format)> {
    if let Some((exp, _)) = DECIMAL_SUFFIXES.iter().find(|(_, s)| *s == suffix) {
        return Some((Multiplier::Decimal(*exp), Format::DecimalSI));
    }
    if let Some(i) = BINARY_SUFFIXES[1..].iter().position(|s| *s == suffix) {
        let power = u32::try_from((i + 1) * 10).ok()?;
        return Some((Multiplier::Binary(power), Format::BinarySI));
    }
    let rest = suffix
        .strip_prefix('e')
        .or_else(|| suffix.strip_prefix('E'))?;
    if rest.is_empty() {
        return None;
    }
    let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let exp: i32 = rest.parse().ok()?;
    Some((Multiplier::Decimal(exp), Format::DecimalExponent))
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

/// `value / divisor`, rounded away from zero.
fn div_away_from_zero(value: i128, divisor: i128) -> i128 {
    let q = value / divisor;
    if value % divisor == 0 {
        q
    } else if value < 0 {
        q - 1
    } else {
        q + 1
    }
}

impl Quantity {
    /// A whole number in decimal SI (upstream's `NewQuantity(n, DecimalSI)`).
    pub fn from_int(n: i64) -> Self {
        Self {
            nanos: i128::from(n) * NANOS_PER_UNIT,
            format: Format::DecimalSI,
        }
    }

    /// `nanos` billionths of a unit in `format` (upstream's
    /// `NewScaledQuantity(n, -9)` with the format set, e.g. CPU nanocores
    /// as `DecimalSI`, or bytes·10⁹ as `BinarySI`).
    pub fn from_nanos(nanos: i128, format: Format) -> Self {
        Self { nanos, format }
    }

    /// The value in billionths of a unit.
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    /// Parses upstream's quantity syntax: `[+-]digits[.digits][suffix]`,
    /// the suffix one of `n u m k M G T P E`, `Ki Mi Gi Ti Pi Ei`, or an
    /// exponent `e<n>`/`E<n>`. `None` when the text is no quantity or out
    /// of range.
    pub fn parse(text: &str) -> Option<Self> {
        let (negative, rest) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after_int) = rest.split_at(int_len);
        let (frac_part, suffix) = match after_int.strip_prefix('.') {
            Some(after_dot) => {
                let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
                after_dot.split_at(frac_len)
            }
            None => ("", after_int),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let (multiplier, format) = interpret_suffix(suffix)?;
        let digits = format!("{int_part}{frac_part}");
        let digits = digits.trim_start_matches('0');
        let mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().ok()?
        };
        let frac_len = u32::try_from(frac_part.len()).ok()?;
        let nanos = match multiplier {
            Multiplier::Decimal(exp) => {
                // value = mantissa · 10^(exp - frac_len); nanos = value · 10^9
                let shift = i64::from(exp) - i64::from(frac_len) + 9;
                if mantissa == 0 {
                    0
                } else if shift >= 0 {
                    mantissa.checked_mul(pow10(u32::try_from(shift).ok()?)?)?
                } else {
                    match u32::try_from(-shift).ok().and_then(pow10) {
                        Some(d) => div_away_from_zero(mantissa, d),
                        // Smaller than any power we can hold: rounds up to 1n.
                        None => 1,
                    }
                }
            }
            Multiplier::Binary(power) => {
                let scaled = mantissa
                    .checked_mul(1i128.checked_shl(power)?)?
                    .checked_mul(NANOS_PER_UNIT)?;
                div_away_from_zero(scaled, pow10(frac_len)?)
            }
        };
        Some(Self {
            nanos: if negative { -nanos } else { nanos },
            format,
        })
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// Adds `other` (upstream's `Quantity.Add`): a zero quantity takes the
    /// format of what is added to it, otherwise the format stays.
    pub fn add(&mut self, other: &Quantity) {
        if self.nanos == 0 {
            self.format = other.format;
        }
        self.nanos = self.nanos.saturating_add(other.nanos);
    }

    /// Rounded up (away from zero) to a whole number, format kept
    /// (upstream's `RoundUp(0)`).
    pub fn round_up_to_integer(&self) -> Quantity {
        Quantity {
            nanos: div_away_from_zero(self.nanos, NANOS_PER_UNIT) * NANOS_PER_UNIT,
            format: self.format,
        }
    }

    fn write_decimal(&self, f: &mut fmt::Formatter<'_>, format: Format) -> fmt::Result {
        let mut mantissa = self.nanos;
        let mut exp: i32 = -9;
        while mantissa % 10 == 0 {
            mantissa /= 10;
            exp += 1;
        }
        // Down to a multiple of three, as upstream's AsCanonicalBytes.
        let r = exp.rem_euclid(3);
        mantissa *= 10i128.pow(r.unsigned_abs());
        exp -= r;
        match format {
            Format::DecimalExponent if exp == 0 => write!(f, "{mantissa}"),
            Format::DecimalExponent => write!(f, "{mantissa}e{exp}"),
            _ => {
                if exp > 18 {
                    mantissa *= 10i128.pow((exp - 18).unsigned_abs());
                    exp = 18;
                }
                let suffix = DECIMAL_SUFFIXES
                    .iter()
                    .find(|(e, _)| *e == exp)
                    .map_or("", |(_, s)| *s);
                write!(f, "{mantissa}{suffix}")
            }
        }
    }
}

impl fmt::Display for Quantity {
    /// The canonical text (upstream's `Quantity.String()`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0");
        }
        let whole = self.nanos % NANOS_PER_UNIT == 0;
        let small = self.nanos.abs() < 1024 * NANOS_PER_UNIT;
        match self.format {
            Format::BinarySI if whole && !small => {
                let mut value = self.nanos / NANOS_PER_UNIT;
                let mut power = 0;
                while power < BINARY_SUFFIXES.len() - 1 && value % 1024 == 0 {
                    value /= 1024;
                    power += 1;
                }
                write!(f, "{value}{}", BINARY_SUFFIXES[power])
            }
            Format::BinarySI => self.write_decimal(f, Format::DecimalSI),
            format => self.write_decimal(f, format),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(text: &str) -> Option<String> {
        Quantity::parse(text).map(|q| q.to_string())
    }

    #[test]
    fn canonical_text_like_upstream() {
        let cases = [
            ("0", "0"),
            ("0Gi", "0"),
            ("00.000", "0"),
            ("1", "1"),
            ("2", "2"),
            ("+3", "3"),
            ("-5", "-5"),
            ("1000m", "1"),
            ("1500m", "1500m"),
            ("0.5", "500m"),
            ("1.5", "1500m"),
            ("100m", "100m"),
            ("0.1", "100m"),
            (".5", "500m"),
            ("1.", "1"),
            ("1000", "1k"),
            ("1500000", "1500k"),
            ("1G", "1G"),
            ("1000M", "1G"),
            ("1Ki", "1Ki"),
            ("1024Ki", "1Mi"),
            ("1Gi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("1000Mi", "1000Mi"),
            ("0.5Ki", "512"),
            ("1023", "1023"),
            ("1e3", "1e3"),
            ("1e5", "100e3"),
            ("1E2", "100"),
            ("12e-3", "12e-3"),
            ("0.0000000001", "1n"),
            ("1.0000000001", "1000000001n"),
            ("1Ei", "1Ei"),
            ("2048Ei", "2048Ei"),
            ("1u", "1u"),
            ("1000n", "1u"),
        ];
        for (input, want) in cases {
            assert_eq!(canonical(input).as_deref(), Some(want), "{input}");
        }
    }

    #[test]
    fn not_quantities() {
        for input in [
            "", "-", "Ki", "1Ko", "1e", "1ee3", "1 ", " 1", "1.2.3", "abc", "1e+",
        ] {
            assert_eq!(canonical(input), None, "{input:?}");
        }
    }

    #[test]
    fn values_compare_regardless_of_format() {
        let q = |s: &str| Quantity::parse(s).unwrap_or_default();
        assert_eq!(q("1Gi"), q("1073741824"));
        assert_eq!(q("1"), q("1000m"));
        assert!(q("1Mi") > q("1M"));
        assert!(q("-1") < q("0"));
    }

    #[test]
    fn addition_keeps_the_first_nonzero_format() {
        let q = |s: &str| Quantity::parse(s).unwrap_or_default();
        let mut sum = Quantity::default();
        sum.add(&q("512Mi"));
        sum.add(&q("512Mi"));
        assert_eq!(sum.to_string(), "1Gi");
        let mut sum = q("100m");
        sum.add(&q("1Gi"));
        assert_eq!(sum.to_string(), "1073741824100m");
        let mut sum = q("250m");
        sum.add(&q("250m"));
        sum.add(&q("500m"));
        assert_eq!(sum.to_string(), "1");
    }

    #[test]
    fn round_up_to_whole_units() {
        let q = |s: &str| Quantity::parse(s).unwrap_or_default();
        assert_eq!(q("1500m").round_up_to_integer().to_string(), "2");
        assert_eq!(q("1Gi").round_up_to_integer().to_string(), "1Gi");
        assert_eq!(q("1.0000001Ki").round_up_to_integer().to_string(), "1025");
    }
}
