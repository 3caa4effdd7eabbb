//! Polls the database for what other processes changed: new change-log entries (so sync
//! reaches agents within a poll interval even when the CLI or another replica wrote them)
//! revocations (so a revoked agent is cut off at once) and queued commands (so the replica
//! holding a site's session delivers them within a poll interval, whoever queued them).

use super::POLL_INTERVAL;
use super::registry::Registry;
use mikrobill_core::db::Db;
use mikrobill_core::sites::{self, CertStatus};
use tokio::sync::watch;

pub(super) async fn run(
    db: Db,
    registry: Registry,
    head: watch::Sender<u64>,
    commands: watch::Sender<i64>,
) {
    let mut revocations = None;
    let mut ticker = tokio::time::interval(POLL_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
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
