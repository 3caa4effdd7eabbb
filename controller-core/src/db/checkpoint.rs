//! SQLite checkpoints off the commit path.
//!
//! By default the connection whose commit pushes the write-ahead log past 1,000 pages copies
//! the log back into the database file before its commit returns, so every third ingest
//! commit took 30-45 ms instead of about one. A serving controller turns that off on its own
//! connections and runs a passive checkpoint from a task instead: it never waits for readers
//! or the writer, and the writers never wait for it. Other processes opening the database
//! (CLI commands, backups) keep SQLite's automatic checkpoint, so a log they grow while no
//! server runs is still folded back.
//!
//! A passive checkpoint never starts the log over: SQLite rewinds the log only when a writer
//! begins after every frame was copied back, and under a steady stream of commits new frames
//! always arrive while the copy runs. A million-record drain grew the log to 4 GB; every
//! commit then appended to fresh file blocks (which the kernel zeroes first: a quarter of the
//! controller's CPU) and every page lookup searched a wal-index of a million frames. So once
//! the log passes [`RESTART_AT_FRAMES`], the checkpoint runs as `RESTART` on the writer
//! connection: no write is in flight there, what is left to copy is what arrived since the
//! last passive run, and the next commit writes from the start of the file again.

use super::{Backend, Db};
use sqlx::Executor;
use std::time::Duration;

/// How often the background checkpoint runs. Short enough that the log stays small under a
/// full ingest (a few thousand pages between runs), long enough to cost nothing when idle.
pub const INTERVAL: Duration = Duration::from_millis(500);

/// The log size at which the log file is truncated back after a checkpoint (SQLite's
/// `journal_size_limit`), so one burst does not leave a large file behind for good.
pub const LOG_SIZE_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// The log length, in frames (pages), past which the checkpoint also rewinds the log: about
/// the 64 MiB the file is truncated back to.
pub const RESTART_AT_FRAMES: i64 = 16_384;

/// Pragmas a serving controller's SQLite connections run after the common ones.
pub const SERVER_PRAGMAS: &str =
    "PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;";
const _: () = assert!(LOG_SIZE_LIMIT_BYTES == 67_108_864);

/// The running background checkpoint; stops when dropped.
#[derive(Debug)]
pub struct Checkpointer {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// When the background checkpoint runs and when it also rewinds the log.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Time between runs.
    pub interval: Duration,
    /// The log length, in frames, past which a run rewinds the log.
    pub restart_at_frames: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            interval: INTERVAL,
            restart_at_frames: RESTART_AT_FRAMES,
        }
    }
}

/// Starts the background checkpoint for `db` (nothing to do on PostgreSQL).
pub fn start(db: &Db, policy: Policy) -> Checkpointer {
    if db.backend != Backend::Sqlite {
        return Checkpointer { task: None };
    }
    let pool = db.pool.clone();
    let writer = db.writer.clone();
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(policy.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !pool.is_closed() {
            tick.tick().await;
            // PASSIVE copies what it can without blocking anyone; frames a reader still needs
            // are copied on a later run. A failure is logged and tried again: the log only
            // grows meanwhile, nothing is lost.
            let log_frames = match checkpoint(&pool).await {
                Ok(frames) => frames,
                Err(e) => {
                    tracing::warn!(error = %e, "SQLite checkpoint failed; retrying");
                    continue;
                }
            };
            if log_frames < policy.restart_at_frames {
                continue;
            }
            match restart(&writer).await {
                Ok(true) => tracing::debug!(log_frames, "SQLite log restarted"),
                Ok(false) => tracing::debug!(log_frames, "SQLite log restart waits for readers"),
                Err(e) => tracing::warn!(error = %e, "SQLite log restart failed; retrying"),
            }
        }
    });
    Checkpointer { task: Some(task) }
}

/// How long a rewind waits for readers still on the old log. Writers queue behind it on the
/// writer connection, so it gives up quickly (a report reading for seconds would otherwise
/// stall ingest for SQLite's whole busy timeout) and the next run tries again.
const RESTART_WAIT_MS: u32 = 250;

/// Copies back what no reader needs, blocking no one; returns the log's length in frames.
async fn checkpoint(pool: &sqlx::AnyPool) -> Result<i64, sqlx::Error> {
    // One row: whether it was blocked, the log's frames, and the frames copied back.
    let (_busy, log_frames, _copied): (i64, i64, i64) =
        sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(pool)
            .await?;
    Ok(log_frames)
}

/// Copies back everything and rewinds the log on the writer connection, waiting at most
/// [`RESTART_WAIT_MS`] for readers; whether it rewound.
async fn restart(writer: &sqlx::AnyPool) -> Result<bool, sqlx::Error> {
    let mut conn = writer.acquire().await?;
    conn.execute(sqlx::AssertSqlSafe(format!(
        "PRAGMA busy_timeout = {RESTART_WAIT_MS}"
    )))
    .await?;
    let result: Result<(i64, i64, i64), sqlx::Error> =
        sqlx::query_as("PRAGMA wal_checkpoint(RESTART)")
            .fetch_one(&mut *conn)
            .await;
    // The writer's own busy timeout again, whatever the checkpoint did; a connection that
    // cannot take it back is closed rather than returned with the short one.
    if let Err(e) = conn.execute(super::SQLITE_BUSY_TIMEOUT).await {
        conn.close_on_drop();
        return Err(e);
    }
    let (busy, _, _) = result?;
    Ok(busy == 0)
}
