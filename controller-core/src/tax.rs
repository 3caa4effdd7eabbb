//! Tax on prices in integer minor units, and the bounds every stored money amount stays in
//! ([`MAX_AMOUNT`]). Pure, and below every module that holds money.
//!
//! Rounding rule: tax is rounded half away from zero to the minor unit, applied once per
//! invoice on the sum of its lines. Callers therefore add up the lines' amounts first and call
//! [`apply`] once on the sum; rounding each line separately would let an invoice's tax drift by
//! up to half a unit per line from the tax on its total.
//!
//! All arithmetic is done in `i128`, so no intermediate product overflows for any `i64` amount
//! and any `u32` rate. Results are exact for amounts within [`MAX_AMOUNT`]; beyond that the
//! exclusive total saturates at the `i64` bounds instead of wrapping.

/// How tax applies to a price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaxRule {
    /// The rate in basis points: 1100 is 11 %; at most [`MAX_RATE_BP`].
    pub rate_bp: u32,
    /// Whether the price already includes the tax (true) or the tax is added on top (false).
    pub inclusive: bool,
}

/// A price split into net, tax and gross.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Taxed {
    /// The net amount before tax.
    pub subtotal: i64,
    /// The tax on `subtotal`.
    pub tax: i64,
    /// What the customer pays: `subtotal + tax`.
    pub total: i64,
}

/// Indonesian VAT (PPN) at 11 %, added on top of the price.
pub const DEFAULT_TAX: TaxRule = TaxRule {
    rate_bp: 1100,
    inclusive: false,
};

/// The highest rate a [`TaxRule`] may have: 100 %.
pub const MAX_RATE_BP: u32 = 10_000;

/// The largest amount, in minor units, the billing arithmetic accepts (10^15).
pub const MAX_AMOUNT: i64 = 1_000_000_000_000_000;

const BP_PER_UNIT: i128 = 10_000;

/// Whether `a` is within ±[`MAX_AMOUNT`], the range where every result here is exact.
pub fn check_amount(a: i64) -> bool {
    (-MAX_AMOUNT..=MAX_AMOUNT).contains(&a)
}

/// Whether `rule`'s rate is at most [`MAX_RATE_BP`].
pub fn check_rule(rule: TaxRule) -> bool {
    rule.rate_bp <= MAX_RATE_BP
}

/// `num / den` rounded half away from zero, saturated to `i64`; `den` must be positive.
///
/// # Panics
/// If `den` is zero, as integer division does.
pub fn round_div(num: i128, den: i128) -> i64 {
    debug_assert!(den > 0, "round_div needs a positive denominator");
    let q = num / den;
    let r = num % den;
    // Truncation already went towards zero; step one further away when the dropped fraction
    // |r| / |den| is at least one half, i.e. |r| >= |den| - |r| (no doubling, so no overflow).
    let (ra, da) = (r.unsigned_abs(), den.unsigned_abs());
    let q = if r != 0 && ra >= da - ra {
        if (num < 0) == (den < 0) { q + 1 } else { q - 1 }
    } else {
        q
    };
    saturate(q)
}

/// Splits `amount` into subtotal, tax and total under `rule`.
///
/// Exact for `check_amount(amount)` and `check_rule(rule)`: then `subtotal + tax == total`.
pub fn apply(amount: i64, rule: TaxRule) -> Taxed {
    let a = i128::from(amount);
    let rate = i128::from(rule.rate_bp);
    if rule.inclusive {
        // Rounding the tax (not the net) keeps the total the customer was quoted unchanged.
        let tax = round_div(a * rate, BP_PER_UNIT + rate);
        Taxed {
            subtotal: saturate(a - i128::from(tax)),
            tax,
            total: amount,
        }
    } else {
        let tax = round_div(a * rate, BP_PER_UNIT);
        Taxed {
            subtotal: amount,
            tax,
            total: saturate(a + i128::from(tax)),
        }
    }
}

