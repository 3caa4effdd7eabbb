//! The edge's background fold: after every stored group, and once a second for what other
//! replicas or an earlier process stored, it folds until nothing is pending ([`super::fold`]).
//!
//! Stores come first. While batches wait in the ingest lanes the folder waits, up to
//! [`MAX_DEFER`], so a drain after an outage is answered at the rate records can be stored,
//! and the ledger catches up in folds that grow with the backlog and collapse more readings
//! per session; under a load that never lets up it still folds, at most
//! [`BUSY_FOLD_RECORDS`] records once per [`MAX_DEFER`].

use super::fold::{FOLD_RECORDS, fold_pending};
use crate::db::Db;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Longest a fold waits for queued stores to drain.
pub const MAX_DEFER: Duration = Duration::from_secs(2);

/// Most records a fold reads while stores wait ([`FOLD_RECORDS`] otherwise).
pub const BUSY_FOLD_RECORDS: usize = 10_000;

/// How often the folder looks for work nobody woke it for.
const POLL: Duration = Duration::from_secs(1);

/// Wakes the background fold; dropping every handle ends it after a last fold.
#[derive(Debug, Clone)]
pub struct Folder {
    wake: mpsc::Sender<()>,
}

impl Folder {
    /// Starts folding in the background; `busy` tells whether stores are waiting.
    pub fn start(db: &Db, busy: impl Fn() -> bool + Send + 'static) -> Folder {
        let (wake, rx) = mpsc::channel(1);
        tokio::spawn(run(db.clone(), rx, busy));
        Folder { wake }
    }

    /// Asks for a fold soon (a wake already pending covers this one).
    pub fn wake(&self) {
        let _ = self.wake.try_send(());
    }
}

async fn run(db: Db, mut wake: mpsc::Receiver<()>, busy: impl Fn() -> bool) {
    let mut cursor: Option<String> = None;
    let mut closed = false;
    loop {
        let since = Instant::now();
        while busy() && since.elapsed() < MAX_DEFER {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        loop {
            // A fold that starts while stores wait holds SQLite's one writer: kept small, it
            // delays them by a fraction of a second instead of seconds.
            let budget = if busy() {
                BUSY_FOLD_RECORDS
            } else {
                FOLD_RECORDS
            };
            match fold_pending(&db, budget, cursor.as_deref()).await {
                Ok(out) => {
                    if out.last_site.is_some() {
                        cursor = out.last_site;
                    }
                    // More is left: fold again unless stores are waiting, which go first.
                    if !out.more || out.sites == 0 || busy() {
                        break;
                    }
                }
                Err(e) => {
                    // Nothing was folded and nothing is lost: the records stay pending.
                    tracing::warn!("accounting fold failed, retrying: {e}");
                    tokio::time::sleep(POLL).await;
                    break;
                }
            }
        }
        if closed {
            break;
        }
        closed = matches!(tokio::time::timeout(POLL, wake.recv()).await, Ok(None));
    }
}
