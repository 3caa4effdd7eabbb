//! Moving a subscription to another plan mid-cycle, with proration.

use super::account::{queue, sync};
use super::record::{Subscription, fetch};
use super::status::SubscriptionStatus;
use super::validation::pppoe_plan;
use crate::audit::{self, Actor};
use crate::billing::cycle::{self, Cycle};
use crate::billing::invoices::{self, InvoiceKind, Line, NewInvoice};
use crate::db::{Db, now_ms};
use crate::error::{DomainError, DomainResult};
use crate::plans;
use crate::settings;
use mikrobill_protocol::messages::Command;

/// Moves a subscription to another PPPoE plan today: the unused days of the old price are
/// credited and the remaining days of the new one charged, on a proration invoice (or as
/// customer credit when the new plan is cheaper); the account's new speed syncs to the site.
pub async fn change_plan(
    db: &Db,
    actor: &Actor,
    id: &str,
    plan_id: &str,
) -> DomainResult<Subscription> {
    let st = settings::billing(db).await?;
    let new_plan = pppoe_plan(db, plan_id).await?;
    let mut tx = db.begin().await?;
    let before = fetch(&mut tx, id).await?;
    if before.status == SubscriptionStatus::Terminated {
        return Err(DomainError::conflict(
            "invalid_state",
            "the subscription is terminated",
        ));
    }
    if before.plan_id == new_plan.id {
        return Err(DomainError::conflict(
            "invalid_state",
            "the subscription is already on this plan",
        ));
    }
    let old_plan = plans::fetch_info(&mut tx, &before.plan_id).await?;
    let now = now_ms();
    let off = st.utc_offset_minutes;
    let today = cycle::local_date(now, off);
    // The cycle already invoiced is the one ending at next_cycle_at.
    let paid_end = cycle::local_date(before.next_cycle_at, off);
    let current =
        cycle::cycle_containing(paid_end - time::Duration::days(1), before.billing_day as u8);
    let current = Cycle {
        start: current.start,
        end: paid_end,
    };
    sqlx::query("UPDATE subscriptions SET plan_id = $1, updated_at = $2 WHERE id = $3")
        .bind(&new_plan.id)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let after = fetch(&mut tx, id).await?;
    sync(&mut tx, &after).await?;
    let respeed = Command::ApplyPlan {
        username: after.username.clone(),
        plan_id: new_plan.id.clone(),
    };
    queue(&mut tx, &after.site_id, id, actor, respeed).await?;
    audit::record(
        &mut tx,
        actor,
        "subscription.change_plan",
        "subscription",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    if current.contains(today) {
        let adjustment =
            cycle::plan_change_adjustment(old_plan.price, new_plan.price, today, current);
        let days = cycle::remaining_days(today, current);
        if adjustment > 0 {
            invoices::issue(
                &mut tx,
                actor,
                NewInvoice {
                    customer_id: after.customer_id.clone(),
                    subscription_id: Some(id.to_string()),
                    kind: InvoiceKind::Proration,
                    period: Some((now, cycle::local_midnight_ms(current.end, off))),
                    lines: vec![Line {
                        description: format!(
                            "{} → {}, {days} of {} days",
                            old_plan.name,
                            new_plan.name,
                            current.days()
                        ),
                        amount: adjustment,
                    }],
                    due_at: cycle::local_midnight_ms(
                        today + time::Duration::days(after.due_days),
                        off,
                    ),
                    tax: st.tax(),
                    year: today.year(),
                },
            )
            .await?;
        } else if adjustment < 0 {
            let credit = crate::tax::apply(-adjustment, st.tax()).total;
            crate::customers::adjust_balance(&mut tx, &after.customer_id, credit).await?;
            // The credit pays what the customer still owes (an older invoice may have them
            // isolated) rather than wait in the balance for the next invoice.
            super::lifecycle::settle_from_credit(&mut tx, actor, &after.customer_id).await?;
        }
    }
    // Read again: the credit may have settled what kept it isolated.
    let after = fetch(&mut tx, id).await?;
    tx.commit().await?;
    Ok(after)
}