fn saturate(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const fn excl(rate_bp: u32) -> TaxRule {
        TaxRule {
            rate_bp,
            inclusive: false,
        }
    }

    const fn incl(rate_bp: u32) -> TaxRule {
        TaxRule {
            rate_bp,
            inclusive: true,
        }
    }

    fn taxed(subtotal: i64, tax: i64, total: i64) -> Taxed {
        Taxed {
            subtotal,
            tax,
            total,
        }
    }

    #[test]
    fn round_div_rounds_half_away_from_zero() {
        assert_eq!(round_div(5, 10), 1);
        assert_eq!(round_div(-5, 10), -1);
        assert_eq!(round_div(4, 10), 0);
        assert_eq!(round_div(-4, 10), 0);
        assert_eq!(round_div(15, 10), 2);
        assert_eq!(round_div(-15, 10), -2);
        assert_eq!(round_div(14, 10), 1);
        assert_eq!(round_div(-16, 10), -2);
        assert_eq!(round_div(20, 10), 2);
        assert_eq!(round_div(0, 7), 0);
        assert_eq!(round_div(1, 3), 0);
        assert_eq!(round_div(2, 3), 1);
        assert_eq!(round_div(-2, 3), -1);
        assert_eq!(round_div(7, 1), 7);
    }

    #[test]
    fn round_div_saturates() {
        assert_eq!(round_div(i128::MAX, 1), i64::MAX);
        assert_eq!(round_div(i128::MIN, 1), i64::MIN);
        assert_eq!(round_div(i128::from(i64::MAX) * 4 + 2, 4), i64::MAX);
    }

    #[test]
    fn exclusive_eleven_percent() {
        assert_eq!(apply(100_000, DEFAULT_TAX), taxed(100_000, 11_000, 111_000));
        // 999 * 11 % = 109.89
        assert_eq!(apply(999, DEFAULT_TAX), taxed(999, 110, 1_109));
        // 150 000 * 11 % = 16 500 exactly
        assert_eq!(apply(150_000, DEFAULT_TAX), taxed(150_000, 16_500, 166_500));
    }

    #[test]
    fn inclusive_eleven_percent() {
        // 111 000 * 1100 / 11 100 = 11 000 exactly
        assert_eq!(apply(111_000, incl(1100)), taxed(100_000, 11_000, 111_000));
        // 1 109 * 11 / 111 = 109.90…
        assert_eq!(apply(1_109, incl(1100)), taxed(999, 110, 1_109));
        // 150 000 * 11 / 111 = 14 864.86…
        assert_eq!(apply(150_000, incl(1100)), taxed(135_135, 14_865, 150_000));
    }

    #[test]
    fn exact_half_rounds_away_from_zero() {
        // 50 * 11 % = 5.5
        assert_eq!(apply(50, DEFAULT_TAX), taxed(50, 6, 56));
        assert_eq!(apply(-50, DEFAULT_TAX), taxed(-50, -6, -56));
        // 25 * 10 % = 2.5
        assert_eq!(apply(25, excl(1000)), taxed(25, 3, 28));
        assert_eq!(apply(-25, excl(1000)), taxed(-25, -3, -28));
        // inclusive 100 %: 3 * 10 000 / 20 000 = 1.5
        assert_eq!(apply(3, incl(10_000)), taxed(1, 2, 3));
        assert_eq!(apply(-3, incl(10_000)), taxed(-1, -2, -3));
    }

    #[test]
    fn zero_rate_and_zero_amount() {
        assert_eq!(apply(12_345, excl(0)), taxed(12_345, 0, 12_345));
        assert_eq!(apply(12_345, incl(0)), taxed(12_345, 0, 12_345));
        assert_eq!(apply(0, DEFAULT_TAX), taxed(0, 0, 0));
        assert_eq!(apply(0, incl(1100)), taxed(0, 0, 0));
    }

    #[test]
    fn full_rate() {
        assert_eq!(apply(1_000, excl(10_000)), taxed(1_000, 1_000, 2_000));
        assert_eq!(apply(2_000, incl(10_000)), taxed(1_000, 1_000, 2_000));
    }

    #[test]
    fn range_limits() {
        assert!(check_amount(MAX_AMOUNT));
        assert!(check_amount(-MAX_AMOUNT));
        assert!(check_amount(0));
        assert!(!check_amount(MAX_AMOUNT + 1));
        assert!(!check_amount(-MAX_AMOUNT - 1));
        assert!(check_rule(excl(MAX_RATE_BP)));
        assert!(!check_rule(excl(MAX_RATE_BP + 1)));
        assert_eq!(
            apply(MAX_AMOUNT, excl(MAX_RATE_BP)),
            taxed(MAX_AMOUNT, MAX_AMOUNT, 2 * MAX_AMOUNT)
        );
    }

    #[test]
    fn extreme_amounts_saturate_instead_of_overflowing() {
        assert_eq!(apply(i64::MAX, excl(MAX_RATE_BP)).total, i64::MAX);
        assert_eq!(apply(i64::MIN, excl(MAX_RATE_BP)).total, i64::MIN);
        let t = apply(i64::MIN, incl(MAX_RATE_BP));
        assert_eq!(t.subtotal + t.tax, t.total);
    }

    #[test]
    fn taxed_serializes_with_field_names() {
        let json = serde_json::to_string(&apply(100_000, DEFAULT_TAX)).unwrap();
        assert_eq!(json, r#"{"subtotal":100000,"tax":11000,"total":111000}"#);
    }

    fn amount() -> impl Strategy<Value = i64> {
        -MAX_AMOUNT..=MAX_AMOUNT
    }

    fn rule() -> impl Strategy<Value = TaxRule> {
        (0..=MAX_RATE_BP, any::<bool>())
            .prop_map(|(rate_bp, inclusive)| TaxRule { rate_bp, inclusive })
    }

    proptest! {
        #[test]
        fn parts_add_up(a in amount(), r in rule()) {
            let t = apply(a, r);
            prop_assert_eq!(t.subtotal + t.tax, t.total);
        }

        #[test]
        fn tax_never_has_the_opposite_sign(a in amount(), r in rule()) {
            let t = apply(a, r);
            prop_assert!(t.tax == 0 || t.tax.signum() == a.signum());
            prop_assert!(t.tax.abs() <= a.abs());
        }

        #[test]
        fn zero_rate_means_zero_tax(a in amount(), inclusive in any::<bool>()) {
            let t = apply(a, TaxRule { rate_bp: 0, inclusive });
            prop_assert_eq!(t, Taxed { subtotal: a, tax: 0, total: a });
        }

        #[test]
        fn exclusive_tax_within_half_a_unit(a in amount(), rate in 0..=MAX_RATE_BP) {
            let t = apply(a, excl(rate));
            // |tax - a * rate / 10000| <= 1/2, scaled by 2 * 10000 to stay in integers.
            let err = i128::from(t.tax) * BP_PER_UNIT - i128::from(a) * i128::from(rate);
            prop_assert!(2 * err.abs() <= BP_PER_UNIT);
        }

        #[test]
        fn inclusive_tax_within_half_a_unit(a in amount(), rate in 0..=MAX_RATE_BP) {
            let t = apply(a, incl(rate));
            let den = BP_PER_UNIT + i128::from(rate);
            let err = i128::from(t.tax) * den - i128::from(a) * i128::from(rate);
            prop_assert!(2 * err.abs() <= den);
        }

        #[test]
        fn inclusive_undoes_exclusive_within_one_unit(a in amount(), rate in 0..=MAX_RATE_BP) {
            let e = apply(a, excl(rate));
            let i = apply(e.total, incl(rate));
            prop_assert_eq!(i.total, e.total);
            prop_assert!((i.subtotal - e.subtotal).abs() <= 1);
        }

        #[test]
        fn monotonic_in_amount(a in 0..=MAX_AMOUNT, d in 0..=MAX_AMOUNT, r in rule()) {
            let b = (a + d).min(MAX_AMOUNT);
            let (ta, tb) = (apply(a, r), apply(b, r));
            prop_assert!(ta.subtotal <= tb.subtotal);
            prop_assert!(ta.tax <= tb.tax);
            prop_assert!(ta.total <= tb.total);
        }

        #[test]
        fn monotonic_step_by_one(a in 0..MAX_AMOUNT, r in rule()) {
            let (ta, tb) = (apply(a, r), apply(a + 1, r));
            prop_assert!(ta.subtotal <= tb.subtotal);
            prop_assert!(ta.tax <= tb.tax);
            prop_assert!(ta.total <= tb.total);
        }

        #[test]
        fn negating_the_amount_negates_everything(a in amount(), r in rule()) {
            let (p, n) = (apply(a, r), apply(-a, r));
            prop_assert_eq!(n, Taxed { subtotal: -p.subtotal, tax: -p.tax, total: -p.total });
        }

        #[test]
        fn round_div_within_half(num in any::<i64>(), den in 1..=i64::MAX) {
            let q = round_div(i128::from(num), i128::from(den));
            let err = i128::from(q) * i128::from(den) - i128::from(num);
            prop_assert!(2 * err.abs() <= i128::from(den));
            prop_assert_eq!(round_div(-i128::from(num), i128::from(den)), -q);
        }
    }
}
