//! Consumer cursors: each consumer reads events after its cursor and moves the cursor in the
//! same transaction as its own effects. A lease on the cursor row keeps one replica reading
//! at a time, so each event is handled once.

use crate::audit::{self, Actor};
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
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .next();
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
pub async fn rewind(db: &Db, actor: &Actor, name: &str, after: i64) -> Result<bool, DbError> {
    let mut tx = db.begin().await?;
    let n = sqlx::query("UPDATE event_consumers SET cursor = $1, holder = NULL, lease_until = 0, updated_at = $2 WHERE name = $3")
        .bind(after.max(0))
        .bind(now_ms())
        .bind(name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n == 1 {
        audit::record(
            &mut tx,
            actor,
            "events.rewind",
            "event_consumer",
            Some(name),
            None::<&()>,
            Some(&after),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(n == 1)
}

/// A consumer of the event log: what it does with each event, inside the transaction that
/// moves its cursor. [`drive`] runs it.
pub trait Handler: Sync {
    /// What one batch loads once (settings, templates, subscribers).
    type Batch: Send + Sync;
    /// The consumer's name in `event_consumers`.
    fn name(&self) -> &'static str;
    /// Loads what a batch needs, through the batch's transaction only: on SQLite it holds
    /// the write lock, and reading through a second pooled connection can wait on writers
    /// that wait on this one.
    fn prepare(
        &self,
        conn: &mut sqlx::AnyConnection,
    ) -> impl std::future::Future<Output = Result<Self::Batch, String>> + Send;
    /// Handles one event inside the batch's transaction; returns how many effects (messages,
    /// deliveries) it created. An error rolls back this event's effects only.
    fn handle(
        &self,
        batch: &Self::Batch,
        conn: &mut sqlx::AnyConnection,
        event: &super::Event,
    ) -> impl std::future::Future<Output = Result<u64, String>> + Send;
}

/// Events read per transaction.
const BATCH: u32 = 100;
/// How long a holder keeps a consumer between renewals.
const LEASE_MS: i64 = 30_000;

/// Handles the events after the consumer's cursor, batch by batch, moving the cursor in the
/// transaction of their effects; returns how many effects were created. An event that fails
/// rolls back alone (a savepoint), the events before it commit, and the consumer stops there
/// to retry it next time; after [`super::parking::MAX_ATTEMPTS`] failures it is parked, an
/// `event.parked` event tells operators, and the cursor moves past it. Does nothing when
/// another replica holds the consumer.
pub async fn drive<H: Handler>(db: &Db, handler: &H, holder: &str) -> Result<u64, DbError> {
    let name = handler.name();
    let retries = super::parking::retries_due(db, name).await?;
    if retries.is_empty() && !has_work(db, name).await? {
        return Ok(0);
    }
    let Some(mut cursor) = claim(db, name, holder, LEASE_MS).await? else {
        return Ok(0);
    };
    let mut created = 0;
    for event_id in retries {
        created += retry_parked(db, handler, event_id).await?;
    }
    loop {
        // Each batch renews the lease, so a long backlog stays with this replica.
        if claim(db, name, holder, LEASE_MS).await? != Some(cursor) {
            return Ok(created);
        }
        let mut tx = db.begin().await?;
        let batch = super::after(&mut tx, cursor, BATCH).await?;
        if batch.is_empty() {
            return Ok(created);
        }
        let (done, failure) = match handler.prepare(&mut tx).await {
            Ok(prepared) => handle_batch(handler, &prepared, &mut tx, &batch).await?,
            // Nothing of the batch can be handled: count it against the first event.
            Err(e) => ((cursor, 0), Some((batch[0].clone(), e))),
        };
        let (last_ok, n) = done;
        if last_ok > cursor {
            if !advance(&mut tx, name, holder, cursor, last_ok).await? {
                return Ok(created);
            }
            super::parking::clear_recovered(&mut tx, name, last_ok).await?;
            tx.commit().await?;
            created += n;
            cursor = last_ok;
        } else {
            tx.rollback().await?;
        }
        let Some((event, error)) = failure else {
            continue;
        };
        let mut conn = db.pool.acquire().await?;
        let attempts = super::parking::record_failure(&mut conn, name, event.id, &error).await?;
        drop(conn);
        tracing::warn!(consumer = name, event = event.id, kind = %event.kind, attempts, "event consumer failed: {error}");
        if attempts < super::parking::MAX_ATTEMPTS {
            // The cursor stays on the event: the next run tries it again.
            return Ok(created);
        }
        let mut tx = db.begin().await?;
        if !advance(&mut tx, name, holder, cursor, event.id).await? {
            return Ok(created);
        }
        super::parking::park(&mut tx, name, event.id).await?;
        // A parked alert that cannot be handled is parked quietly, or it would alert forever.
        if event.kind != super::EventKind::EventParked.as_str() {
            super::emit(
                &mut tx,
                super::EventKind::EventParked,
                super::Refs::default(),
                &serde_json::json!({
                    "consumer": name,
                    "event_id": event.id,
                    "event_kind": event.kind,
                    "attempts": attempts,
                    "error": error,
                }),
            )
            .await?;
        }
        tx.commit().await?;
        metrics::counter!("mikrobill_events_parked_total", "consumer" => name).increment(1);
        tracing::error!(consumer = name, event = event.id, kind = %event.kind, "event parked after {attempts} failed attempts; the consumer moves on");
        cursor = event.id;
    }
}

/// Handles a batch event by event, each in its own savepoint, stopping at the first failure.
/// Returns the last handled event id (or where it started) with the effects created, and the
/// failed event with its error.
async fn handle_batch<H: Handler>(
    handler: &H,
    prepared: &H::Batch,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    batch: &[super::Event],
) -> Result<((i64, u64), Option<(super::Event, String)>), DbError> {
    use sqlx::Connection;
    let mut last_ok = batch[0].id - 1;
    let mut created = 0;
    for e in batch {
        let mut savepoint = (**tx).begin().await?;
        let span = tracing::info_span!(
            "event.handle",
            consumer = handler.name(),
            event.id = e.id,
            event.kind = %e.kind
        );
        let handled =
            tracing::Instrument::instrument(handler.handle(prepared, &mut savepoint, e), span)
                .await;
        match handled {
            Ok(n) => {
                savepoint.commit().await?;
                created += n;
                last_ok = e.id;
            }
            Err(error) => {
                savepoint.rollback().await?;
                return Ok(((last_ok, created), Some((e.clone(), error))));
            }
        }
    }
    Ok(((last_ok, created), None))
}

/// Tries a parked event again at an operator's request; success removes it, failure counts
/// another attempt and leaves it parked.
async fn retry_parked<H: Handler>(db: &Db, handler: &H, event_id: i64) -> Result<u64, DbError> {
    let name = handler.name();
    let mut tx = db.begin().await?;
    let Some(event) = super::get(&mut tx, event_id).await? else {
        super::parking::resolve(&mut tx, name, event_id).await?;
        tx.commit().await?;
        return Ok(0);
    };
    let outcome = match handler.prepare(&mut tx).await {
        Ok(prepared) => {
            match handle_batch(handler, &prepared, &mut tx, std::slice::from_ref(&event)).await? {
                ((_, n), None) => Ok(n),
                (_, Some((_, e))) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok(n) => {
            super::parking::resolve(&mut tx, name, event_id).await?;
            tx.commit().await?;
            tracing::info!(
                consumer = name,
                event = event_id,
                "parked event handled on retry"
            );
            Ok(n)
        }
        Err(error) => {
            tx.rollback().await?;
            let mut conn = db.pool.acquire().await?;
            super::parking::record_failure(&mut conn, name, event_id, &error).await?;
            tracing::warn!(
                consumer = name,
                event = event_id,
                "parked event failed again: {error}"
            );
            Ok(0)
        }
    }
}
