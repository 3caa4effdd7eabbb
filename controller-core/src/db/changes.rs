//! Wake-ups when any process commits a change-log entry or queues a command: on PostgreSQL
//! the 0032 triggers send `NOTIFY mikrobill_changes` at commit, and a listener here wakes the
//! edge, so sync and commands reach agents held by every replica at once instead of at the
//! next poll. SQLite has no notifications between processes; the edge's poll stays the only
//! way there.

use super::Db;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The channel the 0032 triggers notify.
pub const CHANNEL: &str = "mikrobill_changes";

/// Longest wait before connecting again after the listener's connection failed.
const MAX_RETRY: Duration = Duration::from_secs(10);

/// The running listener; stops when dropped.
#[derive(Debug)]
pub struct Listener {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a task that wakes `wake` for every committed change of `db`, and once more whenever
/// its connection was lost and made again (what was committed meanwhile was not notified).
/// `None` on SQLite, which keeps no URL to listen at.
pub fn spawn_listener(db: &Db, wake: Arc<Notify>) -> Option<Listener> {
    let url = db.listen_url.clone()?;
    let task = tokio::spawn(async move {
        let mut retry = Duration::from_millis(250);
        loop {
            match listen(&url.0, &wake).await {
                Ok(()) => retry = Duration::from_millis(250),
                Err(e) => {
                    tracing::warn!(
                        "change notifications from PostgreSQL lost, retrying in {retry:?}: {e}"
                    );
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(MAX_RETRY);
                }
            }
        }
    });
    Some(Listener { task })
}

/// Listens until the connection breaks: `Ok` when it was lost and should be made again at
/// once, `Err` when connecting or listening failed.
async fn listen(url: &str, wake: &Notify) -> Result<(), sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    // Whatever was committed before LISTEN took effect was never notified to this listener.
    wake.notify_one();
    loop {
        match listener.try_recv().await? {
            Some(_) => wake.notify_one(),
            None => return Ok(()),
        }
    }
}
