//! The edge's background fold: after every stored group, and once a second for what other
//! replicas or an earlier process stored, it folds until nothing is pending ([`super::fold`]).
//!
//! Stores come first. While batches wait in the ingest lanes the folder waits, up to
//! [`MAX_DEFER`], so a drain after an outage is answered at the rate records can be stored,
//! and the ledger catches up in folds that grow with the backlog and collapse more readings
//! per session; under a load that never lets up it still folds, at most
//! [`BUSY_FOLD_RECORDS`] records once per [`MAX_DEFER`].
//!
//! A fold that fails is tried again site by site: a site whose own records cannot be folded
//! (a row changed by hand, a ledger constraint) is held back and retried alone, at most every
//! [`MAX_HOLD_BACKOFF`], so it does not hold back the ledger of every other site.

use super::fold::{FOLD_RECORDS, fold_pending_except, fold_site, unfolded_site_ids};
use crate::db::Db;
use std::collections::{BTreeMap, BTreeSet};
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

/// A site whose records fail to fold on their own: it is left out of the folds of every other
/// site and tried alone, less and less often, until it folds.
#[derive(Debug)]
struct Held {
    retry_at: Instant,
    backoff: Duration,
}

/// Longest wait between two tries of a held site.
const MAX_HOLD_BACKOFF: Duration = Duration::from_secs(30);

async fn run(db: Db, mut wake: mpsc::Receiver<()>, busy: impl Fn() -> bool) {
    let mut cursor: Option<String> = None;
    let mut held: BTreeMap<String, Held> = BTreeMap::new();
    let mut closed = false;
    loop {
        let since = Instant::now();
        while busy() && since.elapsed() < MAX_DEFER {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        retry_held(&db, &mut held).await;
        loop {
            // A fold that starts while stores wait holds SQLite's one writer: kept small, it
            // delays them by a fraction of a second instead of seconds.
            let budget = if busy() {
                BUSY_FOLD_RECORDS
            } else {
                FOLD_RECORDS
            };
            let skip: BTreeSet<String> = held.keys().cloned().collect();
            match fold_pending_except(&db, budget, cursor.as_deref(), &skip).await {
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
                    // Nothing was folded and nothing is lost: the records stay pending. One
                    // site's bad record must not stall the others, so each site is tried
                    // alone and the ones that still fail are held back.
                    tracing::warn!("accounting fold failed, folding site by site: {e}");
                    isolate(&db, &mut held).await;
                    break;
                }
            }
        }
        metrics::gauge!("mikrobill_accounting_fold_held_sites").set(held.len() as f64);
        if closed {
            break;
        }
        closed = matches!(tokio::time::timeout(POLL, wake.recv()).await, Ok(None));
    }
}

/// Folds every pending site alone and holds back those that fail. A database that fails
/// every fold (down, full) holds them all; they are retried within [`MAX_HOLD_BACKOFF`] of
/// its return.
async fn isolate(db: &Db, held: &mut BTreeMap<String, Held>) {
    let sites = match unfolded_site_ids(db).await {
        Ok(sites) => sites,
        Err(e) => {
            tracing::warn!("accounting fold: cannot list pending sites: {e}");
            tokio::time::sleep(POLL).await;
            return;
        }
    };
    for site in sites {
        if held.contains_key(&site) {
            continue;
        }
        if let Err(e) = fold_site(db, &site, FOLD_RECORDS).await {
            tracing::error!(site_id = %site, "accounting of this site cannot be folded and is held back; other sites go on: {e}");
            held.insert(
                site,
                Held {
                    retry_at: Instant::now() + POLL,
                    backoff: POLL,
                },
            );
        }
    }
}

/// Tries each held site whose wait is over: one that folds rejoins the others.
async fn retry_held(db: &Db, held: &mut BTreeMap<String, Held>) {
    let now = Instant::now();
    let due: Vec<String> = held
        .iter()
        .filter(|(_, h)| h.retry_at <= now)
        .map(|(site, _)| site.clone())
        .collect();
    for site in due {
        match fold_site(db, &site, FOLD_RECORDS).await {
            Ok(_) => {
                tracing::info!(site_id = %site, "accounting of this site folds again");
                held.remove(&site);
            }
            Err(e) => {
                if let Some(h) = held.get_mut(&site) {
                    h.backoff = (h.backoff * 2).min(MAX_HOLD_BACKOFF);
                    h.retry_at = Instant::now() + h.backoff;
                    tracing::warn!(site_id = %site, retry_in = ?h.backoff, "accounting of this site still cannot be folded: {e}");
                }
            }
        }
    }
}
