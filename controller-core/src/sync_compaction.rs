//! Keeps the change log bounded. Entries every connected agent has applied, and older than
//! the retention (so an agent back from a short outage still catches up from the log instead
//! of a snapshot), are deleted; past `MAX_ENTRIES` the oldest go whatever anyone needs. An
//! agent whose cursor falls below what is left takes a snapshot on its next connect, as
//! `sync_log::needs_snapshot` decides already.

use crate::db::{Db, DbError};
use sqlx::Row;

/// Setting: how long entries stay for agents that are offline (seconds).
pub const RETENTION_SETTING: &str = "sync_log_retention_secs";
/// Default retention: a day of outage is caught up from the log.
pub const DEFAULT_RETENTION_SECS: i64 = 24 * 3600;
/// The most entries the log keeps, whoever lags.
pub const MAX_ENTRIES: u64 = 2_000_000;
/// Entries deleted per statement, so a big compaction never holds the log for long.
const DELETE_CHUNK: i64 = 10_000;

/// The newest sequence number that may be deleted: what every connected agent has applied
/// (`online_cursors`), older than the first entry inside the retention window
/// (`first_retained`, `None` when no entry is that new), and in any case enough to leave at
/// most `max_entries` after it. Pure.
pub fn delete_through(
    head: u64,
    online_cursors: &[u64],
    first_retained: Option<u64>,
    max_entries: u64,
) -> u64 {
    let needed = online_cursors
        .iter()
        .copied()
        .min()
        .unwrap_or(head)
        .min(head);
    let by_age = first_retained.map_or(head, |s| s.saturating_sub(1));
    let by_size = head.saturating_sub(max_entries);
    needed.min(by_age).max(by_size)
}

/// Deletes what no one needs any more; returns how many entries went.
pub async fn compact(db: &Db, now: i64) -> Result<u64, DbError> {
    let retention_secs = db
        .setting(RETENTION_SETTING)
        .await?
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|v| *v >= 0)
        .unwrap_or(DEFAULT_RETENTION_SECS);
    let head = crate::sync_log::head(db).await?;
    let online: Vec<u64> = sqlx::query(
        "SELECT sync_seq FROM sites WHERE session_id IS NOT NULL AND revoked_at IS NULL",
    )
    .fetch_all(&db.pool)
    .await?
    .iter()
    .map(|r| r.try_get::<i64, _>("sync_seq").map(|s| s.max(0) as u64))
    .collect::<Result<_, _>>()?;
    // In seq order through the primary key: entries older than the window are what the
    // last run deleted, so the first young one is near the start (no index on created_at).
    let first_retained: Option<i64> =
        sqlx::query_scalar("SELECT seq FROM sync_log WHERE created_at >= $1 ORDER BY seq LIMIT 1")
            .bind(now - retention_secs * 1000)
            .fetch_optional(&db.pool)
            .await?;
    let through = delete_through(head, &online, first_retained.map(|s| s as u64), MAX_ENTRIES);
    let mut deleted = 0;
    loop {
        let n = sqlx::query(
            "DELETE FROM sync_log WHERE seq IN \
             (SELECT seq FROM sync_log WHERE seq <= $1 ORDER BY seq LIMIT $2)",
        )
        .bind(through as i64)
        .bind(DELETE_CHUNK)
        .execute(&db.pool)
        .await?
        .rows_affected();
        deleted += n;
        if n < DELETE_CHUNK as u64 {
            break;
        }
    }
    if deleted > 0 {
        tracing::info!(deleted, through, "change log compacted");
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn compaction_keeps_what_is_needed_and_stays_bounded(
            head in 0u64..10_000_000,
            cursors in proptest::collection::vec(0u64..10_000_000, 0..20),
            first_retained in proptest::option::of(0u64..10_000_000),
            max in 1u64..5_000_000,
        ) {
            let cursors: Vec<u64> = cursors.into_iter().map(|c| c.min(head)).collect();
            let first_retained = first_retained.map(|s| s.min(head + 1));
            let through = delete_through(head, &cursors, first_retained, max);
            prop_assert!(through <= head, "never past what was handed out");
            prop_assert!(head - through <= max, "at most `max` entries are left");
            let over = head.saturating_sub(max);
            if through > over {
                // Only the size bound deletes more than needed; otherwise every connected
                // agent and every retained entry is kept.
                for c in &cursors {
                    prop_assert!(through <= *c);
                }
                if let Some(first) = first_retained {
                    prop_assert!(through < first.max(1));
                }
            }
        }
    }

    #[test]
    fn an_idle_fleet_keeps_the_retention_window() {
        // Everyone is up to date: entries older than the window go, the window stays.
        assert_eq!(delete_through(100, &[100, 100], Some(90), 1000), 89);
        // One connected agent lags at 40.
        assert_eq!(delete_through(100, &[100, 40], Some(90), 1000), 40);
        // Nothing newer than the window: all of it may go once applied.
        assert_eq!(delete_through(100, &[100], None, 1000), 100);
        // A stuck agent cannot keep more than the bound.
        assert_eq!(delete_through(100, &[0], None, 30), 70);
    }
}
