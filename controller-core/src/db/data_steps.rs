//! Data steps: one-off rewrites of stored rows that SQL alone cannot express on both engines,
//! run right after the SQL migrations and recorded in `data_migrations` (migration 0013) so
//! each runs once per database.

use super::{Db, DbError};
use sqlx::Row;

/// Whether a data step is recorded, read without a transaction: every start and every CLI
/// command asks, and on SQLite `db.begin()` takes the write lock (a step not recorded yet
/// is checked again inside its transaction).
async fn recorded(db: &Db, name: &str) -> Result<bool, DbError> {
    let done: Option<String> =
        sqlx::query_scalar("SELECT name FROM data_migrations WHERE name = $1")
            .bind(name)
            .fetch_optional(&db.pool)
            .await?;
    Ok(done.is_some())
}

/// Runs every data step this binary knows that the database has not recorded yet.
pub async fn run_pending(db: &Db) -> Result<(), DbError> {
    scrub_stored(db).await?;
    fill_revenue_daily(db).await?;
    fill_usage_monthly(db).await?;
    // After the months: the customers' months are made of them.
    fill_once(db, USAGE_CUSTOMER_MONTHLY_STEP, |_| {
        USAGE_CUSTOMER_MONTHLY_FILL_SQL.to_string()
    })
    .await?;
    fill_once(db, VOUCHER_SALES_DAILY_STEP, |offset| {
        voucher_sales_daily_fill_sql(offset, "true")
    })
    .await?;
    // Also after the months: the accounts' months are made of them.
    fill_once(db, USAGE_ACCOUNT_MONTHLY_STEP, |_| {
        USAGE_ACCOUNT_MONTHLY_FILL_SQL.to_string()
    })
    .await?;
    fill_once(db, USAGE_SITE_DAILY_STEP, |_| {
        USAGE_SITE_DAILY_FILL_SQL.to_string()
    })
    .await?;
    Ok(())
}

/// SQL that fills `usage_account_monthly` from `usage_monthly` (accounts already there are
/// left alone): the backfill of rows stored before the summary.
pub(crate) const USAGE_ACCOUNT_MONTHLY_FILL_SQL: &str = "INSERT INTO usage_account_monthly (username, month, \
    session_time_secs, input_octets, output_octets, sessions, octets) \
    SELECT username, month, CAST(SUM(session_time_secs) AS BIGINT), CAST(SUM(input_octets) AS BIGINT), \
    CAST(SUM(output_octets) AS BIGINT), CAST(SUM(sessions) AS BIGINT), \
    CAST(SUM(input_octets + output_octets) AS BIGINT) FROM usage_monthly WHERE true \
    GROUP BY username, month ON CONFLICT (username, month) DO NOTHING";

/// SQL that fills `usage_site_daily` from `usage_daily` (days already there are left alone).
pub(crate) const USAGE_SITE_DAILY_FILL_SQL: &str = "INSERT INTO usage_site_daily (day, site_id, \
    session_time_secs, input_octets, output_octets, sessions) \
    SELECT day, site_id, CAST(SUM(session_time_secs) AS BIGINT), CAST(SUM(input_octets) AS BIGINT), \
    CAST(SUM(output_octets) AS BIGINT), CAST(SUM(sessions) AS BIGINT) FROM usage_daily WHERE true \
    GROUP BY day, site_id ON CONFLICT (day, site_id) DO NOTHING";

/// The name of the data step that fills `usage_account_monthly` from `usage_monthly`.
const USAGE_ACCOUNT_MONTHLY_STEP: &str = "0030_usage_account_monthly";
/// The name of the data step that fills `usage_site_daily` from `usage_daily`.
const USAGE_SITE_DAILY_STEP: &str = "0030_usage_site_daily";

/// The summary's key columns, as every writer names them ('' where none is named).
const SALES_KEY: &str = "day, site_id, plan_id, reseller_id, batch_id";

