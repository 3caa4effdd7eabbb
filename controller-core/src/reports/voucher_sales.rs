//! Vouchers sold per local day or month, counted and priced, by batch, plan, reseller or
//! site. A voucher is sold when it is sold at the cash desk or in a batch to a reseller.
//! Reads the per-day summary written where vouchers are sold (`voucher_sales_daily`), so its
//! cost follows the days and groups shown, not the vouchers behind them. A range is taken in
//! whole local days: the day holding `from` to the day before `to`.

use super::period::{Period, Range, day_number_sql};
use super::{Line, roll_up};
use crate::db::{Db, DbError};
use crate::stats::local_day_start;
use sqlx::Row;

/// What voucher sales are grouped by.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SalesBy {
    /// The batch the voucher was generated in.
    Batch,
    /// The voucher's plan.
    Plan,
    /// The reseller it was sold to (none: sold at the cash desk).
    Reseller,
    /// The site it is valid at (none: a group or every site).
    Site,
}

impl SalesBy {
    /// The key and label expressions, and the join that names the key ('' in the summary is
    /// "none named").
    fn sql(self) -> (&'static str, &'static str, &'static str) {
        match self {
            SalesBy::Batch => (
                "v.batch_id",
                "COALESCE(b.note, b.prefix, '')",
                "LEFT JOIN voucher_batches b ON b.id = v.batch_id",
            ),
            SalesBy::Plan => (
                "v.plan_id",
                "COALESCE(p.name, '')",
                "LEFT JOIN plans p ON p.id = v.plan_id",
            ),
            SalesBy::Reseller => (
                "v.reseller_id",
                "COALESCE(a.username, '')",
                "LEFT JOIN admin_users a ON a.id = v.reseller_id",
            ),
            SalesBy::Site => (
                "v.site_id",
                "COALESCE(s.name, '')",
                "LEFT JOIN sites s ON s.id = v.site_id",
            ),
        }
    }
}

/// Vouchers sold in `range` per `period` and group: count and their prices.
pub async fn report(
    db: &Db,
    range: Range,
    period: Period,
    by: SalesBy,
    offset_min: i32,
) -> Result<Vec<Line>, DbError> {
    let (key, label, join) = by.sql();
    let day = day_number_sql("v.day", "$1");
    let sql = format!(
        "SELECT {day} AS d, {key} AS k, {label} AS l, CAST(SUM(v.count) AS BIGINT) AS n, \
         CAST(SUM(v.amount) AS BIGINT) AS total FROM voucher_sales_daily v {join} \
         WHERE v.day >= $2 AND v.day < $3 GROUP BY {day}, {key}, {label}"
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
            Some(key).filter(|k| !k.is_empty()),
            r.try_get("l")?,
            r.try_get("n")?,
            r.try_get("total")?,
        ));
    }
    Ok(roll_up(days, period, offset_min))
}
