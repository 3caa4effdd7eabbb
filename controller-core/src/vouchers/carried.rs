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
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO vouchers (code, password, plan_id, site_id, status, activated_at, expires_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (code) DO NOTHING RETURNING {RECORD_COLUMNS}"
    )))
    .bind(&v.code)
    .bind(&v.password)
    .bind(&v.plan_id)
    .bind(&v.site_id)
    .bind(state.as_str())
    .bind(v.activated_at)
    .bind(v.expires_at)
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    let Some(row) = rows.first() else {
        return Err(DomainError::conflict(
            "exists",
            format!("voucher code {:?} already exists", v.code),
        ));
    };
    let record = record_from_row(row)?;
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
