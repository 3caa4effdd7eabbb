//! SQLite checkpoints off the commit path.
//!
//! By default the connection whose commit pushes the write-ahead log past 1,000 pages copies
//! the log back into the database file before its commit returns, so every third ingest
//! commit took 30-45 ms instead of about one. A serving controller turns that off on its own
//! connections and runs a passive checkpoint from a task instead: it never waits for readers
//! or the writer, and the writers never wait for it. Other processes opening the database
//! (CLI commands, backups) keep SQLite's automatic checkpoint, so a log they grow while no
//! server runs is still folded back.

use super::{Backend, Db};
use std::time::Duration;

/// How often the background checkpoint runs. Short enough that the log stays small under a
/// full ingest (a few thousand pages between runs), long enough to cost nothing when idle.
pub const INTERVAL: Duration = Duration::from_millis(500);

/// The log size at which the log file is truncated back after a checkpoint (SQLite's
/// `journal_size_limit`), so one burst does not leave a large file behind for good.
pub const LOG_SIZE_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

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

/// Starts the background checkpoint for `db` (nothing to do on PostgreSQL).
pub fn start(db: &Db) -> Checkpointer {
    if db.backend != Backend::Sqlite {
        return Checkpointer { task: None };
    }
    let pool = db.pool.clone();
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !pool.is_closed() {
            tick.tick().await;
            // PASSIVE copies what it can without blocking anyone; frames a reader still needs
            // are copied on a later run. A failure is logged and tried again: the log only
            // grows meanwhile, nothing is lost.
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_all(&pool)
                .await
            {
                tracing::warn!(error = %e, "SQLite checkpoint failed; retrying");
            }
        }
    });
    Checkpointer { task: Some(task) }
}
