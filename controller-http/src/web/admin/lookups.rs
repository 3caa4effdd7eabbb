//! Names to show for ids (plans, sites, site groups, resellers), read for the page modules'
//! selects and tables. Plans, sites and resellers are few, so each page reads them whole
//! once. Reading typed values back is in `form_values`.

use super::error::WebError;
use mikrobill_core::auth::Role;
use mikrobill_core::db::Db;
use mikrobill_core::plans::{self, PlanInfo, PlanKind};
use mikrobill_core::sites::{self, Site};
use std::collections::HashMap;

/// Plans by id (archived included, so old records still show a name).
pub async fn plans(db: &Db, kind: Option<PlanKind>) -> Result<Vec<PlanInfo>, WebError> {
    Ok(plans::list(db, kind, true, "", 10_000).await?)
}

/// Plans by id.
pub fn by_id(plans: &[PlanInfo]) -> HashMap<String, PlanInfo> {
    plans.iter().map(|p| (p.id.clone(), p.clone())).collect()
}

/// Sites that are not revoked, by name.
pub async fn live_sites(db: &Db) -> Result<Vec<Site>, WebError> {
    Ok(sites::list(db)
        .await?
        .into_iter()
        .filter(|s| s.revoked_at.is_none())
        .collect())
}

/// Site names by id (revoked included).
pub async fn site_names(db: &Db) -> Result<HashMap<String, String>, WebError> {
    Ok(sites::list(db)
        .await?
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect())
}

/// Reseller accounts, by username.
pub async fn resellers(db: &Db) -> Result<Vec<mikrobill_core::admins::Admin>, WebError> {
    Ok(mikrobill_core::admins::list(db, Some(Role::Reseller), "", 10_000).await?)
}
