//! The local cache the agent answers RADIUS from: plans, vouchers and users synced from
//! the controller, plus the sync cursor, in sled.
//!
//! Every sync message is applied in one sled transaction together with the cursor, then
//! flushed, so after a crash the cache and its cursor always agree.

use mikrobill_protocol::items::{Item, ItemKey, Plan, Stored, User, Voucher};
use mikrobill_protocol::messages::{ChangeOp, SyncCursor, SyncMessage};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::watch;

const CURSOR_KEY: &[u8] = b"sync_cursor";

/// Errors of the cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// sled failed.
    #[error("cache storage failed: {0}")]
    Storage(#[from] sled::Error),
    /// A stored value is damaged.
    #[error("cache entry is damaged: {0}")]
    Decode(#[from] postcard::Error),
    /// The controller sent sync messages out of order.
    #[error("sync protocol violation: {0}")]
    Protocol(String),
}

impl From<TransactionError<CacheError>> for CacheError {
    fn from(e: TransactionError<CacheError>) -> Self {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => CacheError::Storage(e),
        }
    }
}

struct SnapshotInProgress {
    cursor: SyncCursor,
    seen: HashSet<ItemKey>,
}

/// The synced records.
pub struct Cache {
    /// The site this cache serves: its share of a voucher's fleet use is the one local
    /// records may stand in for (`radius::fleet`).
    site_id: String,
    db: sled::Db,
    plans: sled::Tree,
    vouchers: sled::Tree,
    users: sled::Tree,
    meta: sled::Tree,
    snapshot: Mutex<Option<SnapshotInProgress>>,
    // Counts applied sync messages, so the router can follow the cache without polling.
    changed: watch::Sender<u64>,
    // Items per tree (plans, vouchers, users), kept with every transaction: heartbeats and
    // status read them without walking 100k keys.
    counts: [AtomicU64; 3],
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").finish_non_exhaustive()
    }
}

fn encode(item: &Item) -> Vec<u8> {
    match item {
        Item::Plan(p) => postcard::to_stdvec(p),
        Item::Voucher(v) => postcard::to_stdvec(v),
        Item::User(u) => postcard::to_stdvec(u),
    }
    .expect("items always encode")
}

fn get<T: Stored>(tree: &sled::Tree, key: &str) -> Result<Option<T>, CacheError> {
    match tree.get(key.as_bytes())? {
        Some(bytes) => Ok(Some(T::decode_stored(&bytes)?)),
        None => Ok(None),
    }
}

fn all<T: Stored>(tree: &sled::Tree) -> Result<Vec<T>, CacheError> {
    tree.iter()
        .values()
        .map(|bytes| Ok(T::decode_stored(&bytes?)?))
        .collect()
}

impl Cache {
    /// The site this cache serves.
    pub fn site_id(&self) -> &str {
        &self.site_id
    }

    /// Opens the cache trees in `db` for `site_id`.
    pub fn open(db: &sled::Db, site_id: &str) -> Result<Cache, CacheError> {
        let plans = db.open_tree("plans")?;
        let vouchers = db.open_tree("vouchers")?;
        let users = db.open_tree("users")?;
        // Counted once here (a walk of each tree); transactions keep the counts after that.
        let counts = [&plans, &vouchers, &users].map(|t| AtomicU64::new(t.len() as u64));
        Ok(Cache {
            site_id: site_id.to_string(),
            db: db.clone(),
            plans,
            vouchers,
            users,
            meta: db.open_tree("meta")?,
            snapshot: Mutex::new(None),
            changed: watch::Sender::new(0),
            counts,
        })
    }

    /// Ticks after every sync message that moved the cursor (once it is on disk).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// All cached plans.
    pub fn plans(&self) -> Result<Vec<Plan>, CacheError> {
        all(&self.plans)
    }

    /// All cached vouchers.
    pub fn vouchers(&self) -> Result<Vec<Voucher>, CacheError> {
        all(&self.vouchers)
    }

    /// All cached accounts.
    pub fn users(&self) -> Result<Vec<User>, CacheError> {
        all(&self.users)
    }

