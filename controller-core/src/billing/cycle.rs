//! Billing cycles and proration.
//!
//! A cycle runs from one billing day to the same day of the next month, `[start, end)` in the
//! operator's local calendar dates; billing days are limited to 1..=28 so every month has one.
//! Local dates come from unix milliseconds through a fixed UTC offset (WIB is +420 minutes),
//! because the operator bills by its own calendar, not by UTC days.
//!
//! Proration is by whole days: `days / cycle_days` of the monthly amount, rounded half away
//! from zero like tax (see [`crate::tax`]). A change or start on date `d` counts the
//! days `d..cycle.end`, so a change on the cycle's first day moves the whole month and one on
//! its last day moves a single day.
//!
//! Results are exact for amounts within [`crate::tax::MAX_AMOUNT`]. Dates beyond the
//! range of [`time::Date`] (years -9999..=9999) saturate at its ends instead of panicking.

use time::{Date, Month};

use crate::tax::round_div;

const MS_PER_MINUTE: i64 = 60_000;
const MS_PER_DAY: i64 = 86_400_000;
/// Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

/// The highest billing day: the last day every month has.
pub const MAX_BILLING_DAY: u8 = 28;

/// The local calendar date at unix time `ms` in a zone `offset_minutes` east of UTC.
pub fn local_date(ms: i64, offset_minutes: i32) -> Date {
    // i128 so that extreme inputs saturate at Date's range instead of overflowing.
    let local = i128::from(ms) + i128::from(offset_minutes) * i128::from(MS_PER_MINUTE);
    let day = local.div_euclid(i128::from(MS_PER_DAY));
    date_from_julian_day(day + i128::from(UNIX_EPOCH_JULIAN_DAY))
}

/// Unix ms of 00:00 local time on `date` in a zone `offset_minutes` east of UTC.
pub fn local_midnight_ms(date: Date, offset_minutes: i32) -> i64 {
    // Cannot overflow: Date spans about 7.3 million days, i.e. under 10^15 ms.
    (i64::from(date.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY) * MS_PER_DAY
        - i64::from(offset_minutes) * MS_PER_MINUTE
}

/// One billing period: [start, end) in local dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cycle {
    /// The first day of the period.
    pub start: Date,
    /// The first day after the period, which is the next period's start.
    pub end: Date,
}

impl Cycle {
    /// The number of days in the period (28..=31 for a whole month; 0 if `end <= start`).
    pub fn days(&self) -> u32 {
        days_between(self.start, self.end)
    }

    /// Whether `d` is one of the period's days.
    pub fn contains(&self, d: Date) -> bool {
        self.start <= d && d < self.end
    }

    /// The period after this one, ending on the first `billing_day` after `self.end`.
    ///
    /// With an unchanged billing day that is one month later. After the operator moves the
    /// billing day, the next period is a short stub up to the new day, so periods still chain
    /// without gap or overlap and the customer is never billed twice for a day.
    pub fn next(&self, billing_day: u8) -> Cycle {
        Cycle {
            start: self.end,
            end: cycle_containing(self.end, billing_day).end,
        }
    }
}

/// Whether `day` can be a billing day: 1..=28, so that every month has it.
pub fn check_billing_day(day: u8) -> bool {
    (1..=MAX_BILLING_DAY).contains(&day)
}

/// The monthly cycle containing `date`: from the latest `billing_day` on or before it to the same
/// day a month later. A `billing_day` outside 1..=28 is clamped into that range.
pub fn cycle_containing(date: Date, billing_day: u8) -> Cycle {
    let day = billing_day.clamp(1, MAX_BILLING_DAY);
    let (year, month) = if date.day() >= day {
        (date.year(), date.month())
    } else {
        previous_month(date.year(), date.month())
    };
    let (next_year, next_month) = following_month(year, month);
    Cycle {
        start: calendar_date(year, month, day),
        end: calendar_date(next_year, next_month, day),
    }
}

/// The days from `from` to the end of `cycle`, capped to the cycle: a date before the cycle
/// counts the whole cycle, one on or after its end counts none.
pub fn remaining_days(from: Date, cycle: Cycle) -> u32 {
    days_between(from, cycle.end).min(cycle.days())
}

