//! Read-only business figures for the admin dashboard: revenue per local day (from the
//! revenue ledger's per-day summary, `revenue_daily`), vouchers
//! sold (from `voucher_sales_daily`), overdue subscriptions (from `subscriptions.overdue_after`). Each figure is one indexed aggregate, so the dashboard stays
//! cheap however many payments and vouchers exist.

use crate::db::{Db, DbError};
use sqlx::Row;

const DAY_MS: i64 = 86_400_000;

/// The headline figures.
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct Summary {
    /// Money taken since local midnight: payments, cash voucher sales and reseller top-ups
    /// (the revenue ledger; credit moved onto invoices is not new money).
    pub revenue_today: i64,
    /// Money taken since the local month began.
    pub revenue_month: i64,
    /// Vouchers sold since local midnight.
    pub vouchers_sold_today: i64,
    /// Vouchers sold since the local month began.
    pub vouchers_sold_month: i64,
    /// Subscriptions with an unpaid invoice past its due date.
    pub overdue_subscriptions: i64,
    /// Subscriptions currently isolated.
    pub isolated_subscriptions: i64,
}

/// The start of the local day containing `now` (unix ms), at UTC offset `offset_min`.
pub fn local_day_start(now: i64, offset_min: i32) -> i64 {
    let off = offset_min as i64 * 60_000;
    (now + off).div_euclid(DAY_MS) * DAY_MS - off
}

/// The start of the local month containing `now`.
pub fn local_month_start(now: i64, offset_min: i32) -> i64 {
    let off = offset_min as i64 * 60_000;
    let day = local_day_start(now, offset_min);
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp((day + off).div_euclid(1000)) else {
        return day;
    };
    day - (t.day() as i64 - 1) * DAY_MS
}

/// The headline figures at `now`.
pub async fn summary(db: &Db, now: i64, offset_min: i32) -> Result<Summary, DbError> {
    let day = local_day_start(now, offset_min);
    let month = local_month_start(now, offset_min);
    let pool = &db.pool;
    let rev = sqlx::query(
        "SELECT CAST(COALESCE(SUM(CASE WHEN day >= $1 THEN amount ELSE 0 END), 0) AS BIGINT) AS today, \
         CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS month FROM revenue_daily WHERE day >= $2",
    )
    .bind(day)
    .bind(month)
    .fetch_one(pool)
    .await?;
    let sold = sqlx::query(
        "SELECT CAST(COALESCE(SUM(CASE WHEN day >= $1 THEN count ELSE 0 END), 0) AS BIGINT) AS today, \
         CAST(COALESCE(SUM(count), 0) AS BIGINT) AS month FROM voucher_sales_daily WHERE day >= $2",
    )
    .bind(day)
    .bind(month)
    .fetch_one(pool)
    .await?;
    // Kept per subscription by migration 0033's triggers: one entry of an index per overdue
    // subscription, instead of every unpaid invoice joined to its subscription.
    let overdue = sqlx::query("SELECT COUNT(*) AS n FROM subscriptions WHERE overdue_after < $1")
        .bind(now)
        .fetch_one(pool)
        .await?;
    let isolated = sqlx::query("SELECT COUNT(*) AS n FROM subscriptions WHERE status = 'isolated'")
        .fetch_one(pool)
        .await?;
    Ok(Summary {
        revenue_today: rev.try_get("today")?,
        revenue_month: rev.try_get("month")?,
        vouchers_sold_today: sold.try_get("today")?,
        vouchers_sold_month: sold.try_get("month")?,
        overdue_subscriptions: overdue.try_get("n")?,
        isolated_subscriptions: isolated.try_get("n")?,
    })
}

/// Revenue of each of the last `days` local days, oldest first: (day start, amount).
pub async fn revenue_per_day(
    db: &Db,
    now: i64,
    offset_min: i32,
    days: i64,
) -> Result<Vec<(i64, i64)>, DbError> {
    let today = local_day_start(now, offset_min);
    let from = today - (days - 1) * DAY_MS;
    let off = offset_min as i64 * 60_000;
    let rows = sqlx::query(
        "SELECT CAST((day + $1) / $2 AS BIGINT) AS d, CAST(SUM(amount) AS BIGINT) AS total \
         FROM revenue_daily WHERE day >= $3 GROUP BY CAST((day + $1) / $2 AS BIGINT)",
    )
    .bind(off)
    .bind(DAY_MS)
    .bind(from)
    .fetch_all(&db.pool)
    .await?;
    let mut out: Vec<(i64, i64)> = (0..days).map(|i| (from + i * DAY_MS, 0)).collect();
    for r in rows {
        let d: i64 = r.try_get("d")?;
        let start = d * DAY_MS - off;
        if let Some(slot) = out.iter_mut().find(|(s, _)| *s == start) {
            slot.1 = r.try_get("total")?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_days_and_months_follow_the_offset() {
        // 2026-11-24 20:00 UTC is 2026-11-25 03:00 in WIB (UTC+7).
        let t = 1_795_550_400_000;
        let day = local_day_start(t, 420);
        assert_eq!(day, 1_795_539_600_000); // 2026-11-24 17:00 UTC = 25th 00:00 WIB
        let month = local_month_start(t, 420);
        assert_eq!(month, day - 24 * DAY_MS); // 2026-11-01 00:00 WIB
        assert_eq!(local_day_start(t, 0), 1_795_478_400_000);
        assert_eq!(month, 1_793_466_000_000);
    }
}
