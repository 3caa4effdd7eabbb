//! Status changes: an operator's isolate, reactivate and terminate, the isolation sweep, and
//! the lift after a payment. Each loads the subscription, asks [`status::next`] and, for a
//! change, stores it with its sync, router command, event and audit row in one transaction.

use super::account::{queue, sync};
use super::record::{Subscription, fetch};
use super::status::{self, Cause, Standing, SubscriptionStatus, Transition};
use crate::audit::{self, Actor};
use crate::billing::credit::{self, CreditUse};
use crate::billing::overdue;
use crate::db::{Db, now_ms};
use crate::error::{DomainError, DomainResult};
use mikrobill_protocol::messages::Command;
use sqlx::Row;

/// Asks the transition table about `s` and, when it moves, stores the move inside the
/// caller's transaction. `Ok(None)` when the table says nothing changes.
async fn apply(
    conn: &mut sqlx::AnyConnection,
    actor: &Actor,
    s: &Subscription,
    cause: Cause,
) -> DomainResult<Option<Subscription>> {
    match status::next(s.standing(), cause) {
        Transition::To(to) => store(conn, actor, s, to, cause).await.map(Some),
        Transition::Stay => Ok(None),
        Transition::Refused(status) => Err(DomainError::conflict(
            "invalid_state",
            format!("the subscription is {}", status.as_str()),
        )),
    }
}

/// Stores a move to `to` and everything that follows it.
async fn store(
    conn: &mut sqlx::AnyConnection,
    actor: &Actor,
    before: &Subscription,
    to: Standing,
    cause: Cause,
) -> DomainResult<Subscription> {
    let id = before.id.as_str();
    let now = now_ms();
    sqlx::query(
        "UPDATE subscriptions SET status = $1, isolation_reason = $2, \
         isolated_at = CASE WHEN $1 = 'isolated' THEN $3 ELSE NULL END, \
         terminated_at = CASE WHEN $1 = 'terminated' THEN $3 ELSE terminated_at END, updated_at = $3 WHERE id = $4",
    )
    .bind(to.status.as_str())
    .bind(to.reason.map(|r| r.as_str()))
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    let after = fetch(conn, id).await?;
    sync(conn, &after).await?;
    let command = match to.status {
        SubscriptionStatus::Terminated => Command::Disconnect {
            username: after.username.clone(),
        },
        SubscriptionStatus::Isolated | SubscriptionStatus::Active => Command::SetIsolation {
            username: after.username.clone(),
            isolated: to.status == SubscriptionStatus::Isolated,
        },
    };
    queue(conn, &after.site_id, id, actor, command).await?;
    let kind = match to.status {
        SubscriptionStatus::Isolated => crate::events::EventKind::SubscriptionIsolated,
        SubscriptionStatus::Active => crate::events::EventKind::SubscriptionReactivated,
        SubscriptionStatus::Terminated => crate::events::EventKind::SubscriptionTerminated,
    };
    let refs = crate::events::Refs {
        customer_id: Some(&after.customer_id),
        subscription_id: Some(&after.id),
        site_id: Some(&after.site_id),
    };
    // Events reach integrators' webhooks: the PPPoE password stays out of them.
    let mut data = serde_json::to_value(&after).unwrap_or_default();
    if let Some(o) = data.as_object_mut() {
        o.remove("password");
    }
    crate::events::emit(conn, kind, refs, &data).await?;
    audit::record(
        conn,
        actor,
        cause.action(),
        "subscription",
        Some(id),
        Some(before),
        Some(&after),
    )
    .await?;
    Ok(after)
}

/// An operator's change, in its own transaction.
async fn by_operator(db: &Db, actor: &Actor, id: &str, cause: Cause) -> DomainResult<Subscription> {
    let mut tx = db.begin().await?;
    let s = fetch(&mut tx, id).await?;
    // Operator causes never `Stay` (the table's tests hold it to that), so `None` would be a
    // bug in the table; answer with the unchanged subscription rather than fail.
    let after = apply(&mut tx, actor, &s, cause).await?.unwrap_or(s);
    tx.commit().await?;
    Ok(after)
}

/// Isolates an active subscription by hand; only an operator lifts it.
pub async fn isolate(db: &Db, actor: &Actor, id: &str) -> DomainResult<Subscription> {
    by_operator(db, actor, id, Cause::OperatorIsolates).await
}

