//! Changing a subscription's account details (password, address, site, due and grace days).

use super::account::{queue, sync};
use super::record::{Subscription, fetch, ip_taken};
use super::status::SubscriptionStatus;
use super::validation::{check_password, parse_ip};
use crate::audit::{self, Actor};
use crate::db::{Db, now_ms};
use crate::error::{DomainError, DomainResult};
use crate::sync_log;
use mikrobill_protocol::items::ItemKey;
use mikrobill_protocol::messages::{ChangeOp, Command};
use serde::Deserialize;

/// Changes to a subscription's account details; absent fields stay.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionPatch {
    /// New PPPoE password.
    pub password: Option<String>,
    /// New fixed address ("" clears).
    pub static_ip: Option<String>,
    /// Move to another site (the account leaves the old router).
    pub site_id: Option<String>,
    /// New due days.
    pub due_days: Option<u32>,
    /// New grace days.
    pub grace_days: Option<u32>,
}

/// Applies a patch and syncs the account (to the new site, and away from the old one).
pub async fn update(
    db: &Db,
    actor: &Actor,
    id: &str,
    patch: SubscriptionPatch,
) -> DomainResult<Subscription> {
    if let Some(p) = &patch.password {
        check_password(p)?;
    }
    let ip_change = match patch.static_ip {
        Some(ip) => Some(parse_ip(Some(ip))?),
        None => None,
    };
    if patch.due_days.is_some_and(|d| d > 60) {
        return Err(DomainError::invalid("due_days", "must be at most 60"));
    }
    if patch.grace_days.is_some_and(|d| d > 60) {
        return Err(DomainError::invalid("grace_days", "must be at most 60"));
    }
    if let Some(site) = &patch.site_id {
        let s = crate::sites::by_id(db, site)
            .await
            .map_err(|_| DomainError::invalid("site_id", "no such site"))?;
        if s.revoked_at.is_some() {
            return Err(DomainError::invalid("site_id", "the site is revoked"));
        }
    }
    let mut tx = db.begin().await?;
    let before = fetch(&mut tx, id).await?;
    if before.status == SubscriptionStatus::Terminated {
        return Err(DomainError::conflict(
            "invalid_state",
            "the subscription is terminated",
        ));
    }
    if let Some(Some(ip)) = &ip_change
        && ip_taken(&mut tx, ip, id).await?
    {
        return Err(DomainError::conflict(
            "ip_taken",
            format!("{ip} is already assigned to another subscription"),
        ));
    }
    sqlx::query(
        "UPDATE subscriptions SET password = COALESCE($1, password), static_ip = CASE WHEN $2 = 1 THEN $3 ELSE static_ip END, \
         site_id = COALESCE($4, site_id), due_days = COALESCE($5, due_days), grace_days = COALESCE($6, grace_days), updated_at = $7 WHERE id = $8",
    )
    .bind(&patch.password)
    .bind(ip_change.is_some() as i64)
    .bind(ip_change.flatten())
    .bind(&patch.site_id)
    .bind(patch.due_days.map(|d| d as i64))
    .bind(patch.grace_days.map(|d| d as i64))
    .bind(now_ms())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    let after = fetch(&mut tx, id).await?;
    if after.site_id != before.site_id {
        sync_log::append(
            &mut tx,
            Some(&before.site_id),
            &[ChangeOp::Delete(ItemKey::User(before.username.clone()))],
        )
        .await?;
        let kick = Command::Disconnect {
            username: before.username.clone(),
        };
        queue(&mut tx, &before.site_id, id, actor, kick).await?;
    }
    sync(&mut tx, &after).await?;
    audit::record(
        &mut tx,
        actor,
        "subscription.update",
        "subscription",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}
