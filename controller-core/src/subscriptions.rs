//! PPPoE subscriptions: a customer's account on a site, billed per cycle, isolated when
//! overdue and re-activated when paid. Every change to what the router's RADIUS server must
//! know is appended to the sync log for the subscription's site in the same transaction.

use crate::audit::{self, Actor};
use crate::billing::cycle::{self, Cycle};
use crate::billing::invoices::{self, InvoiceKind, Line, NewInvoice};
use crate::db::{Db, now_ms};
use crate::error::{DomainError, DomainResult, text};
use crate::plans::{self, PlanKind};
use crate::settings::{self, BillingSettings};
use crate::sync_log;
use mikrobill_protocol::items::{AccountStatus, Item, ItemKey, User};
use mikrobill_protocol::messages::{ChangeOp, Command};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::net::Ipv4Addr;
use time::Date;

const DAY_MS: i64 = 86_400_000;

/// Where a subscription stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionStatus {
    /// Normal service.
    Active,
    /// Overdue or held: logins get the isolation profile.
    Isolated,
    /// Ended: the account is removed from the site.
    Terminated,
}

impl SubscriptionStatus {
    /// Storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::Isolated => "isolated",
            SubscriptionStatus::Terminated => "terminated",
        }
    }

    fn parse(s: &str) -> SubscriptionStatus {
        match s {
            "isolated" => SubscriptionStatus::Isolated,
            "terminated" => SubscriptionStatus::Terminated,
            _ => SubscriptionStatus::Active,
        }
    }
}

/// A PPPoE subscription.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Subscription {
    /// Stable id.
    pub id: String,
    /// The customer.
    pub customer_id: String,
    /// The PPPoE plan.
    pub plan_id: String,
    /// The site whose router serves it.
    pub site_id: String,
    /// PPPoE user name (unique).
    pub username: String,
    /// PPPoE password (operators need it to set up the CPE).
    pub password: String,
    /// Fixed address handed out, if any.
    pub static_ip: Option<String>,
    /// Day of month (1-28) a cycle starts.
    pub billing_day: i64,
    /// Days after a cycle starts that its invoice is due.
    pub due_days: i64,
    /// Days after the due date before isolation.
    pub grace_days: i64,
    /// Active, isolated or terminated.
    pub status: SubscriptionStatus,
    /// `overdue` or `manual` while isolated.
    pub isolation_reason: Option<String>,
    /// Start of the first cycle not invoiced yet (unix ms).
    pub next_cycle_at: i64,
    /// Service start (unix ms).
    pub started_at: i64,
    /// When it was isolated.
    pub isolated_at: Option<i64>,
    /// When it was terminated.
    pub terminated_at: Option<i64>,
    /// Creation time (unix ms).
    pub created_at: i64,
    /// Last change (unix ms).
    pub updated_at: i64,
}

const COLUMNS: &str = "id, customer_id, plan_id, site_id, username, password, static_ip, billing_day, due_days, grace_days, status, isolation_reason, next_cycle_at, started_at, isolated_at, terminated_at, created_at, updated_at";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Subscription, sqlx::Error> {
    Ok(Subscription {
        id: r.try_get("id")?,
        customer_id: r.try_get("customer_id")?,
        plan_id: r.try_get("plan_id")?,
        site_id: r.try_get("site_id")?,
        username: r.try_get("username")?,
        password: r.try_get("password")?,
        static_ip: r.try_get("static_ip")?,
        billing_day: r.try_get("billing_day")?,
        due_days: r.try_get("due_days")?,
        grace_days: r.try_get("grace_days")?,
        status: SubscriptionStatus::parse(&r.try_get::<String, _>("status")?),
        isolation_reason: r.try_get("isolation_reason")?,
        next_cycle_at: r.try_get("next_cycle_at")?,
        started_at: r.try_get("started_at")?,
        isolated_at: r.try_get("isolated_at")?,
        terminated_at: r.try_get("terminated_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Reads a subscription inside a transaction or on a connection.
pub async fn fetch(conn: &mut sqlx::AnyConnection, id: &str) -> DomainResult<Subscription> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM subscriptions WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| DomainError::not_found("subscription", id))?;
    Ok(from_row(&row)?)
}

/// One subscription.
pub async fn get(db: &Db, id: &str) -> DomainResult<Subscription> {
    let mut conn = db.pool.acquire().await?;
    fetch(&mut conn, id).await
}

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
async fn sync(conn: &mut sqlx::AnyConnection, s: &Subscription) -> DomainResult<()> {
    let op = match user_item(s) {
        Some(user) => ChangeOp::Upsert(Item::User(user)),
        None => ChangeOp::Delete(ItemKey::User(s.username.clone())),
    };
    sync_log::append(conn, Some(&s.site_id), &[op]).await?;
    Ok(())
}

/// Queues a command for the subscription's router in the caller's transaction, so running
/// sessions follow the change (the cache update alone only affects the next login).
async fn queue(
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

fn check_username(u: &str) -> DomainResult<()> {
    let ok = (1..=64).contains(&u.len())
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "username",
            "must be 1-64 letters, digits, '.', '_', '-' or '@'",
        ))
    }
}