/// SQL that adds the sold vouchers matching `filter` (a condition on `vouchers`, its
/// placeholders bound by the caller from `$1`) to their days at `offset_min`.
pub(crate) fn voucher_sales_daily_fill_sql(offset_min: i32, filter: &str) -> String {
    const DAY: i64 = 86_400_000;
    let off = i64::from(offset_min) * 60_000;
    // Floor division, also for instants before the offset's first midnight.
    let day =
        format!("(({off} + sold_at) - ((({off} + sold_at) % {DAY}) + {DAY}) % {DAY} - {off})");
    format!(
        "INSERT INTO voucher_sales_daily ({SALES_KEY}, count, amount) \
         SELECT {day}, COALESCE(site_id, ''), plan_id, COALESCE(sold_to, ''), COALESCE(batch_id, ''), \
         COUNT(*), CAST(SUM(price) AS BIGINT) FROM vouchers WHERE sold_at IS NOT NULL AND ({filter}) \
         GROUP BY {day}, COALESCE(site_id, ''), plan_id, COALESCE(sold_to, ''), COALESCE(batch_id, '') \
         ON CONFLICT ({SALES_KEY}) DO UPDATE SET count = voucher_sales_daily.count + excluded.count, \
         amount = voucher_sales_daily.amount + excluded.amount"
    )
}

/// SQL that fills `usage_customer_monthly` from `usage_monthly` through the subscriptions
/// as they are now (customers already there are left alone): the backfill of rows stored
/// before the summary, and the rebuild after usage was written by SQL.
pub(crate) const USAGE_CUSTOMER_MONTHLY_FILL_SQL: &str = "INSERT INTO usage_customer_monthly (customer_id, month, \
    session_time_secs, input_octets, output_octets, sessions, octets) \
    SELECT s.customer_id, u.month, CAST(SUM(u.session_time_secs) AS BIGINT), \
    CAST(SUM(u.input_octets) AS BIGINT), CAST(SUM(u.output_octets) AS BIGINT), \
    CAST(SUM(u.sessions) AS BIGINT), CAST(SUM(u.input_octets + u.output_octets) AS BIGINT) \
    FROM usage_monthly u JOIN subscriptions s ON s.username = u.username WHERE true \
    GROUP BY s.customer_id, u.month ON CONFLICT (customer_id, month) DO NOTHING";

/// The name of the data step that fills `usage_customer_monthly` from `usage_monthly`.
const USAGE_CUSTOMER_MONTHLY_STEP: &str = "0027_usage_customer_monthly";
/// The name of the data step that fills `voucher_sales_daily` from the sold vouchers.
const VOUCHER_SALES_DAILY_STEP: &str = "0027_voucher_sales_daily";