/// `amount * days / cycle_days`, rounded half away from zero.
///
/// `days` above `cycle_days` is capped, so proration never charges more than the full amount,
/// and an empty cycle (`cycle_days == 0`) charges nothing rather than dividing by zero.
pub fn prorate(amount: i64, days: u32, cycle_days: u32) -> i64 {
    if cycle_days == 0 {
        return 0;
    }
    let days = days.min(cycle_days);
    round_div(
        i128::from(amount) * i128::from(days),
        i128::from(cycle_days),
    )
}

/// The charge (positive) or credit (negative) for moving from one monthly price to another on `change` within `cycle`: the unused days of the old price are credited and the remaining days of the new price charged.
///
/// Computed as two roundings, `prorate(new, r, n) - prorate(old, r, n)` with `r` the
/// [`remaining_days`] from `change` and `n` the cycle's days, so that an invoice showing the
/// credit and the charge as separate lines adds up to exactly this adjustment. It is
/// antisymmetric (`adj(a, b) == -adj(b, a)`) because swapping the prices swaps the two terms
/// of the difference, which holds exactly in integers; and `adj(a, a) == 0` likewise.
pub fn plan_change_adjustment(old_price: i64, new_price: i64, change: Date, cycle: Cycle) -> i64 {
    let (remaining, days) = (remaining_days(change, cycle), cycle.days());
    prorate(new_price, remaining, days).saturating_sub(prorate(old_price, remaining, days))
}

/// The prorated first charge when a subscription starts mid-cycle: the days from `start` to the cycle end.
pub fn first_cycle_charge(price: i64, start: Date, cycle: Cycle) -> i64 {
    prorate(price, remaining_days(start, cycle), cycle.days())
}

fn days_between(from: Date, to: Date) -> u32 {
    u32::try_from(i64::from(to.to_julian_day()) - i64::from(from.to_julian_day())).unwrap_or(0)
}

fn previous_month(year: i32, month: Month) -> (i32, Month) {
    match month {
        Month::January => (year - 1, Month::December),
        m => (year, m.previous()),
    }
}

fn following_month(year: i32, month: Month) -> (i32, Month) {
    match month {
        Month::December => (year + 1, Month::January),
        m => (year, m.next()),
    }
}

/// `day` is at most 28, so only a year outside Date's range can fail; saturate there.
fn calendar_date(year: i32, month: Month, day: u8) -> Date {
    Date::from_calendar_date(year, month, day).unwrap_or(if year < 0 {
        Date::MIN
    } else {
        Date::MAX
    })
}

