//! Agent certificates after enrollment: renewal over the authenticated session, and the
//! retirement of the serials a renewed certificate replaces once the agent uses it. Until
//! then both are valid, so an agent that crashes between receiving and storing its new
//! certificate reconnects with the old one.

use crate::audit::{self, Actor};
use crate::db::{Db, DbError, now_ms};
use sqlx::Row;

/// Certificates a site may hold that are neither revoked nor expired: the one in use and a
/// renewed one waiting to be used, plus one spare for a renewal whose answer was lost.
pub const MAX_LIVE: i64 = 3;

/// Why a renewal was refused.
#[derive(Debug, thiserror::Error)]
pub enum RenewError {
    /// The site is revoked (or gone): it can never renew.
    #[error("the site is revoked")]
    Revoked,
    /// Too many live certificates already: renewals are not a way to mint keys.
    #[error("the site already holds {0} live certificates; connect with the newest first")]
    TooMany(i64),
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for RenewError {
    fn from(e: sqlx::Error) -> Self {
        RenewError::Db(e.into())
    }
}

/// Checks that `site_id` may renew now; returns its name (for the certificate's subject).
pub async fn may_renew(db: &Db, site_id: &str, now: i64) -> Result<String, RenewError> {
    let row = sqlx::query(
        "SELECT name, revoked_at, (SELECT COUNT(*) FROM agent_certificates c \
           WHERE c.site_id = s.id AND c.revoked_at IS NULL AND c.not_after > $2) AS live \
         FROM sites s WHERE s.id = $1",
    )
    .bind(site_id)
    .bind(now)
    .fetch_optional(&db.pool)
    .await?
    .ok_or(RenewError::Revoked)?;
    if row.try_get::<Option<i64>, _>("revoked_at")?.is_some() {
        return Err(RenewError::Revoked);
    }
    let live: i64 = row.try_get("live")?;
    if live >= MAX_LIVE {
        return Err(RenewError::TooMany(live));
    }
    Ok(row.try_get("name")?)
}

/// Records a renewed certificate (revocation of the site in the meantime wins: nothing is
/// recorded for a revoked site).
pub async fn record_renewal(
    db: &Db,
    site_id: &str,
    serial_hex: &str,
    not_after_ms: i64,
    ca_fingerprint: &str,
) -> Result<(), RenewError> {
    let now = now_ms();
    let mut tx = db.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO agent_certificates (serial, site_id, issued_at, not_after, ca_fingerprint) \
         SELECT $1, id, $3, $4, $5 FROM sites WHERE id = $2 AND revoked_at IS NULL",
    )
    .bind(serial_hex)
    .bind(site_id)
    .bind(now)
    .bind(not_after_ms)
    .bind(ca_fingerprint)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(RenewError::Revoked);
    }
    audit::record(
        &mut tx,
        &Actor::system("edge"),
        "site.certificate_renewed",
        "site",
        Some(site_id),
        None::<&()>,
        Some(&serde_json::json!({
            "serial": serial_hex,
            "not_after": not_after_ms,
            "ca_fingerprint": ca_fingerprint,
        })),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The agent connected with `serial_hex`: certificates of its site issued before it stop
/// working. Returns how many were retired.
pub async fn retire_older(db: &Db, site_id: &str, serial_hex: &str) -> Result<u64, DbError> {
    let retired = sqlx::query(
        "UPDATE agent_certificates SET revoked_at = $3 \
         WHERE site_id = $1 AND serial <> $2 AND revoked_at IS NULL \
           AND issued_at < (SELECT issued_at FROM agent_certificates WHERE serial = $2 AND site_id = $1)",
    )
    .bind(site_id)
    .bind(serial_hex)
    .bind(now_ms())
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(retired)
}