fn check_password(p: &str) -> DomainResult<()> {
    if (4..=64).contains(&p.chars().count()) && p.chars().all(|c| c.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "password",
            "must be 4-64 printable ASCII characters without spaces",
        ))
    }
}

fn parse_ip(ip: Option<String>) -> DomainResult<Option<String>> {
    match text("static_ip", ip, 15)? {
        None => Ok(None),
        Some(ip) => ip
            .parse::<Ipv4Addr>()
            .map(|a| Some(a.to_string()))
            .map_err(|_| DomainError::invalid("static_ip", "must be an IPv4 address")),
    }
}

/// Parses a local calendar date `YYYY-MM-DD`.
pub fn parse_date(field: &'static str, s: &str) -> DomainResult<Date> {
    let bad = || DomainError::invalid(field, "must be a date YYYY-MM-DD");
    let mut parts = s.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let y: i32 = y.parse().map_err(|_| bad())?;
    let m: u8 = m.parse().map_err(|_| bad())?;
    let d: u8 = d.parse().map_err(|_| bad())?;
    let month = time::Month::try_from(m).map_err(|_| bad())?;
    Date::from_calendar_date(y, month, d).map_err(|_| bad())
}

fn fmt_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

async fn pppoe_plan(db: &Db, plan_id: &str) -> DomainResult<plans::PlanInfo> {
    let plan = plans::get(db, plan_id).await.map_err(|e| match e {
        DomainError::NotFound { .. } => DomainError::invalid("plan_id", "no such plan"),
        other => other,
    })?;
    if plan.kind != PlanKind::Pppoe {
        return Err(DomainError::invalid("plan_id", "is not a PPPoE plan"));
    }
    if plan.archived {
        return Err(DomainError::invalid("plan_id", "the plan is archived"));
    }
    Ok(plan)
}

async fn ip_taken(conn: &mut sqlx::AnyConnection, ip: &str, except: &str) -> DomainResult<bool> {
    Ok(sqlx::query("SELECT 1 AS x FROM subscriptions WHERE static_ip = $1 AND id <> $2 AND status <> 'terminated'")
        .bind(ip)
        .bind(except)
        .fetch_optional(&mut *conn)
        .await?
        .is_some())
}

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
    /// Days until an invoice is due (default from settings).
    pub due_days: Option<u32>,
    /// Days after due before isolation (default from settings).
    pub grace_days: Option<u32>,
}

fn cycle_line(plan_name: &str, period: Cycle, billed_days: u32) -> String {
    if billed_days == period.days() {
        format!(
            "{plan_name}, {} to {}",
            fmt_date(period.start),
            fmt_date(period.end)
        )
    } else {
        format!(
            "{plan_name}, {} to {} ({billed_days} of {} days)",
            fmt_date(period.end - time::Duration::days(billed_days as i64)),
            fmt_date(period.end),
            period.days()
        )
    }
}

