//! Opening a subscription: the account, its first sync and its first (prorated) invoice.

use super::account::sync;
use super::invoicing::cycle_line;
use super::record::{Subscription, fetch, ip_taken};
use super::validation::{check_password, check_username, parse_date, parse_ip, pppoe_plan_in};
use crate::audit::{self, Actor};
use crate::billing::cycle;
use crate::billing::invoices::{self, InvoiceKind, Line, NewInvoice};
use crate::db::{Db, now_ms};
use crate::error::{DomainError, DomainResult};
use crate::settings;
use serde::Deserialize;

/// A new subscription.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionInput {
    /// The customer.
    pub customer_id: String,
    /// A PPPoE plan.
    pub plan_id: String,
    /// The serving site.
    pub site_id: String,
    /// PPPoE user name.
    pub username: String,
    /// PPPoE password (generated when absent).
    pub password: Option<String>,
    /// Fixed IPv4 address.
    pub static_ip: Option<String>,
    /// Day of month a cycle starts (1-28; default: the start day, at most 28).
    pub billing_day: Option<u8>,
    /// Service start, local date `YYYY-MM-DD` (default today; at most a year back).
    pub start_date: Option<String>,
    /// First day billed, local date `YYYY-MM-DD`, on or after the start (default the start):
    /// an account moved from another system is billed from here, not for the cycles it
    /// already paid there. A future date issues no invoice now; the invoice run bills from it.
    pub bill_from: Option<String>,
    /// Days until an invoice is due (default from settings).
    pub due_days: Option<u32>,
    /// Days after due before isolation (default from settings).
    pub grace_days: Option<u32>,
}

/// Creates a subscription, syncs the account to its site and issues the first (prorated)
/// invoice, all in one transaction.
pub async fn create(
    db: &Db,
    actor: &Actor,
    input: SubscriptionInput,
) -> DomainResult<Subscription> {
    let st = settings::billing(db).await?;
    let mut tx = db.begin().await?;
    let sub = create_in(&mut tx, actor, input, &st, now_ms()).await?;
    tx.commit().await?;
    Ok(sub)
}

/// Creates a subscription inside the caller's transaction (an import writes many records at
/// once): the account, its sync, its audit entry and, unless billing starts later, its first
/// invoice.
pub async fn create_in(
    conn: &mut sqlx::AnyConnection,
    actor: &Actor,
    input: SubscriptionInput,
    st: &settings::BillingSettings,
    now: i64,
) -> DomainResult<Subscription> {
    check_username(&input.username)?;
    let password = match input.password {
        Some(p) => {
            check_password(&p)?;
            p
        }
        None => crate::auth::password::generate()[..12].to_string(),
    };
    let static_ip = parse_ip(input.static_ip)?;
    let plan = pppoe_plan_in(conn, &input.plan_id).await?;
    crate::customers::fetch(conn, &input.customer_id)
        .await
        .map_err(|_| DomainError::invalid("customer_id", "no such customer"))?;
    let site = crate::sites::by_id_in(conn, &input.site_id)
        .await
        .map_err(|_| DomainError::invalid("site_id", "no such site"))?;
    if site.revoked_at.is_some() {
        return Err(DomainError::invalid("site_id", "the site is revoked"));
    }
    let today = cycle::local_date(now, st.utc_offset_minutes);
    let start = match &input.start_date {
        Some(s) => parse_date("start_date", s)?,
        None => today,
    };
    if start > today + time::Duration::days(366) || start < today - time::Duration::days(366) {
        return Err(DomainError::invalid(
            "start_date",
            "must be within a year of today",
        ));
    }
    let bill_from = match &input.bill_from {
        Some(s) => parse_date("bill_from", s)?,
        None => start,
    };
    if bill_from < start {
        return Err(DomainError::invalid(
            "bill_from",
            "must be on or after the start date",
        ));
    }
    if bill_from > today + time::Duration::days(366) {
        return Err(DomainError::invalid(
            "bill_from",
            "must be within a year of today",
        ));
    }
    let billing_day = input
        .billing_day
        .unwrap_or(bill_from.day().min(cycle::MAX_BILLING_DAY));
    if !cycle::check_billing_day(billing_day) {
        return Err(DomainError::invalid(
            "billing_day",
            "must be between 1 and 28",
        ));
    }
    let due_days = input.due_days.unwrap_or(st.default_due_days);
    let grace_days = input.grace_days.unwrap_or(st.default_grace_days);
    if due_days > 60 || grace_days > 60 {
        return Err(DomainError::invalid(
            if due_days > 60 {
                "due_days"
            } else {
                "grace_days"
            },
            "must be at most 60",
        ));
    }
    let first = cycle::cycle_containing(bill_from, billing_day);
    // Billing that starts later waits for the invoice run, which bills a partial first
    // cycle from wherever `next_cycle_at` stands.
    let bill_later = bill_from > today;
    let next_cycle_at = if bill_later { bill_from } else { first.end };
    let id = uuid::Uuid::new_v4().to_string();
    let off = st.utc_offset_minutes;
    if let Some(ip) = &static_ip
        && ip_taken(conn, ip, &id).await?
    {
        return Err(DomainError::conflict(
            "ip_taken",
            format!("{ip} is already assigned to another subscription"),
        ));
    }
    let inserted = sqlx::query(
        "INSERT INTO subscriptions (id, customer_id, plan_id, site_id, username, password, static_ip, billing_day, due_days, grace_days, \
         status, next_cycle_at, started_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'active', $11, $12, $13, $13) \
         ON CONFLICT (username) DO NOTHING",
    )
    .bind(&id)
    .bind(&input.customer_id)
    .bind(&plan.id)
    .bind(&site.id)
    .bind(&input.username)
    .bind(&password)
    .bind(&static_ip)
    .bind(billing_day as i64)
    .bind(due_days as i64)
    .bind(grace_days as i64)
    .bind(cycle::local_midnight_ms(next_cycle_at, off))
    .bind(cycle::local_midnight_ms(start, off))
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(DomainError::conflict(
            "exists",
            format!("the PPPoE user name {:?} is taken", input.username),
        ));
    }
    let sub = fetch(conn, &id).await?;
    sync(conn, &sub).await?;
    audit::record(
        conn,
        actor,
        "subscription.create",
        "subscription",
        Some(&id),
        None::<&()>,
        Some(&sub),
    )
    .await?;
    if bill_later {
        return Ok(sub);
    }
    let billed = cycle::remaining_days(bill_from, first);
    invoices::issue(
        conn,
        actor,
        NewInvoice {
            customer_id: sub.customer_id.clone(),
            subscription_id: Some(id.clone()),
            kind: InvoiceKind::Cycle,
            period: Some((
                cycle::local_midnight_ms(bill_from, off),
                cycle::local_midnight_ms(first.end, off),
            )),
            lines: vec![Line {
                description: cycle_line(&plan.name, first, billed),
                amount: cycle::first_cycle_charge(plan.price, bill_from, first),
            }],
            due_at: cycle::local_midnight_ms(
                bill_from + time::Duration::days(due_days as i64),
                off,
            ),
            tax: st.tax(),
            year: today.year(),
        },
    )
    .await?;
    Ok(sub)
}
