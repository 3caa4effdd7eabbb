//! Revenue per local day or month, by where the money came from, how it was paid, or the
//! site, plan or reseller it is credited to. Reads the ledger's per-day summary
//! (`revenue_daily`, written with every revenue row), so it adds up to the dashboard's
//! figures and its cost follows the days and groups shown, not the payments behind them. A
//! range is taken in whole local days: the day holding `from` to the day before `to`.

use super::period::{Period, Range, day_number_sql};
use super::{Line, roll_up};
use crate::db::{Db, DbError};
use crate::stats::local_day_start;
use sqlx::Row;

/// What revenue is grouped by.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RevenueBy {
    /// Payments, voucher sales, reseller top-ups.
    Source,
    /// Cash, transfer, gateway and so on.
    Method,
    /// The site (voucher sales scoped to one, payments of a subscription at one).
    Site,
    /// The plan sold or billed.
    Plan,
    /// The reseller who topped up.
    Reseller,
}

impl RevenueBy {
    /// The key and label expressions, and the join that names the key.
    fn sql(self) -> (&'static str, &'static str, &'static str) {
        match self {
            RevenueBy::Source => ("r.source", "r.source", ""),
            RevenueBy::Method => ("r.method", "r.method", ""),
            RevenueBy::Site => (
                "r.site_id",
                "COALESCE(s.name, '')",
                "LEFT JOIN sites s ON s.id = r.site_id",
            ),
            RevenueBy::Plan => (
                "r.plan_id",
                "COALESCE(p.name, '')",
                "LEFT JOIN plans p ON p.id = r.plan_id",
            ),
            RevenueBy::Reseller => (
                "r.reseller_id",
                "COALESCE(a.username, '')",
                "LEFT JOIN admin_users a ON a.id = r.reseller_id",
            ),
        }
    }
}

/// Revenue in `range` per `period` and group.
pub async fn report(
    db: &Db,
    range: Range,
    period: Period,
    by: RevenueBy,
    offset_min: i32,
) -> Result<Vec<Line>, DbError> {
    let (key, label, join) = by.sql();
    let day = day_number_sql("r.day", "$1");
    let sql = format!(
        "SELECT {day} AS d, {key} AS k, {label} AS l, CAST(SUM(r.count) AS BIGINT) AS n, \
         CAST(SUM(r.amount) AS BIGINT) AS total FROM revenue_daily r {join} \
         WHERE r.day >= $2 AND r.day < $3 GROUP BY {day}, {key}, {label}"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(offset_min as i64 * 60_000)
        .bind(local_day_start(range.from, offset_min))
        .bind(range.to)
        .fetch_all(&db.pool)
        .await?;
    let mut days = Vec::with_capacity(rows.len());
    for r in rows {
        let key: String = r.try_get("k")?;
        days.push((
            r.try_get("d")?,
            // The summary keeps '' for "none named".
            Some(key).filter(|k| !k.is_empty()),
            r.try_get("l")?,
            r.try_get("n")?,
            r.try_get("total")?,
        ));
    }
    Ok(roll_up(days, period, offset_min))
}