/// Creates a subscription, syncs the account to its site and issues the first (prorated)
/// invoice, all in one transaction.
pub async fn create(
    db: &Db,
    actor: &Actor,
    input: SubscriptionInput,
) -> DomainResult<Subscription> {
    let st = settings::billing(db).await?;
    check_username(&input.username)?;
    let password = match input.password {
        Some(p) => {
            check_password(&p)?;
            p
        }
        None => crate::auth::password::generate()[..12].to_string(),
    };
    let static_ip = parse_ip(input.static_ip)?;
    let plan = pppoe_plan(db, &input.plan_id).await?;
    crate::customers::get(db, &input.customer_id)
        .await
        .map_err(|_| DomainError::invalid("customer_id", "no such customer"))?;
    let site = crate::sites::by_id(db, &input.site_id)
        .await
        .map_err(|_| DomainError::invalid("site_id", "no such site"))?;
    if site.revoked_at.is_some() {
        return Err(DomainError::invalid("site_id", "the site is revoked"));
    }
    let now = now_ms();
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
    let billing_day = input
        .billing_day
        .unwrap_or(start.day().min(cycle::MAX_BILLING_DAY));
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
    let first = cycle::cycle_containing(start, billing_day);
    let id = uuid::Uuid::new_v4().to_string();
    let off = st.utc_offset_minutes;
    let mut tx = db.begin().await?;
    if let Some(ip) = &static_ip
        && ip_taken(&mut tx, ip, &id).await?
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
    .bind(cycle::local_midnight_ms(first.end, off))
    .bind(cycle::local_midnight_ms(start, off))
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(DomainError::conflict(
            "exists",
            format!("the PPPoE user name {:?} is taken", input.username),
        ));
    }
    let sub = fetch(&mut tx, &id).await?;
    sync(&mut tx, &sub).await?;
    audit::record(
        &mut tx,
        actor,
        "subscription.create",
        "subscription",
        Some(&id),
        None::<&()>,
        Some(&sub),
    )
    .await?;
    let billed = cycle::remaining_days(start, first);
    invoices::issue(
        &mut tx,
        actor,
        NewInvoice {
            customer_id: sub.customer_id.clone(),
            subscription_id: Some(id.clone()),
            kind: InvoiceKind::Cycle,
            period: Some((
                cycle::local_midnight_ms(start, off),
                cycle::local_midnight_ms(first.end, off),
            )),
            lines: vec![Line {
                description: cycle_line(&plan.name, first, billed),
                amount: cycle::first_cycle_charge(plan.price, start, first),
            }],
            due_at: cycle::local_midnight_ms(start + time::Duration::days(due_days as i64), off),
            tax: st.tax(),
            year: today.year(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(sub)
}

/// Filters of the subscription list.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionFilter {
    /// One customer's.
    pub customer_id: Option<String>,
    /// One site's.
    pub site_id: Option<String>,
    /// One status.
    pub status: Option<SubscriptionStatus>,
    /// User names starting with this.
    pub q: Option<String>,
}

/// Subscriptions ordered by user name after `after`.
pub async fn list(
    db: &Db,
    f: &SubscriptionFilter,
    after: &str,
    limit: u32,
) -> DomainResult<Vec<Subscription>> {
    let prefix =
        f.q.as_deref()
            .map(|q| format!("{}%", crate::db::escape_like(q)));
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM subscriptions WHERE username > $1 AND (CAST($2 AS TEXT) IS NULL OR customer_id = $2) \
         AND (CAST($3 AS TEXT) IS NULL OR site_id = $3) AND (CAST($4 AS TEXT) IS NULL OR status = $4) \
         AND (CAST($5 AS TEXT) IS NULL OR username LIKE $5 ESCAPE '\\') ORDER BY username LIMIT $6"
    )))
    .bind(after)
    .bind(f.customer_id.as_deref())
    .bind(f.site_id.as_deref())
    .bind(f.status.map(SubscriptionStatus::as_str))
    .bind(prefix)
    .bind(limit as i64)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

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
    let old_plan = plans::get(db, &before.plan_id).await?;
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
        }
    }
    tx.commit().await?;
    Ok(after)
}

