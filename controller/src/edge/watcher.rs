//! Polls the database for what other processes changed (and, on PostgreSQL, as soon as a
//! change or command is committed: [`mikrobill_core::db::changes`]): new change-log entries (so sync
//! reaches agents within a poll interval even when the CLI or another replica wrote them)
//! revocations (so a revoked agent is cut off at once) and queued commands (so the replica
//! holding a site's session delivers them within a poll interval, whoever queued them),
//! and CA rotation steps (so the edge trusts, presents and issues with the CAs of the new
//! phase, and sessions send agents the new trust bundle).

use super::registry::Registry;
use super::{CaSource, POLL_INTERVAL};
use mikrobill_core::db::Db;
use mikrobill_core::pki::CaSet;
use mikrobill_core::sites::{self, CertStatus};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// What the watcher needs to follow a CA rotation.
pub(super) struct Rotation {
    pub source: CaSource,
    pub endpoint: quinn::Endpoint,
    pub sets: watch::Sender<Arc<CaSet>>,
    pub fingerprint: watch::Sender<[u8; 32]>,
    /// The rotation stamp the current set was loaded at.
    pub stamp: i64,
}

impl Rotation {
    /// Loads the CAs again when a rotation step happened; a failed load is retried at the
    /// next poll and the edge keeps the CAs it has.
    async fn follow(&mut self, db: &Db) {
        let stamp = match mikrobill_core::ca_rotation::stamp(db).await {
            Ok(s) if s == self.stamp => return,
            Ok(s) => s,
            Err(e) => return tracing::warn!("cannot poll the CA rotation: {e}"),
        };
        let set = match self.source.load(db).await {
            Ok(set) => set,
            Err(e) => {
                return tracing::error!("cannot load the CAs of the rotation's new phase: {e}");
            }
        };
        match super::tls::server_config(&set) {
            Ok(config) => self.endpoint.set_server_config(Some(config)),
            Err(e) => return tracing::error!("cannot configure the edge for the new CAs: {e}"),
        }
        tracing::info!(
            issuing = %set.active.fingerprint_hex(),
            trusted = set.trusted().len(),
            "certificate authorities reloaded"
        );
        self.stamp = stamp;
        self.fingerprint.send_replace(set.active.fingerprint());
        self.sets.send_replace(Arc::new(set));
    }
}

/// Shortest time between two polls woken by notifications.
const MIN_WAKE_SPACING: Duration = Duration::from_millis(10);

pub(super) async fn run(
    db: Db,
    registry: Registry,
    head: watch::Sender<u64>,
    commands: watch::Sender<i64>,
    mut rotation: Rotation,
) {
    let mut revocations = None;
    let mut ticker = tokio::time::interval(POLL_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // On PostgreSQL every committed change or command wakes the poll at once, whichever
    // replica or CLI wrote it; the ticker stays for what sends no notification (revocations,
    // CA rotation steps) and for a listener that is reconnecting.
    let wake = Arc::new(Notify::new());
    // Stops with the watcher.
    let _listener = mikrobill_core::db::changes::spawn_listener(&db, wake.clone());
    let mut last_poll = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = wake.notified() => {
                // A busy fleet commits changes all the time: at most one poll per spacing.
                tokio::time::sleep_until(last_poll + MIN_WAKE_SPACING).await;
            }
        }
        last_poll = tokio::time::Instant::now();
        match mikrobill_core::sync_log::head(&db).await {
            Ok(seq) => {
                head.send_if_modified(|cur| {
                    let changed = *cur != seq;
                    *cur = seq;
                    changed
                });
            }
            Err(e) => tracing::warn!("cannot poll the change log: {e}"),
        }
        match mikrobill_core::commands::head(&db).await {
            Ok(id) => {
                commands.send_if_modified(|cur| {
                    let changed = *cur != id;
                    *cur = id;
                    changed
                });
            }
            Err(e) => tracing::warn!("cannot poll the command queue: {e}"),
        }
        // Before revocations: a retirement revokes the previous CA's certificates, and the
        // edge should no longer accept them when their sessions are closed.
        rotation.follow(&db).await;
        match sites::revocation_count(&db).await {
            Ok(n) if revocations != Some(n) => {
                revocations = Some(n);
                close_revoked(&db, &registry).await;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("cannot poll revocations: {e}"),
        }
    }
}

async fn close_revoked(db: &Db, registry: &Registry) {
    for (site_id, session) in registry.sessions() {
        match sites::certificate_status(db, &site_id, &session.serial_hex).await {
            Ok(CertStatus::Valid { .. }) => {}
            Ok(_) => {
                tracing::warn!(site_id, "closing the session of a revoked agent");
                session
                    .conn
                    .close(mikrobill_protocol::close_code::REVOKED.into(), b"revoked");
            }
            Err(e) => tracing::warn!(site_id, "cannot check revocation: {e}"),
        }
    }
}
