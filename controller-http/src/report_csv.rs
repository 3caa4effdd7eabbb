//! Reports as CSV, the same columns from the API (`format=csv`) and the admin pages: periods
//! as the operator's local dates, money in minor units, counters as plain numbers.

use crate::csv::push_record;
use mikrobill_core::locale::dates::local;
use mikrobill_core::reports::Line;
use mikrobill_core::reports::Period;
use mikrobill_core::reports::receivables::{Aging, BUCKET_NAMES};
use mikrobill_core::reports::subscribers::Movements;
use mikrobill_core::reports::usage::UsageLine;

/// A period as people read it: `2026-12-06` for a day, `2026-12` for a month.
pub fn period_label(start: i64, period: Period, offset_min: i32) -> String {
    let day = local(start, offset_min, false);
    match period {
        Period::Day => day,
        Period::Month => day.get(..7).unwrap_or(&day).to_string(),
    }
}

/// A money report (revenue, voucher sales).
pub fn money(lines: &[Line], period: Period, offset_min: i32) -> String {
    let mut out = String::new();
    push_record(
        &mut out,
        ["period", "key", "label", "count", "amount_minor"],
    );
    for l in lines {
        push_record(
            &mut out,
            [
                period_label(l.period_start, period, offset_min),
                l.key.clone().unwrap_or_default(),
                l.label.clone(),
                l.count.to_string(),
                l.amount.to_string(),
            ],
        );
    }
    out
}

/// Receivables aging: the top customers, then the totals of every customer.
pub fn aging(aging: &Aging) -> String {
    let mut out = String::new();
    let mut header = vec!["customer_number", "customer"];
    header.extend(BUCKET_NAMES);
    header.push("total");
    push_record(&mut out, header);
    for c in &aging.customers {
        let mut fields = vec![c.number.clone(), c.name.clone()];
        fields.extend(c.amounts.iter().map(i64::to_string));
        fields.push(c.total.to_string());
        push_record(&mut out, fields);
    }
    let mut fields = vec![String::new(), "all customers".to_string()];
    fields.extend(aging.buckets.iter().map(|b| b.amount.to_string()));
    fields.push(
        aging
            .buckets
            .iter()
            .map(|b| b.amount)
            .sum::<i64>()
            .to_string(),
    );
    push_record(&mut out, fields);
    out
}

/// Subscriber movements.
pub fn movements(rows: &[Movements], period: Period, offset_min: i32) -> String {
    let mut out = String::new();
    push_record(
        &mut out,
        ["period", "new", "isolated", "reactivated", "terminated"],
    );
    for m in rows {
        push_record(
            &mut out,
            [
                period_label(m.period_start, period, offset_min),
                m.new.to_string(),
                m.isolated.to_string(),
                m.reactivated.to_string(),
                m.terminated.to_string(),
            ],
        );
    }
    out
}

/// A usage ranking or series.
pub fn usage(rows: &[UsageLine], period: Period, offset_min: i32) -> String {
    let mut out = String::new();
    push_record(
        &mut out,
        [
            "period",
            "key",
            "label",
            "online_secs",
            "bytes_in",
            "bytes_out",
            "sessions",
        ],
    );
    for l in rows {
        push_record(
            &mut out,
            [
                l.period_start
                    .map(|p| period_label(p, period, offset_min))
                    .unwrap_or_default(),
                l.key.clone(),
                l.label.clone(),
                l.online_secs.to_string(),
                l.bytes_in.to_string(),
                l.bytes_out.to_string(),
                l.sessions.to_string(),
            ],
        );
    }
    out
}
