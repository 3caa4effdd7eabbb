//! Report periods: a checked time range and the local days or months it is shown in.

use crate::error::DomainError;
use crate::stats::{local_day_start, local_month_start};

/// A day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;
/// The longest range one report covers (a little over three years).
pub const MAX_SPAN_MS: i64 = 1_100 * DAY_MS;
/// The last instant a report may name: the end of the year 9999.
pub const MAX_INSTANT_MS: i64 = 253_402_300_799_999;

/// How a report's rows are grouped in time.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// Local calendar days.
    Day,
    /// Local calendar months.
    Month,
}

/// A half-open time range `[from, to)` in unix ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// First instant included.
    pub from: i64,
    /// First instant after the range.
    pub to: i64,
}

impl Range {
    /// A range a report may cover: within 1970 to 9999, not empty, not reversed, not longer
    /// than [`MAX_SPAN_MS`].
    pub fn new(from: i64, to: i64) -> Result<Range, DomainError> {
        for (field, t) in [("from", from), ("to", to)] {
            if !(0..=MAX_INSTANT_MS).contains(&t) {
                return Err(DomainError::invalid(
                    field,
                    "must be an instant in unix milliseconds between 1970 and the year 9999",
                ));
            }
        }
        if from >= to {
            return Err(DomainError::invalid("from", "must be before `to`"));
        }
        if to.saturating_sub(from) > MAX_SPAN_MS {
            return Err(DomainError::invalid(
                "to",
                "a report covers at most 1100 days; ask for a shorter range",
            ));
        }
        Ok(Range { from, to })
    }

    /// What a report shows when no range is asked for: the last 30 local days by day, the
    /// last 12 local months by month.
    pub fn default_for(period: Period, now: i64, offset_min: i32) -> Range {
        match period {
            Period::Day => Range::last_days(now, offset_min, 30),
            Period::Month => Range::last_months(now, offset_min, 12),
        }
    }

    /// The last `days` local days up to and including the one holding `now`.
    pub fn last_days(now: i64, offset_min: i32, days: i64) -> Range {
        let today = local_day_start(now, offset_min);
        Range {
            from: today - (days.max(1) - 1) * DAY_MS,
            to: today + DAY_MS,
        }
    }

    /// The last `months` local months up to and including the one holding `now`.
    pub fn last_months(now: i64, offset_min: i32, months: i64) -> Range {
        let mut from = local_month_start(now, offset_min);
        for _ in 1..months.max(1) {
            from = local_month_start(from - 1, offset_min);
        }
        Range {
            from,
            to: local_day_start(now, offset_min) + DAY_MS,
        }
    }
}

/// The start of the local day or month holding `t`.
pub fn start_of(t: i64, period: Period, offset_min: i32) -> i64 {
    match period {
        Period::Day => local_day_start(t, offset_min),
        Period::Month => local_month_start(t, offset_min),
    }
}

/// Every period start that overlaps `range`, oldest first: the x axis of a chart, so days
/// without money still show as zero.
pub fn starts(range: Range, period: Period, offset_min: i32) -> Vec<i64> {
    let mut out = Vec::new();
    let mut t = start_of(range.from, period, offset_min);
    while t < range.to {
        out.push(t);
        // A day past the start is always inside the next period's first day or later.
        let next = match period {
            Period::Day => t + DAY_MS,
            Period::Month => start_of(t + 32 * DAY_MS, period, offset_min),
        };
        t = next;
    }
    out
}

/// SQL for the local day number (days since the epoch, local) of column `col`, with the
/// offset in milliseconds bound at `offset_param`. Both engines divide BIGINTs as integers.
pub(crate) fn day_number_sql(col: &str, offset_param: &str) -> String {
    format!("CAST(({col} + {offset_param}) / {DAY_MS} AS BIGINT)")
}

/// The start (unix ms) of local day number `n`.
pub(crate) fn day_number_start(n: i64, offset_min: i32) -> i64 {
    n * DAY_MS - offset_min as i64 * 60_000
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const WIB: i32 = 420;

    #[test]
    fn ranges_are_checked() {
        assert!(Range::new(10, 10).is_err());
        assert!(Range::new(10, 5).is_err());
        assert!(Range::new(0, MAX_SPAN_MS + 1).is_err());
        assert!(Range::new(i64::MIN, i64::MIN + 1).is_err());
        assert!(Range::new(MAX_INSTANT_MS, MAX_INSTANT_MS + 1).is_err());
        assert_eq!(Range::new(0, 1).unwrap(), Range { from: 0, to: 1 });
    }

    #[test]
    fn last_months_starts_on_a_local_first_of_the_month() {
        // 2026-11-25 03:00 WIB.
        let now = 1_795_550_400_000;
        let r = Range::last_months(now, WIB, 3);
        let s = starts(r, Period::Month, WIB);
        assert_eq!(s.len(), 3);
        // 2026-09-01 00:00 WIB = 2026-08-31 17:00 UTC.
        assert_eq!(s[0], 1_788_195_600_000);
        assert_eq!(s[2], local_month_start(now, WIB));
    }

    proptest! {
        #[test]
        fn starts_cover_the_range_in_order(from in 0i64..4_000_000_000_000, span in 1i64..400 * DAY_MS,
                                           monthly in any::<bool>(), offset in -720i32..=840) {
            let period = if monthly { Period::Month } else { Period::Day };
            let r = Range { from, to: from + span };
            let s = starts(r, period, offset);
            prop_assert!(!s.is_empty());
            prop_assert!(s[0] <= from);
            prop_assert!(*s.last().unwrap() < r.to);
            for w in s.windows(2) {
                prop_assert!(w[0] < w[1]);
                // Every instant in between belongs to the earlier period.
                prop_assert_eq!(start_of(w[1] - 1, period, offset), w[0]);
                prop_assert_eq!(start_of(w[1], period, offset), w[1]);
            }
        }

        #[test]
        fn day_numbers_match_local_days(t in 0i64..4_000_000_000_000, offset in -720i32..=840) {
            let n = (t + offset as i64 * 60_000).div_euclid(DAY_MS);
            prop_assert_eq!(day_number_start(n, offset), local_day_start(t, offset));
        }
    }
}
