//! Subscriber movements per local day or month: PPPoE subscriptions created, isolated,
//! re-activated and terminated. Isolations and the rest are read from the domain events (the
//! outbox keeps every one), so a subscriber isolated twice counts twice.

use super::period::{Period, Range, day_number_sql, day_number_start, start_of, starts};
use crate::db::{Db, DbError};
use sqlx::Row;

/// One period's movements.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Movements {
    /// Start of the local day or month (unix ms).
    pub period_start: i64,
    /// Subscriptions created.
    pub new: i64,
    /// Isolations (overdue or by an operator).
    pub isolated: i64,
    /// Re-activations.
    pub reactivated: i64,
    /// Terminations.
    pub terminated: i64,
}

/// Movements in `range`, one row per `period` (periods without any included).
pub async fn report(
    db: &Db,
    range: Range,
    period: Period,
    offset_min: i32,
) -> Result<Vec<Movements>, DbError> {
    let mut out: Vec<Movements> = starts(range, period, offset_min)
        .into_iter()
        .map(|period_start| Movements {
            period_start,
            ..Movements::default()
        })
        .collect();
    let off = offset_min as i64 * 60_000;
    let created = day_number_sql("created_at", "$1");
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {created} AS d, 'new' AS k, COUNT(*) AS n FROM subscriptions \
         WHERE created_at >= $2 AND created_at < $3 GROUP BY {created} \
         UNION ALL \
         SELECT {created} AS d, kind AS k, COUNT(*) AS n FROM events \
         WHERE kind IN ('subscription.isolated', 'subscription.reactivated', 'subscription.terminated') \
         AND created_at >= $2 AND created_at < $3 GROUP BY {created}, kind"
    )))
    .bind(off)
    .bind(range.from)
    .bind(range.to)
    .fetch_all(&db.pool)
    .await?;
    for r in rows {
        let day: i64 = r.try_get("d")?;
        let kind: String = r.try_get("k")?;
        let n: i64 = r.try_get("n")?;
        let start = start_of(day_number_start(day, offset_min), period, offset_min);
        let Some(m) = out.iter_mut().find(|m| m.period_start == start) else {
            continue;
        };
        match kind.as_str() {
            "new" => m.new += n,
            "subscription.isolated" => m.isolated += n,
            "subscription.reactivated" => m.reactivated += n,
            _ => m.terminated += n,
        }
    }
    Ok(out)
}
