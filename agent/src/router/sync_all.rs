//! The full reconciliation of everything the agent owns on the router, in the order that
//! keeps every account's profile in place: profiles created or updated, then API-mode
//! accounts, then stale profiles removed.

use super::api_mode::reconcile_accounts;
use super::owned::Owned;
use super::profiles::{desired_profiles, sync_phase};
use super::reconcile::{Phase, Reconciled};
use super::{Change, Mode, Router, RouterConfig, RouterError};
use crate::cache::Cache;

/// Profiles first (accounts name them), then API-mode accounts, then stale profiles; one
/// reconciliation at a time per router (the runner and controller commands both run them).
pub async fn reconcile_all(
    router: &Router,
    cache: &Cache,
    owned: &Owned,
    config: &RouterConfig,
) -> Result<Vec<Change>, RouterError> {
    Ok(reconcile_seen(router, cache, owned, config).await?.changes)
}

/// [`reconcile_all`] with what it found before acting, for the drift report.
pub(crate) async fn reconcile_seen(
    router: &Router,
    cache: &Cache,
    owned: &Owned,
    config: &RouterConfig,
) -> Result<Reconciled, RouterError> {
    let plans = cache
        .plans()
        .map_err(|e| RouterError::Storage(e.to_string()))?;
    let specs = desired_profiles(&plans, config.mode, config.isolation_rate_limit.as_deref());
    let _exclusive = router.exclusive().await;
    let mut done = sync_phase(router, &specs, owned, Phase::Upsert).await?;
    if config.mode == Mode::Api {
        done.extend(reconcile_accounts(router, cache).await?);
    }
    done.extend(sync_phase(router, &specs, owned, Phase::Prune).await?);
    Ok(done)
}
