//! Cron schedules as upstream's CronJob controller reads them
//! (github.com/robfig/cron/v3 `ParseStandard`, used by
//! pkg/controller/cronjob/utils.go): five fields — minute, hour, day of
//! month, month, day of week — each `*`, `?`, a value, a range `a-b`, a
//! step `*/n`, `a-b/n` or `a/n` (from a to the field's maximum), or a
//! comma-separated list of those; month and weekday names (`JAN`, `mon`);
//! and the descriptors `@yearly`, `@annually`, `@monthly`, `@weekly`,
//! `@daily`, `@midnight`, `@hourly`.
//!
//! As robfig's: when either day field is restricted (does not start with
//! `*` or `?`), a day matches if **either** matches; otherwise both must.
//! Next times are computed on the wall clock of the schedule's time zone.

use jiff::civil::{DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// A parsed schedule: one bit per allowed value of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
}

/// Set on a field written as `*` or `?` (robfig's `starBit`).
const STAR: u64 = 1 << 63;

/// Why a schedule does not parse (robfig's messages, lowercase).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not five fields.
    #[error("expected exactly 5 fields, found {0}: {1}")]
    FieldCount(usize, String),
    /// An `@` descriptor this parser does not know.
    #[error("unrecognized descriptor: {0}")]
    Descriptor(String),
    /// A field's value, range or step is wrong.
    #[error("{0}")]
    Field(String),
}

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

impl Schedule {
    /// Parses a standard five-field spec or a descriptor.
    pub fn parse(spec: &str) -> Result<Schedule, ParseError> {
        let spec = spec.trim();
        if let Some(d) = spec.strip_prefix('@') {
            let fields = match d.to_ascii_lowercase().as_str() {
                "yearly" | "annually" => "0 0 1 1 *",
                "monthly" => "0 0 1 * *",
                "weekly" => "0 0 * * 0",
                "daily" | "midnight" => "0 0 * * *",
                "hourly" => "0 * * * *",
                _ => return Err(ParseError::Descriptor(spec.to_string())),
            };
            return Schedule::parse(fields);
        }
        let fields: Vec<&str> = spec.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = fields[..] else {
            return Err(ParseError::FieldCount(fields.len(), spec.to_string()));
        };
        Ok(Schedule {
            minute: field(minute, &MINUTES)?,
            hour: field(hour, &HOURS)?,
            dom: field(dom, &DOM)?,
            month: field(month, &MONTHS)?,
            dow: field(dow, &DOW)?,
        })
    }

    fn day_matches(&self, dt: DateTime) -> bool {
        let dom = self.dom & (1 << dt.day()) != 0;
        let dow = self.dow & (1 << dt.weekday().to_sunday_zero_offset()) != 0;
        if self.dom & STAR != 0 || self.dow & STAR != 0 {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first activation strictly after `after`, on `tz`'s wall clock;
    /// `None` if there is none within five years (robfig's limit, e.g.
    /// `0 0 30 2 *`).
    pub fn next(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let local = after.to_zoned(tz.clone()).datetime();
        let mut dt = local
            .with()
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()?
            .checked_add(1.minute())
            .ok()?;
        let limit = dt.year().saturating_add(5);
        loop {
            if dt.year() > limit {
                return None;
            }
            if self.month & (1 << dt.month()) == 0 {
                dt = dt
                    .date()
                    .first_of_month()
                    .checked_add(1.month())
                    .ok()?
                    .to_datetime(Time::midnight());
                continue;
            }
            if !self.day_matches(dt) {
                dt = dt
                    .date()
                    .checked_add(1.day())
                    .ok()?
                    .to_datetime(Time::midnight());
                continue;
            }
            if self.hour & (1 << dt.hour()) == 0 {
                dt = dt
                    .with()
                    .minute(0)
                    .build()
                    .ok()?
                    .checked_add(1.hour())
                    .ok()?;
                continue;
            }
            if self.minute & (1 << dt.minute()) == 0 {
                dt = dt.checked_add(1.minute()).ok()?;
                continue;
            }
            // A wall time skipped by a DST jump resolves to the instant after it.
            let ts = tz.to_ambiguous_timestamp(dt).compatible().ok()?;
            if ts > after {
                return Some(ts);
            }
            dt = dt.checked_add(1.minute()).ok()?;
        }
    }
}

fn field(f: &str, b: &Bounds) -> Result<u64, ParseError> {
    let mut bits = 0;
    for part in f.split(',') {
        bits |= range(part, b)?;
    }
    Ok(bits)
}

fn value(s: &str, b: &Bounds) -> Result<u32, ParseError> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        // Month names start at 1, weekday names at 0.
        return u32::try_from(i)
            .map(|i| i + b.min)
            .map_err(|_| ParseError::Field(format!("failed to parse int from {s}")));
    }
    s.parse::<u32>()
        .map_err(|_| ParseError::Field(format!("failed to parse int from {s}")))
}

