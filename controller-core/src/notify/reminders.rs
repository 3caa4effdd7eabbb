//! Payment reminders: a scheduled job that queues, for every unpaid invoice, one reminder per
//! configured day before its due date (7, 3 and 1 by default). Each reminder's dedupe key
//! (`reminder:<invoice>:<days>`) makes the job safe to run as often as wanted, on any replica.
//! A reminder whose day has passed while the controller was down goes out late, once, under
//! the nearest day still ahead; one whose day came before the invoice was issued is skipped,
//! since the invoice message itself told the due date.

use super::produce::{Context, Origin, to_customer};
use super::{Topic, templates::Vars};
use crate::billing::cycle::{local_date, local_midnight_ms};
use crate::db::Db;
use crate::error::DomainResult;
use sqlx::Row;

/// The reminder day that applies with `days_left` until the due date: the smallest configured
/// day at or above it. `thresholds` is sorted largest first.
pub fn threshold(thresholds: &[u32], days_left: i64) -> Option<u32> {
    thresholds
        .iter()
        .rev()
        .copied()
        .find(|t| i64::from(*t) >= days_left)
}

/// Queues the reminders due at `now`; returns how many messages were new.
pub async fn run(db: &Db, now: i64) -> DomainResult<u64> {
    let mut tx = db.begin().await?;
    let ctx = Context::load(&mut tx).await?;
    let Some(max) = ctx.settings.reminder_days.first().copied() else {
        return Ok(0);
    };
    if ctx.channels.is_empty() {
        return Ok(0);
    }
    let offset = ctx.billing.utc_offset_minutes;
    let today = local_date(now, offset);
    let from = local_midnight_ms(today + time::Duration::days(1), offset);
    // Up to the end of the last reminder day: invoices need not fall due at midnight.
    let to = local_midnight_ms(today + time::Duration::days(i64::from(max) + 1), offset);
    let rows = sqlx::query(
        "SELECT id, number, customer_id, total - amount_paid AS owed, due_at, issued_at FROM invoices \
         WHERE status = 'unpaid' AND due_at >= $1 AND due_at < $2 ORDER BY due_at, id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&mut *tx)
    .await?;
    let mut created = 0;
    for r in rows {
        let (id, number, customer): (String, String, String) = (
            r.try_get("id")?,
            r.try_get("number")?,
            r.try_get("customer_id")?,
        );
        let (owed, due, issued): (i64, i64, i64) = (
            r.try_get("owed")?,
            r.try_get("due_at")?,
            r.try_get("issued_at")?,
        );
        let due_date = local_date(due, offset);
        let days_left = (due_date - today).whole_days();
        let Some(t) = threshold(&ctx.settings.reminder_days, days_left) else {
            continue;
        };
        if local_date(issued, offset) >= due_date - time::Duration::days(i64::from(t)) || owed <= 0
        {
            continue;
        }
        // Already queued (on some channel): skip the recipient lookup and the inserts, which
        // otherwise rerun for every upcoming invoice at every run. A range over the unique
        // dedupe keys uses their index on both databases.
        let prefix = format!("reminder:{id}:{t}:");
        let queued = sqlx::query(
            "SELECT id FROM notifications WHERE dedupe_key >= $1 AND dedupe_key < $2 LIMIT 1",
        )
        .bind(&prefix)
        .bind(format!("reminder:{id}:{t};"))
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        if queued {
            continue;
        }
        let origin = Origin {
            invoice_id: Some(&id),
            ..Origin::new(format!("reminder:{id}:{t}"), now)
        };
        created += to_customer(
            &mut tx,
            &ctx,
            Topic::InvoiceReminder,
            &customer,
            &origin,
            |l| {
                Vars::from([
                    ("invoice_number", number.clone()),
                    ("amount", ctx.money(owed, l)),
                    ("due_date", ctx.date(due, l)),
                    ("days_left", days_left.to_string()),
                    ("payment_link", ctx.payment_link(&id, &number, l)),
                ])
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_day_ahead_applies() {
        let days = [7, 3, 1];
        assert_eq!(threshold(&days, 7), Some(7));
        assert_eq!(threshold(&days, 6), Some(7));
        assert_eq!(threshold(&days, 3), Some(3));
        assert_eq!(threshold(&days, 2), Some(3));
        assert_eq!(threshold(&days, 1), Some(1));
        assert_eq!(threshold(&days, 8), None);
    }
}
