//! Usage as the accounting ledger records it: a subscription's sessions, online time and
//! traffic in its current billing cycle, and what a hotspot voucher has left (from the usage
//! ledger, whose totals ingest also stores on the voucher).
//!
//! Accounting records carry running totals per session (interim updates and the stop repeat
//! the session's counters so far), so a session counts with its largest counters and sessions
//! add up. A session counts in the cycle in which it was last heard of.

use crate::billing::cycle;
use crate::db::{Db, now_ms};
use crate::error::DomainResult;
use crate::plans::{self, PlanInfo};
use crate::subscriptions::Subscription;
use crate::vouchers::{self, State, Viewer, VoucherRecord, usage_state};
use serde::Serialize;
use sqlx::Row;

/// Accounted usage over some period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Sessions seen.
    pub sessions: i64,
    /// Online time, seconds.
    pub online_secs: i64,
    /// Octets the subscriber downloaded.
    pub download_bytes: i64,
    /// Octets the subscriber uploaded.
    pub upload_bytes: i64,
}

impl Usage {
    /// A row with `sessions`, `secs`, `down` and `up`, as both sums below select them.
    fn from_row(row: &sqlx::any::AnyRow) -> Result<Usage, sqlx::Error> {
        Ok(Usage {
            sessions: row.try_get("sessions")?,
            online_secs: row.try_get("secs")?,
            download_bytes: row.try_get("down")?,
            upload_bytes: row.try_get("up")?,
        })
    }

    /// Downloaded plus uploaded octets, what a data quota counts.
    pub fn total_bytes(&self) -> i64 {
        self.download_bytes.saturating_add(self.upload_bytes)
    }
}

/// Sums the sessions of `username` heard of at or after `since` (unix ms), at one site or,
/// with `site_id` `None`, at every site, from the usage ledger's session highs.
async fn usage_of(
    db: &Db,
    username: &str,
    site_id: Option<&str>,
    since: i64,
) -> DomainResult<Usage> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS sessions, CAST(COALESCE(SUM(session_time_secs), 0) AS BIGINT) AS secs, \
         CAST(COALESCE(SUM(output_octets), 0) AS BIGINT) AS down, \
         CAST(COALESCE(SUM(input_octets), 0) AS BIGINT) AS up FROM usage_sessions \
         WHERE username = $1 AND (CAST($2 AS TEXT) IS NULL OR site_id = $2) AND last_at >= $3",
    )
    .bind(username)
    .bind(site_id)
    .bind(since)
    .fetch_one(&db.pool)
    .await?;
    Ok(Usage::from_row(&row)?)
}

/// Everything `username` used at every site, from the usage ledger: the split of the totals
/// ingest stores on a voucher.
async fn ledger_usage(db: &Db, username: &str) -> DomainResult<Usage> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS sessions, CAST(COALESCE(SUM(session_time_secs), 0) AS BIGINT) AS secs, \
         CAST(COALESCE(SUM(output_octets), 0) AS BIGINT) AS down, \
         CAST(COALESCE(SUM(input_octets), 0) AS BIGINT) AS up \
         FROM usage_sessions WHERE username = $1",
    )
    .bind(username)
    .fetch_one(&db.pool)
    .await?;
    Ok(Usage::from_row(&row)?)
}

/// A subscription's usage in the billing cycle running now.
#[derive(Debug, Clone, Serialize)]
pub struct CycleUsage {
    /// Start of the cycle (unix ms).
    pub cycle_start: i64,
    /// End of the cycle, exclusive (unix ms).
    pub cycle_end: i64,
    /// What was used since the cycle started.
    pub usage: Usage,
}

/// What `sub` used in its current billing cycle (in the operator's time zone).
pub async fn current_cycle(
    db: &Db,
    sub: &Subscription,
    utc_offset_minutes: i32,
) -> DomainResult<CycleUsage> {
    let today = cycle::local_date(now_ms(), utc_offset_minutes);
    let billing_day = u8::try_from(sub.billing_day).unwrap_or(1);
    let c = cycle::cycle_containing(today, billing_day);
    let cycle_start = cycle::local_midnight_ms(c.start, utc_offset_minutes);
    let cycle_end = cycle::local_midnight_ms(c.end, utc_offset_minutes);
    let usage = usage_of(db, &sub.username, Some(&sub.site_id), cycle_start).await?;
    Ok(CycleUsage {
        cycle_start,
        cycle_end,
        usage,
    })
}

/// What a voucher holder may learn about their voucher by its code.
#[derive(Debug, Clone, Serialize)]
pub struct VoucherBalance {
    /// The code.
    pub code: String,
    /// Lifecycle state.
    pub status: State,
    /// Active at its plan's fair-usage rate: the data limit is used.
    pub throttled: bool,
    /// The plan's name.
    pub plan_name: String,
    /// First use (unix ms).
    pub activated_at: Option<i64>,
    /// When it stops working (unix ms): the earlier of validity after first use and the
    /// voucher's own expiry; `None` when neither applies yet.
    pub valid_until: Option<i64>,
    /// Online time allowed, seconds; `None` when unlimited.
    pub time_limit_secs: Option<i64>,
    /// Online time left, seconds; `None` when unlimited.
    pub time_left_secs: Option<i64>,
    /// Data allowed, bytes; `None` when unlimited.
    pub data_limit_bytes: Option<i64>,
    /// Data left, bytes; `None` when unlimited.
    pub data_left_bytes: Option<i64>,
    /// Accounted usage so far.
    pub usage: Usage,
}

/// The balance of the voucher with `code`, `None` when there is no such voucher.
pub async fn voucher_balance(db: &Db, code: &str) -> DomainResult<Option<VoucherBalance>> {
    let code = code.trim();
    if code.is_empty() || code.len() > 64 {
        return Ok(None);
    }
    let voucher: VoucherRecord = match vouchers::get(db, &Viewer::All, code).await {
        Ok(v) => v,
        Err(crate::error::DomainError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let plan: PlanInfo = plans::get(db, &voucher.plan_id).await?;
    let usage = ledger_usage(db, &voucher.code).await?;
    let valid_until =
        usage_state::validity_end(voucher.activated_at, plan.validity_secs, voucher.expires_at);
    // The stored totals are the ledger's, written by ingest; the balance shows the same
    // numbers as the API and the admin pages.
    let used_secs = voucher.used_time_secs;
    let used_bytes = voucher.used_bytes;
    Ok(Some(VoucherBalance {
        code: voucher.code,
        status: voucher.status,
        throttled: voucher.throttled,
        plan_name: plan.name,
        activated_at: voucher.activated_at,
        valid_until,
        time_limit_secs: plan.time_limit_secs,
        time_left_secs: plan.time_limit_secs.map(|l| (l - used_secs).max(0)),
        data_limit_bytes: plan.data_limit_bytes,
        data_left_bytes: plan.data_limit_bytes.map(|l| (l - used_bytes).max(0)),
        usage,
    }))
}
