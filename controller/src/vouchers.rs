//! Hotspot vouchers (the spine's subset: create, revoke, scope to one site or all).

use crate::db::{Db, DbError, now_ms};
use crate::sync_log;
use mikrobill_protocol::items::{Item, ItemKey, Voucher, VoucherStatus};
use mikrobill_protocol::messages::ChangeOp;
use rand::Rng;
use sqlx::Row;

/// Columns read by [`from_row`].
pub const COLUMNS: &str =
    "code, password, plan_id, status, activated_at, used_time_secs, used_bytes";

/// Characters that cannot be confused when read off paper (no 0/O, 1/I/L).
pub const UNAMBIGUOUS_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// Errors of voucher operations.
#[derive(Debug, thiserror::Error)]
pub enum VoucherError {
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A code already exists.
    #[error("voucher code {0:?} already exists")]
    Exists(String),
    /// No such voucher.
    #[error("no voucher with code {0:?}")]
    NotFound(String),
    /// A field is not acceptable.
    #[error("invalid voucher: {0}")]
    Invalid(String),
}

impl From<sqlx::Error> for VoucherError {
    fn from(e: sqlx::Error) -> Self {
        VoucherError::Db(DbError::Sqlx(e))
    }
}

/// Storage name of a status.
pub fn status_str(s: VoucherStatus) -> &'static str {
    match s {
        VoucherStatus::New => "new",
        VoucherStatus::Sold => "sold",
        VoucherStatus::Active => "active",
        VoucherStatus::Expired => "expired",
        VoucherStatus::Exhausted => "exhausted",
        VoucherStatus::Revoked => "revoked",
    }
}

fn parse_status(s: &str) -> Result<VoucherStatus, sqlx::Error> {
    Ok(match s {
        "new" => VoucherStatus::New,
        "sold" => VoucherStatus::Sold,
        "active" => VoucherStatus::Active,
        "expired" => VoucherStatus::Expired,
        "exhausted" => VoucherStatus::Exhausted,
        "revoked" => VoucherStatus::Revoked,
        other => {
            return Err(sqlx::Error::Decode(
                format!("unknown voucher status {other:?}").into(),
            ));
        }
    })
}

/// Builds a voucher from a row selected with [`COLUMNS`].
pub fn from_row(row: &sqlx::any::AnyRow) -> Result<Voucher, sqlx::Error> {
    Ok(Voucher {
        code: row.try_get("code")?,
        password: row.try_get("password")?,
        plan_id: row.try_get("plan_id")?,
        status: parse_status(&row.try_get::<String, _>("status")?)?,
        activated_at_ms: row.try_get("activated_at")?,
        used_time_secs: row.try_get::<i64, _>("used_time_secs")?.max(0) as u64,
        used_bytes: row.try_get::<i64, _>("used_bytes")?.max(0) as u64,
    })
}

/// Generates `count` random codes of `length` characters after `prefix`.
pub fn generate_codes(count: usize, prefix: &str, length: usize) -> Vec<String> {
    let mut rng = rand::rng();
    let mut seen = std::collections::HashSet::with_capacity(count);
    while seen.len() < count {
        let code: String = prefix
            .chars()
            .chain((0..length).map(|_| {
                UNAMBIGUOUS_ALPHABET[rng.random_range(0..UNAMBIGUOUS_ALPHABET.len())] as char
            }))
            .collect();
        seen.insert(code);
    }
    seen.into_iter().collect()
}

fn valid_code(code: &str) -> bool {
    (1..=64).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Creates vouchers for one site (or all when `site_id` is None) and syncs them out.
pub async fn create(
    db: &Db,
    plan_id: &str,
    site_id: Option<&str>,
    entries: &[(String, Option<String>)],
) -> Result<Vec<Voucher>, VoucherError> {
    if let Some((bad, _)) = entries.iter().find(|(code, _)| !valid_code(code)) {
        return Err(VoucherError::Invalid(format!(
            "code {bad:?} must be 1-64 letters, digits, '-', '_' or '.'"
        )));
    }
    let vouchers: Vec<Voucher> = entries
        .iter()
        .map(|(code, password)| Voucher {
            code: code.clone(),
            password: password.clone(),
            plan_id: plan_id.to_string(),
            status: VoucherStatus::New,
            activated_at_ms: None,
            used_time_secs: 0,
            used_bytes: 0,
        })
        .collect();
    let now = now_ms();
    let mut tx = db.pool.begin().await?;
    for chunk in vouchers.chunks(1000) {
        let sql = format!(
            "INSERT INTO vouchers (code, password, plan_id, site_id, status, created_at) VALUES {} \
             ON CONFLICT (code) DO NOTHING",
            crate::db::values_rows(chunk.len(), 6)
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for v in chunk {
            q = q
                .bind(v.code.clone())
                .bind(v.password.clone())
                .bind(plan_id.to_string())
                .bind(site_id.map(str::to_string))
                .bind(status_str(v.status))
                .bind(now);
        }
        let inserted = q.execute(&mut *tx).await?.rows_affected();
        if inserted != chunk.len() as u64 {
            // Name one of the clashing codes so the operator can act.
            for v in chunk {
                let exists = sqlx::query("SELECT created_at FROM vouchers WHERE code = $1")
                    .bind(&v.code)
                    .fetch_one(&mut *tx)
                    .await?;
                if exists.try_get::<i64, _>("created_at")? != now {
                    return Err(VoucherError::Exists(v.code.clone()));
                }
            }
            return Err(VoucherError::Invalid(
                "duplicate codes in the request".into(),
            ));
        }
    }
    let ops: Vec<ChangeOp> = vouchers
        .iter()
        .map(|v| ChangeOp::Upsert(Item::Voucher(v.clone())))
        .collect();
    sync_log::append(&mut tx, site_id, &ops).await?;
    tx.commit().await?;
    Ok(vouchers)
}

/// Revokes a voucher: it disappears from every agent cache.
pub async fn revoke(db: &Db, code: &str) -> Result<(), VoucherError> {
    let mut tx = db.pool.begin().await?;
    let row = sqlx::query("UPDATE vouchers SET status = $1 WHERE code = $2 RETURNING site_id")
        .bind(status_str(VoucherStatus::Revoked))
        .bind(code)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| VoucherError::NotFound(code.to_string()))?;
    let site_id: Option<String> = row.try_get("site_id")?;
    sync_log::append(
        &mut tx,
        site_id.as_deref(),
        &[ChangeOp::Delete(ItemKey::Voucher(code.to_string()))],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_are_unique_and_unambiguous() {
        let codes = generate_codes(2000, "HS-", 6);
        assert_eq!(codes.len(), 2000);
        assert_eq!(
            codes.iter().collect::<std::collections::HashSet<_>>().len(),
            2000
        );
        for c in &codes {
            assert!(c.starts_with("HS-") && c.len() == 9);
            assert!(!c[3..].contains(['0', 'O', '1', 'I', 'L']));
            assert!(valid_code(c));
        }
    }
}
