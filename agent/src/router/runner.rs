//! The router beside a running agent: bootstrap RADIUS once the router answers (when asked
//! to), then keep profiles (and, in API mode, accounts) in step with the cache after every
//! applied sync message, after every reconnect, and periodically. It runs as its own task:
//! nothing on the RADIUS path waits for it.

use super::bootstrap::bootstrap;
use super::owned::Owned;
use super::profiles::{desired_profiles, sync_phase};
use super::reconcile::Phase;
use super::supervisor::stopped;
use super::{Change, Mode, Router, RouterConfig, RouterError, sync_accounts};
use crate::cache::Cache;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Sync messages come in bursts: wait this long for the burst to end before reconciling.
const SETTLE: Duration = Duration::from_secs(1);

/// Profiles first (accounts name them), then API-mode accounts, then stale profiles; one
/// reconciliation at a time per router (the runner and controller commands both run them).
pub async fn reconcile_all(
    router: &Router,
    cache: &Cache,
    owned: &Owned,
    config: &RouterConfig,
) -> Result<Vec<Change>, RouterError> {
    let plans = cache
        .plans()
        .map_err(|e| RouterError::Storage(e.to_string()))?;
    let specs = desired_profiles(&plans, config.mode, config.isolation_rate_limit.as_deref());
    let _exclusive = router.exclusive().await;
    let mut changes = sync_phase(router, &specs, owned, Phase::Upsert).await?;
    if config.mode == Mode::Api {
        changes.extend(sync_accounts(router, cache).await?);
    }
    changes.extend(sync_phase(router, &specs, owned, Phase::Prune).await?);
    Ok(changes)
}

/// Keeps the router in step with the cache until `shutdown` turns true (the agent spawns it).
pub async fn run(
    router: Router,
    config: RouterConfig,
    cache: Arc<Cache>,
    owned: Owned,
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
            match reconcile_all(&router, &cache, &owned, &config).await {
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
