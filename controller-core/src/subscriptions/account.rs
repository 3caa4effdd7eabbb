//! What the subscription's router must know: the account in the site's change log and the
//! commands that make running sessions follow a change.

use super::record::Subscription;
use super::status::SubscriptionStatus;
use crate::audit::Actor;
use crate::error::DomainResult;
use crate::sync_log;
use mikrobill_protocol::items::{AccountStatus, Item, ItemKey, User};
use mikrobill_protocol::messages::{ChangeOp, Command};

/// The cache record the site's agent needs, or `None` once terminated.
fn user_item(s: &Subscription) -> Option<User> {
    let status = match s.status {
        SubscriptionStatus::Active => AccountStatus::Active,
        SubscriptionStatus::Isolated => AccountStatus::Isolated,
        SubscriptionStatus::Terminated => return None,
    };
    Some(User {
        username: s.username.clone(),
        password: s.password.clone(),
        plan_id: s.plan_id.clone(),
        status,
        static_ip: s.static_ip.as_deref().and_then(|ip| ip.parse().ok()),
    })
}

/// Appends the subscription's current state to its site's change log.
pub(super) async fn sync(conn: &mut sqlx::AnyConnection, s: &Subscription) -> DomainResult<()> {
    let op = match user_item(s) {
        Some(user) => ChangeOp::Upsert(Item::User(user)),
        None => ChangeOp::Delete(ItemKey::User(s.username.clone())),
    };
    sync_log::append(conn, Some(&s.site_id), &[op]).await?;
    Ok(())
}

/// Queues a command for the subscription's router in the caller's transaction, so running
/// sessions follow the change (the cache update alone only affects the next login).
pub(super) async fn queue(
    conn: &mut sqlx::AnyConnection,
    site_id: &str,
    sub_id: &str,
    actor: &Actor,
    command: Command,
) -> DomainResult<()> {
    crate::commands::enqueue(
        conn,
        site_id,
        &command,
        Some(sub_id),
        &actor.name,
        crate::commands::DEFAULT_TTL_MS,
    )
    .await?;
    Ok(())
}