/// Sets the status inside the caller's transaction and syncs it.
async fn set_status_in(
    conn: &mut sqlx::AnyConnection,
    actor: &Actor,
    id: &str,
    status: SubscriptionStatus,
    reason: Option<&str>,
    action: &str,
) -> DomainResult<Subscription> {
    let before = fetch(conn, id).await?;
    let now = now_ms();
    sqlx::query(
        "UPDATE subscriptions SET status = $1, isolation_reason = $2, \
         isolated_at = CASE WHEN $1 = 'isolated' THEN $3 ELSE NULL END, \
         terminated_at = CASE WHEN $1 = 'terminated' THEN $3 ELSE terminated_at END, updated_at = $3 WHERE id = $4",
    )
    .bind(status.as_str())
    .bind(reason)
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    let after = fetch(conn, id).await?;
    sync(conn, &after).await?;
    let command = match status {
        SubscriptionStatus::Terminated => Command::Disconnect {
            username: after.username.clone(),
        },
        SubscriptionStatus::Isolated | SubscriptionStatus::Active => Command::SetIsolation {
            username: after.username.clone(),
            isolated: status == SubscriptionStatus::Isolated,
        },
    };
    queue(conn, &after.site_id, id, actor, command).await?;
    let kind = match status {
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
        action,
        "subscription",
        Some(id),
        Some(&before),
        Some(&after),
    )
    .await?;
    Ok(after)
}

/// Moves a subscription from one of `from` to `to` in its own transaction.
async fn transition(
    db: &Db,
    actor: &Actor,
    id: &str,
    from: &[SubscriptionStatus],
    to: SubscriptionStatus,
    reason: Option<&str>,
    action: &str,
) -> DomainResult<Subscription> {
    let mut tx = db.begin().await?;
    let s = fetch(&mut tx, id).await?;
    if !from.contains(&s.status) {
        return Err(DomainError::conflict(
            "invalid_state",
            format!("the subscription is {}", s.status.as_str()),
        ));
    }
    let s = set_status_in(&mut tx, actor, id, to, reason, action).await?;
    tx.commit().await?;
    Ok(s)
}

/// Isolates an active subscription by hand; only an operator lifts it.
pub async fn isolate(db: &Db, actor: &Actor, id: &str) -> DomainResult<Subscription> {
    use SubscriptionStatus::*;
    transition(
        db,
        actor,
        id,
        &[Active],
        Isolated,
        Some("manual"),
        "subscription.isolate",
    )
    .await
}

/// Re-activates an isolated subscription by hand.
pub async fn reactivate(db: &Db, actor: &Actor, id: &str) -> DomainResult<Subscription> {
    use SubscriptionStatus::*;
    transition(
        db,
        actor,
        id,
        &[Isolated],
        Active,
        None,
        "subscription.reactivate",
    )
    .await
}

/// Ends a subscription: no more invoices, the account leaves the router. Unpaid invoices stay.
pub async fn terminate(db: &Db, actor: &Actor, id: &str) -> DomainResult<Subscription> {
    use SubscriptionStatus::*;
    transition(
        db,
        actor,
        id,
        &[Active, Isolated],
        Terminated,
        None,
        "subscription.terminate",
    )
    .await
}

async fn overdue_invoices(conn: &mut sqlx::AnyConnection, id: &str, now: i64) -> DomainResult<i64> {
    Ok(sqlx::query(
        "SELECT COUNT(*) AS n FROM invoices i JOIN subscriptions s ON s.id = i.subscription_id \
         WHERE i.subscription_id = $1 AND i.status = 'unpaid' AND i.due_at + s.grace_days * $2 < $3",
    )
    .bind(id)
    .bind(DAY_MS)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?
    .try_get("n")?)
}

/// After a payment: lifts an overdue isolation when nothing overdue is left. Returns whether
/// it did. Manual isolations stay.
pub async fn reactivate_if_settled(
    conn: &mut sqlx::AnyConnection,
    actor: &Actor,
    id: &str,
) -> DomainResult<bool> {
    let s = fetch(conn, id).await?;
    if s.status != SubscriptionStatus::Isolated || s.isolation_reason.as_deref() != Some("overdue")
    {
        return Ok(false);
    }
    if overdue_invoices(conn, id, now_ms()).await? > 0 {
        return Ok(false);
    }
    set_status_in(
        conn,
        actor,
        id,
        SubscriptionStatus::Active,
        None,
        "subscription.reactivate",
    )
    .await?;
    Ok(true)
}