fn date_from_julian_day(jd: i128) -> Date {
    i32::try_from(jd)
        .ok()
        .and_then(|jd| Date::from_julian_day(jd).ok())
        .unwrap_or(if jd < i128::from(UNIX_EPOCH_JULIAN_DAY) {
            Date::MIN
        } else {
            Date::MAX
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tax::MAX_AMOUNT;
    use proptest::prelude::*;

    const WIB: i32 = 420;

    fn d(year: i32, month: u8, day: u8) -> Date {
        let month = Month::try_from(month).unwrap();
        Date::from_calendar_date(year, month, day).unwrap()
    }

    fn cycle(start: Date, end: Date) -> Cycle {
        Cycle { start, end }
    }

    #[test]
    fn cycle_of_a_date_after_the_billing_day() {
        let c = cycle_containing(d(2026, 1, 31), 5);
        assert_eq!(c, cycle(d(2026, 1, 5), d(2026, 2, 5)));
        assert_eq!(c.days(), 31);
    }

    #[test]
    fn cycle_starts_on_the_billing_day_itself() {
        assert_eq!(
            cycle_containing(d(2026, 1, 5), 5),
            cycle(d(2026, 1, 5), d(2026, 2, 5))
        );
    }

    #[test]
    fn cycle_of_a_date_before_the_billing_day_crosses_the_year() {
        let c = cycle_containing(d(2026, 1, 4), 5);
        assert_eq!(c, cycle(d(2025, 12, 5), d(2026, 1, 5)));
        assert_eq!(c.days(), 31);
        assert_eq!(
            cycle_containing(d(2026, 12, 20), 15),
            cycle(d(2026, 12, 15), d(2027, 1, 15))
        );
    }

    #[test]
    fn february_cycles() {
        let c = cycle_containing(d(2027, 2, 14), 1);
        assert_eq!(c, cycle(d(2027, 2, 1), d(2027, 3, 1)));
        assert_eq!(c.days(), 28);
        let c = cycle_containing(d(2028, 2, 14), 1);
        assert_eq!(c, cycle(d(2028, 2, 1), d(2028, 3, 1)));
        assert_eq!(c.days(), 29);
        assert_eq!(cycle_containing(d(2027, 3, 1), 28).days(), 28);
        assert_eq!(cycle_containing(d(2028, 3, 1), 28).days(), 29);
        assert_eq!(cycle_containing(d(2027, 3, 1), 28).start, d(2027, 2, 28));
    }

    #[test]
    fn cycle_contains_start_but_not_end() {
        let c = cycle(d(2026, 1, 5), d(2026, 2, 5));
        assert!(c.contains(d(2026, 1, 5)));
        assert!(c.contains(d(2026, 2, 4)));
        assert!(!c.contains(d(2026, 2, 5)));
        assert!(!c.contains(d(2026, 1, 4)));
    }

    #[test]
    fn next_cycle_chains() {
        let c = cycle(d(2026, 12, 5), d(2027, 1, 5));
        assert_eq!(c.next(5), cycle(d(2027, 1, 5), d(2027, 2, 5)));
    }

    #[test]
    fn next_cycle_after_a_billing_day_change_is_a_stub() {
        let c = cycle(d(2026, 1, 5), d(2026, 2, 5));
        assert_eq!(c.next(10), cycle(d(2026, 2, 5), d(2026, 2, 10)));
        assert_eq!(c.next(1), cycle(d(2026, 2, 5), d(2026, 3, 1)));
    }

    #[test]
    fn billing_days() {
        assert!(!check_billing_day(0));
        assert!(check_billing_day(1));
        assert!(check_billing_day(28));
        assert!(!check_billing_day(29));
        assert!(!check_billing_day(31));
        // Out-of-range days are clamped rather than panicking.
        assert_eq!(cycle_containing(d(2026, 2, 10), 31).start, d(2026, 1, 28));
        assert_eq!(cycle_containing(d(2026, 2, 10), 0).start, d(2026, 2, 1));
    }

    #[test]
    fn wib_date_changes_at_17_utc() {
        let march_1_utc = 1_772_323_200_000; // 2026-03-01T00:00:00Z
        let h17 = march_1_utc + 17 * 3_600_000;
        assert_eq!(local_date(h17 - 1, WIB), d(2026, 3, 1));
        assert_eq!(local_date(h17, WIB), d(2026, 3, 2));
        assert_eq!(local_date(h17 - 1, 0), d(2026, 3, 1));
        assert_eq!(local_date(h17, 0), d(2026, 3, 1));
        assert_eq!(local_midnight_ms(d(2026, 3, 2), WIB), h17);
        assert_eq!(local_midnight_ms(d(2026, 3, 1), 0), march_1_utc);
    }

    #[test]
    fn negative_offsets_and_times_before_1970() {
        assert_eq!(local_date(0, 0), d(1970, 1, 1));
        assert_eq!(local_date(-1, 0), d(1969, 12, 31));
        assert_eq!(local_date(0, -300), d(1969, 12, 31));
        assert_eq!(local_midnight_ms(d(1970, 1, 1), -300), 5 * 3_600_000);
        assert_eq!(local_midnight_ms(d(1969, 12, 31), 0), -MS_PER_DAY);
    }

    #[test]
    fn extreme_inputs_saturate() {
        assert_eq!(local_date(i64::MAX, i32::MAX), Date::MAX);
        assert_eq!(local_date(i64::MIN, i32::MIN), Date::MIN);
        let c = cycle_containing(Date::MAX, 5);
        assert!(c.start <= c.end);
        let c = cycle_containing(Date::MIN, 5);
        assert!(c.start <= c.end);
    }

    #[test]
    fn prorate_examples() {
        assert_eq!(prorate(100_000, 10, 31), 32_258); // 32 258.06
        assert_eq!(prorate(150_000, 15, 30), 75_000);
        assert_eq!(prorate(3, 1, 2), 2); // 1.5
        assert_eq!(prorate(-3, 1, 2), -2);
        assert_eq!(prorate(150_000, 0, 31), 0);
        assert_eq!(prorate(150_000, 40, 31), 150_000);
        assert_eq!(prorate(150_000, 5, 0), 0);
    }

    #[test]
    fn plan_change_examples() {
        let c = cycle(d(2026, 1, 5), d(2026, 2, 5));
        // 11 days left: 250 000 * 11/31 = 88 709.68 → 88 710; 150 000 * 11/31 = 53 225.81 → 53 226
        assert_eq!(
            plan_change_adjustment(150_000, 250_000, d(2026, 1, 25), c),
            35_484
        );
        assert_eq!(
            plan_change_adjustment(250_000, 150_000, d(2026, 1, 25), c),
            -35_484
        );
        assert_eq!(
            plan_change_adjustment(150_000, 250_000, d(2026, 1, 5), c),
            100_000
        );
        // 1 day left: 8 064.5 → 8 065 and 4 838.7 → 4 839
        assert_eq!(
            plan_change_adjustment(150_000, 250_000, d(2026, 2, 4), c),
            8_065 - 4_839
        );
        assert_eq!(
            plan_change_adjustment(150_000, 250_000, d(2026, 2, 5), c),
            0
        );
        assert_eq!(
            plan_change_adjustment(150_000, 250_000, d(2025, 12, 1), c),
            100_000
        );
    }

    #[test]
    fn first_cycle_examples() {
        let c = cycle(d(2026, 1, 5), d(2026, 2, 5));
        // 16 days: 150 000 * 16/31 = 77 419.35
        assert_eq!(first_cycle_charge(150_000, d(2026, 1, 20), c), 77_419);
        assert_eq!(first_cycle_charge(150_000, d(2026, 1, 5), c), 150_000);
        assert_eq!(first_cycle_charge(150_000, d(2026, 2, 4), c), 4_839);
        assert_eq!(remaining_days(d(2026, 1, 20), c), 16);
        assert_eq!(remaining_days(d(2026, 3, 1), c), 0);
        assert_eq!(remaining_days(d(2025, 3, 1), c), 31);
    }

    fn date() -> impl Strategy<Value = Date> {
        let (lo, hi) = (
            d(1900, 1, 1).to_julian_day(),
            d(2200, 12, 31).to_julian_day(),
        );
        (lo..=hi).prop_map(|jd| Date::from_julian_day(jd).unwrap())
    }

    fn billing_day() -> impl Strategy<Value = u8> {
        1..=MAX_BILLING_DAY
    }

    fn amount() -> impl Strategy<Value = i64> {
        -MAX_AMOUNT..=MAX_AMOUNT
    }

    /// A billing-day cycle and a date inside it.
    fn cycle_and_day() -> impl Strategy<Value = (Cycle, Date)> {
        (date(), billing_day()).prop_map(|(date, day)| (cycle_containing(date, day), date))
    }

    proptest! {
        #[test]
        fn containing_cycle_contains(date in date(), day in billing_day()) {
            let c = cycle_containing(date, day);
            prop_assert!(c.contains(date));
            prop_assert_eq!(c.start.day(), day);
            prop_assert_eq!(c.end.day(), day);
            prop_assert!((28..=31).contains(&c.days()));
        }

        #[test]
        fn cycles_chain(date in date(), day in billing_day(), steps in 1..30usize) {
            let mut c = cycle_containing(date, day);
            for _ in 0..steps {
                let n = c.next(day);
                prop_assert_eq!(n.start, c.end);
                prop_assert!((28..=31).contains(&n.days()));
                prop_assert_eq!(n, cycle_containing(n.start, day));
                c = n;
            }
        }

        #[test]
        fn next_chains_after_any_billing_day_change(
            date in date(),
            a in billing_day(),
            b in billing_day(),
        ) {
            let n = cycle_containing(date, a).next(b);
            prop_assert_eq!(n.end.day(), b);
            prop_assert!((1..=31).contains(&n.days()));
            prop_assert_eq!(n.next(b).start, n.end);
        }

        #[test]
        fn prorate_full_cycle_is_the_amount(a in amount(), n in 1..=31u32) {
            prop_assert_eq!(prorate(a, n, n), a);
            prop_assert_eq!(prorate(a, 0, n), 0);
        }

        #[test]
        fn prorate_monotonic_in_days(
            a in 0..=MAX_AMOUNT,
            n in 1..=31u32,
            x in 0..=31u32,
            y in 0..=31u32,
        ) {
            let (lo, hi) = (x.min(y).min(n), x.max(y).min(n));
            prop_assert!(prorate(a, lo, n) <= prorate(a, hi, n));
            prop_assert!(prorate(-a, lo, n) >= prorate(-a, hi, n));
        }

        #[test]
        fn prorate_is_odd_and_bounded(a in amount(), n in 1..=31u32, k in 0..=31u32) {
            let k = k.min(n);
            prop_assert_eq!(prorate(-a, k, n), -prorate(a, k, n));
            prop_assert!(prorate(a, k, n).abs() <= a.abs());
        }

        #[test]
        fn prorated_parts_add_up_within_one_unit(a in amount(), n in 1..=31u32, k in 0..=31u32) {
            let k = k.min(n);
            prop_assert!((prorate(a, k, n) + prorate(a, n - k, n) - a).abs() <= 1);
        }

        #[test]
        fn same_price_adjusts_nothing((c, change) in cycle_and_day(), p in amount()) {
            prop_assert_eq!(plan_change_adjustment(p, p, change, c), 0);
        }

        #[test]
        fn adjustment_is_antisymmetric(
            (c, change) in cycle_and_day(),
            a in amount(),
            b in amount(),
        ) {
            prop_assert_eq!(
                plan_change_adjustment(a, b, change, c),
                -plan_change_adjustment(b, a, change, c)
            );
        }

        #[test]
        fn adjustment_on_the_first_day_is_the_price_difference(
            (c, _) in cycle_and_day(),
            a in amount(),
            b in amount(),
        ) {
            prop_assert_eq!(plan_change_adjustment(a, b, c.start, c), b - a);
        }

        #[test]
        fn adjustment_is_within_one_unit_of_exact(
            (c, change) in cycle_and_day(),
            a in amount(),
            b in amount(),
        ) {
            let (r, n) = (i128::from(remaining_days(change, c)), i128::from(c.days()));
            let exact_scaled = (i128::from(b) - i128::from(a)) * r;
            let err = i128::from(plan_change_adjustment(a, b, change, c)) * n - exact_scaled;
            prop_assert!(err.abs() <= n);
        }

        #[test]
        fn first_charge_on_cycle_start_is_the_price((c, _) in cycle_and_day(), p in amount()) {
            prop_assert_eq!(first_cycle_charge(p, c.start, c), p);
        }

        #[test]
        fn first_charge_never_exceeds_the_price(
            (c, start) in cycle_and_day(),
            p in 0..=MAX_AMOUNT,
        ) {
            let charge = first_cycle_charge(p, start, c);
            prop_assert!((0..=p).contains(&charge));
        }

        #[test]
        fn midnight_round_trips(date in date(), off in -720..=840i32) {
            prop_assert_eq!(local_date(local_midnight_ms(date, off), off), date);
            let before = local_midnight_ms(date, off) - 1;
            prop_assert_eq!(local_date(before, off), date.previous_day().unwrap());
        }

        #[test]
        fn instant_falls_within_its_local_day(
            ms in -5_000_000_000_000i64..=10_000_000_000_000,
            off in -720..=840i32,
        ) {
            let midnight = local_midnight_ms(local_date(ms, off), off);
            prop_assert!(midnight <= ms && ms < midnight + MS_PER_DAY);
        }
    }
}