    /// Where the cache stands in the controller's change log.
    pub fn cursor(&self) -> Result<SyncCursor, CacheError> {
        match self.meta.get(CURSOR_KEY)? {
            Some(bytes) => Ok(postcard::from_bytes(&bytes)?),
            None => Ok(SyncCursor::default()),
        }
    }

    /// A voucher by code.
    pub fn voucher(&self, code: &str) -> Result<Option<Voucher>, CacheError> {
        get(&self.vouchers, code)
    }

    /// A plan by id.
    pub fn plan(&self, id: &str) -> Result<Option<Plan>, CacheError> {
        get(&self.plans, id)
    }

    /// A user by name.
    pub fn user(&self, username: &str) -> Result<Option<User>, CacheError> {
        get(&self.users, username)
    }

    /// Cached plans, vouchers and users (counted as they change: no walk of the trees).
    pub fn counts(&self) -> (u64, u64, u64) {
        let get = |i: usize| self.counts[i].load(Ordering::Relaxed);
        (get(0), get(1), get(2))
    }

    /// Number of cached records.
    pub fn item_count(&self) -> u64 {
        let (p, v, u) = self.counts();
        p + v + u
    }

    /// Applies one sync message; returns the new cursor once it moved.
    pub async fn apply(&self, msg: SyncMessage) -> Result<Option<SyncCursor>, CacheError> {
        let cursor = match msg {
            SyncMessage::SnapshotBegin { cursor } => {
                *self.snapshot.lock().expect("snapshot lock") = Some(SnapshotInProgress {
                    cursor,
                    seen: HashSet::new(),
                });
                return Ok(None);
            }
            SyncMessage::SnapshotItems(items) => {
                let puts: Vec<(ItemKey, Vec<u8>)> =
                    items.iter().map(|i| (i.key(), encode(i))).collect();
                {
                    let mut guard = self.snapshot.lock().expect("snapshot lock");
                    let snap = guard.as_mut().ok_or_else(|| {
                        CacheError::Protocol("snapshot items without a snapshot".into())
                    })?;
                    snap.seen.extend(puts.iter().map(|(k, _)| k.clone()));
                }
                self.transact(&puts, &[], None)?;
                return Ok(None);
            }
            SyncMessage::SnapshotEnd => {
                let snap = self
                    .snapshot
                    .lock()
                    .expect("snapshot lock")
                    .take()
                    .ok_or_else(|| {
                        CacheError::Protocol("snapshot end without a snapshot".into())
                    })?;
                let mut stale = Vec::new();
                for (tree, make) in [
                    (&self.plans, ItemKey::Plan as fn(String) -> ItemKey),
                    (&self.vouchers, ItemKey::Voucher),
                    (&self.users, ItemKey::User),
                ] {
                    for key in tree.iter().keys() {
                        let key = make(String::from_utf8_lossy(&key?).into_owned());
                        if !snap.seen.contains(&key) {
                            stale.push(key);
                        }
                    }
                }
                self.transact(&[], &stale, Some(&snap.cursor))?;
                snap.cursor
            }
            SyncMessage::Changes(changes) => {
                if self.snapshot.lock().expect("snapshot lock").is_some() {
                    return Err(CacheError::Protocol(
                        "changes in the middle of a snapshot".into(),
                    ));
                }
                let Some(last) = changes.last().map(|c| c.seq) else {
                    return Ok(None);
                };
                let mut cursor = self.cursor()?;
                if last <= cursor.seq {
                    return Ok(None);
                }
                let mut puts = Vec::new();
                let mut deletes = Vec::new();
                // Later changes to the same key win: apply in order, dropping superseded ones.
                for change in changes.into_iter().filter(|c| c.seq > cursor.seq) {
                    match change.op {
                        ChangeOp::Upsert(item) => {
                            let key = item.key();
                            deletes.retain(|k| k != &key);
                            puts.retain(|(k, _)| k != &key);
                            puts.push((key, encode(&item)));
                        }
                        ChangeOp::Delete(key) => {
                            puts.retain(|(k, _)| k != &key);
                            deletes.push(key);
                        }
                    }
                }
                cursor.seq = last;
                self.transact(&puts, &deletes, Some(&cursor))?;
                cursor
            }
            SyncMessage::CaughtUp { cursor: upto } => {
                if self.snapshot.lock().expect("snapshot lock").is_some() {
                    return Err(CacheError::Protocol(
                        "a catch-up in the middle of a snapshot".into(),
                    ));
                }
                let cursor = self.cursor()?;
                // Another log's position means nothing here (the next connect resolves it).
                if upto.epoch != cursor.epoch || upto.seq <= cursor.seq {
                    return Ok(None);
                }
                self.transact(&[], &[], Some(&upto))?;
                upto
            }
        };
        crate::flush(&self.db).await?;
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
        Ok(Some(cursor))
    }

