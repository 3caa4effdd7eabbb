//! The drift reports' memory: the baseline (what the agent last made the router hold) and
//! the last report worth sending, both in sled so that a report made while the controller
//! was unreachable, or before a restart, still reaches it (every session sends the latest
//! one; the controller keeps only reports newer than its own). New reports are published on
//! a watch channel the uplink reads.

use super::drift::{Baseline, worth_sending};
use mikrobill_protocol::drift::DriftReport;
use std::sync::Arc;
use tokio::sync::{Mutex, MutexGuard, watch};

const BASELINE: &[u8] = b"baseline";
const REPORT: &[u8] = b"report";

/// The drift memory of one router (cloneable handle).
#[derive(Clone)]
pub struct DriftLog {
    tree: sled::Tree,
    latest: Arc<watch::Sender<Option<DriftReport>>>,
    run: Arc<Mutex<()>>,
}

impl std::fmt::Debug for DriftLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriftLog").finish_non_exhaustive()
    }
}

fn corrupt(what: &str, e: serde_json::Error) -> sled::Error {
    sled::Error::Unsupported(format!("stored drift {what} unreadable: {e}"))
}

impl DriftLog {
    /// Opens the `router_drift` tree of `db`.
    pub fn open(db: &sled::Db) -> Result<DriftLog, sled::Error> {
        let tree = db.open_tree("router_drift")?;
        let latest = match tree.get(REPORT)? {
            Some(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| corrupt("report", e))?),
            None => None,
        };
        Ok(DriftLog {
            tree,
            latest: Arc::new(watch::channel(latest).0),
            run: Arc::new(Mutex::new(())),
        })
    }

    /// The last report worth sending, newest first to arrive on changes.
    pub fn subscribe(&self) -> watch::Receiver<Option<DriftReport>> {
        self.latest.subscribe()
    }

    /// The last report worth sending, if any.
    pub fn latest(&self) -> Option<DriftReport> {
        self.latest.borrow().clone()
    }

    /// Held for a whole reconciliation with its report: two interleaved ones would each
    /// compare against the baseline the other is replacing.
    pub(crate) async fn lock(&self) -> MutexGuard<'_, ()> {
        self.run.lock().await
    }

    /// What the agent last made the router hold (empty before the first reconciliation).
    pub(crate) fn baseline(&self) -> Result<Baseline, sled::Error> {
        let Some(bytes) = self.tree.get(BASELINE)? else {
            return Ok(Baseline::new());
        };
        let items: Vec<((String, String), std::collections::BTreeMap<String, String>)> =
            serde_json::from_slice(&bytes).map_err(|e| corrupt("baseline", e))?;
        Ok(items.into_iter().collect())
    }

    /// Stores the next baseline and, when it is worth sending, the report (flushed before it
    /// is published); returns whether the report was published.
    pub(crate) async fn record(
        &self,
        report: DriftReport,
        baseline: &Baseline,
    ) -> Result<bool, sled::Error> {
        let items: Vec<_> = baseline.iter().collect();
        let bytes = serde_json::to_vec(&items).expect("a baseline serializes");
        // Most runs change nothing: no write, no flush (API mode holds every voucher).
        let mut dirty = self.tree.get(BASELINE)?.is_none_or(|old| *old != *bytes);
        if dirty {
            self.tree.insert(BASELINE, bytes)?;
        }
        let send = worth_sending(self.latest.borrow().as_ref(), &report);
        if send {
            self.tree.insert(
                REPORT,
                serde_json::to_vec(&report).expect("a report serializes"),
            )?;
            dirty = true;
        }
        if !dirty {
            return Ok(false);
        }
        let tree = self.tree.clone();
        match tokio::task::spawn_blocking(move || tree.flush()).await {
            Ok(result) => result.map(drop)?,
            Err(e) => {
                return Err(sled::Error::Io(std::io::Error::other(format!(
                    "flush task failed: {e}"
                ))));
            }
        }
        if send {
            self.latest.send_replace(Some(report));
        }
        Ok(send)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mikrobill_protocol::drift::{DriftEntry, DriftKind};

    fn drifted(at: i64) -> DriftReport {
        DriftReport {
            checked_at_ms: at,
            entries: vec![DriftEntry {
                menu: "/ppp/profile".into(),
                name: "gold".into(),
                kind: DriftKind::RemovedByHand,
                properties: Vec::new(),
                repaired: true,
            }],
        }
    }

    fn clean(at: i64) -> DriftReport {
        DriftReport {
            checked_at_ms: at,
            entries: Vec::new(),
        }
    }

    #[tokio::test]
    async fn reports_survive_a_restart_and_only_changes_of_state_are_published() {
        let dir = tempfile::tempdir().unwrap();
        let baseline = Baseline::from([(
            ("/ppp/profile".to_owned(), "gold".to_owned()),
            [("rate-limit".to_owned(), "1M/2M".to_owned())].into(),
        )]);
        {
            let db = sled::open(dir.path()).unwrap();
            let log = DriftLog::open(&db).unwrap();
            let mut rx = log.subscribe();
            assert!(!log.record(clean(1), &baseline).await.unwrap());
            assert!(!rx.has_changed().unwrap());
            assert!(log.record(drifted(2), &baseline).await.unwrap());
            assert_eq!(rx.borrow_and_update().as_ref(), Some(&drifted(2)));
        }
        let db = sled::open(dir.path()).unwrap();
        let log = DriftLog::open(&db).unwrap();
        assert_eq!(
            log.latest(),
            Some(drifted(2)),
            "the unsent report is still there"
        );
        assert_eq!(log.baseline().unwrap(), baseline);
        assert!(log.record(clean(3), &baseline).await.unwrap());
        assert!(!log.record(clean(4), &baseline).await.unwrap());
        assert_eq!(log.latest(), Some(clean(3)));
    }
}
