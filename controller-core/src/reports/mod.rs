//! Reports over the ledgers: revenue, voucher sales, receivables aging, subscriber movements
//! and usage. Each report is one grouped query over an indexed or summary table
//! (`revenue_daily`, `voucher_sales_daily`, `invoices(status, due_at)`, `events(kind)`,
//! `usage_daily`, `usage_monthly`, `usage_customer_monthly`), so its cost
//! follows the number of days and groups shown, not the number of payments or accounting
//! records behind them. SQL groups by local day; [`period`] rolls days up into months.

pub mod period;
pub mod receivables;
pub mod revenue;
pub mod subscribers;
pub mod top_of_sums;
pub mod usage;
pub mod voucher_sales;

pub use period::{Period, Range};

/// One group of one period in a money report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[schema(as = ReportLine)]
pub struct Line {
    /// Start of the local day or month (unix ms).
    pub period_start: i64,
    /// What the group is (a site, plan or reseller id, a method or source); `null` for
    /// money no site, plan or reseller is named on.
    pub key: Option<String>,
    /// What a person reads for the key.
    pub label: String,
    /// How many payments, sales or top-ups.
    pub count: i64,
    /// Minor units.
    pub amount: i64,
}

/// Adds up per-day rows `(local day number, key, label, count, amount)` into `period`s,
/// ordered by period, then by amount (largest first), then by label.
pub(crate) fn roll_up(
    days: Vec<(i64, Option<String>, String, i64, i64)>,
    period: Period,
    offset_min: i32,
) -> Vec<Line> {
    let mut acc: std::collections::BTreeMap<(i64, Option<String>), Line> = Default::default();
    for (day, key, label, count, amount) in days {
        let start = period::start_of(
            period::day_number_start(day, offset_min),
            period,
            offset_min,
        );
        let line = acc.entry((start, key.clone())).or_insert_with(|| Line {
            period_start: start,
            key,
            label,
            count: 0,
            amount: 0,
        });
        line.count += count;
        line.amount = line.amount.saturating_add(amount);
    }
    let mut out: Vec<Line> = acc.into_values().collect();
    out.sort_by(|a, b| {
        (a.period_start, std::cmp::Reverse(a.amount), &a.label).cmp(&(
            b.period_start,
            std::cmp::Reverse(b.amount),
            &b.label,
        ))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_roll_up_into_months_per_key() {
        // Local day numbers 20_400 and 20_401 are 2025-11-08/09; 20_430 is in December.
        let rows = vec![
            (20_400, Some("a".into()), "A".into(), 1, 100),
            (20_401, Some("a".into()), "A".into(), 2, 50),
            (20_401, None, "-".into(), 1, 500),
            (20_430, Some("a".into()), "A".into(), 1, 7),
        ];
        let lines = roll_up(rows, Period::Month, 0);
        let got: Vec<_> = lines
            .iter()
            .map(|l| (l.key.as_deref(), l.count, l.amount))
            .collect();
        assert_eq!(
            got,
            vec![(None, 1, 500), (Some("a"), 3, 150), (Some("a"), 1, 7)]
        );
        assert!(lines[0].period_start == lines[1].period_start);
        assert!(lines[2].period_start > lines[1].period_start);
    }
}
