//! The durable accounting outbox.
//!
//! `append` returns only after the records are on disk, so the RADIUS layer can answer the
//! router afterwards. Appends from many callers are grouped: one writer task takes every
//! request waiting, writes them in one sled batch and pays for one flush. Records leave the
//! outbox only when the controller acknowledged their batch as committed.

use mikrobill_protocol::accounting::AccountingRecord;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{Notify, mpsc, oneshot};

/// Most append requests folded into one flush.
const MAX_GROUP: usize = 4096;

/// Errors of the outbox.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OutboxError {
    /// sled failed; the records are not durable.
    #[error("outbox storage failed: {0}")]
    Storage(String),
    /// The writer task is gone (agent shutting down).
    #[error("outbox is closed")]
    Closed,
}

impl From<sled::Error> for OutboxError {
    fn from(e: sled::Error) -> Self {
        OutboxError::Storage(e.to_string())
    }
}

struct AppendRequest {
    records: Vec<AccountingRecord>,
    done: oneshot::Sender<Result<(), OutboxError>>,
}

/// A stored record and its outbox key.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Position in the outbox.
    pub key: u64,
    /// The record.
    pub record: AccountingRecord,
}

/// The durable queue of accounting records waiting for the controller.
pub struct Outbox {
    db: sled::Db,
    tree: sled::Tree,
    dead: sled::Tree,
    requests: mpsc::Sender<AppendRequest>,
    notify: Notify,
    pending: AtomicU64,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("pending", &self.len())
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// Opens the outbox in `db` and starts its writer task (needs a tokio runtime).
    pub fn open(db: &sled::Db) -> Result<Arc<Outbox>, OutboxError> {
        let tree = db.open_tree("outbox")?;
        let dead = db.open_tree("outbox_rejected")?;
        let (requests, rx) = mpsc::channel(MAX_GROUP);
        let outbox = Arc::new(Outbox {
            db: db.clone(),
            pending: AtomicU64::new(tree.len() as u64),
            tree,
            dead,
            requests,
            notify: Notify::new(),
        });
        tokio::spawn(writer(Arc::downgrade(&outbox), rx));
        Ok(outbox)
    }

    /// Stores records durably; returns once they are on disk.
    pub async fn append(&self, records: Vec<AccountingRecord>) -> Result<(), OutboxError> {
        let (done, wait) = oneshot::channel();
        self.requests
            .send(AppendRequest { records, done })
            .await
            .map_err(|_| OutboxError::Closed)?;
        wait.await.map_err(|_| OutboxError::Closed)?
    }

    /// Records waiting for the controller.
    pub fn len(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records the controller rejected as malformed, kept aside for inspection.
    pub fn rejected_len(&self) -> u64 {
        self.dead.len() as u64
    }

    /// Resolves after the next append.
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }

    /// The oldest records, at most `max`. Undecodable entries are moved aside.
    pub fn peek(&self, max: usize) -> Result<Vec<Entry>, OutboxError> {
        self.peek_after(None, max)
    }

    /// The oldest records after the key `after` (from the start with `None`), at most `max`.
    /// Undecodable entries are moved aside.
    pub fn peek_after(&self, after: Option<u64>, max: usize) -> Result<Vec<Entry>, OutboxError> {
        use std::ops::Bound;
        let from = match after {
            Some(key) => Bound::Excluded(key.to_be_bytes()),
            None => Bound::Unbounded,
        };
        let mut out = Vec::with_capacity(max.min(1024));
        for item in self.tree.range::<[u8; 8], _>((from, Bound::Unbounded)) {
            let (key, value) = item?;
            let key_u64 = u64::from_be_bytes(key.as_ref().try_into().unwrap_or([0; 8]));
            match postcard::from_bytes(&value) {
                Ok(record) => out.push(Entry {
                    key: key_u64,
                    record,
                }),
                Err(e) => {
                    tracing::error!(key = key_u64, "damaged outbox record moved aside: {e}");
                    self.dead.insert(&key, value)?;
                    self.tree.remove(&key)?;
                    self.pending.fetch_sub(1, Ordering::Relaxed);
                }
            }
            if out.len() >= max {
                break;
            }
        }
        Ok(out)
    }

    /// Forgets records the controller committed. Not flushed at once: a removal lost in a
    /// crash only sends those records again, and the controller counts each record once;
    /// a flush per acknowledged batch would cost the drain a disk sync every 500 records.
    ///
    /// Keys are removed one by one to count what was really there (a batch answered twice
    /// removes nothing the second time): sled's `len` walks the whole tree, and calling it
    /// after every batch made a million-record drain quadratic.
    pub async fn remove(&self, keys: &[u64]) -> Result<(), OutboxError> {
        let mut removed = 0;
        for k in keys {
            if self.tree.remove(k.to_be_bytes())?.is_some() {
                removed += 1;
            }
        }
        self.pending.fetch_sub(removed, Ordering::Relaxed);
        Ok(())
    }

