//! Consumer cursors: each consumer reads events after its cursor and moves the cursor in the
//! same transaction as its own effects. A lease on the cursor row keeps one replica reading
//! at a time, so each event is handled once.

use crate::db::{Db, DbError, now_ms};
use sqlx::Row;

/// Takes (or extends) the lease on a consumer's cursor; returns the cursor if this holder has
/// it. A consumer seen for the first time starts at the newest event: it reacts to what
/// happens from now on.
pub async fn claim(
    db: &Db,
    name: &str,
    holder: &str,
    lease_ms: i64,
) -> Result<Option<i64>, DbError> {
    let now = now_ms();
    let mut conn = db.pool.acquire().await?;
    let head = super::head(&mut conn).await?;
    sqlx::query(
        "INSERT INTO event_consumers (name, cursor, holder, lease_until, updated_at) VALUES ($1, $2, NULL, 0, $3) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(head)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let row = sqlx::query(
        "UPDATE event_consumers SET holder = $1, lease_until = $2 WHERE name = $3 AND (lease_until < $4 OR holder = $1) RETURNING cursor",
    )
    .bind(holder)
    .bind(now + lease_ms)
    .bind(name)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        Some(r) => Some(r.try_get("cursor")?),
        None => None,
    })
}

/// Whether a consumer has events to read (or has never run); a read-only check, so an idle
/// consumer polling often does not write (and on SQLite does not take the write lock).
pub async fn has_work(db: &Db, name: &str) -> Result<bool, DbError> {
    let mut conn = db.pool.acquire().await?;
    let cursor: Option<i64> = sqlx::query("SELECT cursor FROM event_consumers WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| r.try_get("cursor"))
        .transpose()?;
    Ok(match cursor {
        None => true,
        Some(c) => super::head(&mut conn).await? > c,
    })
}

/// Moves the cursor inside the caller's transaction, only while `holder` holds the lease and
/// the cursor is still where it read from; false means another replica took over.
pub async fn advance(
    conn: &mut sqlx::AnyConnection,
    name: &str,
    holder: &str,
    from: i64,
    to: i64,
) -> Result<bool, DbError> {
    let n = sqlx::query(
        "UPDATE event_consumers SET cursor = $1, updated_at = $2 WHERE name = $3 AND holder = $4 AND cursor = $5",
    )
    .bind(to)
    .bind(now_ms())
    .bind(name)
    .bind(holder)
    .bind(from)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// A consumer's state for the API.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ConsumerState {
    /// Consumer name.
    pub name: String,
    /// The last event it handled.
    pub cursor: i64,
    /// The replica reading now, if any.
    pub holder: Option<String>,
}

/// Every consumer's cursor.
pub async fn states(db: &Db) -> Result<Vec<ConsumerState>, DbError> {
    let now = now_ms();
    let rows =
        sqlx::query("SELECT name, cursor, holder, lease_until FROM event_consumers ORDER BY name")
            .fetch_all(&db.pool)
            .await?;
    rows.iter()
        .map(|r| {
            let until: i64 = r.try_get("lease_until")?;
            Ok(ConsumerState {
                name: r.try_get("name")?,
                cursor: r.try_get("cursor")?,
                holder: if until > now {
                    r.try_get("holder")?
                } else {
                    None
                },
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(DbError::from)
}

/// Sets a consumer's cursor back so it handles events after `after` again (replay); returns
/// whether the consumer exists. Its lease is cleared so the next tick picks the change up.
pub async fn rewind(db: &Db, name: &str, after: i64) -> Result<bool, DbError> {
    let n = sqlx::query("UPDATE event_consumers SET cursor = $1, holder = NULL, lease_until = 0, updated_at = $2 WHERE name = $3")
        .bind(after.max(0))
        .bind(now_ms())
        .bind(name)
        .execute(&db.pool)
        .await?
        .rows_affected();
    Ok(n == 1)
}