/// [`isolate`] inside the caller's transaction (an import carries over a subscriber the
/// source had blocked).
pub(crate) async fn isolate_in(
    conn: &mut sqlx::AnyConnection,
    actor: &Actor,
    id: &str,
) -> DomainResult<Subscription> {
    let s = fetch(conn, id).await?;
    Ok(apply(conn, actor, &s, Cause::OperatorIsolates)
        .await?
        .unwrap_or(s))
}

/// Re-activates an isolated subscription by hand.
pub async fn reactivate(db: &Db, actor: &Actor, id: &str) -> DomainResult<Subscription> {
    by_operator(db, actor, id, Cause::OperatorReactivates).await
}

/// Ends a subscription: no more invoices, the account leaves the router. Unpaid invoices stay.
pub async fn terminate(db: &Db, actor: &Actor, id: &str) -> DomainResult<Subscription> {
    by_operator(db, actor, id, Cause::Terminate).await
}

/// The due dates of a subscription's unpaid invoices.
async fn unpaid_due_dates(conn: &mut sqlx::AnyConnection, id: &str) -> DomainResult<Vec<i64>> {
    Ok(
        sqlx::query("SELECT due_at FROM invoices WHERE subscription_id = $1 AND status = 'unpaid'")
            .bind(id)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| r.try_get("due_at"))
            .collect::<Result<_, _>>()?,
    )
}

/// Whether `s` has an overdue invoice at `now`.
async fn has_overdue(
    conn: &mut sqlx::AnyConnection,
    s: &Subscription,
    now: i64,
) -> DomainResult<bool> {
    let dues = unpaid_due_dates(conn, &s.id).await?;
    Ok(overdue::any_overdue(&dues, s.grace_days, now))
}

/// Pays the customer's credit into their open invoices, oldest due first, and lifts the
/// overdue isolations that settles, inside the caller's transaction. Returns what the
/// credit paid and the subscriptions re-activated.
pub async fn settle_from_credit(
    conn: &mut sqlx::AnyConnection,
    actor: &Actor,
    customer_id: &str,
) -> DomainResult<(Vec<CreditUse>, Vec<String>)> {
    let used = credit::apply_balance(conn, actor, customer_id).await?;
    let mut reactivated = Vec::new();
    for sub in used.iter().filter_map(|u| u.subscription_id.as_deref()) {
        if !reactivated.iter().any(|r| r == sub) && reactivate_if_settled(conn, actor, sub).await? {
            reactivated.push(sub.to_string());
        }
    }
    Ok((used, reactivated))
}

/// After a payment: lifts an overdue isolation when nothing overdue is left. Returns whether
/// it did. Manual isolations stay.
pub async fn reactivate_if_settled(
    conn: &mut sqlx::AnyConnection,
    actor: &Actor,
    id: &str,
) -> DomainResult<bool> {
    let s = fetch(conn, id).await?;
    // Only ask about invoices when the table could lift anything: most payments land on
    // active subscriptions.
    if status::next(s.standing(), Cause::Settled) == Transition::Stay
        || has_overdue(conn, &s, now_ms()).await?
    {
        return Ok(false);
    }
    Ok(apply(conn, actor, &s, Cause::Settled).await?.is_some())
}

/// Job: isolates active subscriptions with an invoice unpaid past due + grace. Returns how
/// many were isolated.
pub async fn isolation_sweep(db: &Db, now: i64) -> DomainResult<u64> {
    let ids: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT DISTINCT s.id FROM subscriptions s JOIN invoices i ON i.subscription_id = s.id \
         WHERE s.status = 'active' AND {} ORDER BY s.id LIMIT 1000",
        overdue::sql("$1")
    )))
    .bind(now)
    .fetch_all(&db.pool)
    .await?
    .iter()
    .map(|r| r.try_get("id"))
    .collect::<Result<_, _>>()?;
    let actor = Actor::system("scheduler");
    let mut n = 0;
    for id in ids {
        let mut tx = db.begin().await?;
        // Decided again inside the transaction: a payment may have landed meanwhile, and
        // credit the customer holds pays what is open before anyone is isolated for it.
        let s = fetch(&mut tx, &id).await?;
        settle_from_credit(&mut tx, &actor, &s.customer_id).await?;
        if has_overdue(&mut tx, &s, now).await?
            && apply(&mut tx, &actor, &s, Cause::Overdue).await?.is_some()
        {
            n += 1;
        }
        tx.commit().await?;
    }
    Ok(n)
}