/// One `range[/step]` of a field (robfig's `getRange`).
fn range(expr: &str, b: &Bounds) -> Result<u64, ParseError> {
    let (range, step) = match expr.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (expr, None),
    };
    let (mut start, mut end, mut extra) = if range == "*" || range == "?" {
        (b.min, b.max, STAR)
    } else {
        match range.split_once('-') {
            Some((lo, hi)) => (value(lo, b)?, value(hi, b)?, 0),
            None => {
                let v = value(range, b)?;
                (v, v, 0)
            }
        }
    };
    let step = match step {
        None => 1,
        Some(s) => {
            let step = s
                .parse::<u32>()
                .map_err(|_| ParseError::Field(format!("failed to parse int from {s}")))?;
            // "N/step" means "N-max/step".
            if !range.contains('-') && range != "*" && range != "?" {
                end = b.max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
    };
    if start < b.min {
        return Err(ParseError::Field(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        )));
    }
    if end > b.max {
        return Err(ParseError::Field(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        )));
    }
    if start > end {
        return Err(ParseError::Field(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        )));
    }
    if step == 0 {
        return Err(ParseError::Field(format!(
            "step of range should be a positive number: {expr}"
        )));
    }
    let mut bits = extra;
    while start <= end {
        bits |= 1 << start;
        start += step;
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        match s.parse() {
            Ok(t) => t,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn next_activations() {
        let utc = TimeZone::UTC;
        let cases: &[(&str, &str, &str)] = &[
            ("* * * * *", "2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z"),
            ("* * * * *", "2024-01-01T00:00:30Z", "2024-01-01T00:01:00Z"),
            (
                "*/15 * * * *",
                "2024-01-01T00:16:00Z",
                "2024-01-01T00:30:00Z",
            ),
            (
                "5/20 * * * *",
                "2024-01-01T00:26:00Z",
                "2024-01-01T00:45:00Z",
            ),
            (
                "0 9-17/4 * * *",
                "2024-01-01T10:00:00Z",
                "2024-01-01T13:00:00Z",
            ),
            (
                "30 2 * * MON",
                "2024-01-01T03:00:00Z",
                "2024-01-08T02:30:00Z",
            ),
            (
                "0 0 1,15 * *",
                "2024-01-02T00:00:00Z",
                "2024-01-15T00:00:00Z",
            ),
            (
                "0 0 * FEB *",
                "2024-03-01T00:00:00Z",
                "2025-02-01T00:00:00Z",
            ),
            ("0 0 29 2 *", "2024-03-01T00:00:00Z", "2028-02-29T00:00:00Z"),
            // A restricted day-of-month and day-of-week: either matches.
            (
                "0 0 13 * FRI",
                "2024-01-01T00:00:00Z",
                "2024-01-05T00:00:00Z",
            ),
            // `*/2` in day-of-week is a restriction (no star bit): OR again.
            (
                "0 0 1 * */2",
                "2024-01-01T00:00:00Z",
                "2024-01-02T00:00:00Z",
            ),
            ("@hourly", "2024-01-01T00:59:59Z", "2024-01-01T01:00:00Z"),
            ("@daily", "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"),
            ("@midnight", "2024-01-01T23:00:00Z", "2024-01-02T00:00:00Z"),
            ("@weekly", "2024-01-01T00:00:00Z", "2024-01-07T00:00:00Z"),
            ("@monthly", "2024-01-31T00:00:00Z", "2024-02-01T00:00:00Z"),
            ("@yearly", "2024-06-01T00:00:00Z", "2025-01-01T00:00:00Z"),
            ("@annually", "2024-06-01T00:00:00Z", "2025-01-01T00:00:00Z"),
        ];
        for (spec, after, want) in cases {
            let s = match Schedule::parse(spec) {
                Ok(s) => s,
                Err(e) => panic!("{spec}: {e}"),
            };
            assert_eq!(
                s.next(ts(after), &utc),
                Some(ts(want)),
                "{spec} after {after}"
            );
        }
    }

    #[test]
    fn next_in_a_time_zone() {
        let ny = match TimeZone::get("America/New_York") {
            Ok(tz) => tz,
            Err(e) => panic!("tzdata: {e}"),
        };
        let s = Schedule::parse("0 9 * * *").ok();
        // 09:00 EST is 14:00 UTC; after DST (10 March 2024) it is 13:00 UTC.
        assert_eq!(
            s.as_ref()
                .and_then(|s| s.next(ts("2024-01-01T00:00:00Z"), &ny)),
            Some(ts("2024-01-01T14:00:00Z"))
        );
        assert_eq!(
            s.as_ref()
                .and_then(|s| s.next(ts("2024-03-10T00:00:00Z"), &ny)),
            Some(ts("2024-03-10T13:00:00Z"))
        );
    }

    #[test]
    fn never_matching_has_no_next() {
        let s = Schedule::parse("0 0 30 2 *").ok();
        assert_eq!(
            s.and_then(|s| s.next(ts("2024-01-01T00:00:00Z"), &TimeZone::UTC)),
            None
        );
    }

    #[test]
    fn bad_specs() {
        let cases = [
            ("* * * *", "expected exactly 5 fields, found 4: * * * *"),
            ("@every5", "unrecognized descriptor: @every5"),
            ("60 * * * *", "end of range (60) above maximum (59): 60"),
            ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
            (
                "5-1 * * * *",
                "beginning of range (5) beyond end of range (1): 5-1",
            ),
            (
                "*/0 * * * *",
                "step of range should be a positive number: */0",
            ),
            ("x * * * *", "failed to parse int from x"),
            ("* * * * 7", "end of range (7) above maximum (6): 7"),
        ];
        for (spec, want) in cases {
            assert_eq!(
                Schedule::parse(spec).map_err(|e| e.to_string()),
                Err(want.to_string()),
                "{spec}"
            );
        }
    }
}
