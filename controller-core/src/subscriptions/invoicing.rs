//! The invoice run: each started cycle's invoice, issued once across replicas.

use super::record::fetch;
use super::status::SubscriptionStatus;
use crate::audit::Actor;
use crate::billing::cycle::{self, Cycle};
use crate::billing::invoices::{self, InvoiceKind, Line, NewInvoice};
use crate::db::{Db, now_ms};
use crate::error::DomainResult;
use crate::plans;
use crate::settings::{self, BillingSettings};
use sqlx::Row;
use time::Date;

pub(super) fn cycle_line(plan_name: &str, period: Cycle, billed_days: u32) -> String {
    if billed_days == period.days() {
        format!(
            "{plan_name}, {} to {}",
            fmt_date(period.start),
            fmt_date(period.end)
        )
    } else {
        format!(
            "{plan_name}, {} to {} ({billed_days} of {} days)",
            fmt_date(period.end - time::Duration::days(billed_days as i64)),
            fmt_date(period.end),
            period.days()
        )
    }
}

fn fmt_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Job: issues the invoices of every cycle that has started and is not invoiced yet, one
/// transaction per invoice; a cycle claimed by another replica is skipped. Returns how many
/// invoices were issued.
pub async fn invoice_run(db: &Db, now: i64) -> DomainResult<u64> {
    let st = settings::billing(db).await?;
    let actor = Actor::system("scheduler");
    let mut issued = 0;
    loop {
        let due: Vec<String> = sqlx::query(
            "SELECT id FROM subscriptions WHERE status <> 'terminated' AND next_cycle_at <= $1 ORDER BY next_cycle_at, id LIMIT 200",
        )
        .bind(now)
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?;
        if due.is_empty() {
            return Ok(issued);
        }
        for id in due {
            if invoice_next_cycle(db, &st, &actor, &id, now).await? {
                issued += 1;
            }
        }
    }
}

async fn invoice_next_cycle(
    db: &Db,
    st: &BillingSettings,
    actor: &Actor,
    id: &str,
    now: i64,
) -> DomainResult<bool> {
    let off = st.utc_offset_minutes;
    let mut tx = db.begin().await?;
    let s = fetch(&mut tx, id).await?;
    if s.status == SubscriptionStatus::Terminated || s.next_cycle_at > now {
        return Ok(false);
    }
    let start = cycle::local_date(s.next_cycle_at, off);
    let full = cycle::cycle_containing(start, s.billing_day as u8);
    let period = Cycle {
        start,
        end: full.end,
    };
    // Claim the cycle: only the transaction that moves next_cycle_at issues its invoice.
    let claimed = sqlx::query("UPDATE subscriptions SET next_cycle_at = $1, updated_at = $2 WHERE id = $3 AND next_cycle_at = $4")
        .bind(cycle::local_midnight_ms(period.end, off))
        .bind(now_ms())
        .bind(id)
        .bind(s.next_cycle_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if claimed == 0 {
        return Ok(false);
    }
    let plan = plans::fetch_info(&mut tx, &s.plan_id).await?;
    let billed = period.days();
    let amount = if full.start == start {
        plan.price
    } else {
        cycle::prorate(plan.price, billed, full.days())
    };
    let issued = invoices::issue(
        &mut tx,
        actor,
        NewInvoice {
            customer_id: s.customer_id.clone(),
            subscription_id: Some(id.to_string()),
            kind: InvoiceKind::Cycle,
            period: Some((s.next_cycle_at, cycle::local_midnight_ms(period.end, off))),
            lines: vec![Line {
                description: cycle_line(&plan.name, period, billed),
                amount,
            }],
            due_at: cycle::local_midnight_ms(start + time::Duration::days(s.due_days), off),
            tax: st.tax(),
            year: cycle::local_date(now, off).year(),
        },
    )
    .await?
    .is_some();
    tx.commit().await?;
    Ok(issued)
}