    fn transact(
        &self,
        puts: &[(ItemKey, Vec<u8>)],
        deletes: &[ItemKey],
        cursor: Option<&SyncCursor>,
    ) -> Result<(), CacheError> {
        let cursor_bytes = cursor.map(|c| postcard::to_stdvec(c).expect("cursor encodes"));
        // The closure may run again on a conflict: the deltas are its result, applied once.
        let deltas = (&self.plans, &self.vouchers, &self.users, &self.meta).transaction(
            |(plans, vouchers, users, meta)| {
                let mut deltas = [0i64; 3];
                let pick = |k: &ItemKey| match k {
                    ItemKey::Plan(_) => (plans, 0),
                    ItemKey::Voucher(_) => (vouchers, 1),
                    ItemKey::User(_) => (users, 2),
                };
                for (key, value) in puts {
                    let (tree, i) = pick(key);
                    if tree
                        .insert(key.id().as_bytes(), value.as_slice())?
                        .is_none()
                    {
                        deltas[i] += 1;
                    }
                }
                for key in deletes {
                    let (tree, i) = pick(key);
                    if tree.remove(key.id().as_bytes())?.is_some() {
                        deltas[i] -= 1;
                    }
                }
                if let Some(c) = &cursor_bytes {
                    meta.insert(CURSOR_KEY, c.as_slice())?;
                }
                Ok::<_, ConflictableTransactionError<CacheError>>(deltas)
            },
        )?;
        for (count, delta) in self.counts.iter().zip(deltas) {
            if delta >= 0 {
                count.fetch_add(delta as u64, Ordering::Relaxed);
            } else {
                count.fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mikrobill_protocol::items::VoucherStatus;
    use mikrobill_protocol::messages::Change;

    fn voucher(code: &str) -> Item {
        Item::Voucher(Voucher {
            code: code.into(),
            password: None,
            plan_id: "p".into(),
            status: VoucherStatus::New,
            activated_at_ms: None,
            used_time_secs: 0,
            used_bytes: 0,
            sites: Vec::new(),
            bound_mac: None,
        })
    }

    fn open() -> (tempfile::TempDir, Cache) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new()
            .path(dir.path())
            .cache_capacity(1 << 20)
            .open()
            .unwrap();
        (dir, Cache::open(&db, "site").unwrap())
    }

    #[tokio::test]
    async fn snapshot_replaces_everything_and_sets_cursor() {
        let (_d, cache) = open();
        let cursor = SyncCursor {
            epoch: "e1".into(),
            seq: 5,
        };
        cache
            .apply(SyncMessage::Changes(vec![Change {
                seq: 1,
                op: ChangeOp::Upsert(voucher("OLD")),
            }]))
            .await
            .unwrap();
        cache
            .apply(SyncMessage::SnapshotBegin {
                cursor: cursor.clone(),
            })
            .await
            .unwrap();
        cache
            .apply(SyncMessage::SnapshotItems(vec![voucher("A"), voucher("B")]))
            .await
            .unwrap();
        assert_eq!(
            cache.apply(SyncMessage::SnapshotEnd).await.unwrap(),
            Some(cursor.clone())
        );
        assert!(cache.voucher("OLD").unwrap().is_none());
        assert!(cache.voucher("A").unwrap().is_some());
        assert_eq!(cache.cursor().unwrap(), cursor);
    }

    #[tokio::test]
    async fn a_catch_up_moves_the_cursor_forward_only() {
        let (_d, cache) = open();
        let start = SyncCursor {
            epoch: "e".into(),
            seq: 10,
        };
        cache
            .apply(SyncMessage::SnapshotBegin {
                cursor: start.clone(),
            })
            .await
            .unwrap();
        cache.apply(SyncMessage::SnapshotEnd).await.unwrap();
        let up = |epoch: &str, seq| SyncMessage::CaughtUp {
            cursor: SyncCursor {
                epoch: epoch.into(),
                seq,
            },
        };
        assert_eq!(cache.apply(up("e", 50)).await.unwrap().unwrap().seq, 50);
        assert_eq!(cache.cursor().unwrap().seq, 50);
        assert!(
            cache.apply(up("e", 40)).await.unwrap().is_none(),
            "never back"
        );
        assert!(
            cache.apply(up("other", 90)).await.unwrap().is_none(),
            "not our log"
        );
        assert_eq!(cache.cursor().unwrap().seq, 50);
    }

    #[tokio::test]
    async fn counts_follow_every_change_without_walking() {
        let (_d, cache) = open();
        // Upserts of new and existing codes, deletes of present and absent ones, then a
        // snapshot that drops what it does not name: the counters match the trees.
        let ops = [
            ChangeOp::Upsert(voucher("A")),
            ChangeOp::Upsert(voucher("B")),
            ChangeOp::Upsert(voucher("A")),
            ChangeOp::Delete(ItemKey::Voucher("C".into())),
            ChangeOp::Delete(ItemKey::Voucher("B".into())),
            ChangeOp::Upsert(voucher("D")),
        ];
        for (seq, op) in (1u64..).zip(ops) {
            cache
                .apply(SyncMessage::Changes(vec![Change { seq, op }]))
                .await
                .unwrap();
            let (_, vouchers, _) = cache.counts();
            assert_eq!(vouchers, cache.vouchers.len() as u64, "after change {seq}");
        }
        assert_eq!(cache.counts(), (0, 2, 0));
        let cursor = SyncCursor {
            epoch: "e".into(),
            seq: 9,
        };
        cache
            .apply(SyncMessage::SnapshotBegin { cursor })
            .await
            .unwrap();
        cache
            .apply(SyncMessage::SnapshotItems(vec![voucher("D"), voucher("E")]))
            .await
            .unwrap();
        cache.apply(SyncMessage::SnapshotEnd).await.unwrap();
        assert_eq!(cache.counts(), (0, 2, 0));
        assert_eq!(cache.item_count(), cache.vouchers.len() as u64);
    }

    #[tokio::test]
    async fn changes_apply_in_order_and_replays_are_ignored() {
        let (_d, cache) = open();
        let changes = vec![
            Change {
                seq: 1,
                op: ChangeOp::Upsert(voucher("A")),
            },
            Change {
                seq: 2,
                op: ChangeOp::Delete(ItemKey::Voucher("A".into())),
            },
            Change {
                seq: 3,
                op: ChangeOp::Upsert(voucher("B")),
            },
        ];
        let c = cache
            .apply(SyncMessage::Changes(changes.clone()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.seq, 3);
        assert!(cache.voucher("A").unwrap().is_none());
        assert!(cache.voucher("B").unwrap().is_some());
        // A replay of already-applied changes does nothing, even a stale upsert of A.
        assert_eq!(
            cache
                .apply(SyncMessage::Changes(changes[..1].to_vec()))
                .await
                .unwrap(),
            None
        );
        assert!(cache.voucher("A").unwrap().is_none());
    }

    #[tokio::test]
    async fn out_of_order_snapshot_messages_are_errors() {
        let (_d, cache) = open();
        assert!(matches!(
            cache.apply(SyncMessage::SnapshotEnd).await,
            Err(CacheError::Protocol(_))
        ));
        assert!(matches!(
            cache.apply(SyncMessage::SnapshotItems(vec![])).await,
            Err(CacheError::Protocol(_))
        ));
    }
}
