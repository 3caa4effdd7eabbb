//! Checks of what an operator types into a subscription.

use crate::db::Db;
use crate::error::{DomainError, DomainResult, text};
use crate::plans::{self, PlanKind};
use std::net::Ipv4Addr;
use time::Date;

pub(super) fn check_username(u: &str) -> DomainResult<()> {
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

pub(super) fn check_password(p: &str) -> DomainResult<()> {
    if (4..=64).contains(&p.chars().count()) && p.chars().all(|c| c.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "password",
            "must be 4-64 printable ASCII characters without spaces",
        ))
    }
}

pub(super) fn parse_ip(ip: Option<String>) -> DomainResult<Option<String>> {
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

pub(super) async fn pppoe_plan(db: &Db, plan_id: &str) -> DomainResult<plans::PlanInfo> {
    let mut conn = db.pool.acquire().await?;
    pppoe_plan_in(&mut conn, plan_id).await
}

/// A PPPoE plan new subscriptions may take, read inside the caller's transaction.
pub(super) async fn pppoe_plan_in(
    conn: &mut sqlx::AnyConnection,
    plan_id: &str,
) -> DomainResult<plans::PlanInfo> {
    let plan = plans::fetch_info(conn, plan_id)
        .await
        .map_err(|e| match e {
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
