//! Vouchers carried over from another billing system: unused codes, and logins already in
//! use with the first use and end of validity they had there. Written inside the caller's
//! transaction (an import writes many records at once), synced and audited as other voucher
//! changes; no money is recorded, as it was taken in the other system.

use super::{RECORD_COLUMNS, Scope, State, VoucherRecord, record_from_row, sync, valid_code};
use crate::audit::{self, Actor};
use crate::error::{DomainError, DomainResult};
use mikrobill_protocol::items::Item;
use mikrobill_protocol::messages::ChangeOp;

/// A voucher as another system left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarriedVoucher {
    /// The login code.
    pub code: String,
    /// A separate password, when the login has one.
    pub password: Option<String>,
    /// The (hotspot) plan it grants.
    pub plan_id: String,
    /// The site it can be used at.
    pub site_id: String,
    /// First use (unix ms): set for a login already in use, which is then active.
    pub activated_at: Option<i64>,
    /// The end of validity the other system gave it (unix ms).
    pub expires_at: Option<i64>,
    /// What the other system already counted (seconds online, bytes both ways).
    pub used: Option<(u64, u64)>,
}

/// Stores a carried-over voucher (new, or active when it has a first use) and syncs it to
/// its site.
pub async fn create_in(
    conn: &mut sqlx::AnyConnection,
    actor: &Actor,
    v: CarriedVoucher,
    now: i64,
) -> DomainResult<VoucherRecord> {
    if !valid_code(&v.code) {
        return Err(DomainError::invalid(
            "code",
            "must be 1-64 letters, digits, '-', '_' or '.'",
        ));
    }
    let plan = crate::plans::fetch_info(conn, &v.plan_id).await?;
    if plan.kind != crate::plans::PlanKind::Hotspot {
        return Err(DomainError::invalid("plan_id", "is not a hotspot plan"));
    }
    let state = if v.activated_at.is_some() {
        State::Active
    } else {
        State::New
    };
    let (used_secs, used_bytes) = v.used.unwrap_or((0, 0));
    let (used_secs, used_bytes) = (
        i64::try_from(used_secs).map_err(|_| DomainError::invalid("uptime", "is too large"))?,
        i64::try_from(used_bytes).map_err(|_| DomainError::invalid("bytes", "is too large"))?,
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO vouchers (code, password, plan_id, site_id, status, activated_at, expires_at, created_at, used_time_secs, used_bytes) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (code) DO NOTHING RETURNING {RECORD_COLUMNS}"
    )))
    .bind(&v.code)
    .bind(&v.password)
    .bind(&v.plan_id)
    .bind(&v.site_id)
    .bind(state.as_str())
    .bind(v.activated_at)
    .bind(v.expires_at)
    .bind(now)
    .bind(used_secs)
    .bind(used_bytes)
    .fetch_all(&mut *conn)
    .await?;
    let Some(row) = rows.first() else {
        return Err(DomainError::conflict(
            "exists",
            format!("voucher code {:?} already exists", v.code),
        ));
    };
    let record = record_from_row(row)?;
    if v.used.is_some() {
        carry_usage(conn, &v.site_id, &record.code, used_secs, used_bytes, now).await?;
    }
    sync(
        conn,
        vec![(
            Scope::Site(v.site_id.clone()),
            ChangeOp::Upsert(Item::Voucher(record.item())),
        )],
    )
    .await?;
    audit::record(
        conn,
        actor,
        "voucher.create",
        "voucher",
        Some(&record.code),
        None::<&()>,
        Some(&record),
    )
    .await?;
    Ok(record)
}

/// Use counted before the import, as one ended session in the usage ledger: a voucher's
/// totals are the sums of its sessions there (`metered.rs`), so later ingests add to it
/// instead of replacing it.
async fn carry_usage(
    conn: &mut sqlx::AnyConnection,
    site_id: &str,
    code: &str,
    secs: i64,
    bytes: i64,
    now: i64,
) -> DomainResult<()> {
    sqlx::query(
        "INSERT INTO usage_sessions (site_id, nas_identifier, session_id, username, session_time_secs, \
         input_octets, output_octets, first_at, last_at, stopped_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7, $7)",
    )
    .bind(site_id)
    .bind(CARRIED_NAS)
    .bind(format!("carried:{code}"))
    .bind(code)
    .bind(secs)
    .bind(bytes)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// `usage_sessions.nas_identifier` of use carried over from another system.
pub const CARRIED_NAS: &str = "import";
