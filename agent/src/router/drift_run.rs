//! A reconciliation that reports drift: read the RADIUS/AAA settings when the agent manages
//! them (and write them back when repairing), reconcile the items the agent owns, then
//! decide what was changed by hand and record the report for the controller.

use super::bootstrap::{bootstrap, inspect};
use super::drift::decide;
use super::drift_log::DriftLog;
use super::owned::Owned;
use super::sync_all::reconcile_seen;
use super::{Change, Mode, Router, RouterConfig, RouterError};
use crate::cache::Cache;

/// What a reconciliation does about the router's RADIUS/AAA settings (only ever where the
/// agent was asked to set them up: RADIUS mode with `bootstrap_on_start`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aaa {
    /// Leave them out (the agent has not set them up yet: what differs is not drift).
    Skip,
    /// Report what differs; the agent changes them on its own only when it starts.
    Check,
    /// Write what differs back (an operator's repair) and report it repaired.
    Repair,
}

/// Reconciles the router and records its drift report.
pub async fn reconcile_reported(
    router: &Router,
    cache: &Cache,
    owned: &Owned,
    config: &RouterConfig,
    drift: &DriftLog,
    aaa_mode: Aaa,
) -> Result<Vec<Change>, RouterError> {
    let _run = drift.lock().await;
    let mut changes = Vec::new();
    let mut aaa = Vec::new();
    let mut aaa_repaired = false;
    let repair_aaa = aaa_mode == Aaa::Repair;
    if aaa_mode != Aaa::Skip && config.mode == Mode::Radius && config.bootstrap_on_start {
        match inspect(router, &config.radius).await {
            Ok(found) => aaa = found,
            Err(RouterError::Config(message)) if !repair_aaa => {
                tracing::debug!("RADIUS settings not checked: {message}");
            }
            Err(e) => return Err(e),
        }
        if repair_aaa && !aaa.is_empty() {
            changes.extend(bootstrap(router, &config.radius).await?);
            aaa_repaired = true;
        }
    }
    let done = reconcile_seen(router, cache, owned, config).await?;
    changes.extend(done.changes);
    let baseline = drift.baseline().map_err(storage)?;
    let (report, next) = decide(&done.seen, &aaa, aaa_repaired, &baseline, crate::now_ms());
    for entry in &report.entries {
        tracing::warn!(
            menu = %entry.menu,
            name = %entry.name,
            kind = entry.kind.as_str(),
            repaired = entry.repaired,
            "router drift: changed outside MikroBill"
        );
    }
    drift.record(report, &next).await.map_err(storage)?;
    Ok(changes)
}

fn storage(e: sled::Error) -> RouterError {
    RouterError::Storage(e.to_string())
}