    /// Moves records the controller refused out of the way, so they never block the queue.
    pub async fn reject(&self, entries: &[Entry]) -> Result<(), OutboxError> {
        for e in entries {
            let value = postcard::to_stdvec(&e.record).expect("records encode");
            self.dead.insert(e.key.to_be_bytes(), value)?;
        }
        self.remove(&entries.iter().map(|e| e.key).collect::<Vec<_>>())
            .await
    }
}

async fn writer(outbox: std::sync::Weak<Outbox>, mut rx: mpsc::Receiver<AppendRequest>) {
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(req) => group.push(req),
                Err(_) => break,
            }
        }
        let Some(outbox) = outbox.upgrade() else {
            break;
        };
        let result = write_group(&outbox, &group).await;
        if result.is_ok() {
            outbox.notify.notify_waiters();
        }
        for req in group {
            let _ = req.done.send(result.clone());
        }
    }
}

async fn write_group(outbox: &Outbox, group: &[AppendRequest]) -> Result<(), OutboxError> {
    let mut batch = sled::Batch::default();
    let mut count = 0u64;
    for req in group {
        for record in &req.records {
            // generate_id is monotonic across restarts, so keys keep arrival order.
            let key = outbox.db.generate_id()?;
            batch.insert(
                &key.to_be_bytes(),
                postcard::to_stdvec(record).expect("records encode"),
            );
            count += 1;
        }
    }
    outbox.tree.apply_batch(batch)?;
    crate::flush(&outbox.db).await?;
    outbox.pending.fetch_add(count, Ordering::Relaxed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mikrobill_protocol::accounting::{AcctStatus, RecordId};

    pub(crate) fn record(n: u64) -> AccountingRecord {
        AccountingRecord {
            id: RecordId::derive("nas", &format!("s{n}"), AcctStatus::Stop, 0),
            nas_identifier: "nas".into(),
            nas_ip: None,
            session_id: format!("s{n}"),
            username: "u".into(),
            status: AcctStatus::Stop,
            event_time_ms: 0,
            session_time_secs: n,
            input_octets: n,
            output_octets: n,
            input_packets: 0,
            output_packets: 0,
            terminate_cause: Some(1),
            framed_ip: None,
            calling_station_id: None,
        }
    }

    #[tokio::test]
    async fn appends_survive_reopen_in_order_and_remove_forgets() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::Config::new()
                .path(dir.path())
                .cache_capacity(1 << 20)
                .open()
                .unwrap();
            let outbox = Outbox::open(&db).unwrap();
            let mut tasks = Vec::new();
            for n in 0..50 {
                let o = outbox.clone();
                tasks.push(tokio::spawn(async move { o.append(vec![record(n)]).await }));
            }
            for t in tasks {
                t.await.unwrap().unwrap();
            }
            assert_eq!(outbox.len(), 50);
        }
        let db = sled::Config::new()
            .path(dir.path())
            .cache_capacity(1 << 20)
            .open()
            .unwrap();
        let outbox = Outbox::open(&db).unwrap();
        assert_eq!(outbox.len(), 50);
        let first = outbox.peek(10).unwrap();
        assert_eq!(first.len(), 10);
        assert!(first.windows(2).all(|w| w[0].key < w[1].key));
        outbox
            .remove(&first.iter().map(|e| e.key).collect::<Vec<_>>())
            .await
            .unwrap();
        assert_eq!(outbox.len(), 40);
        outbox.reject(&outbox.peek(5).unwrap()).await.unwrap();
        assert_eq!(outbox.len(), 35);
        assert_eq!(outbox.rejected_len(), 5);
    }

    #[tokio::test]
    async fn peek_after_reads_past_the_batches_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let outbox = Outbox::open(&db).unwrap();
        outbox.append((0..25).map(record).collect()).await.unwrap();
        let first = outbox.peek_after(None, 10).unwrap();
        let second = outbox.peek_after(Some(first[9].key), 10).unwrap();
        let third = outbox.peek_after(Some(second[9].key), 10).unwrap();
        assert_eq!((first.len(), second.len(), third.len()), (10, 10, 5));
        let sessions: Vec<u64> = [&first, &second, &third]
            .iter()
            .flat_map(|b| b.iter().map(|e| e.record.session_time_secs))
            .collect();
        assert_eq!(sessions, (0..25).collect::<Vec<_>>());
        assert!(
            outbox
                .peek_after(Some(third[4].key), 10)
                .unwrap()
                .is_empty()
        );
        // The second batch answered first: what is left starts with the first batch.
        outbox
            .remove(&second.iter().map(|e| e.key).collect::<Vec<_>>())
            .await
            .unwrap();
        let again = outbox.peek_after(None, 15).unwrap();
        assert_eq!(again[0].key, first[0].key);
        assert_eq!(again[10].key, third[0].key);
    }
}
