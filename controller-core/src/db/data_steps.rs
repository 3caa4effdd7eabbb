//! Data steps: one-off rewrites of stored rows that SQL alone cannot express on both engines,
//! run right after the SQL migrations and recorded in `data_migrations` (migration 0013) so
//! each runs once per database.

use super::{Db, DbError};
use sqlx::Row;

/// Runs every data step this binary knows that the database has not recorded yet.
pub async fn run_pending(db: &Db) -> Result<(), DbError> {
    scrub_stored(db).await?;
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
    let done: Option<String> =
        sqlx::query_scalar("SELECT name FROM data_migrations WHERE name = $1")
            .bind(SCRUB_STEP)
            .fetch_optional(&db.pool)
            .await?;
    if done.is_some() {
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
