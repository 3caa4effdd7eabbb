//! Group commit for the edge: batches that arrive while a group commits wait in a lane and go
//! into the next group together, one transaction for all of them ([`super::store_group`]),
//! and each agent is answered after that commit, as with a transaction of its own. The
//! ledger learns of them from the background fold ([`super::folder`]), woken by each commit.
//!
//! One transaction per batch paid the fixed costs (the sites' group numbers, the log write of
//! every page the batch dirtied) once per 500 records; after a regional
//! outage every site of the region sends at once, and those costs bound the drain. A group
//! waits for nothing but the commit before it: with one agent sending, every batch still
//! commits at once.

use super::folder::Folder;
use super::{Batch, IngestError, IngestOutcome, store_group, validate};
use crate::db::{Backend, Db, DbError};
use mikrobill_protocol::accounting::AccountingRecord;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use tokio::sync::{mpsc, oneshot};

/// Most records in one group: 16 of the agents' 500-record batches. Larger groups commit fewer
/// times but answer later; at this size a group commits in well under a second here.
pub const GROUP_RECORDS: usize = 8_000;

/// Most records queued in one lane before batches are refused as busy: about ten seconds of
/// work at the measured rates, well inside the agent's 30 s reply timeout, so after a regional
/// outage agents pause and send again instead of timing out, reconnecting and sending the
/// same batches twice.
pub const MAX_QUEUED_RECORDS: usize = 100_000;

/// Lanes on PostgreSQL, each committing its own groups on its own connection; a site's batches
/// always take the same lane, so they never wait on each other's site lock.
const POSTGRES_LANES: usize = 4;

/// A batch waiting for its group, with where to send its outcome.
struct Job {
    site_id: String,
    records: Vec<AccountingRecord>,
    reply: oneshot::Sender<Result<IngestOutcome, IngestError>>,
}

/// Queues batches into groups; cheap to share (`Clone`). Dropping the last handle ends the
/// lanes once their queued groups are committed.
#[derive(Clone)]
pub struct Ingester {
    db: Db,
    lanes: Vec<mpsc::UnboundedSender<Job>>,
    /// Records a lane may hold before it refuses batches ([`MAX_QUEUED_RECORDS`]).
    limit: usize,
    /// Records queued or being committed, per lane.
    queued: Arc<Vec<AtomicUsize>>,
    counts: Arc<Counts>,
    folder: Folder,
}

/// Groups and batches committed since the start, for the metrics and the tests.
#[derive(Debug, Default)]
struct Counts {
    groups: AtomicU64,
    batches: AtomicU64,
}

impl Counts {
    /// Counts one committed transaction of `batches` batches.
    fn committed(&self, batches: usize) {
        self.groups.fetch_add(1, Ordering::Relaxed);
        self.batches.fetch_add(batches as u64, Ordering::Relaxed);
        metrics::counter!("mikrobill_accounting_groups_total").increment(1);
    }
}

/// What an [`Ingester`] has committed since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// Transactions that committed a group.
    pub groups: u64,
    /// Batches answered as committed.
    pub batches: u64,
}

impl std::fmt::Debug for Ingester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingester")
            .field("lanes", &self.lanes.len())
            .finish()
    }
}

impl Ingester {
    /// Starts the lanes: one on SQLite, which has a single writer, several on PostgreSQL.
    pub fn start(db: &Db) -> Ingester {
        Ingester::with_queue_limit(db, MAX_QUEUED_RECORDS)
    }