/// Job: isolates active subscriptions with an invoice unpaid past due + grace. Returns how
/// many were isolated.
pub async fn isolation_sweep(db: &Db, now: i64) -> DomainResult<u64> {
    let ids: Vec<String> = sqlx::query(
        "SELECT DISTINCT s.id FROM subscriptions s JOIN invoices i ON i.subscription_id = s.id \
         WHERE s.status = 'active' AND i.status = 'unpaid' AND i.due_at + s.grace_days * $1 < $2 ORDER BY s.id LIMIT 1000",
    )
    .bind(DAY_MS)
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
        // Re-checked inside the transaction: a payment may have landed meanwhile.
        let s = fetch(&mut tx, &id).await?;
        if s.status == SubscriptionStatus::Active && overdue_invoices(&mut tx, &id, now).await? > 0
        {
            set_status_in(
                &mut tx,
                &actor,
                &id,
                SubscriptionStatus::Isolated,
                Some("overdue"),
                "subscription.isolate",
            )
            .await?;
            n += 1;
        }
        tx.commit().await?;
    }
    Ok(n)
}

/// Job: issues the invoices of every cycle that has started and is not invoiced yet, one
/// transaction per invoice; a cycle claimed by another replica is skipped. Returns how many
/// invoices were issued.
pub async fn invoice_run(db: &Db, now: i64) -> DomainResult<u64> {
    let st = settings::billing(db).await?;
    let actor = Actor::system("scheduler");
    let mut issued = 0;
    loop {
        let due: Vec<String> = sqlx::query(
            "SELECT id FROM subscriptions WHERE status <> 'terminated' AND next_cycle_at <= $1 ORDER BY next_cycle_at, id LIMIT 200",
        )
        .bind(now)
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<_, _>>()?;
        if due.is_empty() {
            return Ok(issued);
        }
        for id in due {
            if invoice_next_cycle(db, &st, &actor, &id, now).await? {
                issued += 1;
            }
        }
    }
}

async fn invoice_next_cycle(
    db: &Db,
    st: &BillingSettings,
    actor: &Actor,
    id: &str,
    now: i64,
) -> DomainResult<bool> {
    let off = st.utc_offset_minutes;
    let mut tx = db.begin().await?;
    let s = fetch(&mut tx, id).await?;
    if s.status == SubscriptionStatus::Terminated || s.next_cycle_at > now {
        return Ok(false);
    }
    let start = cycle::local_date(s.next_cycle_at, off);
    let full = cycle::cycle_containing(start, s.billing_day as u8);
    let period = Cycle {
        start,
        end: full.end,
    };
    // Claim the cycle: only the transaction that moves next_cycle_at issues its invoice.
    let claimed = sqlx::query("UPDATE subscriptions SET next_cycle_at = $1, updated_at = $2 WHERE id = $3 AND next_cycle_at = $4")
        .bind(cycle::local_midnight_ms(period.end, off))
        .bind(now_ms())
        .bind(id)
        .bind(s.next_cycle_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if claimed == 0 {
        return Ok(false);
    }
    let plan = plans::get(db, &s.plan_id).await?;
    let billed = period.days();
    let amount = if full.start == start {
        plan.price
    } else {
        cycle::prorate(plan.price, billed, full.days())
    };
    let issued = invoices::issue(
        &mut tx,
        actor,
        NewInvoice {
            customer_id: s.customer_id.clone(),
            subscription_id: Some(id.to_string()),
            kind: InvoiceKind::Cycle,
            period: Some((s.next_cycle_at, cycle::local_midnight_ms(period.end, off))),
            lines: vec![Line {
                description: cycle_line(&plan.name, period, billed),
                amount,
            }],
            due_at: cycle::local_midnight_ms(start + time::Duration::days(s.due_days), off),
            tax: st.tax(),
            year: cycle::local_date(now, off).year(),
        },
    )
    .await?
    .is_some();
    tx.commit().await?;
    Ok(issued)
}
