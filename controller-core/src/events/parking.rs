//! Events a consumer failed on. While attempts remain the consumer retries the event at its
//! cursor; after [`MAX_ATTEMPTS`] the event is parked for that consumer (with its error,
//! visible in the API and the admin UI) and the cursor moves on, so one poison event never
//! blocks the events after it. An operator's retry makes the consumer try a parked event
//! again; success removes it.

use crate::db::{Db, DbError, now_ms};
use serde::Serialize;
use sqlx::Row;

/// Failed attempts after which an event is parked for its consumer.
pub const MAX_ATTEMPTS: i64 = 5;
/// The longest error text kept; handler errors can quote whole SQL statements.
const MAX_ERROR_LEN: usize = 1000;

/// A parked event, as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Parked {
    /// The consumer that could not handle it.
    pub consumer: String,
    /// The event.
    pub event_id: i64,
    /// Its kind, e.g. `voucher_batch.sold`.
    pub kind: String,
    /// Failed attempts so far.
    pub attempts: i64,
    /// The last attempt's error.
    pub last_error: String,
    /// When it first failed (unix ms).
    pub first_failed_at: i64,
    /// When it was parked (unix ms).
    pub parked_at: i64,
    /// An operator asked for another try that has not run yet.
    pub retry_requested: bool,
}

fn clip(error: &str) -> String {
    if error.len() <= MAX_ERROR_LEN {
        return error.to_string();
    }
    let mut end = MAX_ERROR_LEN;
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &error[..end])
}

/// Counts a failed attempt at an event; returns the attempts so far.
pub async fn record_failure(
    conn: &mut sqlx::AnyConnection,
    consumer: &str,
    event_id: i64,
    error: &str,
) -> Result<i64, DbError> {
    let now = now_ms();
    let row = sqlx::query(
        "INSERT INTO consumer_failures (consumer, event_id, attempts, last_error, first_failed_at, last_failed_at) \
         VALUES ($1, $2, 1, $3, $4, $4) \
         ON CONFLICT (consumer, event_id) DO UPDATE SET attempts = consumer_failures.attempts + 1, \
         last_error = excluded.last_error, last_failed_at = excluded.last_failed_at, retry_requested = 0 \
         RETURNING attempts",
    )
    .bind(consumer)
    .bind(event_id)
    .bind(clip(error))
    .bind(now)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .next()
    .ok_or(sqlx::Error::RowNotFound)?;
    Ok(row.try_get("attempts")?)
}

/// Marks an event parked for a consumer (inside the transaction that moves its cursor past).
pub async fn park(
    conn: &mut sqlx::AnyConnection,
    consumer: &str,
    event_id: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE consumer_failures SET parked_at = $1 WHERE consumer = $2 AND event_id = $3",
    )
    .bind(now_ms())
    .bind(consumer)
    .bind(event_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Forgets the failures of events up to `through` that were not parked: they succeeded on a
/// later attempt.
pub async fn clear_recovered(
    conn: &mut sqlx::AnyConnection,
    consumer: &str,
    through: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "DELETE FROM consumer_failures WHERE consumer = $1 AND event_id <= $2 AND parked_at IS NULL",
    )
    .bind(consumer)
    .bind(through)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Removes a parked event that its retry handled.
pub async fn resolve(
    conn: &mut sqlx::AnyConnection,
    consumer: &str,
    event_id: i64,
) -> Result<(), DbError> {
    sqlx::query("DELETE FROM consumer_failures WHERE consumer = $1 AND event_id = $2")
        .bind(consumer)
        .bind(event_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Parked events of a consumer an operator asked to retry, oldest first.
pub async fn retries_due(db: &Db, consumer: &str) -> Result<Vec<i64>, DbError> {
    let rows = sqlx::query(
        "SELECT event_id FROM consumer_failures WHERE consumer = $1 AND parked_at IS NOT NULL AND retry_requested = 1 ORDER BY event_id LIMIT 100",
    )
    .bind(consumer)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| r.try_get("event_id"))
        .collect::<Result<_, _>>()
        .map_err(DbError::from)
}

/// Asks the consumer to try a parked event again; false when no such event is parked.
pub async fn request_retry(
    conn: &mut sqlx::AnyConnection,
    consumer: &str,
    event_id: i64,
) -> Result<bool, DbError> {
    let n = sqlx::query(
        "UPDATE consumer_failures SET retry_requested = 1 WHERE consumer = $1 AND event_id = $2 AND parked_at IS NOT NULL",
    )
    .bind(consumer)
    .bind(event_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Asks for another try at a parked event, audited; false when no such event is parked.
/// Used by the API and the admin UI alike.
pub async fn retry(
    db: &Db,
    actor: &crate::audit::Actor,
    consumer: &str,
    event_id: i64,
) -> Result<bool, crate::error::DomainError> {
    let mut tx = db.begin().await?;
    if !request_retry(&mut tx, consumer, event_id).await? {
        return Ok(false);
    }
    crate::audit::record(
        &mut tx,
        actor,
        "events.retry_parked",
        "event_consumer",
        Some(consumer),
        None::<&()>,
        Some(&serde_json::json!({ "event_id": event_id })),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Parked events, newest first; of one consumer when given.
pub async fn list(db: &Db, consumer: Option<&str>, limit: u32) -> Result<Vec<Parked>, DbError> {
    let rows = sqlx::query(
        "SELECT f.consumer, f.event_id, e.kind, f.attempts, f.last_error, f.first_failed_at, f.parked_at, f.retry_requested \
         FROM consumer_failures f JOIN events e ON e.id = f.event_id \
         WHERE f.parked_at IS NOT NULL AND ($1 IS NULL OR f.consumer = $1) \
         ORDER BY f.parked_at DESC, f.event_id DESC LIMIT $2",
    )
    .bind(consumer)
    .bind(i64::from(limit))
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Parked {
                consumer: r.try_get("consumer")?,
                event_id: r.try_get("event_id")?,
                kind: r.try_get("kind")?,
                attempts: r.try_get("attempts")?,
                last_error: r.try_get("last_error")?,
                first_failed_at: r.try_get("first_failed_at")?,
                parked_at: r.try_get("parked_at")?,
                retry_requested: r.try_get::<i64, _>("retry_requested")? != 0,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(DbError::from)
}

/// How many events are parked, per consumer (for metrics and the consumer list).
pub async fn counts(db: &Db) -> Result<Vec<(String, i64)>, DbError> {
    let rows = sqlx::query(
        "SELECT consumer, COUNT(*) AS n FROM consumer_failures WHERE parked_at IS NOT NULL GROUP BY consumer ORDER BY consumer",
    )
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("consumer")?, r.try_get("n")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(DbError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_errors_are_clipped_on_a_character_boundary() {
        let long = "é".repeat(MAX_ERROR_LEN);
        let clipped = clip(&long);
        assert!(clipped.len() <= MAX_ERROR_LEN + '…'.len_utf8());
        assert!(clipped.ends_with('…'));
        assert_eq!(clip("short"), "short");
    }
}