    /// [`Ingester::start`] with lanes that refuse batches as busy past `limit` queued records.
    pub fn with_queue_limit(db: &Db, limit: usize) -> Ingester {
        let lanes = match db.backend {
            Backend::Sqlite => 1,
            Backend::Postgres => POSTGRES_LANES,
        };
        let counts = Arc::new(Counts::default());
        let queued: Arc<Vec<AtomicUsize>> =
            Arc::new((0..lanes).map(|_| AtomicUsize::new(0)).collect());
        let waiting = queued.clone();
        let last_store = Arc::new(LastStore::default());
        let stored = last_store.clone();
        let folder = Folder::start(db, move || {
            waiting.iter().any(|q| q.load(Ordering::Relaxed) > 0) || stored.recent()
        });
        let lanes = (0..lanes)
            .map(|lane| {
                let (tx, rx) = mpsc::unbounded_channel();
                let done = Done {
                    queued: queued.clone(),
                    lane,
                    counts: counts.clone(),
                    folder: folder.clone(),
                    last_store: last_store.clone(),
                };
                tokio::spawn(run_lane(db.clone(), rx, done));
                tx
            })
            .collect();
        Ingester {
            db: db.clone(),
            lanes,
            limit,
            queued,
            counts,
            folder,
        }
    }

    /// What the lanes have committed so far.
    pub fn committed(&self) -> Committed {
        Committed {
            groups: self.counts.groups.load(Ordering::Relaxed),
            batches: self.counts.batches.load(Ordering::Relaxed),
        }
    }

    /// Stores a batch for `site_id` with whatever else is queued; answers after the commit. A
    /// malformed batch is refused here, before it could fail a group of other agents' batches.
    pub async fn ingest(
        &self,
        site_id: &str,
        records: Vec<AccountingRecord>,
    ) -> Result<IngestOutcome, IngestError> {
        validate(&records)?;
        let lane = lane_of(site_id, self.lanes.len());
        let queued = &self.queued[lane];
        // A lane that stopped (it panicked) never counts its batches down again: its batches
        // are stored directly below, never refused.
        let stopped = self.lanes[lane].is_closed();
        let before = queued.fetch_add(records.len(), Ordering::Relaxed);
        if !stopped && !admits(before, records.len(), self.limit) {
            queued.fetch_sub(records.len(), Ordering::Relaxed);
            metrics::counter!("mikrobill_accounting_busy_total").increment(1);
            return Err(IngestError::Busy { queued: before });
        }
        let (reply, answer) = oneshot::channel();
        let job = Job {
            site_id: site_id.to_string(),
            records,
            reply,
        };
        match self.lanes[lane].send(job) {
            Ok(()) => answer.await.unwrap_or_else(|_| {
                // The lane ended with the batch unanswered (it panicked): nothing is known to
                // be committed, so the agent keeps the batch and sends it again.
                Err(IngestError::Db(DbError::Sqlx(sqlx::Error::Protocol(
                    "the ingest lane stopped before answering".into(),
                ))))
            }),
            // A lane that stopped takes no more batches; store this one by itself.
            Err(mpsc::error::SendError(job)) => {
                let stored = store_one(&self.db, &job).await;
                queued.fetch_sub(job.records.len(), Ordering::Relaxed);
                self.folder.wake();
                stored
            }
        }
    }
}

/// Whether a batch of `records` joins a lane holding `queued`: always into an empty lane (a
/// batch is never too large by itself), otherwise while the lane stays within `limit`.
fn admits(queued: usize, records: usize, limit: usize) -> bool {
    queued == 0 || queued + records <= limit
}

/// What a lane reports as its groups end: the records it no longer holds, and the counts.
struct Done {
    queued: Arc<Vec<AtomicUsize>>,
    lane: usize,
    counts: Arc<Counts>,
    folder: Folder,
    last_store: Arc<LastStore>,
}

/// When a lane last committed a batch of an agent sending a backlog (a batch of at least
/// [`BACKLOG_BATCH_RECORDS`]). Such an agent keeps four batches in flight, so its lane is empty
/// for part of each round trip: the fold counts the lanes as busy for a moment after each such
/// commit too, or it would start between two batches of a drain. A fleet that keeps up sends
/// a few records a batch and never holds the fold back this way.
#[derive(Debug)]
struct LastStore {
    epoch: std::time::Instant,
    at_ms: AtomicU64,
}

impl Default for LastStore {
    fn default() -> Self {
        LastStore {
            epoch: std::time::Instant::now(),
            at_ms: AtomicU64::new(0),
        }
    }
}