/// Runs the statement `sql` makes of the stored UTC offset, in one transaction with the
/// step's marker row: the summary it fills is empty or complete, and the step runs once.
async fn fill_once(db: &Db, name: &str, sql: impl Fn(i32) -> String) -> Result<(), DbError> {
    if recorded(db, name).await? {
        return Ok(());
    }
    let mut tx = db.begin().await?;
    let done: Option<String> =
        sqlx::query_scalar("SELECT name FROM data_migrations WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
    if done.is_some() {
        return Ok(());
    }
    let offset_min = super::billing_utc_offset(&mut tx).await?;
    sqlx::query(sqlx::AssertSqlSafe(sql(offset_min)))
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO data_migrations (name, applied_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(super::now_ms())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The name of the data step that fills `usage_monthly` from `usage_daily`.
const USAGE_MONTHLY_STEP: &str = "0019_usage_monthly";

/// The start of the local month holding the local day that starts at `day` (unix ms).
fn month_of(day: i64, offset_min: i64) -> i64 {
    const DAY: i64 = 86_400_000;
    let local = (day + offset_min * 60_000).div_euclid(1000);
    let dom = time::OffsetDateTime::from_unix_timestamp(local).map_or(1, |t| t.day());
    day - (i64::from(dom) - 1) * DAY
}

/// Adds up the days of `usage_daily` stored before `usage_monthly` existed into local months
/// at the stored offset, in one transaction with its marker row, so it runs exactly once.
async fn fill_usage_monthly(db: &Db) -> Result<(), DbError> {
    if recorded(db, USAGE_MONTHLY_STEP).await? {
        return Ok(());
    }
    let mut tx = db.begin().await?;
    let done: Option<String> =
        sqlx::query_scalar("SELECT name FROM data_migrations WHERE name = $1")
            .bind(USAGE_MONTHLY_STEP)
            .fetch_optional(&mut *tx)
            .await?;
    if done.is_some() {
        return Ok(());
    }
    let offset_min = i64::from(super::billing_utc_offset(&mut tx).await?);
    let days: Vec<i64> = sqlx::query_scalar("SELECT DISTINCT day FROM usage_daily ORDER BY day")
        .fetch_all(&mut *tx)
        .await?;
    // Each month's days are contiguous: one grouped insert per month, from its first to its
    // last stored day.
    let mut months: Vec<(i64, i64, i64)> = Vec::new();
    for d in days {
        let m = month_of(d, offset_min);
        match months.last_mut() {
            Some((month, _, last)) if *month == m => *last = d,
            _ => months.push((m, d, d)),
        }
    }
    for (month, first, last) in months {
        sqlx::query(
            "INSERT INTO usage_monthly (month, site_id, username, session_time_secs, input_octets, \
             output_octets, sessions) SELECT $1, site_id, username, CAST(SUM(session_time_secs) AS BIGINT), \
             CAST(SUM(input_octets) AS BIGINT), CAST(SUM(output_octets) AS BIGINT), CAST(SUM(sessions) AS BIGINT) \
             FROM usage_daily WHERE day >= $2 AND day <= $3 GROUP BY site_id, username \
             ON CONFLICT (month, site_id, username) DO NOTHING",
        )
        .bind(month)
        .bind(first)
        .bind(last)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "INSERT INTO data_migrations (name, applied_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(USAGE_MONTHLY_STEP)
    .bind(super::now_ms())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// SQL that adds every row of `revenue` into `revenue_daily` at a UTC offset (keys already
/// there are left alone).
pub(crate) fn revenue_daily_fill_sql(offset_min: i32) -> String {
    const DAY: i64 = 86_400_000;
    let off = i64::from(offset_min) * 60_000;
    // Floor division, also for instants before the offset's first midnight.
    let day = format!(
        "(({off} + received_at) - ((({off} + received_at) % {DAY}) + {DAY}) % {DAY} - {off})"
    );
    format!(
        "INSERT INTO revenue_daily (day, source, method, site_id, plan_id, reseller_id, count, amount) \
         SELECT {day}, source, COALESCE(method, ''), COALESCE(site_id, ''), COALESCE(plan_id, ''), \
         COALESCE(reseller_id, ''), COUNT(*), CAST(SUM(amount) AS BIGINT) FROM revenue \
         GROUP BY {day}, source, COALESCE(method, ''), COALESCE(site_id, ''), COALESCE(plan_id, ''), \
         COALESCE(reseller_id, '') \
         ON CONFLICT (day, source, method, site_id, plan_id, reseller_id) DO NOTHING"
    )
}

/// The name of the data step that fills `revenue_daily` from the revenue ledger.
const REVENUE_DAILY_STEP: &str = "0019_revenue_daily";

/// Adds up the revenue rows stored before `revenue_daily` existed into local days at the
/// operator's stored offset (SQL alone cannot read it out of the settings JSON on both
/// engines). One transaction: the summary is empty or complete, and the marker row commits
/// with it, so the step runs exactly once.
async fn fill_revenue_daily(db: &Db) -> Result<(), DbError> {
    if recorded(db, REVENUE_DAILY_STEP).await? {
        return Ok(());
    }
    let mut tx = db.begin().await?;
    let done: Option<String> =
        sqlx::query_scalar("SELECT name FROM data_migrations WHERE name = $1")
            .bind(REVENUE_DAILY_STEP)
            .fetch_optional(&mut *tx)
            .await?;
    if done.is_some() {
        return Ok(());
    }
    let offset_min = i64::from(super::billing_utc_offset(&mut tx).await?);
    sqlx::query(sqlx::AssertSqlSafe(revenue_daily_fill_sql(
        offset_min as i32,
    )))
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO data_migrations (name, applied_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(REVENUE_DAILY_STEP)
    .bind(super::now_ms())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The name of the one-off data step that scrubs rows stored before redaction existed.
const SCRUB_STEP: &str = "0013_scrub_audit_secrets";

/// Rewrites audit snapshots and event payloads stored before redaction existed, once per
/// database (recorded in `data_migrations`, created by migration 0013).
///
/// SQL alone cannot apply the same key rule at every depth on both engines, so the SQL
/// migration creates the marker table and this step, run right after it, does the rewriting
/// with [`crate::secrets::redact`]'s rule. It is idempotent: a crash half-way reruns it on the next start.
async fn scrub_stored(db: &Db) -> Result<u64, DbError> {
    if recorded(db, SCRUB_STEP).await? {
        return Ok(0);
    }
    let mut rewritten = 0;
    rewritten += scrub_table(db, "audit_log", &["before_json", "after_json"]).await?;
    rewritten += scrub_table(db, "events", &["payload"]).await?;
    // Two replicas starting together may both run the (idempotent) step; the second insert
    // must not fail its start.
    sqlx::query(
        "INSERT INTO data_migrations (name, applied_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
        .bind(SCRUB_STEP)
        .bind(super::now_ms())
        .execute(&db.pool)
        .await?;
    if rewritten > 0 {
        tracing::info!(
            rows = rewritten,
            "redacted secrets in stored audit and event rows"
        );
    }
    Ok(rewritten)
}

/// Rewrites one table's JSON columns in batches of rows, by ascending id.
async fn scrub_table(db: &Db, table: &str, columns: &[&str]) -> Result<u64, DbError> {
    const BATCH: i64 = 500;
    let select = format!(
        "SELECT id, {} FROM {table} WHERE id > $1 ORDER BY id LIMIT $2",
        columns.join(", ")
    );
    let mut last = 0i64;
    let mut rewritten = 0u64;
    loop {
        let rows = sqlx::query(sqlx::AssertSqlSafe(select.clone()))
            .bind(last)
            .bind(BATCH)
            .fetch_all(&db.pool)
            .await?;
        let Some(tail) = rows.last() else { break };
        last = tail.try_get("id")?;
        let mut tx = db.begin().await?;
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            for col in columns {
                let text: Option<String> = row.try_get(*col)?;
                if let Some(clean) = text.as_deref().and_then(crate::secrets::redact_text) {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "UPDATE {table} SET {col} = $1 WHERE id = $2"
                    )))
                    .bind(clean)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    rewritten += 1;
                }
            }
        }
        tx.commit().await?;
    }
    Ok(rewritten)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn daily(db: &Db) -> Vec<(i64, String, String, i64, i64)> {
        sqlx::query("SELECT day, source, method, count, amount FROM revenue_daily ORDER BY day, source, method")
            .fetch_all(&db.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.get("day"),
                    r.get("source"),
                    r.get("method"),
                    r.get("count"),
                    r.get("amount"),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn revenue_stored_before_the_summary_is_filed_under_local_days_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&super::super::sqlite_url_for_dir(dir.path()))
            .await
            .unwrap();
        // Rows as an older release stored them: no summary yet, the step not run.
        const DAY: i64 = 86_400_000;
        let wib_midnight = 20_000 * DAY - 7 * 3_600_000;
        for (i, (at, method, amount)) in [
            (wib_midnight + 1_000, Some("cash"), 100),
            (wib_midnight + 2_000, Some("cash"), 50),
            // 23:59 local the day before: its own day.
            (wib_midnight - 60_000, Some("transfer"), 7),
            (wib_midnight + 5_000, None, 1),
        ]
        .into_iter()
        .enumerate()
        {
            sqlx::query("INSERT INTO revenue (source, reference, amount, received_at, method) VALUES ('payment', $1, $2, $3, $4)")
                .bind(format!("p{i}"))
                .bind(amount)
                .bind(at)
                .bind(method)
                .execute(&db.pool)
                .await
                .unwrap();
        }
        sqlx::query("DELETE FROM data_migrations WHERE name = $1")
            .bind(REVENUE_DAILY_STEP)
            .execute(&db.pool)
            .await
            .unwrap();
        run_pending(&db).await.unwrap();
        let want = vec![
            (
                wib_midnight - DAY,
                "payment".into(),
                "transfer".into(),
                1,
                7,
            ),
            (wib_midnight, "payment".into(), "".into(), 1, 1),
            (wib_midnight, "payment".into(), "cash".into(), 2, 150),
        ];
        assert_eq!(daily(&db).await, want);
        // A second start runs nothing again.
        run_pending(&db).await.unwrap();
        assert_eq!(daily(&db).await, want);
    }
}

#[cfg(test)]
mod month_tests {
    use super::month_of;

    #[test]
    fn a_local_day_belongs_to_its_local_month() {
        const DAY: i64 = 86_400_000;
        let wib = 420;
        // 2026-12-01 00:00 WIB is 2026-11-30 17:00 UTC.
        let first = 1_796_058_000_000;
        assert_eq!(month_of(first, wib), first);
        assert_eq!(month_of(first + 30 * DAY, wib), first);
        // 2026-11-30 WIB belongs to November (30 days).
        assert_eq!(month_of(first - DAY, wib), first - 30 * DAY);
    }
}
