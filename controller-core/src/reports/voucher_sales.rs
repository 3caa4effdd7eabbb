//! Vouchers sold per local day or month, counted and priced, by batch, plan, reseller or
//! site. A voucher is sold when it is sold at the cash desk or in a batch to a reseller.

use super::period::{Period, Range, day_number_sql};
use super::{Line, roll_up};
use crate::db::{Db, DbError};
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
                "v.sold_to",
                "COALESCE(a.username, '')",
                "LEFT JOIN admin_users a ON a.id = v.sold_to",
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
    let day = day_number_sql("v.sold_at", "$1");
    let sql = format!(
        "SELECT {day} AS d, {key} AS k, {label} AS l, COUNT(*) AS n, \
         CAST(SUM(v.price) AS BIGINT) AS total FROM vouchers v {join} \
         WHERE v.sold_at >= $2 AND v.sold_at < $3 GROUP BY {day}, {key}, {label}"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(offset_min as i64 * 60_000)
        .bind(range.from)
        .bind(range.to)
        .fetch_all(&db.pool)
        .await?;
    let mut days = Vec::with_capacity(rows.len());
    for r in rows {
        days.push((
            r.try_get("d")?,
            r.try_get("k")?,
            r.try_get("l")?,
            r.try_get("n")?,
            r.try_get("total")?,
        ));
    }
    Ok(roll_up(days, period, offset_min))
}