/// How long after a backlog's commit the lanes still count as busy.
const STORE_QUIET_MS: u64 = 200;

/// Records in a batch that show its agent is sending a backlog: half the agent's batch (500),
/// which it fills only when that much waits in its outbox.
const BACKLOG_BATCH_RECORDS: usize = 250;

impl LastStore {
    fn now_ms(&self) -> u64 {
        // Never 0, which means "no commit yet".
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    fn mark(&self) {
        self.at_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    fn recent(&self) -> bool {
        let at = self.at_ms.load(Ordering::Relaxed);
        at != 0 && self.now_ms().saturating_sub(at) < STORE_QUIET_MS
    }
}

/// The lane of a site: stable for the life of the process.
fn lane_of(site_id: &str, lanes: usize) -> usize {
    // FNV-1a: stable and cheap, and lanes only need an even spread.
    let hash = site_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % lanes as u64) as usize
}

/// Takes the batches queued in a lane as groups of at most [`GROUP_RECORDS`] until every
/// handle is dropped.
async fn run_lane(db: Db, mut queue: mpsc::UnboundedReceiver<Job>, done: Done) {
    while let Some(first) = queue.recv().await {
        let mut records = first.records.len();
        let mut group = vec![first];
        while records < GROUP_RECORDS {
            match queue.try_recv() {
                Ok(job) => {
                    records += job.records.len();
                    group.push(job);
                }
                Err(_) => break,
            }
        }
        let backlog = group
            .iter()
            .any(|job| job.records.len() >= BACKLOG_BATCH_RECORDS);
        commit(&db, group, &done.counts).await;
        if backlog {
            done.last_store.mark();
        }
        done.queued[done.lane].fetch_sub(records, Ordering::Relaxed);
        done.folder.wake();
    }
}

/// Commits a group and answers each of its batches. If the group fails, each batch is tried
/// alone, so a batch the database refuses fails only its own agent.
async fn commit(db: &Db, group: Vec<Job>, counts: &Counts) {
    let batches: Vec<Batch<'_>> = group
        .iter()
        .map(|job| Batch {
            site_id: &job.site_id,
            records: &job.records,
        })
        .collect();
    let result = store_group(db, &batches).await;
    drop(batches);
    match result {
        Ok(outcomes) => {
            counts.committed(group.len());
            for (job, outcome) in group.into_iter().zip(outcomes) {
                let _ = job.reply.send(Ok(outcome));
            }
        }
        Err(e) if group.len() > 1 => {
            tracing::warn!(
                batches = group.len(),
                "accounting group failed, storing its batches one by one: {e}"
            );
            for job in group {
                let one = store_one(db, &job).await;
                if one.is_ok() {
                    counts.committed(1);
                }
                let _ = job.reply.send(one);
            }
        }
        Err(e) => {
            if let Some(job) = group.into_iter().next() {
                let _ = job.reply.send(Err(e));
            }
        }
    }
}

/// Stores one batch in a transaction of its own.
async fn store_one(db: &Db, job: &Job) -> Result<IngestOutcome, IngestError> {
    let batch = Batch {
        site_id: &job.site_id,
        records: &job.records,
    };
    Ok(store_group(db, &[batch]).await?[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lane_takes_any_batch_when_empty_and_refuses_past_its_limit() {
        assert!(admits(0, 5_000, 1_000));
        assert!(admits(500, 500, 1_000));
        assert!(!admits(501, 500, 1_000));
        assert!(!admits(MAX_QUEUED_RECORDS, 1, MAX_QUEUED_RECORDS));
    }

    #[test]
    fn a_site_keeps_its_lane_and_sites_spread_over_lanes() {
        let mut used = [0usize; POSTGRES_LANES];
        for n in 0..1000 {
            let site = format!("site-{n}");
            let lane = lane_of(&site, POSTGRES_LANES);
            assert_eq!(lane, lane_of(&site, POSTGRES_LANES));
            used[lane] += 1;
        }
        assert!(used.iter().all(|&n| n > 150), "{used:?}");
        assert_eq!(lane_of("anything", 1), 0);
    }
}
