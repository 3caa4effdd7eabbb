//! The router beside a running agent: bootstrap RADIUS once the router answers (when asked
//! to), then keep profiles (and, in API mode, accounts) in step with the cache after every
//! applied sync message, after every reconnect, and periodically. It runs as its own task:
//! nothing on the RADIUS path waits for it.

use super::bootstrap::bootstrap;
use super::drift_log::DriftLog;
use super::drift_run::{Aaa, reconcile_reported};
use super::owned::Owned;
use super::supervisor::stopped;
use super::{Change, Mode, Router, RouterConfig, RouterError};
use crate::cache::Cache;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Sync messages come in bursts: wait this long for the burst to end before reconciling.
const SETTLE: Duration = Duration::from_secs(1);

/// Keeps the router in step with the cache until `shutdown` turns true (the agent spawns
/// it), reporting drift after each reconciliation.
pub async fn run(
    router: Router,
    config: RouterConfig,
    cache: Arc<Cache>,
    owned: Owned,
    drift: DriftLog,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut state = router.state();
    let mut synced = cache.subscribe();
    let mut ticker = tokio::time::interval(config.reconcile_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut bootstrap_pending = config.bootstrap_on_start && config.mode == Mode::Radius;
    let mut dirty = true;
    let mut was_reachable = false;
    loop {
        let reachable = state.borrow_and_update().reachable;
        if reachable && !was_reachable {
            // A new connection may be a rebooted or reset router.
            dirty = true;
        }
        was_reachable = reachable;
        if reachable && bootstrap_pending {
            match bootstrap(&router, &config.radius).await {
                Ok(changes) => {
                    bootstrap_pending = false;
                    if changes.is_empty() {
                        tracing::info!("router RADIUS settings already point at this agent");
                    }
                    log_changes("router bootstrap", &changes);
                }
                Err(RouterError::Config(message)) => {
                    bootstrap_pending = false;
                    tracing::error!("router bootstrap impossible: {message}");
                }
                Err(e) => tracing::warn!("router bootstrap failed, will retry: {e}"),
            }
        }
        if reachable && dirty {
            // Until its own bootstrap went through, what differs was never set by the agent.
            let aaa = if bootstrap_pending {
                Aaa::Skip
            } else {
                Aaa::Check
            };
            match reconcile_reported(&router, &cache, &owned, &config, &drift, aaa).await {
                Ok(changes) => {
                    dirty = false;
                    log_changes("router sync", &changes);
                }
                Err(e) => tracing::warn!("router sync failed, will retry: {e}"),
            }
        }
        let mut settle = false;
        tokio::select! {
            () = stopped(&mut shutdown) => return,
            changed = state.changed() => if changed.is_err() { return },
            changed = synced.changed() => {
                if changed.is_err() { return }
                settle = true;
            }
            _ = ticker.tick() => dirty = true,
        }
        if settle {
            tokio::select! {
                () = stopped(&mut shutdown) => return,
                () = tokio::time::sleep(SETTLE) => {}
            }
            synced.borrow_and_update();
            dirty = true;
        }
    }
}

fn log_changes(what: &str, changes: &[Change]) {
    for change in changes {
        tracing::info!("{what}: {change}");
    }
}
