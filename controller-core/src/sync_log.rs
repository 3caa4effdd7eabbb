//! The change log that drives cache sync.
//!
//! Every change to a synced record is appended in the same transaction as the change
//! itself, numbered from one global counter. The counter row is locked by each writer until
//! it commits, so sequence numbers become visible in order and an agent reading "everything
//! after my cursor" can never skip a change that commits later with a smaller number.
//! A change names one site, or none for changes that concern every site.

use crate::db::{Db, DbError, now_ms};
use mikrobill_protocol::items::{Item, ItemKey, Stored};
use mikrobill_protocol::messages::{Change, ChangeOp, SyncCursor};
use sqlx::{AnyConnection, Row};

const EPOCH_SETTING: &str = "sync_epoch";
/// Changes per INSERT (see [`crate::db::params`]).
const APPEND_CHUNK: usize = crate::db::params::MAX_PARAMS / 6;

/// Appends changes for `site_id` (None: every site) inside the caller's transaction and
/// returns the sequence of the last one.
pub async fn append(
    conn: &mut AnyConnection,
    site_id: Option<&str>,
    ops: &[ChangeOp],
) -> Result<u64, DbError> {
    if ops.is_empty() {
        let row = sqlx::query("SELECT seq FROM sync_counter WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?;
        return Ok(row.try_get::<i64, _>("seq")? as u64);
    }
    let row = sqlx::query("UPDATE sync_counter SET seq = seq + $1 WHERE id = 1 RETURNING seq")
        .bind(ops.len() as i64)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .next()
        .ok_or(sqlx::Error::RowNotFound)?;
    let last = row.try_get::<i64, _>("seq")? as u64;
    let first = last + 1 - ops.len() as u64;
    let now = now_ms();
    for (chunk_index, chunk) in ops.chunks(APPEND_CHUNK).enumerate() {
        let sql = format!(
            "INSERT INTO sync_log (seq, site_id, item_kind, item_key, payload, created_at) VALUES {}",
            crate::db::params::Params::of(conn).rows(chunk.len(), 6)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (i, op) in chunk.iter().enumerate() {
            let seq = first + (chunk_index * APPEND_CHUNK + i) as u64;
            let (key, payload) = match op {
                ChangeOp::Upsert(item) => (
                    item.key(),
                    Some(postcard::to_stdvec(item).expect("items always encode")),
                ),
                ChangeOp::Delete(key) => (key.clone(), None),
            };
            q = q
                .bind(seq as i64)
                .bind(site_id.map(str::to_string))
                .bind(key.kind())
                .bind(key.id().to_string())
                .bind(payload)
                .bind(now);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(last)
}

/// Takes the change log's lock now rather than at the first append, inside the caller's
/// transaction. A writer that decides from other rows (group membership) which sites get a
/// change reads them after this, so a concurrent writer of those rows is ordered with it.
pub async fn lock(conn: &mut AnyConnection) -> Result<(), DbError> {
    sqlx::query("UPDATE sync_counter SET seq = seq WHERE id = 1")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Identity of this database's log; agents holding another epoch need a snapshot.
pub async fn epoch(db: &Db) -> Result<String, DbError> {
    db.setting_or_init(EPOCH_SETTING, || uuid::Uuid::new_v4().to_string())
        .await
}

/// Starts a new epoch: every agent's cursor is then of another log and it gets a snapshot
/// on its next connect. A restored database needs this: agents may have seen changes the
/// snapshot does not hold, under sequence numbers the restored log will hand out again.
pub async fn start_new_epoch(db: &Db) -> Result<String, DbError> {
    let epoch = uuid::Uuid::new_v4().to_string();
    db.set_setting(EPOCH_SETTING, &epoch).await?;
    Ok(epoch)
}

/// The newest sequence number handed out.
pub async fn head(db: &Db) -> Result<u64, DbError> {
    let row = sqlx::query("SELECT seq FROM sync_counter WHERE id = 1")
        .fetch_one(&db.pool)
        .await?;
    Ok(row.try_get::<i64, _>("seq")? as u64)
}

/// The newest sequence no longer in the log (0 until the log is compacted).
pub async fn floor(db: &Db) -> Result<u64, DbError> {
    let row = sqlx::query("SELECT MIN(seq) AS low FROM sync_log")
        .fetch_one(&db.pool)
        .await?;
    let low: Option<i64> = row.try_get("low")?;
    match low {
        Some(low) => Ok((low as u64).saturating_sub(1)),
        None => head(db).await,
    }
}

/// Whether an agent at `cursor` can catch up from the log of `epoch`, or needs a snapshot.
pub async fn needs_snapshot(db: &Db, epoch: &str, cursor: &SyncCursor) -> Result<bool, DbError> {
    if cursor.epoch != epoch {
        return Ok(true);
    }
    Ok(cursor.seq < floor(db).await? || cursor.seq > head(db).await?)
}

/// Changes for `site_id` after `after`, oldest first, at most `limit`.
pub async fn changes_after(
    db: &Db,
    site_id: &str,
    after: u64,
    limit: u32,
) -> Result<Vec<Change>, DbError> {
    let rows = sqlx::query(
        "SELECT seq, item_kind, item_key, payload FROM sync_log \
         WHERE seq > $1 AND (site_id = $2 OR site_id IS NULL) ORDER BY seq LIMIT $3",
    )
    .bind(after as i64)
    .bind(site_id)
    .bind(limit as i64)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|row| {
            let seq = row.try_get::<i64, _>("seq")? as u64;
            let payload: Option<Vec<u8>> = row.try_get("payload")?;
            let op = match payload {
                Some(bytes) => ChangeOp::Upsert(Item::decode_stored(&bytes).map_err(|e| {
                    DbError::Sqlx(sqlx::Error::Decode(
                        format!("sync_log entry {seq} is corrupt: {e}").into(),
                    ))
                })?),
                None => {
                    let kind: String = row.try_get("item_kind")?;
                    let key: String = row.try_get("item_key")?;
                    ChangeOp::Delete(match kind.as_str() {
                        "plan" => ItemKey::Plan(key),
                        "voucher" => ItemKey::Voucher(key),
                        "user" => ItemKey::User(key),
                        other => {
                            return Err(DbError::Sqlx(sqlx::Error::Decode(
                                format!("sync_log entry {seq} has unknown kind {other:?}").into(),
                            )));
                        }
                    })
                }
            };
            Ok(Change { seq, op })
        })
        .collect()
}
